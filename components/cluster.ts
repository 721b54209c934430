import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../spec";
import { loginRoles, pgbouncerUsers } from "../config-templates/render";
import { adminUrls, databaseUrls, type UrlName } from "./connection-strings";
import { PgBouncer } from "./pgbouncer";
import { PostgresPrimary } from "./primary";
import { PostgresReplica } from "./replica";
import { ClusterSecrets } from "./secrets";
import { ClusterTls } from "./tls";
import {
  certificateNames, networkName, pgbouncerName, primaryNode, REPLICATION_ROLE, replicaNodes,
} from "../topology";
import { ClusterVolumes } from "./volumes";

export interface PostgresClusterArgs {
  spec: ClusterSpec;
}

export interface NodeInfo {
  name: string;
  role: "primary" | "replica" | "pgbouncer";
}

/** The whole cluster: network, images, secrets, TLS, volumes, primary, replicas and PgBouncer. */
export class PostgresCluster extends pulumi.ComponentResource {
  readonly networkName: pulumi.Output<string>;
  readonly caCertPem: pulumi.Output<string>;
  readonly nodes: NodeInfo[];
  /** Secret connection strings per database; the first database's are the stack's main outputs. */
  readonly urls: Record<string, Partial<Record<UrlName, pulumi.Output<string>>>> = {};
  /** Secret operator URLs (monitor, PgBouncer consoles); host ports when published. */
  readonly adminUrls: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: PostgresClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:index:PostgresCluster", name, {}, opts);
    const { spec } = args;
    const parent = { parent: this };
    const primary = primaryNode(spec);
    const replicas = replicaNodes(spec);
    const pooler = pgbouncerName(spec);

    const network = new docker.Network(`${name}-net`, {
      name: networkName(spec),
      driver: "bridge",
      ipamConfigs: [{ subnet: spec.networkSubnet }],
      labels: [{ label: "pgha.cluster", value: spec.clusterName }],
      // A fixed name: a new network of the same name cannot exist beside the old one, so a subnet
      // change removes the containers on it and the old network first, then creates them anew.
    }, { ...parent, deleteBeforeReplace: true });
    this.networkName = network.name;

    const postgresImage = this.image(`${name}-postgres-image`, spec.postgres.image, spec.pullImages);
    const pgbouncerImage = this.image(`${name}-pgbouncer-image`, spec.pgbouncerImage, spec.pullImages);

    const roles = [...new Set([...loginRoles(spec).map((r) => r.name), ...pgbouncerUsers(spec)])];
    const secrets = new ClusterSecrets(`${name}-secrets`, { roles }, parent);

    const servers = [primary.name, ...replicas.map((r) => r.name), pooler];
    const certs = new ClusterTls(`${name}-tls`, {
      clusterName: spec.clusterName,
      servers: servers.map((host) => ({ host, ...certificateNames(spec, host) })),
      replicationRole: REPLICATION_ROLE,
      validityDays: spec.tls.validityDays,
      renewBeforeDays: spec.tls.renewBeforeDays,
    }, parent);
    this.caCertPem = certs.caCertPem;

    const volumes = new ClusterVolumes(`${name}-volumes`, {
      clusterName: spec.clusterName,
      nodes: [primary.name, ...replicas.map((r) => r.name)],
      walArchiving: spec.walArchiving,
      protect: spec.protectData,
    }, parent);

    const common = { spec, image: postgresImage, networkName: network.name, walArchiveVolume: volumes.walArchive, caCertPem: certs.caCertPem };
    const primaryResource = new PostgresPrimary(primary.name, {
      ...common,
      node: primary,
      dataVolume: volumes.data[primary.name],
      serverKeyPair: certs.servers[primary.name],
      verifiers: secrets.verifiers,
    }, parent);
    const replicaResources = replicas.map((replica) => new PostgresReplica(replica.name, {
      ...common,
      node: replica,
      dataVolume: volumes.data[replica.name],
      serverKeyPair: certs.servers[replica.name],
      replicationKeyPair: certs.replicationClient,
      primary: primaryResource.container,
    }, parent));
    new PgBouncer(pooler, {
      spec,
      image: pgbouncerImage,
      networkName: network.name,
      caCertPem: certs.caCertPem,
      serverKeyPair: certs.servers[pooler],
      verifiers: secrets.verifiers,
      servers: [primaryResource.container, ...replicaResources.map((r) => r.container)],
    }, parent);

    this.nodes = [
      { name: primary.name, role: "primary" },
      ...replicas.map((r) => ({ name: r.name, role: "replica" as const })),
      { name: pooler, role: "pgbouncer" },
    ];
    for (const database of spec.databases) {
      const password = secrets.passwords[database];
      const names = Object.keys(databaseUrls(spec, database, "")) as UrlName[];
      this.urls[database] = Object.fromEntries(
        names.map((url) => [url, pulumi.secret(password.apply((p) => databaseUrls(spec, database, p)[url]!))]),
      );
    }
    this.adminUrls = pulumi.secret(pulumi.all(secrets.passwords).apply((p) => adminUrls(spec, p)));
    this.registerOutputs({ networkName: this.networkName, caCertPem: this.caCertPem, nodes: this.nodes });
  }

  /** An image pulled as a RemoteImage (kept on destroy: other stacks may share it), or one already on the engine. */
  private image(name: string, reference: string, pull: boolean): pulumi.Input<string> {
    if (!pull) return reference;
    return new docker.RemoteImage(name, { name: reference, keepLocally: true }, { parent: this }).imageId;
  }
}
