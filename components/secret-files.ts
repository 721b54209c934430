/**
 * A container's secret files, kept out of its own `uploads`. The engine marks a whole array
 * property secret when any element of it is secret, so keys and verifiers in the same `uploads`
 * as the rendered configs would show every config change in `pulumi preview --diff` as
 * `[secret]`. Instead a created-only writer puts them in a volume of their own (files-writer.ts).
 * The server carries the writer's id as a label, so a changed secret still replaces the server
 * (and the preview names it a label change, never showing the secret).
 */
import * as path from "path";
import type * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import type { Upload } from "./container-defaults";
import { filesWriter } from "./files-writer";

export interface SecretFilesArgs {
  /** Name of the container the files are for; the volume and the writer are named after it. */
  owner: string;
  /** Any image present for the owner (the writer is never started). */
  image: pulumi.Input<string>;
  /** Uploads of one directory, each under it. */
  files: Upload[];
  labels: docker.types.input.ContainerLabel[];
}

/** What the owner container adds: the read-only mount and the label that ties it to the writer. */
export interface SecretMount {
  volume: docker.types.input.ContainerVolume;
  label: docker.types.input.ContainerLabel;
}

export function secretFiles(parent: pulumi.Resource, args: SecretFilesArgs): SecretMount {
  const directory = path.posix.dirname(args.files[0].file as string);
  const { volume, writer } = filesWriter(parent, { name: `${args.owner}-secrets`, image: args.image, directory, files: args.files, labels: args.labels });
  return { volume, label: { label: "pgha.secrets-writer", value: writer.id } };
}
