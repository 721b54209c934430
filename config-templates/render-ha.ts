/**
 * Pure rendering of the files of a Patroni-managed cluster: patroni.yml per node, the etcd
 * member configuration, HAProxy's configuration, and the root-only files that carry the REST
 * API's credentials. PostgreSQL's own settings are not computed again here: they are read from
 * the postgresql.conf that render.ts produces for the same spec, so the tuning, the seed's
 * settings and the operator's parameters reach Patroni unchanged.
 */
import * as fs from "fs";
import * as path from "path";
import Mustache from "mustache";
import type { ClusterSpec } from "../spec";
import { backupsEnabled, dataLayout, type HaMember, PATHS, POSTGRES_PORT, primaryNode, REPLICATION_ROLE, ROUTER_PORTS, SUPERUSER } from "../topology";
import { restoreCommand } from "./render-backup";
import { renderPgHbaConf, renderPostgresqlConf, renderReconcileSql, type Verifiers } from "./render";

export type { HaMember } from "../topology";
export { ROUTER_PORTS } from "../topology";

/** Ports inside the containers. */
export const PATRONI_REST_PORT = 8008;
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/** The role pg_rewind connects as (client certificate; Patroni creates it with the grants pg_rewind needs). */
export const REWIND_ROLE = "rewind";
/** The client certificate every Patroni presents to etcd. */
export const ETCD_CLIENT_ROLE = "patroni";
/** The user of the REST API's changing endpoints (switchover, restart, configuration). */
export const PATRONI_REST_USER = "patroni";

/** Paths inside the Patroni, etcd and HAProxy containers, beside topology's PATHS. */
export const HA_PATHS = {
  patroniConf: "/etc/pg-ha/patroni.yml",
  patroniSecretsUpload: "/etc/pg-ha/secrets/patroni-secrets.yml",
  reconcileSqlUpload: PATHS.reconcileSqlUpload,
  rewindCert: "/etc/pg-ha/tls/rewind.crt",
  rewindKeyUpload: "/etc/pg-ha/secrets/rewind.key",
  rewindKey: "/run/pg-ha/rewind.key",
  etcdClientCert: "/etc/pg-ha/tls/etcd-client.crt",
  etcdClientKeyUpload: "/etc/pg-ha/secrets/etcd-client.key",
  etcdClientKey: "/run/pg-ha/etcd-client.key",
  reconcileSql: "/run/pg-ha/reconcile.sql",
  pgpass: "/run/pg-ha/pgpass",
  etcdConf: "/etc/pg-ha/etcd.conf.yml",
  etcdCert: "/etc/pg-ha/tls/etcd.crt",
  etcdKey: "/etc/pg-ha/secrets/etcd.key",
  etcdData: "/var/lib/etcd",
  haproxyConf: "/etc/pg-ha/haproxy.cfg",
  haproxyCredentials: "/etc/pg-ha/secrets/haproxy-credentials.cfg",
} as const;

/**
 * Patroni's timing, for the fastest failover it allows while staying safe. ttl is the leader
 * lock's lifetime, Patroni's minimum: after a primary dies without releasing the lock, no other
 * member may take over before it expires. loop_wait 2 s: a replica notices the free lock within
 * 2 s (1 s would double the store's write load for at most 1 s). retry_timeout 9 s: the largest
 * that keeps loop_wait + 2 x retry_timeout <= ttl, Patroni's condition for a primary that cannot
 * renew its lock to demote itself before the lock expires (so never two primaries); larger
 * means fewer needless demotions on a slow store.
 */
export const PATRONI_TIMING = { ttl: 20, loopWait: 2, retryTimeout: 9 } as const;
/** A replica further behind than this is never promoted automatically: what a failover without quorum may lose. */
export const MAXIMUM_LAG_ON_FAILOVER_BYTES = 1024 * 1024;
/** The read-only port serves replicas at most this far behind (one WAL segment). */
export const READ_ONLY_MAX_LAG_BYTES = 16 * 1024 * 1024;
/**
 * HAProxy's checks: every second, every half second while a state is changing and on a node
 * that is out (so a newly promoted primary is in within half a second: with rise 1 there is no
 * transition to speed up); out after 3 failures (a demoted primary's clients are cut within
 * ~1.5 s of Patroni reporting it), back after one success (only the lock holder answers 200 on
 * /primary, so one answer is proof). A
 * check may take 4 s: Patroni's REST API answers slowly on a loaded host, and a check that timed
 * out on a healthy primary would cut every session on it.
 */
