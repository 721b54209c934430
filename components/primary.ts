import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { renderReconcileSql, type Verifiers } from "../config-templates/render";
import { type PostgresNodeArgs, postgresContainerArgs, postgresContainerOptions, postgresSecretUploads } from "./postgres-node";
import { clusterLabels, upload } from "./container-defaults";
import { secretFiles } from "./secret-files";
import { PATHS } from "../topology";

export interface PostgresPrimaryArgs extends PostgresNodeArgs {
  /** Role -> SCRAM verifier; the primary sets them on every start. */
  verifiers: pulumi.Input<Verifiers>;
}

/** The read-write node: initialises the cluster, and reconciles roles and slots on every start. */
export class PostgresPrimary extends pulumi.ComponentResource {
  readonly container: docker.Container;

  constructor(name: string, args: PostgresPrimaryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:postgres:PostgresPrimary", name, {}, opts);
    const reconcileSql = pulumi.secret(pulumi.output(args.verifiers).apply((v) => renderReconcileSql(args.spec, v)));
    const secrets = secretFiles(this, {
      owner: name,
      image: args.image,
      files: postgresSecretUploads(args, [upload(PATHS.reconcileSqlUpload, reconcileSql, "0600")]),
      labels: clusterLabels(args.spec.clusterName, "secrets", name),
    });
    this.container = new docker.Container(name, postgresContainerArgs(args, [], secrets), postgresContainerOptions(this));
    this.registerOutputs({ containerName: this.container.name });
  }
}
