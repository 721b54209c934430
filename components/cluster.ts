import * as path from "path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../spec";
import { loginRoles, pgbouncerUsers } from "../config-templates/render";
import { adminUrls, databaseUrls, type UrlName } from "./connection-strings";
import { ETCD_CLIENT_ROLE, REWIND_ROLE } from "../config-templates/render-ha";
import { backupClientNames, backupStanza } from "../config-templates/render-backup";
import { PatroniCluster } from "./patroni-cluster";
import { PgBouncer } from "./pgbouncer";
import { PostgresPrimary } from "./primary";
import { PostgresReplica } from "./replica";
import { ClusterSecrets } from "./secrets";
import { ClusterTls, type ServerIdentity } from "./tls";
import {
  backupMember, backupsEnabled, certificateNames, dynamicAddressRange, etcdMembers, networkName, patroniNodes, pgbouncerName, primaryNode,
  REPLICATION_ROLE, replicaNodes, routerMember,
} from "../topology";
import { ClusterVolumes } from "./volumes";

export interface PostgresClusterArgs {
  spec: ClusterSpec;
}

export interface NodeInfo {
  name: string;
  /** With Patroni, which node is primary is run-time state: each is a `postgres` member. */
  role: "primary" | "replica" | "postgres" | "etcd" | "router" | "backup" | "pgbouncer";
}

/** Where this cluster's backups are, for a restore into another stack (pg-ha:restoreFrom). */
export interface BackupInfo {
  volumeName: pulumi.Output<string>;
  /** Secret. */
  cipherPass: pulumi.Output<string>;
  stanza: string;
}

/**
 * The whole cluster: network, images, secrets, TLS, volumes, the PostgreSQL nodes and PgBouncer.
 * With Patroni (the default) the nodes are symmetric members of a PatroniCluster behind a router;
 * with failover = none, a fixed primary and its replicas.
 */
