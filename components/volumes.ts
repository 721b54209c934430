import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

export interface ClusterVolumesArgs {
  clusterName: string;
  /** Node names, the primary first; each gets a data volume. */
  nodes: string[];
  walArchiving: boolean;
  /**
   * Protect the primary's data and the WAL archive (the only copies of the data): Pulumi refuses
   * any plan that deletes or replaces them, `pulumi destroy` included.
   */
  protect: boolean;
}

/** Everything that must outlive containers: one data volume per node and the shared WAL archive. */
export class ClusterVolumes extends pulumi.ComponentResource {
  readonly data: Record<string, pulumi.Output<string>> = {};
  readonly walArchive?: pulumi.Output<string>;

  constructor(name: string, args: ClusterVolumesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:volumes:ClusterVolumes", name, {}, opts);
    // Set on each volume, never on the component: children would inherit them. Every volume is
    // retained: removing a replica or destroying the stack drops it from the state and leaves the
    // data on the engine, where a later deploy of the same name finds it again.
    const volumeOpts = (protect: boolean): pulumi.CustomResourceOptions => ({ parent: this, protect, retainOnDelete: true });
    const volume = (volumeName: string, purpose: string, protect: boolean) =>
      new docker.Volume(volumeName, {
        name: volumeName,
        labels: [
          { label: "pgha.cluster", value: args.clusterName },
          { label: "pgha.purpose", value: purpose },
        ],
      }, volumeOpts(protect)).name;

    // A replica's volume is a copy of the primary's: unprotected, so `replicas` can go down.
    args.nodes.forEach((node, i) => (this.data[node] = volume(`${node}-data`, "data", args.protect && i === 0)));
    if (args.walArchiving) this.walArchive = volume(`${args.clusterName}-wal-archive`, "wal-archive", args.protect);
    this.registerOutputs({ data: this.data, walArchive: this.walArchive });
  }
}
