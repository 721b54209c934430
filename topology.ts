/**
 * Names and places of everything in a cluster, derived from the spec alone: container names,
 * in-network host names, replication slots, mount paths, certificate SANs.
 */
import * as net from "net";
import { type ClusterSpec, type PostgresMajor, READ_ONLY_SUFFIX } from "./spec";

export const POSTGRES_PORT = 5432;
export const PGBOUNCER_PORT = 6432;
export const SUPERUSER = "postgres";
export const REPLICATION_ROLE = "replicator";
export const MONITOR_ROLE = "monitor";
export const PGBOUNCER_ADMIN = "pgbouncer_admin";
export const PGBOUNCER_STATS = "pgbouncer_stats";
/** Suffix of PgBouncer's read-only database entries (`app` -> `app_ro`). */
export { READ_ONLY_SUFFIX };

/** Paths inside the PostgreSQL and PgBouncer containers. */
export const PATHS = {
  postgresqlConf: "/etc/pg-ha/postgresql.conf",
  pgHbaConf: "/etc/pg-ha/pg_hba.conf",
  pgbouncerIni: "/etc/pg-ha/pgbouncer.ini",
  caCert: "/etc/pg-ha/tls/ca.crt",
  serverCert: "/etc/pg-ha/tls/server.crt",
  replicationCert: "/etc/pg-ha/tls/replication.crt",
  /** Secrets are uploaded root-only; the start-up script hands copies to the server user. */
  serverKeyUpload: "/etc/pg-ha/secrets/server.key",
  replicationKeyUpload: "/etc/pg-ha/secrets/replication.key",
  reconcileSqlUpload: "/etc/pg-ha/secrets/reconcile.sql",
  userlistUpload: "/etc/pg-ha/secrets/userlist.txt",
  serverKey: "/run/pg-ha/server.key",
  replicationKey: "/run/pg-ha/replication.key",
  userlist: "/run/pg-ha/userlist.txt",
  scriptsDir: "/usr/local/lib/pg-ha",
  /** The live configuration volume (components/live-config.ts); the start scripts link the usual paths into it. */
  liveDir: "/etc/pg-ha/live",
  walArchive: "/var/lib/pg-ha/wal-archive",
  socketDir: "/var/run/postgresql",
} as const;

export type NodeRole = "primary" | "replica";

export interface PostgresNode {
  role: NodeRole;
  /** 0 for the primary, 1..n for replicas. */
  index: number;
  /** Container name and in-network DNS name. */
  name: string;
  /** Replica only: its physical replication slot, also its application_name. */
  slot?: string;
}

export function primaryNode(spec: ClusterSpec): PostgresNode {
  return { role: "primary", index: 0, name: `${spec.clusterName}-primary` };
}

export function replicaNodes(spec: ClusterSpec): PostgresNode[] {
  return Array.from({ length: spec.replicas }, (_, i) => ({
    role: "replica" as const,
    index: i + 1,
    name: `${spec.clusterName}-replica-${i + 1}`,
    slot: `replica_${i + 1}`,
  }));
}

/** A member of the HA cluster as others reach it: its name (container, certificate CN) and the address it advertises. */
export interface HaMember {
  name: string;
  /** Host name or IP address the member advertises to its peers and the router. */
  address: string;
}

/**
 * The largest network prefix an HA cluster fits in: its members take fixed addresses in the
 * lower half of the subnet (Patroni and etcd advertise addresses, which must not change when a
 * container is re-created), and Docker hands out the upper half to everything else.
 */
export const HA_MAX_PREFIX = 26;
/** Offsets of the fixed addresses within the subnet: nodes, etcd members, the router. */
const HA_OFFSETS = { node: 11, etcd: 21, backup: 29, router: 30 } as const;

