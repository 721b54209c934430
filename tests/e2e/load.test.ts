/**
 * Load drill: 1000 concurrent clients. Through PgBouncer they all run short transactions for a
 * bounded time without a single error, on a few dozen server connections; straight at the primary
 * the same number is refused past max_connections, which is why the pooler exists.
 *
 * The cluster is the prod shape with one change: prod's max_client_conn is 800 (the audit's seed),
 * below the 1000 clients, so this drill deploys it with pg-ha:maxClientConn = 1100.
 *
 * The storm at the primary is repeated, and the primary must come through every round without a
 * restart. It once did not: the postmaster was PID 1 of its container, a health-check client that
 * Docker abandoned at the check's timeout was re-parented to it, and its exit was taken for a
 * crashed backend, so every server process was restarted. Every container now runs under Docker's
 * init, which this drill checks first on each of them.
 */
import * as fs from "fs";
import { Client } from "pg";
import { type DeployedCluster, docker, pgConfig, query, removeCluster, report, sqlInContainer, waitFor } from "./support/cluster";
import { DRILLS, deployDrill, logsOf, restartCount, run, sleep, tempFile } from "./support/drill";

jest.setTimeout(180_000);

const shape = DRILLS.load;
const CLIENTS = 1000;
const SECONDS = 15;
/** Storms in a row straight at the primary, each of which it must survive without a restart. */
const STORMS = 5;
/** What the primary's log says when it restarts every server process (or the container restarts). */
const RESTART_SIGNS = /terminating any other active server processes|untracked child process|database system is in recovery mode|all server processes terminated|database system was interrupted/;

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

test("every container runs under Docker's init: PID 1 is docker-init, the server its child and never PID 1", async () => {
  const servers: Record<string, string> = { primary: "postgres", replica: "postgres", pgbouncer: "pgbouncer" };
  expect(cluster.outputs.nodes.map((n) => n.role).sort()).toEqual(["pgbouncer", "primary", "replica", "replica"]);
  const seen: string[] = [];
  for (const node of cluster.outputs.nodes) {
    const procs = await processesIn(node.name);
    const init = procs.find((p) => p.pid === 1);
    expect({ container: node.name, pid1: init?.comm }).toEqual({ container: node.name, pid1: "docker-init" });
    // The server: the process of that name whose parent is the init (a postmaster's own children have it as parent).
    const server = procs.filter((p) => p.comm === servers[node.role] && p.ppid === 1);
    expect({ container: node.name, servers: server.length }).toEqual({ container: node.name, servers: 1 });
    expect(server[0].pid).not.toBe(1);
    expect(procs.filter((p) => p.comm === servers[node.role]).every((p) => p.pid !== 1)).toBe(true);
    seen.push(`${node.name}: PID 1 ${init!.comm}, ${server[0].comm} PID ${server[0].pid}`);
  }
  report(`load: every container under Docker's init; ${seen.join("; ")}`);
});

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

