/**
 * The deployed cluster really works: each stack shape, on PostgreSQL 18 and 17, deployed by the
 * program's own resources on a real engine and used through its outputs with pg, psql and pgbench.
 */
import { spawnSync } from "child_process";
import { clusterTuning } from "../../config-templates/tuning";
import { replaceContainer } from "./executor";
import {
  allStreaming, deployCluster, type DeployedCluster, docker, healthOf, type Major, psql, query, removeCluster,
  replicationState, report, sqlInContainer, type Stack, waitFor, walReceiverStatus, withClient,
} from "./support/cluster";

jest.setTimeout(300_000);

const shapes: [Stack, Major][] = [["dev", 18], ["prod", 18], ["dev", 17], ["prod", 17]];

describe.each(shapes)("%s stack on PostgreSQL %i", (stack, major) => {
  let cluster: DeployedCluster;
  let ca: string;

  beforeAll(async () => {
    cluster = await deployCluster(stack, major);
    ca = cluster.outputs.caCertPem;
    report(`cold deploy of ${stack} on PostgreSQL ${major}: ${(cluster.elapsedMs / 1000).toFixed(1)} s to every container healthy`);
  }, 600_000);

  afterAll(async () => {
    if (cluster) await removeCluster(cluster);
  }, 300_000);

  test("every container is healthy", async () => {
    expect(cluster.replicas).toHaveLength(stack === "prod" ? 2 : 1);
    for (const node of cluster.outputs.nodes) expect(await healthOf(node.name)).toBe("healthy");
  });

  test("each replica streams through its own active slot", async () => {
    await waitFor("all replicas streaming", () => allStreaming(cluster), 30_000);
    const state = await replicationState(cluster);
    expect(state).toEqual(Object.fromEntries(cluster.replicas.map((_, i) => [`replica_${i + 1}`, { state: "streaming", slotActive: true }])));
    for (const replica of cluster.replicas) expect(await walReceiverStatus(replica)).toBe("streaming");
  });

  test("a row written through the pooled URL is readable on every replica within 5 s", async () => {
    const marker = `row-${stack}-${major}-${Date.now()}`;
    await withClient(cluster.outputs.hostPooledUrl!, ca, async (c) => {
      await c.query("CREATE TABLE IF NOT EXISTS e2e_rows (id bigserial PRIMARY KEY, marker text NOT NULL)");
      await c.query("INSERT INTO e2e_rows (marker) VALUES ($1)", [marker]);
    });
    for (const replica of cluster.replicas) {
      const ms = await waitFor(`${marker} on ${replica}`, async () =>
        (await sqlInContainer(replica, `SELECT count(*) FROM e2e_rows WHERE marker = '${marker}'`, "app")) === "1", 5_000, 50);
      report(`${stack}/${major}: row visible on ${replica} after ${ms} ms`);
    }
  });

  test("a write through the read-only URL fails as read-only", async () => {
    const url = cluster.outputs.hostReadOnlyUrl ?? hostPooled(cluster, "app_ro");
    await expect(query(url, ca, "CREATE TABLE e2e_must_fail (id int)")).rejects.toMatchObject({ code: "25006" });
    const [row] = await query<{ in_recovery: boolean }>(url, ca, "SELECT pg_is_in_recovery() AS in_recovery");
    expect(row.in_recovery).toBe(true);
  });

  test("each host URL works exactly as given, verify-full against the CA, with pg and with psql", async () => {
    const hostUrls = (["hostDirectUrl", "hostPooledUrl", "hostReadOnlyUrl"] as const).filter((k) => cluster.outputs[k] !== undefined);
    expect(hostUrls).toEqual(stack === "dev" ? ["hostDirectUrl", "hostPooledUrl", "hostReadOnlyUrl"] : ["hostPooledUrl"]);
    for (const key of hostUrls) {
      const url = cluster.outputs[key]!;
      expect(url).toMatch(/\?sslmode=verify-full$/);
      const [row] = await query<{ db: string; tls: string }>(url, ca,
        "SELECT current_database() AS db, (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS tls");
      expect(row).toEqual({ db: "app", tls: "TLSv1.3" });
      const out = psql(url, cluster.caFile, "SELECT current_user || ' ' || current_database()");
      expect(out).toEqual({ status: 0, stdout: "app app", stderr: "" });
    }
  });

  test("through PgBouncer: SCRAM end to end, and pooling visible in SHOW POOLS", async () => {
    const pooled = cluster.outputs.hostPooledUrl!;
    // The server sees the application role, connected from PgBouncer, over TLS, authenticated by SCRAM.
    const [seen] = await query<{ usename: string; ssl: boolean; client: string }>(pooled, ca,
      `SELECT a.usename, s.ssl, host(a.client_addr) AS client FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.pid = pg_backend_pid()`);
    const pgbouncerIp = await containerIp(cluster.pgbouncer, cluster.outputs.networkName);
    expect(seen).toEqual({ usename: "app", ssl: true, client: pgbouncerIp });
    const wrong = pooled.replace(/:[^:@/]+@/, ":not-the-password@");
    await expect(query(wrong, ca, "SELECT 1")).rejects.toThrow("SASL authentication failed");
    // Several clients in one go share the pool's server connections.
    await Promise.all(Array.from({ length: 8 }, () => query(pooled, ca, "SELECT pg_sleep(0.2)")));
    const pools = await query<Record<string, string>>(cluster.outputs.adminUrls.pgbouncerAdminUrl, ca, "SHOW POOLS");
    const app = pools.find((p) => p.database === "app" && p.user === "app")!;
    expect(app.pool_mode).toBe("transaction");
    expect(Number(app.sv_idle) + Number(app.sv_used) + Number(app.sv_active)).toBeGreaterThan(0);
    const config = await query<Record<string, string>>(cluster.outputs.adminUrls.pgbouncerAdminUrl, ca, "SHOW CONFIG");
    const setting = (k: string) => config.find((c) => c.key === k)?.value;
    expect(setting("auth_type")).toBe("scram-sha-256");
    expect(setting("client_tls_sslmode")).toBe("require");
    expect(setting("server_tls_sslmode")).toBe("verify-full");
    expect(setting("max_db_connections")).toBe(String(cluster.spec.pool.maxDbConnections));
  });

  test("pgbench runs a bounded TPC-B-like load through the pooler without errors", () => {
    const url = cluster.outputs.hostPooledUrl!;
    const env = { ...process.env, PGSSLROOTCERT: cluster.caFile };
    const init = spawnSync("pgbench", ["-i", "-s", "1", "-q", url], { env, encoding: "utf8", timeout: 120_000 });
    expect(init.status).toBe(0);
    const run = spawnSync("pgbench", ["-n", "-c", "8", "-j", "2", "-T", "5", url], { env, encoding: "utf8", timeout: 60_000 });
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.status).toBe(0);
    const tps = /tps = ([\d.]+)/.exec(run.stdout)?.[1];
    const failed = /number of failed transactions: (\d+)/.exec(run.stdout)?.[1];
    expect(failed).toBe("0");
    report(`${stack}/${major}: pgbench through PgBouncer, 8 clients for 5 s: ${tps} tps, ${failed} failed`);
  });

  test("the server runs with the settings the program rendered, and the monitoring extensions are loaded", async () => {
    const expected: Record<string, string> = {
      ...clusterTuning(cluster.spec),
      ssl: "on",
      ssl_min_protocol_version: "TLSv1.3",
      password_encryption: "scram-sha-256",
      wal_level: "replica",
      client_connection_check_interval: "10s",
      idle_in_transaction_session_timeout: "10min",
      log_min_duration_statement: "1s",
      max_slot_wal_keep_size: `${cluster.spec.maxSlotWalKeepMb / 1024}GB`,
      wal_log_hints: "on",
      archive_mode: "on",
      shared_preload_libraries: "pg_stat_statements,auto_explain",
      "auto_explain.log_min_duration": "1s",
      data_checksums: "on",
    };
    for (const node of [cluster.primary, ...cluster.replicas]) {
      const names = Object.keys(expected);
      const rows = await sqlInContainer(node, `SELECT name || '=' || current_setting(name) FROM unnest(ARRAY['${names.join("','")}']) AS name`);
      const actual = Object.fromEntries(rows.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      expect(actual).toEqual(expected);
    }
    // Keepalives apply to TCP sessions only (a socket session reads 0): ask through the pooler's TCP sessions.
    for (const url of [cluster.outputs.hostPooledUrl!, hostPooled(cluster, "app_ro")]) {
      const [k] = await query(url, ca, "SELECT current_setting('tcp_keepalives_idle') AS idle, current_setting('tcp_keepalives_interval') AS interval, current_setting('tcp_keepalives_count') AS count");
      expect(k).toEqual({ idle: "60", interval: "10", count: "6" });
    }
    expect(await sqlInContainer(cluster.primary, "SELECT count(*) > 0 FROM pg_stat_statements")).toBe("t");
    expect(await sqlInContainer(cluster.primary, "SELECT count(*) > 0 FROM pg_settings WHERE name LIKE 'auto_explain.%'")).toBe("t");
  });

  test("replacing a node's container keeps its data, and the replica resumes streaming", async () => {
    const pooled = cluster.outputs.hostPooledUrl!;
    await query(pooled, ca, "CREATE TABLE IF NOT EXISTS e2e_durable (id int PRIMARY KEY, note text)");
    await query(pooled, ca, "INSERT INTO e2e_durable SELECT g, 'before replacement' FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING");

    for (const node of [cluster.primary, cluster.replicas[0]]) {
      const start = Date.now();
      await replaceContainer(node);
      await waitFor("replicas streaming after replacement", () => allStreaming(cluster), 60_000, 200);
      report(`${stack}/${major}: replaced ${node} in ${((Date.now() - start) / 1000).toFixed(1)} s; replicas streaming again`);
      const counts = await Promise.all([cluster.primary, ...cluster.replicas].map((n) =>
        waitFor(`rows on ${n}`, async () => (await sqlInContainer(n, "SELECT count(*) FROM e2e_durable", "app")) === "1000", 10_000)));
      expect(counts).toHaveLength(1 + cluster.replicas.length);
    }
    // The pooler reconnects to the new primary by itself.
    await waitFor("pooled query after replacement", async () => (await query(pooled, ca, "SELECT 1 AS ok"))[0].ok === 1, 15_000, 250);
    const [after] = await query<{ n: string }>(pooled, ca, "SELECT count(*) AS n FROM e2e_durable");
    expect(after.n).toBe("1000");
  });
});

function hostPooled(cluster: DeployedCluster, database: string): string {
  return cluster.outputs.hostPooledUrl!.replace(/\/app\?/, `/${database}?`);
}

async function containerIp(container: string, network: string): Promise<string> {
  return docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container);
}
