import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

export interface ClusterVolumesArgs {
  clusterName: string;
  /** Node names; each gets a data volume. */
  nodes: string[];
  walArchiving: boolean;
  /** Protected volumes: Pulumi refuses to delete them, and a destroy leaves them in place. */
  protect: boolean;
}

/** Everything that must outlive containers: one data volume per node and the shared WAL archive. */
export class ClusterVolumes extends pulumi.ComponentResource {
  readonly data: Record<string, pulumi.Output<string>> = {};
  readonly walArchive?: pulumi.Output<string>;

  constructor(name: string, args: ClusterVolumesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:volumes:ClusterVolumes", name, {}, opts);
    // Set on each volume, never on the component: children would inherit them.
    const volumeOpts: pulumi.CustomResourceOptions = { parent: this, protect: args.protect, retainOnDelete: args.protect };
    const volume = (volumeName: string, purpose: string) =>
      new docker.Volume(volumeName, {
        name: volumeName,
        labels: [
          { label: "pgha.cluster", value: args.clusterName },
          { label: "pgha.purpose", value: purpose },
        ],
      }, volumeOpts).name;

    for (const node of args.nodes) this.data[node] = volume(`${node}-data`, "data");
    if (args.walArchiving) this.walArchive = volume(`${args.clusterName}-wal-archive`, "wal-archive");
    this.registerOutputs({ data: this.data, walArchive: this.walArchive });
  }
}
