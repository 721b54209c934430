/**
 * A server's live configuration: rendered files and certificates a running server re-reads on
 * reload. They are written into a volume by a created-only writer (files-writer.ts) that the
 * server does not reference, so a changed file replaces the writer alone and the server stays.
 * The server's start script watches the volume and reloads (`pgha_watch_live` in common.sh);
 * the preview still shows the changed lines, on the writer's uploads.
 */
import type * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import { PATHS } from "../topology";
import type { Upload } from "./container-defaults";
import { filesWriter } from "./files-writer";

export interface LiveConfigArgs {
  /** Name of the server container; the volume and the writer are `<owner>-config`. */
  owner: string;
  image: pulumi.Input<string>;
  /** Uploads under PATHS.liveDir. */
  files: Upload[];
  labels: docker.types.input.ContainerLabel[];
}

export interface LiveConfig {
  /** The server's read-only mount of the volume. */
  volume: docker.types.input.ContainerVolume;
  /** The server depends on it (so its files exist at first start) but takes no input from it. */
  writer: docker.Container;
}

export function liveConfig(parent: pulumi.Resource, args: LiveConfigArgs): LiveConfig {
  return filesWriter(parent, { name: `${args.owner}-config`, image: args.image, directory: PATHS.liveDir, files: args.files, labels: args.labels });
}

/** Where a file of the usual configuration layout lives in the live volume (`/etc/pg-ha/x` -> `<liveDir>/x`). */
export function livePath(file: string): string {
  if (!file.startsWith("/etc/pg-ha/")) throw new Error(`livePath: ${file} is not under /etc/pg-ha/`);
  return `${PATHS.liveDir}/${file.slice("/etc/pg-ha/".length)}`;
}
