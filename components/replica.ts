import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { type PostgresNodeArgs, postgresContainerArgs, postgresContainerOptions, postgresSecretUploads } from "./postgres-node";
import { clusterLabels, upload } from "./container-defaults";
import { secretFiles } from "./secret-files";
import type { KeyPair } from "./tls";
import { PATHS } from "../topology";

export interface PostgresReplicaArgs extends PostgresNodeArgs {
  /** Client certificate the replica streams with (no replication password exists). */
  replicationKeyPair: KeyPair;
  /** The primary's container: a replica is created only once the primary is healthy. */
  primary: pulumi.Resource;
}

/** A streaming hot standby: clones the primary through its own slot when its volume is empty. */
export class PostgresReplica extends pulumi.ComponentResource {
  readonly container: docker.Container;

  constructor(name: string, args: PostgresReplicaArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:postgres:PostgresReplica", name, {}, opts);
    const secrets = secretFiles(this, {
      owner: name,
      image: args.image,
      files: postgresSecretUploads(args, [upload(PATHS.replicationKeyUpload, args.replicationKeyPair.privateKeyPem, "0600")]),
      labels: clusterLabels(args.spec.clusterName, "secrets", name),
    });
    this.container = new docker.Container(
      name,
      postgresContainerArgs(args, [upload(PATHS.replicationCert, args.replicationKeyPair.certPem)], secrets),
      postgresContainerOptions(this, [args.primary]),
    );
    this.registerOutputs({ containerName: this.container.name });
  }
}