test(`straight at the primary, ${STORMS} times in a row: the same ${CLIENTS} clients are refused past max_connections, and the primary never restarts`, async () => {
  const maxConnections = cluster.spec.node.maxConnections;
  const startedAt = await primaryStart();
  const logSince = Math.floor(Date.now() / 1000) - 1;
  // A session that lives through every storm: a restart of the server processes would end it.
  const observer = new Client(pgConfig(cluster.outputs.hostDirectUrl!, cluster.outputs.caCertPem));
  observer.on("error", () => undefined);
  await observer.connect();
  const observerPid = (await observer.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
  const probes = sampleHealthProbes(cluster.primary);
  let observerKept = false;
  // A failed storm still reports whether the primary restarted, then fails the test.
  let stormFailure: unknown;
  try {
    for (let round = 1; round <= STORMS; round++) {
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
        report(`load straight at the primary, storm ${round}/${STORMS}: ${CLIENTS} clients in ${(elapsed / 1000).toFixed(1)} s: ${connected} connected, ${refused.length} refused `
          + `(max_connections ${maxConnections}, 3 reserved for superusers)`);
      } finally {
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      }
      // The next storm starts on an idle server: the storm's sessions are gone. They came in through
      // the published port, as the observer did; PgBouncer's pooled server sessions (also `app`,
      // kept open by min_pool_size) come from its own address and stay.
      await waitFor("the storm's sessions to end", async () => Number(await sqlInContainer(cluster.primary,
        `SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND pid <> ${observerPid}
           AND client_addr = (SELECT client_addr FROM pg_stat_activity WHERE pid = ${observerPid})`)) === 0, 60_000, 500);
    }
  } catch (e) {
    stormFailure = e;
  } finally {
    // The same backend still answers: no restart ended it.
    observerKept = await observer.query<{ pid: number }>("SELECT pg_backend_pid() AS pid").then((r) => r.rows[0].pid === observerPid, () => false);
    await observer.end().catch(() => undefined);
  }
  const health = await probes.stop();

  const restartLines = (await logsOf(cluster.primary, logSince)).split("\n").filter((line) => RESTART_SIGNS.test(line));
  const startedAfter = await primaryStart();
  report(`load straight at the primary: ${stormFailure ? "storms stopped by a failure" : `${STORMS} storms`}, ${restartLines.length} restart lines in its log; `
    + `postmaster up since ${startedAfter.postmaster} (before: ${startedAt.postmaster}), container restarts ${startedAfter.restarts}; `
    + `observer session (PID ${observerPid}) ${observerKept ? "kept" : "lost"}; ${health.probes} health probes, longest ${(health.longestMs / 1000).toFixed(1)} s, `
    + `${health.failed} failed, ${health.timedOut} given up by Docker at the healthcheck's timeout`);
  expect(restartLines).toEqual([]);
  expect(startedAfter).toEqual(startedAt);
  expect(observerKept).toBe(true);
  if (stormFailure) throw stormFailure;
  // Probes Docker gave up on are a figure, not a failure: its timeout also counts starting the exec,
  // which a saturated host can delay past it whatever the script does. That case is why the init is there.
}, 900_000);

/** When the primary's server and container started, and how often Docker restarted it. */
async function primaryStart(): Promise<{ postmaster: string; container: string; restarts: number }> {
  return {
    postmaster: await sqlInContainer(cluster.primary, "SELECT pg_postmaster_start_time()"),
    container: await docker("inspect", "-f", "{{.State.StartedAt}}", cluster.primary),
    restarts: await restartCount(cluster.primary),
  };
}

/** The processes inside CONTAINER as its own PID namespace numbers them, from /proc. */
async function processesIn(container: string): Promise<{ pid: number; ppid: number; comm: string }[]> {
  const r = await run("docker", ["exec", container, "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null; true"]);
  expect(r.status).toBe(0);
  // "<pid> (<comm>) <state> <ppid> ...": comm may hold spaces, so it runs to the last ')'.
  return r.stdout.split("\n").filter(Boolean).map((line) => {
    const m = /^(\d+) \((.*)\) \S+ (\d+) /.exec(line);
    if (!m) throw new Error(`unreadable /proc stat line in ${container}: ${line}`);
    return { pid: Number(m[1]), comm: m[2], ppid: Number(m[3]) };
  });
}

/**
 * Samples CONTAINER's health-check log every second (at most 15 minutes) until stopped: Docker keeps
 * only the last five probes, and a probe runs every 2 s at most, so none is missed.
 */
function sampleHealthProbes(container: string): { stop: () => Promise<{ probes: number; longestMs: number; failed: number; timedOut: number }> } {
  let stopped = false;
  const probes = new Map<string, { ms: number; exitCode: number; output: string }>();
  const deadline = Date.now() + 900_000;
  const loop = (async () => {
    while (!stopped && Date.now() < deadline) {
      try {
        const log = JSON.parse(await docker("inspect", "-f", "{{json .State.Health.Log}}", container)) as { Start: string; End: string; ExitCode: number; Output: string }[];
        for (const p of log) probes.set(p.Start, { ms: Date.parse(p.End) - Date.parse(p.Start), exitCode: p.ExitCode, output: p.Output });
      } catch {
        // The engine may be slow to answer under load; the next sample will do.
      }
      await sleep(1_000);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      const all = [...probes.values()];
      return {
        probes: all.length,
        longestMs: Math.max(0, ...all.map((p) => p.ms)),
        failed: all.filter((p) => p.exitCode !== 0).length,
        // Docker's own verdict on a probe it gave up on: "Health check exceeded timeout (5s)".
        timedOut: all.filter((p) => /exceeded timeout/.test(p.output)).length,
      };
    },
  };
}

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
