import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { type PostgresNodeArgs, postgresContainerArgs, postgresContainerOptions } from "./postgres-node";
import { upload } from "./container-defaults";
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
    this.container = new docker.Container(
      name,
      postgresContainerArgs(args, [
        upload(PATHS.replicationCert, args.replicationKeyPair.certPem),
        upload(PATHS.replicationKeyUpload, args.replicationKeyPair.privateKeyPem, "0600"),
      ]),
      postgresContainerOptions(this, [args.primary]),
    );
    this.registerOutputs({ containerName: this.container.name });
  }
}
