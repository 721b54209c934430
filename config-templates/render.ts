/**
 * Pure rendering of every file the containers receive, from the spec and (for secret files)
 * verifiers. Same input, byte-identical output, so a preview diff shows only real changes.
 */
import * as fs from "fs";
import * as path from "path";
import Mustache from "mustache";
import { type ClusterSpec, READ_ONLY_SUFFIX, SUPERUSER_RESERVED_CONNECTIONS } from "../spec";
import {
  backupsEnabled, MONITOR_ROLE, PATHS, PGBOUNCER_ADMIN, PGBOUNCER_PORT, PGBOUNCER_STATS, POSTGRES_PORT,
  type PostgresNode, REPLICATION_ROLE, SUPERUSER,
  primaryNode, replicaNodes, serverEndpoints,
} from "../topology";
import { quoteConfValue } from "./parameters";
import { archiveCommand, restoreCommand } from "./render-backup";
import { clusterTuningSettings } from "./tuning";

function render(template: string, view: object): string {
  const text = fs.readFileSync(path.join(__dirname, template), "utf8");
  // Config files are not HTML: no escaping. Values are validated identifiers, numbers or verifiers.
  return Mustache.render(text, view, {}, { escape: (value: string) => value });
}

/** Marks the last element so templates can join lists with commas. */
function withLast<T extends object>(items: T[]): (T & { last: boolean })[] {
  return items.map((item, i) => ({ ...item, last: i === items.length - 1 }));
}

/** A libpq keyword/value string; values here never contain quotes or spaces. */
function conninfo(params: Record<string, string | number>): string {
  return Object.entries(params).map(([k, v]) => `${k}=${v}`).join(" ");
}

/** The conninfo a replica streams with (also used by its first clone). */
export function replicationConninfo(spec: ClusterSpec, replica: PostgresNode): string {
  return conninfo({
    host: primaryNode(spec).name,
    port: POSTGRES_PORT,
    user: REPLICATION_ROLE,
    application_name: replica.slot!,
    sslmode: "verify-full",
    sslrootcert: PATHS.caCert,
    sslcert: PATHS.replicationCert,
    sslkey: PATHS.replicationKey,
    ssl_min_protocol_version: spec.tls.minProtocol,
    keepalives_idle: 60,
    keepalives_interval: 10,
    keepalives_count: 6,
    connect_timeout: 5,
  });
}

export function synchronousStandbyNames(spec: ClusterSpec): string | undefined {
  if (spec.synchronousMode === "off") return undefined;
  return `ANY 1 (${replicaNodes(spec).map((r) => r.slot).join(", ")})`;
}

export function renderPostgresqlConf(spec: ClusterSpec, node: PostgresNode): string {
  const n = spec.node;
  const standby = node.role === "replica";
  return render("postgresql.conf.tmpl", {
    nodeName: node.name,
    role: node.role,
    major: spec.postgres.major,
    hbaFile: PATHS.pgHbaConf,
    port: POSTGRES_PORT,
    socketDir: PATHS.socketDir,
    superuserReserved: SUPERUSER_RESERVED_CONNECTIONS,
    serverCert: PATHS.serverCert,
    serverKey: PATHS.serverKey,
    caCert: PATHS.caCert,
    tlsMinProtocol: spec.tls.minProtocol,
    tuningBasis: `PGTune: ${n.workload}, ${n.memoryMb}MB, ${n.cpus} CPU, ${n.storage}, ${n.maxConnections} connections; deviations say why`,
    tuning: clusterTuningSettings(spec),
    walKeepSize: 0,
    maxSlotWalKeepSize: `${spec.maxSlotWalKeepMb}MB`,
    // Only the primary names synchronous standbys; a replica promoted later gets it on its next deploy.
    synchronousStandbyNames: standby ? undefined : synchronousStandbyNames(spec),
    standby: standby ? { primaryConninfo: replicationConninfo(spec, node), slot: node.slot } : false,
    walArchiving: spec.walArchiving ? walArchiveCommands(spec) : false,
    slowQueryMs: spec.slowQueryMs,
    operatorParameters: Object.entries(spec.postgresParameters).map(([name, value]) => ({ name, value: quoteConfValue(value) })),
  });
}

/**
 * How WAL is archived and read back: with Patroni, through pgBackRest's repository host (whichever
 * node is primary pushes); the fixed-primary layout copies segments to its shared archive volume.
 */