export const ROUTER_CHECKS = { inter: "1s", fastInter: "500ms", downInter: "500ms", fall: 3, rise: 1, timeout: "4s" } as const;

/** Parameters PostgreSQL needs equal on every member; Patroni reads them from etcd only. */
export const PATRONI_CLUSTER_PARAMETERS = [
  "max_connections", "max_locks_per_transaction", "max_worker_processes", "max_prepared_transactions",
  "wal_level", "track_commit_timestamp", "max_wal_senders", "max_replication_slots", "wal_keep_size", "wal_log_hints",
];

/**
 * Settings of postgresql.conf that Patroni manages on its own: listening (postgresql.listen), the
 * hba file (postgresql.pg_hba), the member's name, standby configuration, slots and synchronous
 * standbys (use_slots, synchronous_mode). Everything else is passed on.
 */
const PATRONI_MANAGED = new Set([
  "hba_file", "listen_addresses", "port", "cluster_name", "hot_standby",
  "primary_conninfo", "primary_slot_name", "restore_command", "recovery_target_timeline",
  "synchronous_standby_names", "synchronous_commit",
]);

function render(template: string, view: object): string {
  const text = fs.readFileSync(path.join(__dirname, template), "utf8");
  return Mustache.render(text, view, {}, { escape: (value: string) => value });
}

/** A YAML scalar: bare when plainly a word or number YAML reads as a string or number, else double-quoted. */
export function yamlScalar(value: string): string {
  const plain = /^[A-Za-z0-9_.\/-]+$/.test(value) && !/^(y|n|yes|no|on|off|true|false|null|~)$/i.test(value) && !/^0[0-9]/.test(value);
  return plain ? value : JSON.stringify(value);
}

/** name -> value of a postgresql.conf, later lines winning, values unquoted. */
export function parsePostgresqlConf(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z_][\w.]*)\s*=\s*('(?:[^']|'')*'|[^\s#]+)/.exec(line);
    if (!m) continue;
    const raw = m[2];
    settings.set(m[1], raw.startsWith("'") ? raw.slice(1, -1).replace(/''/g, "'") : raw);
  }
  return settings;
}

/** PostgreSQL's settings for a Patroni cluster: the ones etcd holds for every member, and the rest. */
export function patroniParameters(spec: ClusterSpec): { cluster: Record<string, string>; node: Record<string, string> } {
  const cluster: Record<string, string> = {};
  const node: Record<string, string> = {};
  // Rendered for the primary: no standby settings in it, and Patroni writes those itself.
  for (const [name, value] of parsePostgresqlConf(renderPostgresqlConf(spec, primaryNode(spec)))) {
    if (PATRONI_MANAGED.has(name)) continue;
    (PATRONI_CLUSTER_PARAMETERS.includes(name) ? cluster : node)[name] = value;
  }
  return { cluster, node };
}

/** pg_hba.conf's rules as Patroni's list, plus pg_rewind's certificate rule ahead of the password rules. */
export function patroniPgHba(spec: ClusterSpec): string[] {
  const rules = renderPgHbaConf(spec).split("\n")
    .filter((line) => line.trim() !== "" && !line.trimStart().startsWith("#"))
    .map((line) => line.trim().replace(/\s+/g, " "));
  const firstPasswordRule = rules.findIndex((rule) => rule.endsWith("scram-sha-256"));
  if (firstPasswordRule < 0) throw new Error("pg_hba.conf.tmpl has no scram-sha-256 rule to place pg_rewind's rule before");
  rules.splice(firstPasswordRule, 0, `hostssl postgres ${REWIND_ROLE} ${spec.networkSubnet} cert`);
  // Patroni reads its own server's timeline over a replication connection to localhost before it
  // decides whether a rejoining node needs pg_rewind; the same certificate, over loopback.
  const subnetReplication = rules.findIndex((rule) => rule === `hostssl replication ${REPLICATION_ROLE} ${spec.networkSubnet} cert`);
  if (subnetReplication < 0) throw new Error("pg_hba.conf.tmpl has no certificate rule for replication to extend to loopback");
  rules.splice(subnetReplication + 1, 0, `hostssl replication ${REPLICATION_ROLE} 127.0.0.1/32 cert`);
  return rules;
}

