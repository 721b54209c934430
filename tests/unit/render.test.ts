import { parseClusterConfig, type ClusterSpec } from "../../config";
import {
  renderPgbouncerIni, renderPgHbaConf, renderPostgresqlConf, renderReconcileSql, renderUserlist,
} from "../../config-templates/render";
import { primaryNode, replicaNodes } from "../../topology";
import { fixedPrimaryConfig, stackConfig } from "./harness";

const dev = parseClusterConfig(stackConfig("dev"));
const prod = parseClusterConfig(stackConfig("prod"));
const verifiers = (spec: ClusterSpec) =>
  Object.fromEntries(["monitor", "pgbouncer_admin", "pgbouncer_stats", ...spec.databases].map((r) => [r, `SCRAM-SHA-256$4096:c2FsdA==$${r}:key`]));

/** Lines of a config file, without comments and blank lines. */
const settings = (text: string) => text.split("\n").map((l) => l.replace(/\s+#.*$/, "").trimEnd()).filter((l) => l && !/^\s*[#;]/.test(l));

describe.each([["dev", dev], ["prod", prod]] as const)("rendering for %s", (_, spec) => {
  test("is deterministic: the same spec gives byte-identical files", () => {
    const all = (s: ClusterSpec) => [
      renderPostgresqlConf(s, primaryNode(s)), ...replicaNodes(s).map((r) => renderPostgresqlConf(s, r)),
      renderPgHbaConf(s), renderPgbouncerIni(s), renderReconcileSql(s, verifiers(s)), renderUserlist(s, verifiers(s)),
    ];
    expect(all(parseClusterConfig(stackConfig(spec.clusterName.endsWith("dev") ? "dev" : "prod")))).toEqual(all(spec));
  });

  test("postgresql.conf: TLS 1.3, SCRAM, keepalives, timeouts, monitoring, replication safety", () => {
    const lines = settings(renderPostgresqlConf(spec, primaryNode(spec)));
    expect(lines).toEqual(expect.arrayContaining([
      "ssl = on",
      "ssl_min_protocol_version = 'TLSv1.3'",
      "password_encryption = scram-sha-256",
      "tcp_keepalives_idle = 60",
      "tcp_keepalives_interval = 10",
      "tcp_keepalives_count = 6",
      "client_connection_check_interval = 10s",
      "idle_in_transaction_session_timeout = 10min",
      "wal_level = replica",
      "wal_log_hints = on",
      `max_slot_wal_keep_size = ${spec.maxSlotWalKeepMb}MB`,
      "archive_mode = on",
      // With Patroni (both stacks), WAL goes through pgBackRest to the repository host, at most 60 s old.
      "archive_timeout = 60s",
      `archive_command = 'pgbackrest --config=/etc/pg-ha/pgbackrest.conf --stanza=${spec.clusterName} archive-push %p'`,
      "log_min_duration_statement = 1000",
      "shared_preload_libraries = 'pg_stat_statements,auto_explain'",
      "auto_explain.log_min_duration = 1000",
      `max_connections = ${spec.node.maxConnections}`,
      "io_method = worker",
    ]));
    expect(lines.some((l) => l.startsWith("primary_conninfo"))).toBe(false);
  });

  test("the replica streams from the primary through its own slot, with its client certificate", () => {
    const replica = replicaNodes(spec)[0];
    const lines = settings(renderPostgresqlConf(spec, replica));
    expect(lines).toContain("primary_slot_name = 'replica_1'");
    expect(lines).toContain("hot_standby_feedback = on");
    // A replica that lost its slot's WAL reads it back from the repository host.
    expect(lines).toContain(`restore_command = 'pgbackrest --config=/etc/pg-ha/pgbackrest.conf --stanza=${spec.clusterName} archive-get %f "%p"'`);
    const conninfo = lines.find((l) => l.startsWith("primary_conninfo"))!;
    expect(conninfo).toContain(`host=${spec.clusterName}-primary port=5432 user=replicator application_name=replica_1 sslmode=verify-full`);
    expect(conninfo).toContain("sslcert=/etc/pg-ha/tls/replication.crt sslkey=/run/pg-ha/replication.key");
    expect(conninfo).not.toContain("password");
  });

  test("pg_hba.conf: no plain TCP, certificates for replication, SCRAM for everyone else, reject last", () => {
    const lines = settings(renderPgHbaConf(spec)).map((l) => l.split(/\s+/).join(" "));
    expect(lines).toEqual([
      "local all postgres peer",
      "local all all reject",
      "hostnossl all all all reject",
      "hostnossl replication all all reject",
      `hostssl replication replicator ${spec.networkSubnet} cert`,
      "hostssl replication all all reject",
      "hostssl all replicator all reject",
      "hostssl all postgres all reject",
      `hostssl all all ${spec.networkSubnet} scram-sha-256`,
      "host all all all reject",
      "host replication all all reject",
    ]);
  });

  test("pgbouncer.ini: read-write and read-only entries, pool sizes from the spec, TLS both ways", () => {
    const lines = settings(renderPgbouncerIni(spec));
    // With Patroni, both entries go through the router, whichever node leads.
    expect(lines).toEqual(expect.arrayContaining([
      `app = host=${spec.clusterName}-router port=5000 dbname=app`,
      `app_ro = host=${spec.clusterName}-router port=5001 dbname=app`,
      "auth_type = scram-sha-256",
      `pool_mode = transaction`,
      `default_pool_size = ${spec.pool.defaultPoolSize}`,
      `min_pool_size = ${spec.pool.minPoolSize}`,
      `reserve_pool_size = ${spec.pool.reservePoolSize}`,
      `max_client_conn = ${spec.pool.maxClientConn}`,
      `max_db_connections = ${spec.pool.maxDbConnections}`,
      "max_prepared_statements = 200",
      "client_tls_sslmode = require",
      "client_tls_protocols = tlsv1.3",
      "server_tls_sslmode = verify-full",
      "server_tls_protocols = tlsv1.3",
    ]));
  });

  test("WAL archiving without Patroni: the shared archive volume, written by the primary, read by the replicas", () => {
    const fixed = parseClusterConfig(fixedPrimaryConfig(spec.clusterName.endsWith("dev") ? "dev" : "prod"));
    expect(settings(renderPostgresqlConf(fixed, primaryNode(fixed)))).toEqual(expect.arrayContaining([
      "archive_mode = on",
      "archive_timeout = 60s",
      "archive_command = 'test ! -f /var/lib/pg-ha/wal-archive/%f && cp %p /var/lib/pg-ha/wal-archive/%f'",
    ]));
    const replica = settings(renderPostgresqlConf(fixed, replicaNodes(fixed)[0]));
    expect(replica).toContain("restore_command = 'cp /var/lib/pg-ha/wal-archive/%f %p'");
    expect(replica.filter((l) => l.includes("pgbackrest"))).toEqual([]);
  });

  test("pgbouncer.ini without Patroni: the fixed primary and the replicas", () => {
    const fixed = parseClusterConfig(fixedPrimaryConfig(spec.clusterName.endsWith("dev") ? "dev" : "prod"));
    const replicas = replicaNodes(fixed).map((r) => r.name).join(",");
    expect(settings(renderPgbouncerIni(fixed))).toEqual(expect.arrayContaining([
      `app = host=${fixed.clusterName}-primary port=5432 dbname=app`,
      `app_ro = host=${replicas} port=5432 dbname=app`,
    ]));
  });

  test("reconcile.sql sets verifiers, gives replication no password, and keeps one slot per replica", () => {
    const sql = renderReconcileSql(spec, verifiers(spec));
    expect(sql).toContain("ALTER ROLE app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$app:key';");
    expect(sql).toContain("ALTER ROLE replicator WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD NULL;");
    expect(sql).toContain("ALTER ROLE monitor WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD");
    expect(sql).toContain("GRANT pg_monitor TO monitor;");
    expect(sql).toContain("ALTER ROLE postgres WITH PASSWORD NULL;");
    expect(sql).not.toMatch(/ALTER ROLE postgres .*SCRAM/);
    expect(sql).toContain("REVOKE ALL ON DATABASE app FROM PUBLIC;");
    const slots = replicaNodes(spec).map((r) => `'${r.slot}'`).join(", ");
    expect(sql).toContain(`FROM unnest(ARRAY[${slots}]::text[]) AS slot`);
    expect(sql).toContain(`AND slot_name <> ALL (ARRAY[${slots}]::text[])`);
  });

  test("the userlist holds verifiers for the application and PgBouncer's own users only", () => {
    expect(renderUserlist(spec, verifiers(spec)).trim().split("\n")).toEqual([
      `"app" "SCRAM-SHA-256$4096:c2FsdA==$app:key"`,
      `"pgbouncer_admin" "SCRAM-SHA-256$4096:c2FsdA==$pgbouncer_admin:key"`,
      `"pgbouncer_stats" "SCRAM-SHA-256$4096:c2FsdA==$pgbouncer_stats:key"`,
    ]);
  });
});

test("quorum commit names every replica on the primary only", () => {
  const spec = parseClusterConfig({ ...stackConfig("prod"), "pg-ha:synchronousMode": "quorum" });
  expect(renderPostgresqlConf(spec, primaryNode(spec))).toContain("synchronous_standby_names = 'ANY 1 (replica_1, replica_2)'");
  expect(renderPostgresqlConf(spec, replicaNodes(spec)[0])).not.toContain("synchronous_standby_names");
});

test("TLS 1.2 as the minimum lets PgBouncer speak both versions", () => {
  const spec = parseClusterConfig({ ...stackConfig("dev"), "pg-ha:tlsMinProtocol": "TLSv1.2" });
  expect(renderPgbouncerIni(spec)).toContain("client_tls_protocols = tlsv1.2,tlsv1.3");
  expect(renderPostgresqlConf(spec, primaryNode(spec))).toContain("ssl_min_protocol_version = 'TLSv1.2'");
});

test("archive_timeout follows pg-ha:archiveTimeoutSeconds in both layouts", () => {
  for (const config of [stackConfig("dev"), fixedPrimaryConfig("dev")]) {
    const spec = parseClusterConfig({ ...config, "pg-ha:archiveTimeoutSeconds": "300" });
    expect(settings(renderPostgresqlConf(spec, primaryNode(spec)))).toContain("archive_timeout = 300s");
  }
});

test("with pg-ha:walArchiving = false nothing is archived or read back from an archive, in either layout", () => {
  for (const config of [stackConfig("dev"), fixedPrimaryConfig("dev")]) {
    const spec = parseClusterConfig({ ...config, "pg-ha:walArchiving": "false" });
    for (const node of [primaryNode(spec), replicaNodes(spec)[0]]) {
      const lines = settings(renderPostgresqlConf(spec, node));
      expect(lines).toContain("archive_mode = off");
      expect(lines.filter((l) => /^(archive_command|archive_timeout|restore_command) /.test(l))).toEqual([]);
    }
  }
});

test("a missing verifier is an error, not an empty password", () => {
  expect(() => renderUserlist(dev, {})).toThrow('no SCRAM verifier for role "app"');
});

test("reconcile.sql creates pg_stat_statements in postgres and in each application database, idempotently, after everything else", () => {
  const spec = parseClusterConfig({ ...stackConfig("dev"), "pg-ha:databases": JSON.stringify(["app", "reports"]) });
  const lines = renderReconcileSql(spec, verifiers(spec)).trimEnd().split("\n");
  const create = "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;";
  // The session opened with psql -d postgres creates it there, then each database in turn.
  expect(lines.slice(-5)).toEqual([create, "\\connect app", create, "\\connect reports", create]);
  expect(lines.filter((l) => l.includes("pg_stat_statements") && !l.startsWith("--"))).toEqual([create, create, create]);
  // Every database exists before the first \connect, and nothing follows the extension step.
  const firstConnect = lines.indexOf("\\connect app");
  for (const db of spec.databases) {
    expect(lines.findIndex((l) => l.includes(`CREATE DATABASE ${db} OWNER ${db}`))).toBeLessThan(firstConnect);
  }
  const lastSlotStatement = Math.max(...lines.map((l, i) => (l.includes("pg_drop_replication_slot") ? i : -1)));
  expect(lastSlotStatement).toBeGreaterThan(0);
  expect(lastSlotStatement).toBeLessThan(firstConnect);
});