export class PostgresCluster extends pulumi.ComponentResource {
  readonly networkName: pulumi.Output<string>;
  readonly caCertPem: pulumi.Output<string>;
  readonly nodes: NodeInfo[];
  /** Secret connection strings per database; the first database's are the stack's main outputs. */
  readonly urls: Record<string, Partial<Record<UrlName, pulumi.Output<string>>>> = {};
  /** Secret operator URLs (monitor, PgBouncer consoles); host ports when published. */
  readonly adminUrls: pulumi.Output<Record<string, string>>;
  /** Set when backups are on (Patroni with WAL archiving). */
  readonly backup?: BackupInfo;


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
      // HA members take fixed addresses in the lower half; Docker places the rest in the upper.
      ipamConfigs: [spec.failover === "patroni" ? { subnet: spec.networkSubnet, ipRange: dynamicAddressRange(spec.networkSubnet) } : { subnet: spec.networkSubnet }],
      labels: [{ label: "pgha.cluster", value: spec.clusterName }],
      // A fixed name: a new network of the same name cannot exist beside the old one, so a subnet
      // change removes the containers on it and the old network first, then creates them anew.
    }, { ...parent, deleteBeforeReplace: true });
    this.networkName = network.name;

    const postgresImage = spec.postgres.build
      ? this.build(`${name}-postgres-image`, spec.postgres.image, "images/postgres-patroni", { POSTGRES_IMAGE: `postgres:${spec.postgres.major}-trixie` })
      : this.image(`${name}-postgres-image`, spec.postgres.image, spec.pullImages);
    const pgbouncerImage = this.image(`${name}-pgbouncer-image`, spec.pgbouncerImage, spec.pullImages);

    const roles = [...new Set([...loginRoles(spec).map((r) => r.name), ...pgbouncerUsers(spec)])];
    const secrets = new ClusterSecrets(`${name}-secrets`, { roles }, parent);

    const ha = spec.failover === "patroni"
      ? { nodes: patroniNodes(spec), etcd: etcdMembers(spec), router: routerMember(spec) }
      : undefined;
    const backupHost = backupsEnabled(spec) ? backupMember(spec) : undefined;
    const backupClients = backupClientNames(spec);
    const identities: ServerIdentity[] = ha
      ? [
        // Clients reach a node through the router's name too: HAProxy passes TLS through.
        ...ha.nodes.map((n) => ({ host: n.name, ...certificateNames(spec, n.name, [ha.router.name], [n.address, ha.router.address]) })),
        ...ha.etcd.map((m) => ({ host: m.name, ...certificateNames(spec, m.name, [], [m.address]), clientAuth: true })),
        ...(backupHost ? [{ host: backupHost.name, ...certificateNames(spec, backupHost.name, [], [backupHost.address]) }] : []),
        { host: pooler, ...certificateNames(spec, pooler) },
      ]
      : [primary.name, ...replicas.map((r) => r.name), pooler].map((host) => ({ host, ...certificateNames(spec, host) }));
    const certs = new ClusterTls(`${name}-tls`, {
      clusterName: spec.clusterName,
      servers: identities,
      replicationRole: REPLICATION_ROLE,
      clientRoles: ha ? [REWIND_ROLE, ETCD_CLIENT_ROLE, ...(backupHost ? [backupClients.node, backupClients.repo] : [])] : [],
      validityDays: spec.tls.validityDays,
      renewBeforeDays: spec.tls.renewBeforeDays,
    }, parent);
    this.caCertPem = certs.caCertPem;

    const volumes = new ClusterVolumes(`${name}-volumes`, {
      clusterName: spec.clusterName,
      // Patroni nodes keep their data volumes themselves, each on its own host.
      nodes: ha ? [] : [primary.name, ...replicas.map((r) => r.name)],
      // With Patroni, WAL goes to pgBackRest's repository host instead of a shared volume.
      walArchiving: spec.walArchiving && !ha,
      protect: spec.protectData,
    }, parent);

    let servers: pulumi.Resource[];
    if (ha) {
      const patroni = new PatroniCluster(`${name}-patroni`, {
        spec, ...ha,
        images: {
          postgres: postgresImage,
          etcd: spec.ha.etcdImage === ""
            ? this.build(`${name}-etcd-image`, "pg-ha/etcd:3.5", "images/etcd", {})
            : this.image(`${name}-etcd-image`, spec.ha.etcdImage, spec.pullImages),
          haproxy: this.image(`${name}-haproxy-image`, spec.ha.haproxyImage, spec.pullImages),
        },
        networkName: network.name,
        caCertPem: certs.caCertPem,
        servers: certs.servers,
        replicationClient: certs.replicationClient,
        rewindClient: certs.clients[REWIND_ROLE],
        etcdClient: certs.clients[ETCD_CLIENT_ROLE],
        verifiers: secrets.verifiers,
        backup: backupHost
          ? { member: backupHost, server: certs.servers[backupHost.name], nodeClient: certs.clients[backupClients.node], repoClient: certs.clients[backupClients.repo] }
          : undefined,
      }, parent);
      servers = [patroni.router];
      if (patroni.backup) {
        this.backup = { volumeName: patroni.backup.volumeName, cipherPass: patroni.backup.cipherPass, stanza: backupStanza(spec) };
      }
    } else {
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
      servers = [primaryResource.container, ...replicaResources.map((r) => r.container)];
    }
    new PgBouncer(pooler, {
      spec,
      image: pgbouncerImage,
      networkName: network.name,
      caCertPem: certs.caCertPem,
      serverKeyPair: certs.servers[pooler],
      verifiers: secrets.verifiers,
      servers,
    }, parent);

    this.nodes = ha
      ? [
        ...ha.nodes.map((n) => ({ name: n.name, role: "postgres" as const })),
        ...ha.etcd.map((m) => ({ name: m.name, role: "etcd" as const })),
        { name: ha.router.name, role: "router" },
        ...(backupHost ? [{ name: backupHost.name, role: "backup" as const }] : []),
        { name: pooler, role: "pgbouncer" },
      ]
      : [
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

  /** An image built from a Dockerfile of this repository on the engine, never pushed. */
  private build(name: string, imageName: string, directory: string, args: Record<string, string>): pulumi.Input<string> {
    return new docker.Image(name, {
      imageName,
      build: { context: path.join(__dirname, "..", directory), args },
      skipPush: true,
    }, { parent: this }).imageName;
  }

  /** An image pulled as a RemoteImage (kept on destroy: other stacks may share it), or one already on the engine. */
  private image(name: string, reference: string, pull: boolean): pulumi.Input<string> {
    if (!pull) return reference;
    return new docker.RemoteImage(name, { name: reference, keepLocally: true }, { parent: this }).imageId;
  }
}