function parameterList(params: Record<string, string>): { name: string; value: string }[] {
  return Object.entries(params).map(([name, value]) => ({ name, value: yamlScalar(value) }));
}

/** patroni.yml of one node. `etcd` lists the store's members, `node` is the member this file is for. */
export function renderPatroniYml(spec: ClusterSpec, etcd: HaMember[], node: HaMember): string {
  const { cluster, node: nodeParameters } = patroniParameters(spec);
  const major = spec.postgres.major;
  const { ttl, loopWait, retryTimeout } = PATRONI_TIMING;
  return render("patroni.yml.tmpl", {
    clusterName: spec.clusterName,
    nodeName: node.name,
    address: node.address,
    restPort: PATRONI_REST_PORT,
    port: POSTGRES_PORT,
    serverCert: PATHS.serverCert,
    serverKey: PATHS.serverKey,
    caCert: PATHS.caCert,
    etcdHosts: etcd.map((m) => `${m.address}:${ETCD_CLIENT_PORT}`),
    etcdClientCert: HA_PATHS.etcdClientCert,
    etcdClientKey: HA_PATHS.etcdClientKey,
    ttl, loopWait, retryTimeout,
    timingSum: loopWait + 2 * retryTimeout,
    maximumLagOnFailover: MAXIMUM_LAG_ON_FAILOVER_BYTES,
    quorum: spec.synchronousMode === "quorum" ? { synchronousNodeCount: 1 } : false,
    synchronousNodeCount: 1,
    clusterParameters: parameterList(cluster),
    nodeParameters: parameterList(nodeParameters),
    postBootstrap: `${PATHS.scriptsDir}/patroni-post-bootstrap.sh`,
    callback: `${PATHS.scriptsDir}/patroni-callback.sh`,
    restoreCommand: backupsEnabled(spec) ? yamlScalar(restoreCommand(spec)) : false,
    dataDir: dataLayout(major).pgdata,
    binDir: `/usr/lib/postgresql/${major}/bin`,
    pgpass: HA_PATHS.pgpass,
    superuser: SUPERUSER,
    replicationRole: REPLICATION_ROLE,
    replicationCert: PATHS.replicationCert,
    replicationKey: PATHS.replicationKey,
    rewindRole: REWIND_ROLE,
    rewindCert: HA_PATHS.rewindCert,
    rewindKey: HA_PATHS.rewindKey,
    pgHba: patroniPgHba(spec).map(yamlScalar),
    restore: spec.restore ? restoreBootstrap(spec.restore) : false,
  });
}

/** An ISO 8601 time with its zone, in UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]+00", its fraction kept to the microsecond. */
export function utcTarget(time: string): string {
  const m = /^(.+?:\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}(?::?\d{2})?)$/.exec(time.replace(" ", "T"));
  if (!m) throw new Error(`not an ISO 8601 time with its zone: ${time}`);
  const zone = m[3] === "Z" ? "Z" : m[3].length === 3 ? `${m[3]}:00` : m[3].replace(/^([+-]\d{2})(\d{2})$/, "$1:$2");
  const seconds = new Date(`${m[1]}${zone}`).toISOString().slice(0, 19).replace("T", " ");
  return `${seconds}${m[2] ? `.${m[2]}` : ""}+00`;
}

/**
 * pg-ha:restoreFrom as Patroni's custom bootstrap: the script and pgBackRest's recovery options.
 * A time target is given as PostgreSQL and pgBackRest both read it ("2026-12-02 10:00:00.123+00"),
 * so pgBackRest can pick the newest backup that ends before it.
 */