function walArchiveCommands(spec: ClusterSpec): { archiveCommand: string; restoreCommand: string; archiveTimeout: string } {
  const archiveTimeout = `${spec.backup.archiveTimeoutSeconds}s`;
  if (backupsEnabled(spec)) return { archiveCommand: archiveCommand(spec), restoreCommand: restoreCommand(spec), archiveTimeout };
  return {
    archiveCommand: `test ! -f ${PATHS.walArchive}/%f && cp %p ${PATHS.walArchive}/%f`,
    restoreCommand: `cp ${PATHS.walArchive}/%f %p`,
    archiveTimeout,
  };
}

export function renderPgHbaConf(spec: ClusterSpec): string {
  return render("pg_hba.conf.tmpl", {
    clusterName: spec.clusterName,
    superuser: SUPERUSER,
    replicationRole: REPLICATION_ROLE,
    subnet: spec.networkSubnet,
  });
}

export function renderPgbouncerIni(spec: ClusterSpec): string {
  const servers = serverEndpoints(spec);
  const tlsProtocols = spec.tls.minProtocol === "TLSv1.3" ? "tlsv1.3" : "tlsv1.2,tlsv1.3";
  return render("pgbouncer.ini.tmpl", {
    clusterName: spec.clusterName,
    readOnlySuffix: READ_ONLY_SUFFIX,
    readWriteTarget: spec.failover === "patroni" ? "the router's read-write port (the node holding the leader lock)" : "the primary",
    readOnlyTarget: spec.failover === "patroni"
      ? "the router's read-only port (streaming replicas, the primary when none is left)"
      : spec.replicas > 0 ? `the ${spec.replicas} replica(s)` : "the primary (no replicas)",
    databases: spec.databases.map((name) => ({ name })),
    readWriteHost: servers.readWrite.host,
    readWritePort: servers.readWrite.port,
    readOnlyHosts: servers.readOnly.hosts.join(","),
    readOnlyPort: servers.readOnly.port,
    listenPort: PGBOUNCER_PORT,
    userlist: PATHS.userlist,
    adminUser: PGBOUNCER_ADMIN,
    statsUser: PGBOUNCER_STATS,
    databaseCount: spec.databases.length,
    maxConnections: spec.node.maxConnections,
    poolMode: spec.pool.mode,
    maxClientConn: spec.pool.maxClientConn,
    defaultPoolSize: spec.pool.defaultPoolSize,
    minPoolSize: spec.pool.minPoolSize,
    reservePoolSize: spec.pool.reservePoolSize,
    maxDbConnections: spec.pool.maxDbConnections,
    serverKey: PATHS.serverKey,
    serverCert: PATHS.serverCert,
    caCert: PATHS.caCert,
    tlsProtocols,
  });
}

/** Role name -> SCRAM verifier, for every role that logs in with a password. */
export type Verifiers = Record<string, string>;

/** Roles with passwords and their attributes: the monitor and one owner per database. */
export function loginRoles(spec: ClusterSpec): { name: string; attributes: string }[] {
  return [
    { name: MONITOR_ROLE, attributes: "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION" },
    ...spec.databases.map((name) => ({ name, attributes: "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION" })),
  ];
}

/** Users PgBouncer knows: the application roles, plus its own admin and stats users. */
export function pgbouncerUsers(spec: ClusterSpec): string[] {
  return [...spec.databases, PGBOUNCER_ADMIN, PGBOUNCER_STATS];
}

function verifierOf(verifiers: Verifiers, role: string): string {
  const verifier = verifiers[role];
  if (!verifier) throw new Error(`no SCRAM verifier for role "${role}"`);
  return verifier;
}

export function renderReconcileSql(spec: ClusterSpec, verifiers: Verifiers): string {
  return render("reconcile.sql.tmpl", {
    loginRoles: withLast(loginRoles(spec).map((r) => ({ ...r, verifier: verifierOf(verifiers, r.name) }))),
    replicationRole: REPLICATION_ROLE,
    superuser: SUPERUSER,
    monitorRole: MONITOR_ROLE,
    databases: spec.databases.map((name) => ({ name })),
    slots: withLast(replicaNodes(spec).map((r) => ({ name: r.slot! }))),
  });
}

export function renderUserlist(spec: ClusterSpec, verifiers: Verifiers): string {
  return render("userlist.txt.tmpl", {
    users: pgbouncerUsers(spec).map((name) => ({ name, verifier: verifierOf(verifiers, name) })),
  });
}

/** The start-up and health scripts, uploaded unchanged. */
export function script(name: "common.sh" | "postgres-start.sh" | "postgres-health.sh" | "pgbouncer-start.sh" | "pgbouncer-health.sh"): string {
  return fs.readFileSync(path.join(__dirname, name), "utf8");
}
