/**
 * A container's secret files, kept out of its own `uploads`. The engine marks a whole array
 * property secret when any element of it is secret, so keys and verifiers in the same `uploads`
 * as the rendered configs would show every config change in `pulumi preview --diff` as
 * `[secret]`. Instead they go into a volume of their own, written by a container that is created
 * and never started; the server mounts that volume read-only. The server carries the writer's id
 * as a label, so a changed secret still replaces the server (and the preview names it a label
 * change, never showing the secret).
 */
import * as path from "path";
import * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import { REAPING_INIT, type Upload } from "./container-defaults";

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
  const name = `${args.owner}-secrets`;
  const volume = new docker.Volume(name, { name, labels: args.labels }, { parent });
  const writer = new docker.Container(name, {
    name,
    image: args.image,
    start: false,
    // A created-only container reads back as stopped; must_run would then plan an update on every up.
    mustRun: false,
    volumes: [{ volumeName: volume.name, containerPath: directory }],
    uploads: args.files,
    labels: args.labels,
    // Never started, but were it ever, no process of it would be PID 1 either.
    ...REAPING_INIT,
  }, { parent, deleteBeforeReplace: true });
  return {
    volume: { volumeName: volume.name, containerPath: directory, readOnly: true },
    label: { label: "pgha.secrets-writer", value: writer.id },
  };
}
