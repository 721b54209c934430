/**
 * Files for a server container, kept in a volume of their own rather than in its `uploads`: a
 * container that is created and never started uploads them into the volume, and the server
 * mounts that volume read-only. A changed file then replaces only the writer; whether the server
 * is replaced too (secret files) or reloads them in place (live configuration) is the caller's
 * choice.
 */
import * as path from "path";
import * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import { REAPING_INIT, type Upload } from "./container-defaults";

export interface FilesWriterArgs {
  /** Resource and container name of the writer and its volume, e.g. `<owner>-secrets`. */
  name: string;
  /** Any image present for the owner (the writer is never started). */
  image: pulumi.Input<string>;
  /** Where the volume is mounted, in the writer and in the server; every file is under it. */
  directory: string;
  files: Upload[];
  labels: docker.types.input.ContainerLabel[];
}

export interface WrittenFiles {
  /** The server's read-only mount of the volume. */
  volume: docker.types.input.ContainerVolume;
  writer: docker.Container;
}

export function filesWriter(parent: pulumi.Resource, args: FilesWriterArgs): WrittenFiles {
  for (const f of args.files) {
    const file = f.file as string;
    if (!file.startsWith(`${args.directory}/`) || path.posix.normalize(file) !== file) {
      throw new Error(`${args.name}: ${file} is not a file under ${args.directory}`);
    }
  }
  const volume = new docker.Volume(args.name, { name: args.name, labels: args.labels }, { parent });
  const writer = new docker.Container(args.name, {
    name: args.name,
    image: args.image,
    start: false,
    // A created-only container reads back as stopped; must_run would then plan an update on every up.
    mustRun: false,
    volumes: [{ volumeName: volume.name, containerPath: args.directory }],
    uploads: args.files,
    labels: args.labels,
    // Never started, but were it ever, no process of it would be PID 1 either.
    ...REAPING_INIT,
  }, { parent, deleteBeforeReplace: true });
  return { volume: { volumeName: volume.name, containerPath: args.directory, readOnly: true }, writer };
}
