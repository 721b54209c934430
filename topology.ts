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

export function pgbouncerName(spec: ClusterSpec): string {
  return `${spec.clusterName}-pgbouncer`;
}

export function networkName(spec: ClusterSpec): string {
  return `${spec.clusterName}-net`;
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

/** Every name a client may use for a server: its DNS name, loopback, published address, extras. */
export function certificateNames(spec: ClusterSpec, host: string): { dnsNames: string[]; ipAddresses: string[] } {
  const extras = spec.tls.extraNames;
  const isIp = (s: string) => net.isIP(s) !== 0;
  const ips = ["127.0.0.1", spec.publish.address, ...extras.filter(isIp)].filter((ip) => ip !== "0.0.0.0" && ip !== "::");
  return {
    dnsNames: unique([host, "localhost", ...extras.filter((s) => !isIp(s))]),
    ipAddresses: unique(ips),
  };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