export function restoreBootstrap(restore: NonNullable<ClusterSpec["restore"]>): { stanza: string; targetDescription: string; command: string } {
  const script = `${PATHS.scriptsDir}/patroni-restore.sh --stanza=${restore.stanza}`;
  const { target } = restore;
  if (target.type === "latest") {
    return { stanza: restore.stanza, targetDescription: "the end of the archive", command: yamlScalar(`${script} --type=default`) };
  }
  const value = target.type === "time" ? utcTarget(target.time) : target.lsn;
  return {
    stanza: restore.stanza,
    targetDescription: `${target.type} ${value}`,
    command: yamlScalar(`${script} --type=${target.type} '--target=${value}' --target-action=promote`),
  };
}

/** The REST credentials for Patroni and patronictl: a root-only file beside patroni.yml. */
export function renderPatroniSecretsYml(restPassword: string): string {
  return render("patroni-secrets.yml.tmpl", { restUser: PATRONI_REST_USER, restPassword: yamlScalar(restPassword) });
}

/** Roles and databases for Patroni's post_bootstrap: reconcile.sql without slots (Patroni keeps its own). */
export function renderPatroniReconcileSql(spec: ClusterSpec, verifiers: Verifiers): string {
  return renderReconcileSql({ ...spec, replicas: 0 }, verifiers);
}

/** The configuration file of one etcd member. */
export function renderEtcdConf(spec: ClusterSpec, members: HaMember[], member: HaMember): string {
  return render("etcd.conf.yml.tmpl", {
    clusterName: spec.clusterName,
    memberName: member.name,
    address: member.address,
    // A directory etcd creates itself (mode 0700) below the volume's mount point.
    dataDir: `${HA_PATHS.etcdData}/member-data`,
    clientPort: ETCD_CLIENT_PORT,
    peerPort: ETCD_PEER_PORT,
    initialCluster: members.map((m) => `${m.name}=https://${m.address}:${ETCD_PEER_PORT}`).join(","),
    cert: HA_PATHS.etcdCert,
    key: HA_PATHS.etcdKey,
    caCert: PATHS.caCert,
    tlsMinVersion: spec.tls.minProtocol === "TLSv1.3" ? "TLS1.3" : "TLS1.2",
  });
}

/** HAProxy's configuration: read-write to the leader, read-only over streaming replicas. */
export function renderHaproxyCfg(spec: ClusterSpec, nodes: HaMember[]): string {
  return render("haproxy.cfg.tmpl", {
    clusterName: spec.clusterName,
    // Each port passes at most one server's max_connections.
    maxConn: 2 * spec.node.maxConnections,
    caCert: PATHS.caCert,
    ...ROUTER_CHECKS,
    monitorPort: ROUTER_PORTS.monitor,
    readWritePort: ROUTER_PORTS.readWrite,
    readOnlyPort: ROUTER_PORTS.readOnly,
    maxLagBytes: READ_ONLY_MAX_LAG_BYTES,
    restPort: PATRONI_REST_PORT,
    nodes: nodes.map((n) => ({ name: n.name, address: n.address, port: POSTGRES_PORT })),
  });
}

/** The Authorization header HAProxy's checks send, as a root-only file loaded before haproxy.cfg. */
export function renderHaproxyCredentials(restPassword: string): string {
  const basic = Buffer.from(`${PATRONI_REST_USER}:${restPassword}`).toString("base64");
  return [
    "# Patroni REST API credentials for the health checks. Root-only upload, read before haproxy.cfg.",
    "global",
    `    set-var proc.patroni_rest_authorization str("Basic ${basic}")`,
    "",
  ].join("\n");
}

/** The start-up and health scripts of the HA containers, uploaded unchanged. */
export function haScript(name: "patroni-start.sh" | "patroni-health.sh" | "patroni-post-bootstrap.sh" | "patroni-callback.sh" | "patroni-restore.sh" | "patroni-rollout.py" | "haproxy-start.sh" | "etcd-health.sh" | "haproxy-health.sh"): string {
  return fs.readFileSync(path.join(__dirname, name), "utf8");
}