function ipv4ToNumber(ip: string): number {
  return ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** The address OFFSET places into SUBNET (a.b.c.0/24 with 11 -> a.b.c.11). */
export function subnetAddress(subnet: string, offset: number): string {
  const [base] = subnet.split("/");
  return numberToIpv4(ipv4ToNumber(base) + offset);
}

/** The upper half of SUBNET, where Docker places containers without a fixed address. */
export function dynamicAddressRange(subnet: string): string {
  const [base, prefix] = subnet.split("/");
  const size = 2 ** (32 - Number(prefix));
  return `${numberToIpv4(ipv4ToNumber(base) + size / 2)}/${Number(prefix) + 1}`;
}

/** Patroni-managed PostgreSQL nodes: replicas + 1, symmetric; which one leads is run-time state. */
export function patroniNodes(spec: ClusterSpec): HaMember[] {
  return Array.from({ length: spec.replicas + 1 }, (_, i) => ({
    name: `${spec.clusterName}-node-${i + 1}`,
    address: subnetAddress(spec.networkSubnet, HA_OFFSETS.node + i),
  }));
}

export function etcdMembers(spec: ClusterSpec): HaMember[] {
  return Array.from({ length: spec.ha.etcdMembers }, (_, i) => ({
    name: `${spec.clusterName}-etcd-${i + 1}`,
    address: subnetAddress(spec.networkSubnet, HA_OFFSETS.etcd + i),
  }));
}

/** HAProxy: the read-write and read-only entry points of an HA cluster. */
export function routerMember(spec: ClusterSpec): HaMember {
  return { name: `${spec.clusterName}-router`, address: subnetAddress(spec.networkSubnet, HA_OFFSETS.router) };
}

/** pgBackRest's repository host: backups, the WAL archive and the restore drills. */
export function backupMember(spec: ClusterSpec): HaMember {
  return { name: `${spec.clusterName}-backup`, address: subnetAddress(spec.networkSubnet, HA_OFFSETS.backup) };
}

/** The volume that holds the cluster's pgBackRest repository. */
export function backupVolumeName(spec: Pick<ClusterSpec, "clusterName">): string {
  return `${spec.clusterName}-backup-repo`;
}

/** Backups run with pgBackRest when Patroni manages the nodes and WAL is archived. */
export function backupsEnabled(spec: Pick<ClusterSpec, "failover" | "walArchiving">): boolean {
  return spec.failover === "patroni" && spec.walArchiving;
}

export function pgbouncerName(spec: ClusterSpec): string {
  return `${spec.clusterName}-pgbouncer`;
}

export function networkName(spec: ClusterSpec): string {
  return `${spec.clusterName}-net`;
}

/** Ports of the router's listeners inside the cluster network. */
export const ROUTER_PORTS = { readWrite: 5000, readOnly: 5001, monitor: 8404 } as const;

/**
 * Where PgBouncer and direct clients reach the servers. With Patroni: the router's read-write
 * and read-only ports, whichever node leads. Without: the fixed primary and its replicas.
 */
export function serverEndpoints(spec: ClusterSpec): { readWrite: { host: string; port: number }; readOnly: { hosts: string[]; port: number } } {
  if (spec.failover === "patroni") {
    const router = routerMember(spec).name;
    return { readWrite: { host: router, port: ROUTER_PORTS.readWrite }, readOnly: { hosts: [router], port: ROUTER_PORTS.readOnly } };
  }
  return { readWrite: { host: primaryNode(spec).name, port: POSTGRES_PORT }, readOnly: { hosts: readOnlyHosts(spec), port: POSTGRES_PORT } };
}

/** Hosts behind PgBouncer's read-only entries: every replica, or the primary when there is none. */
export function readOnlyHosts(spec: ClusterSpec): string[] {
  const replicas = replicaNodes(spec);
  return replicas.length > 0 ? replicas.map((r) => r.name) : [primaryNode(spec).name];
}

/**
 * Where the data volume is mounted and where PGDATA lives, as the official images lay it out:
 * 18 mounts /var/lib/postgresql (PGDATA below it, ready for pg_upgrade --link); 17 declares
 * VOLUME /var/lib/postgresql/data, so the volume goes there and PGDATA is a subdirectory,
 * which lets a replica clone into a sibling directory on the same volume and rename it.
 */
export function dataLayout(major: PostgresMajor): { mountPath: string; pgdata: string } {
  return major >= 18
    ? { mountPath: "/var/lib/postgresql", pgdata: `/var/lib/postgresql/${major}/docker` }
    : { mountPath: "/var/lib/postgresql/data", pgdata: "/var/lib/postgresql/data/pgdata" };
}

/**
 * Every name a client may use for a server: its DNS name, loopback, published address, extras.
 * `aliases` and `addresses` add names and fixed addresses the server is also reached by (a
 * Patroni node is reached through the router's name, whose connections HAProxy passes on as
 * they are, TLS included).
 */
export function certificateNames(
  spec: ClusterSpec,
  host: string,
  aliases: string[] = [],
  addresses: string[] = [],
): { dnsNames: string[]; ipAddresses: string[] } {
  const extras = spec.tls.extraNames;
  const isIp = (s: string) => net.isIP(s) !== 0;
  const ips = ["127.0.0.1", spec.publish.address, ...addresses, ...extras.filter(isIp)].filter((ip) => ip !== "0.0.0.0" && ip !== "::");
  return {
    dnsNames: unique([host, ...aliases, "localhost", ...extras.filter((s) => !isIp(s))]),
    ipAddresses: unique(ips),
  };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
