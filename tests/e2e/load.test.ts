/**
 * Load drill: 1000 concurrent clients. Through PgBouncer they all run short transactions for a
 * bounded time without a single error, on a few dozen server connections; straight at the primary
 * the same number is refused past max_connections, which is why the pooler exists.
 *
 * The cluster is the prod shape with one change: prod's max_client_conn is 800 (the audit's seed),
 * below the 1000 clients, so this drill deploys it with pg-ha:maxClientConn = 1100.
 */
import * as fs from "fs";
import { Client } from "pg";
import { type DeployedCluster, pgConfig, query, removeCluster, report } from "./support/cluster";
import { DRILLS, deployDrill, run, sleep, tempFile } from "./support/drill";

jest.setTimeout(180_000);

const shape = DRILLS.load;
const CLIENTS = 1000;
const SECONDS = 15;

let cluster: DeployedCluster;

beforeAll(async () => {
  cluster = await deployDrill(shape);
  expect(cluster.spec.pool.maxClientConn).toBe(1100);
  await query(cluster.outputs.hostPooledUrl!, cluster.outputs.caCertPem,
    "CREATE TABLE drill_load (id bigserial PRIMARY KEY, client int NOT NULL, n int NOT NULL); CREATE INDEX ON drill_load (client)");
  report(`load: prod-shaped cluster ${shape.clusterName} up in ${(cluster.elapsedMs / 1000).toFixed(1)} s; max_connections ${cluster.spec.node.maxConnections}, `
    + `PgBouncer max_client_conn ${cluster.spec.pool.maxClientConn}, default_pool_size ${cluster.spec.pool.defaultPoolSize} + reserve ${cluster.spec.pool.reservePoolSize}`);
}, 300_000);

afterAll(async () => {
  if (cluster) await removeCluster(cluster);
}, 300_000);

test(`through PgBouncer: ${CLIENTS} concurrent clients run short transactions for ${SECONDS} s with zero errors, and every committed one is stored`, async () => {
  // One short read-write transaction: insert a row, read the client's rows back.
  const script = tempFile("pgha-drill-load.sql", [
    "\\set n random(1, 1000000)",
    "BEGIN;",
    "INSERT INTO drill_load (client, n) VALUES (:client_id, :n);",
    "SELECT count(*) FROM drill_load WHERE client = :client_id;",
    "COMMIT;",
  ].join("\n"));
  const pools = samplePools();
  const bench = await run("pgbench", ["-n", "-c", String(CLIENTS), "-j", "4", "-T", String(SECONDS), "-f", script, cluster.outputs.hostPooledUrl!],
    { timeoutMs: 150_000, env: { PGSSLROOTCERT: cluster.caFile, PGCONNECT_TIMEOUT: "60" } });
  const seen = await pools.stop();
  fs.rmSync(script);

  const figure = (re: RegExp) => re.exec(bench.stdout)?.[1];
  expect(bench.stderr).not.toMatch(/error|abort/i);
  expect(bench.status).toBe(0);
  expect(figure(/number of clients: (\d+)/)).toBe(String(CLIENTS));
  expect(figure(/number of failed transactions: (\d+)/)).toBe("0");
  const processed = Number(figure(/number of transactions actually processed: (\d+)/));
  expect(processed).toBeGreaterThan(CLIENTS);
  // Every transaction pgbench counted was committed; at most one per client ended uncounted at the deadline.
  const [{ rows }] = await query<{ rows: string }>(cluster.outputs.hostPooledUrl!, cluster.outputs.caCertPem, "SELECT count(*) AS rows FROM drill_load");
  expect(Number(rows)).toBeGreaterThanOrEqual(processed);
  expect(Number(rows)).toBeLessThanOrEqual(processed + CLIENTS);
  // All clients were connected at once, served by no more server connections than the pool allows.
  expect(seen.maxClients).toBe(CLIENTS);
  expect(seen.maxServers).toBeLessThanOrEqual(cluster.spec.pool.defaultPoolSize + cluster.spec.pool.reservePoolSize);
  report(`load through PgBouncer: ${CLIENTS} clients x ${SECONDS} s: ${processed} transactions, ${figure(/tps = ([\d.]+)/)} tps, `
    + `0 failed, initial connection time ${figure(/initial connection time = ([\d.]+ ms)/)}; at most ${seen.maxClients} clients on ${seen.maxServers} server connections; `
    + `${rows} rows checked`);
});

test(`straight at the primary: the same ${CLIENTS} clients are refused past max_connections`, async () => {
  const maxConnections = cluster.spec.node.maxConnections;
  const clients = Array.from({ length: CLIENTS }, () => new Client({ ...pgConfig(cluster.outputs.hostDirectUrl!, cluster.outputs.caCertPem), connectionTimeoutMillis: 60_000 }));
  const start = Date.now();
  const outcomes = await Promise.allSettled(clients.map(async (c) => {
    c.on("error", () => undefined);
    await c.connect();
  }));
  const elapsed = Date.now() - start;
  try {
    const connected = outcomes.filter((o) => o.status === "fulfilled").length;
    const errors = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected").map((o) => o.reason as { code?: string; message: string });
    const refused = errors.filter((e) => e.code === "53300");
    // 53300 too_many_connections: "sorry, too many clients already", or the last slots being reserved for superusers.
    for (const e of refused) expect(e.message).toMatch(/^(sorry, too many clients already|remaining connection slots are reserved for roles with the SUPERUSER attribute)$/);
    expect(errors.filter((e) => e.code !== "53300").map((e) => e.message)).toEqual([]);
    expect(connected + refused.length).toBe(CLIENTS);
    expect(connected).toBeGreaterThan(0);
    expect(connected).toBeLessThanOrEqual(maxConnections - 3); // superuser_reserved_connections = 3
    expect(refused.length).toBeGreaterThan(0);
    report(`load straight at the primary: ${CLIENTS} clients in ${(elapsed / 1000).toFixed(1)} s: ${connected} connected, ${refused.length} refused `
      + `(max_connections ${maxConnections}, 3 reserved for superusers)`);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
});

/** Samples PgBouncer's SHOW POOLS for the app pool every second (at most 3 minutes) until stopped. */
function samplePools(): { stop: () => Promise<{ maxClients: number; maxServers: number }> } {
  let stopped = false;
  const seen = { maxClients: 0, maxServers: 0 };
  const deadline = Date.now() + 180_000;
  const loop = (async () => {
    while (!stopped && Date.now() < deadline) {
      try {
        const pools = await query<Record<string, string>>(cluster.outputs.adminUrls.pgbouncerAdminUrl, cluster.outputs.caCertPem, "SHOW POOLS");
        const app = pools.find((p) => p.database === "app" && p.user === "app");
        if (app) {
          const n = (k: string) => Number(app[k] ?? 0);
          seen.maxClients = Math.max(seen.maxClients, n("cl_active") + n("cl_waiting"));
          seen.maxServers = Math.max(seen.maxServers, n("sv_active") + n("sv_idle") + n("sv_used") + n("sv_tested") + n("sv_login") + n("sv_being_canceled"));
        }
      } catch {
        // The console may be slow to answer under load; the next sample will do.
      }
      await sleep(1_000);
    }
  })();
  return { stop: async () => { stopped = true; await loop; return seen; } };
}
