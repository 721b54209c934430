/**
 * `npm run bench`: deploys the program's clusters on the local engine through the e2e executor,
 * measures them, and writes bench/results/<id>.json, bench/results/<id>.svg and bench/REPORT.md.
 * Every phase is bounded; the whole run stops itself within BUDGET_S and removes its clusters,
 * also on failure. `npm run bench -- --report <results.json>` re-renders the chart and report.
 *
 * Environment: BENCH_QUICK=1 shortens every phase (smoke test); BENCH_PHASES=deploy,lag,connections,grid,thousand,tuning,failover,backup
 * runs a subset (grid and thousand bring connections with them: their windows are sized from it).
 * The failover and backup phases have budgets of their own (FAILOVER_BUDGET_S, BACKUP_BUDGET_S),
 * added to the others' 600 s. The backup phase: pgBackRest full and differential backup
 * throughput, archive lag under pgbench, repository size before and after expiry, the restore
 * drill, and a new cluster restored from the repository until it answers a query (bench/backup.ts).
 * BENCH_OUT=<dir> writes the results and the report under <dir> instead of bench/results and
 * bench/REPORT.md, e.g. for a run of some phases that should not replace the committed report.
 * A run that completed no transaction, or left too few steady samples, is a failed measurement:
 * listed under `failures`, never part of a median, and the exit code is 1.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Client } from "pg";
import { parseClusterConfig } from "../config";
import { cleanupLeftovers, loadStackConfig } from "../tests/e2e/executor";
import requireHostCommands from "../tests/e2e/support/host-commands";
import {
  deployCluster, type DeployedCluster, docker, pgConfig, query, sqlInContainer, type Stack, testOverrides, waitFor,
} from "../tests/e2e/support/cluster";
import { renderChart } from "./chart";
import { coldDeploy } from "./deploytime";
import { type ConnectionCost, connectionCostArgs, connectionCostCommand, costOf, measureConnectionCost, PATH_TITLES } from "./connections";
import { collectEnvironment, parsePgbouncerUp } from "./env";
import { prioritizeSampler, startLagSampler, summarizeLag } from "./lag";
import { initPgbench, runPgbench, type Connections, type PgbenchOptions, type Script } from "./pgbench";
import { renderReport } from "./report";
import { measurementFailures, pointName, runFailure, summarize } from "./summary";
import { failoverFailures, type FailoverResult, measureFailover, summarizeFailover, type WithFailover } from "./failover";
import { backupFailures, measureBackup, summarizeBackup } from "./backup";
import { type BenchResults, type BenchSettings, type ClusterUsed, type GridPoint, type PoolPeak, type Target, upgradeResults } from "./results";
import { applyConf, CONF_PATH, currentSettings, stockConf } from "./stock";
import { evaluateTargets } from "./targets";
import { clusterContainers, MemorySampler, proxyProcesses, summarizeMemory, withCpu } from "./usage";
import { runWindowS } from "./windows";

const ROOT = path.join(__dirname, "..");
const OUT = process.env.BENCH_OUT ? path.resolve(process.env.BENCH_OUT) : undefined;
const RESULTS_DIR = OUT ? path.join(OUT, "results") : path.join(__dirname, "results");
const REPORT = OUT ? path.join(OUT, "REPORT.md") : path.join(__dirname, "REPORT.md");
const ALL_PHASES = ["deploy", "lag", "connections", "grid", "thousand", "tuning", "failover", "backup"];
const QUICK = process.env.BENCH_QUICK === "1";
const PHASES = new Set((process.env.BENCH_PHASES ?? ALL_PHASES.join(",")).split(",").map((s) => s.trim()));
// The grid's and the 1000 clients' windows are sized from the connection cost of the same run.
if (PHASES.has("grid") || PHASES.has("thousand")) PHASES.add("connections");
const MAJOR = 18 as const;
/** Scheduling priority of the lag sampler's psql and server process (see prioritizeSampler). */
const SAMPLER_NICE = -10;

/** The bench's own clusters: names, subnets and ports no other user of the engine takes (below the
 * kernel's ephemeral range, 32768-60999, where a client socket could already hold the port). */
const BENCH = { name: "pgha-bench", subnet: "172.30.40.0/24", direct: 19432, pooled: 19433, readOnly: 19434 };
const STOCK = { name: "pgha-bench-stock", subnet: "172.30.41.0/24", direct: 19442, pooled: 19443 };
/** The failover phase's Patroni cluster: quorum commit, two replicas, three etcd members. */
const FAILOVER_OVERRIDES = {
  "pg-ha:failover": "patroni", "pg-ha:clusterName": "pgha-bench-fo", "pg-ha:networkSubnet": "172.30.94.0/24",
  "pg-ha:publishDirectPort": "23472", "pg-ha:publishPooledPort": "23473", "pg-ha:publishReadOnlyPort": "23474",
  "pg-ha:replicas": "2", "pg-ha:etcdMembers": "3", "pg-ha:synchronousMode": "quorum",
};
/**
 * The failover phase's own time, added to the budget: a deploy, then five rounds of kill, stop and
 * switchover, each waiting for the old leader to stream again before the next. A round took
 * 160-190 s on a loaded 2-core machine, so five need about 1000 s after the deploy.
 */
const FAILOVER_BUDGET_S = 1200;
/**
 * The backup phase's Patroni clusters: the source (one node: the repository host and archiving are
 * what is measured, not replication) and the one restored from its repository. Expiry keeps one
 * full backup, so that `pgbackrest expire` after three removes two and the differential.
 */
const BACKUP_OVERRIDES = {
  "pg-ha:failover": "patroni", "pg-ha:clusterName": "pgha-bench-bk", "pg-ha:networkSubnet": "172.30.42.0/24",
  "pg-ha:publishDirectPort": "19452", "pg-ha:publishPooledPort": "19453", "pg-ha:publishReadOnlyPort": "19454",
  "pg-ha:replicas": "0", "pg-ha:etcdMembers": "1", "pg-ha:backupRetentionFull": "1", "pg-ha:restoreDrillIntervalMinutes": "0",
};
const RESTORED_OVERRIDES = {
  "pg-ha:failover": "patroni", "pg-ha:clusterName": "pgha-bench-bkr", "pg-ha:networkSubnet": "172.30.43.0/24",
  "pg-ha:publishDirectPort": "19462", "pg-ha:publishPooledPort": "19463", "pg-ha:publishReadOnlyPort": "19464",
  "pg-ha:replicas": "0", "pg-ha:etcdMembers": "1", "pg-ha:restoreDrillIntervalMinutes": "0",
};
/**
 * The backup phase's own time, added to the budget: two deploys (about 60-90 s each on a loaded
 * 2-core machine), the scheduler's first backup (up to a 30 s tick), pgbench -i at BACKUP_SCALE,
 * three full backups and a differential of it, 30 s of traffic, expiry, the drill and the restore.
 */
const BACKUP_BUDGET_S = 480;
/** Scale of the backup phase's data set: about 300 MB, a full backup of several seconds here. */
const BACKUP_SCALE = QUICK ? 5 : 20;
/** Events of each kind the failover phase needs; fewer is a failed measurement. */
const FAILOVER_EVENTS = QUICK ? 1 : 5;
/** A stock PostgreSQL (initdb defaults, no network) in the same image, for the machine's own backend start cost. */
const STOCK_SERVER = "pgha-bench-stock-server";
/** Assumed cost of one connection when the connection-cost phase did not measure it (noted in the results). */
const UNMEASURED_CONNECTION_MS = 100;

const settings: BenchSettings = {
  postgresMajor: MAJOR,
  scale: 10,
  threads: 2,
  gridClients: [10, 50, 100],
  gridDurationS: QUICK ? 2 : 4,
  // 25 s: -C select-only direct at 100 clients needs 4 progress lines about 6 s apart here (windows.ts).
  gridMaxDurationS: QUICK ? 8 : 25,
  gridRounds: QUICK ? 1 : 2,
  thousandClients: 1000,
  thousandDurationS: QUICK ? 12 : 18,
  thousandMaxDurationS: QUICK ? 20 : 30,
  thousandScripts: ["select-only", "tpcb-like"],
  lagClients: 50,
  lagDurationS: QUICK ? 5 : 15,
  lagIntervalMs: 25,
  tuningClients: 10,
  tuningDurationS: QUICK ? 2 : 5,
  tuningMaxDurationS: QUICK ? 5 : 10,
  minSteadySamples: QUICK ? 2 : 3,
  costConnections: QUICK ? 20 : 50,
  tuningReps: QUICK ? 1 : 3,
  deployReps: QUICK ? 1 : 3,
  budgetS: 600 + (PHASES.has("failover") ? FAILOVER_BUDGET_S : 0) + (PHASES.has("backup") ? BACKUP_BUDGET_S : 0),
  clusters: {},
};

const t0 = Date.now();
const elapsedS = () => (Date.now() - t0) / 1000;
/** Time kept back at the end for removing clusters and writing the outputs. */
const RESERVE_S = 25;
/** Set once the failover (backup) phase began: until then the other phases leave its budget alone. */
let failoverBegun = false;
let backupBegun = false;
/** The end of the time the phase about to run may use, s after the start. */
const deadlineS = () => settings.budgetS - RESERVE_S - (PHASES.has("failover") && !failoverBegun ? FAILOVER_BUDGET_S : 0)
  - (PHASES.has("backup") && !backupBegun ? BACKUP_BUDGET_S : 0);

function log(line: string): void {
  process.stdout.write(`[bench ${elapsedS().toFixed(0).padStart(3)} s] ${line}\n`);
}

function stamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
}

const benchOverrides = (extra: Record<string, string>): Record<string, string> => ({
  "pg-ha:clusterName": BENCH.name,
  "pg-ha:networkSubnet": BENCH.subnet,
  ...extra,
});

/** Describes a cluster for the results: the overrides against Pulumi.<shape>.yaml and what they give. */
function describe(shape: Stack, overrides: Record<string, string>, deployments: string[], purpose: string): ClusterUsed {
  const failover = (overrides["pg-ha:failover"] ?? "none") as "none" | "patroni";
  const spec = parseClusterConfig({ ...loadStackConfig(shape), ...testOverrides(shape, MAJOR, failover), ...overrides });
  return {
    cluster: spec.clusterName, shape, deployments, overrides, purpose,
    nodeMemoryMb: spec.node.memoryMb, nodeCpus: spec.node.cpus, maxConnections: spec.node.maxConnections, replicas: spec.replicas,
    pool: { mode: spec.pool.mode, defaultPoolSize: spec.pool.defaultPoolSize, reservePoolSize: spec.pool.reservePoolSize, maxDbConnections: spec.pool.maxDbConnections, maxClientConn: spec.pool.maxClientConn },
  };
}

async function removeBenchClusters(): Promise<void> {
  for (const name of [BENCH.name, STOCK.name, FAILOVER_OVERRIDES["pg-ha:clusterName"], BACKUP_OVERRIDES["pg-ha:clusterName"], RESTORED_OVERRIDES["pg-ha:clusterName"]]) {
    await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${name}`] }).catch((e: unknown) => log(`cleanup of ${name} failed: ${String(e)}`));
  }
  await removeStockServer();
}

/** Removes the stock server container, if there is one (it is the bench's own, made by startStockServer). */
async function removeStockServer(): Promise<void> {
  const found = await docker("ps", "-aq", "--filter", `name=^${STOCK_SERVER}$`).catch(() => "");
  if (found) await docker("rm", "-f", STOCK_SERVER).catch((e: unknown) => log(`removing ${STOCK_SERVER} failed: ${String(e)}`));
}

/**
 * Starts a stock PostgreSQL from the cluster's image, sized like a grid node: initdb's defaults,
 * no network, its socket in /tmp, trust. Returns once it accepts connections.
 */
async function startStockServer(image: string, cpus: number, memoryMb: number): Promise<void> {
  await removeStockServer();
  const server = 'initdb -D /tmp/stock -A trust -U postgres >/dev/null && exec postgres -D /tmp/stock -k /tmp -c listen_addresses=""';
  await docker("run", "-d", "--name", STOCK_SERVER, "--init", "--network", "none", "--cpus", String(cpus), "--memory", `${memoryMb}m`,
    "--user", "postgres", "--entrypoint", "sh", image, "-c", `PATH=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1):$PATH; ${server}`);
  await waitFor(`${STOCK_SERVER} accepting connections`, async () =>
    (await docker("exec", "-u", "postgres", STOCK_SERVER, "pg_isready", "-q", "-h", "/tmp").then(() => true, () => false)), 60_000, 250);
}

/** Drops PgBouncer's server connections (and waits for none to be left), so direct clients find room. */
async function resetPool(c: DeployedCluster): Promise<void> {
  const admin = c.outputs.adminUrls.pgbouncerAdminUrl;
  await query(admin, c.outputs.caCertPem, "KILL app");
  await query(admin, c.outputs.caCertPem, "RESUME app");
}

/** Samples PgBouncer's SHOW POOLS for the app pool every second while WORK runs. */
async function withPoolPeak<T>(c: DeployedCluster, work: () => Promise<T>): Promise<{ result: T; peak?: PoolPeak }> {
  const client = new Client(pgConfig(c.outputs.adminUrls.pgbouncerAdminUrl, c.outputs.caCertPem));
  let connected = false;
  try {
    await client.connect();
    connected = true;
  } catch {
    /* no peak then */
  }
  const peak: PoolPeak = { maxClients: 0, maxWaiting: 0, maxServers: 0, samples: 0 };
  let stop = false;
  const sampler = (async () => {
    for (let i = 0; i < 600 && !stop && connected; i++) {
      try {
        const rows = (await client.query("SHOW POOLS")).rows as Record<string, string>[];
        const app = rows.filter((r) => r.database === "app");
        const n = (k: string) => app.reduce((a, r) => a + Number(r[k] ?? 0), 0);
        peak.maxClients = Math.max(peak.maxClients, n("cl_active") + n("cl_waiting"));
        peak.maxWaiting = Math.max(peak.maxWaiting, n("cl_waiting"));
        peak.maxServers = Math.max(peak.maxServers, n("sv_active") + n("sv_idle") + n("sv_used") + n("sv_tested") + n("sv_login"));
        peak.samples++;
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  try {
    const result = await work();
    return { result, peak: connected ? peak : undefined };
  } finally {
    stop = true;
    await sampler;
    if (connected) await client.end().catch(() => undefined);
  }
}

async function prepareData(c: DeployedCluster, url: string): Promise<number> {
  const init = await initPgbench(url, c.caFile, settings.scale);
  if (init.exitCode !== 0) throw new Error(`pgbench -i failed: ${init.output}`);
  await sqlInContainer(c.primary, "CHECKPOINT");
  return init.wallMs;
}

/** Refuses arguments and environment it does not understand, naming the accepted values. */
function checkInput(args: string[]): string | undefined {
  const quick = process.env.BENCH_QUICK;
  if (quick !== undefined && quick !== "0" && quick !== "1") throw new Error(`BENCH_QUICK="${quick}" is not accepted; accepted: 0 or 1`);
  const unknown = [...PHASES].filter((p) => !ALL_PHASES.includes(p));
  if (unknown.length > 0) throw new Error(`BENCH_PHASES has ${unknown.join(", ")}; accepted: a comma-separated subset of ${ALL_PHASES.join(", ")}`);
  if (args.length === 0) return undefined;
  if (args.length === 2 && args[0] === "--report" && args[1].endsWith(".json")) return args[1];
  throw new Error(`arguments "${args.join(" ")}" are not accepted; accepted: none, or --report <results.json>`);
}

async function main(): Promise<number> {
  const reportFile = checkInput(process.argv.slice(2));
  if (reportFile !== undefined) {
    const file = path.resolve(reportFile);
    const results = upgradeResults(JSON.parse(fs.readFileSync(file, "utf8")));
    await writeOutputs(results, file);
    return 0;
  }

  requireHostCommands();
  const startedAt = new Date(t0);
  const id = stamp(startedAt);
  const images = testOverrides("dev", MAJOR, "none");
  const results: WithFailover = {
    schema: 1,
    id,
    startedAt: startedAt.toISOString(),
    finishedAt: "",
    totalSeconds: 0,
    environment: collectEnvironment(images["pg-ha:postgresImage"], images["pg-ha:pgbouncerImage"], ROOT),
    settings,
    deploy: { runs: [] },
    grid: { points: [] },
    thousand: { runs: [] },
    memory: [],
    failures: [],
    notes: [],
  };
  const memory = new MemorySampler(1000);
  let finishing: Promise<number> | undefined;
  /**
   * Removes the clusters and writes the results, once. A later call (the run reaching its end
   * after the watchdog or a signal started finishing) waits for the first, so that the process
   * does not exit before the results are written.
   */
  const finish = (reason?: string): Promise<number> => (finishing ??= writeUp(reason));
  const writeUp = async (reason?: string): Promise<number> => {
    memory.stop();
    if (reason) results.failures.push({ phase: "run", error: reason });
    for (const failed of [...measurementFailures(results), ...failoverFailures(results.failover), ...backupFailures(results.backup)]) {
      results.failures.push(failed);
      log(`${failed.phase}: ${failed.error}`);
    }
    log("removing the bench clusters");
    await removeBenchClusters();
    results.memory = summarizeMemory(memory.samples);
    results.finishedAt = new Date().toISOString();
    results.totalSeconds = Math.round(elapsedS());
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `${id}.json`);
    results.derived = { ...summarize(results), targets: evaluateTargets(results) };
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
    await writeOutputs(results, file);
    log(`done in ${results.totalSeconds} s; ${results.failures.length} failure(s)`);
    return results.failures.length === 0 ? 0 : 1;
  };

  // Last resort: the run never outlives its budget, whatever hangs.
  const watchdog = setTimeout(() => {
    void finish(`the time budget of ${settings.budgetS - RESERVE_S} s ran out`).then((code) => process.exit(code || 2));
  }, (settings.budgetS - RESERVE_S) * 1000);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => void finish(`interrupted (${signal})`).then(() => process.exit(130)));
  }

  /** Runs a phase unless the budget cannot hold its estimate; a failure is recorded, not thrown. */
  const phase = async (name: string, estimateS: number, work: () => Promise<void>): Promise<void> => {
    if (!PHASES.has(name.split(":")[0]) || finishing) return;
    if (name === "failover") failoverBegun = true;
    if (name === "backup") backupBegun = true;
    if (elapsedS() + estimateS > deadlineS()) {
      results.failures.push({ phase: name, error: `skipped: ${Math.round(elapsedS())} s elapsed, about ${estimateS} s needed, budget ${settings.budgetS} s` });
      log(`skipping ${name}: not enough time left`);
      return;
    }
    log(`phase ${name}`);
    try {
      await work();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      results.failures.push({ phase: name, error: message.split("\n").slice(0, 6).join(" ") });
      log(`phase ${name} failed: ${message}`);
    } finally {
      memory.stop();
    }
  };

  try {
    log(`run ${id} on ${results.environment.cpuModel} (${results.environment.cores} cores)`);
    await removeBenchClusters();

    // 1. Cold deploys, dev and prod interleaved; the last prod cluster stays for the lag phase.
    const devOverrides = benchOverrides({ "pg-ha:publishDirectPort": String(BENCH.direct), "pg-ha:publishPooledPort": String(BENCH.pooled), "pg-ha:publishReadOnlyPort": String(BENCH.readOnly) });
    const prodOverrides = benchOverrides({ "pg-ha:publishPooledPort": String(BENCH.pooled) });
    let prodCluster: DeployedCluster | undefined;
    const deployments: Record<Stack, string[]> = { dev: [], prod: [] };
    for (let rep = 1; rep <= settings.deployReps; rep++) {
      for (const shape of ["dev", "prod"] as Stack[]) {
        await phase(`deploy:${shape}#${rep}`, shape === "dev" ? 25 : 35, async () => {
          const deployment = `bench-${shape}-${rep}`;
          deployments[shape].push(deployment);
          const { run, cluster } = await coldDeploy(shape, rep, shape === "dev" ? devOverrides : prodOverrides, deployment);
          results.deploy.runs.push(run);
          log(`${shape} #${rep}: healthy after ${(run.healthyMs / 1000).toFixed(1)} s, streaming after ${(run.streamingMs / 1000).toFixed(1)} s`);
          if (shape === "prod" && rep === settings.deployReps && PHASES.has("lag")) prodCluster = cluster;
          else await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${BENCH.name}`] });
        });
      }
    }
    if (deployments.dev.length) settings.clusters["deploy-dev"] = describe("dev", devOverrides, deployments.dev, "cold deploy, dev shape");
    if (deployments.prod.length) settings.clusters["deploy-prod"] = describe("prod", prodOverrides, deployments.prod, "cold deploy, prod shape; the last one also for replication lag");

    // 4. Replication lag under a write load, prod shape.
    await phase("lag", settings.lagDurationS + 40, async () => {
      let c = prodCluster;
      if (!c) {
        c = await deployCluster("prod", MAJOR, prodOverrides, "bench-prod-lag");
        settings.clusters["deploy-prod"] = describe("prod", prodOverrides, ["bench-prod-lag"], "replication lag, prod shape");
      }
      const pooled = c.outputs.hostPooledUrl!;
      const initMs = await prepareData(c, pooled);
      await waitFor("replicas caught up after pgbench -i", async () =>
        (await sqlInContainer(c!.primary, "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0) = 0 FROM pg_stat_replication")) === "t", 60_000, 200);
      const containers = await clusterContainers(BENCH.name);
      const slots = c.replicas.map((_, i) => `replica_${i + 1}`);
      const sampler = startLagSampler(c.primary, Date.now() + (settings.lagDurationS + 10) * 1000, settings.lagIntervalMs);
      const prioritized = await prioritizeSampler(c.primary, SAMPLER_NICE);
      memory.start("replication lag: prod, TPC-B-like 50 clients pooled", containers);
      const loadStart = Date.now();
      const { result: load, cpu } = await withCpu(containers, () =>
        runPgbench({ url: pooled, caFile: c!.caFile, script: "tpcb-like", clients: settings.lagClients, threads: settings.threads, durationS: settings.lagDurationS, connections: "persistent" }), proxyProcesses([BENCH.pooled]));
      const loadEnd = Date.now();
      memory.stop();
      const { rows, stderr } = await sampler.done;
      results.lag = { load, cpu, initMs, lag: summarizeLag(rows, loadStart, loadEnd, slots), samplerError: stderr || undefined, samplerNice: prioritized.length === 2 ? SAMPLER_NICE : undefined };
      const worst = Math.max(...Object.values(results.lag.lag.replicas).map((x) => x.replayBytes?.p99 ?? NaN));
      log(`lag: ${load.steadyTps} tps, ${rows.length} rows sampled, worst replay-bytes p99 ${worst}`);
    });
    await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${BENCH.name}`] });

    // 2 and 3. Direct vs pooled, then 1000 clients, on one dev-shaped cluster sized for them.
    const gridOverrides = benchOverrides({
      "pg-ha:publishDirectPort": String(BENCH.direct), "pg-ha:publishPooledPort": String(BENCH.pooled), "pg-ha:publishReadOnlyPort": "0",
      "pg-ha:maxConnections": "125", "pg-ha:maxClientConn": "1100",
    });
    let gridCluster: DeployedCluster | undefined;
    const ensureGridCluster = async (): Promise<DeployedCluster> => {
      if (!gridCluster) {
        gridCluster = await deployCluster("dev", MAJOR, gridOverrides, "bench-grid");
        settings.clusters.grid = describe("dev", gridOverrides, ["bench-grid"], "direct vs pooled, 1000 pooled clients");
        const c = gridCluster;
        results.environment.postgres.server = (await query<{ v: string }>(c.outputs.hostDirectUrl!, c.outputs.caCertPem, "SELECT version() AS v"))[0].v.replace(/ on .*$/, "");
        results.environment.pgbouncer = { ...results.environment.pgbouncer, ...parsePgbouncerUp(await containerLogs(c.pgbouncer)) };
        results.grid.initMs = await prepareData(c, c.outputs.hostDirectUrl!);
      }
      return gridCluster;
    };
    // 2a. What a connection costs on this machine: the windows below are sized from it, and the
    // report explains the per-transaction ratio with it.
    await phase("connections", 40 + (gridCluster ? 0 : 30), async () => {
      const n = settings.costConnections;
      const timeoutMs = 30_000 + n * 1_000;
      const costs: ConnectionCost[] = [];
      const measured = (cost: ConnectionCost) => {
        costs.push(cost);
        log(`connection cost, ${PATH_TITLES[cost.path]}: ${cost.averageMs === undefined ? `not measured (${cost.error ?? "no figure"})` : `${cost.averageMs.toFixed(1)} ms per connection`} (${n} connections)`);
      };
      const grid = describe("dev", gridOverrides, ["bench-grid"], "");
      await startStockServer(images["pg-ha:postgresImage"], grid.nodeCpus, grid.nodeMemoryMb);
      try {
        const c = await ensureGridCluster();
        const inContainer = (container: string, socket: string[]) => connectionCostCommand(["docker", "exec", "-u", "postgres", container], [...connectionCostArgs(n), ...socket, "postgres"]);
        measured(await measureConnectionCost("stock-socket", n, inContainer(STOCK_SERVER, ["-h", "/tmp"]), {}, timeoutMs));
        await removeStockServer();
        measured(await measureConnectionCost("primary-socket", n, inContainer(c.primary, []), {}, timeoutMs));
        const tls = { PGSSLROOTCERT: c.caFile, PGCONNECT_TIMEOUT: "30", PGAPPNAME: "pgha-bench" };
        measured(await measureConnectionCost("direct-tls", n, connectionCostCommand([], [...connectionCostArgs(n), c.outputs.hostDirectUrl!]), tls, timeoutMs));
        await query(c.outputs.hostPooledUrl!, c.outputs.caCertPem, "SELECT 1");
        measured(await measureConnectionCost("pooled-tls", n, connectionCostCommand([], [...connectionCostArgs(n), c.outputs.hostPooledUrl!]), tls, timeoutMs));
      } finally {
        await removeStockServer();
        results.connectionCost = costs;
      }
      const missing = costs.filter((x) => x.averageMs === undefined);
      if (missing.length > 0) throw new Error(`connection cost not measured: ${missing.map((x) => `${x.path}: ${x.error ?? "no figure"}`).join("; ")}`);
    });

    /** One connection by TARGET on its own, ms, as measured above; an assumption when it was not (see noteAssumedCost). */
    const connectionMs = (target: Target): number =>
      costOf(results.connectionCost, target === "direct" ? "direct-tls" : "pooled-tls") ?? UNMEASURED_CONNECTION_MS;
    /** Says so in the results when a phase sizes its windows from the assumption rather than a measurement. */
    const noteAssumedCost = () => {
      if (costOf(results.connectionCost, "direct-tls") !== undefined && costOf(results.connectionCost, "pooled-tls") !== undefined) return;
      const note = `windows sized for an assumed ${UNMEASURED_CONNECTION_MS} ms per connection: the connection cost was not measured`;
      if (!results.notes!.includes(note)) results.notes!.push(note);
    };
    const gridWindowS = (connections: Connections, script: Script, clients: number, target: Target, observedConnectMs: number[] = []) =>
      runWindowS({ clients, threads: settings.threads, connections, script, connectionMs: connectionMs(target), observedConnectMs, samples: settings.minSteadySamples, minS: settings.gridDurationS, maxS: settings.gridMaxDurationS });
    /** A round of the grid: every point's window plus about 0.6 s of start-up and pool reset each. */
    const gridRoundS = () => (["persistent", "per-transaction"] as Connections[]).flatMap((connections) => (["select-only", "tpcb-like"] as Script[]).flatMap((script) =>
      settings.gridClients.flatMap((clients) => (["direct", "pooled"] as Target[]).map((target) => gridWindowS(connections, script, clients, target) + 0.6)))).reduce((a, b) => a + b, 0);
    const thousandWindowS = () => runWindowS({ clients: settings.thousandClients, threads: settings.threads, connections: "persistent", connectionMs: connectionMs("pooled"), samples: settings.minSteadySamples, minS: settings.thousandDurationS, maxS: settings.thousandMaxDurationS });
    const gridEstimate = 30 + gridRoundS();
    const thousandEstimate = settings.thousandScripts.length * (thousandWindowS() + 5);
    const tuningWindowS = () => runWindowS({ clients: settings.tuningClients, threads: settings.threads, connections: "persistent", connectionMs: connectionMs("direct"), samples: settings.minSteadySamples, minS: settings.tuningDurationS, maxS: settings.tuningMaxDurationS });
    const tuningRoundS = 2 * (4 + 2 * (tuningWindowS() + 0.6));
    await phase("grid", gridEstimate + (PHASES.has("thousand") ? thousandEstimate : 0), async () => {
      noteAssumedCost();
      const c = await ensureGridCluster();
      const containers = await clusterContainers(BENCH.name);
      const proxies = proxyProcesses([BENCH.direct, BENCH.pooled]);
      memory.start("direct vs pooled grid: dev shape", containers);
      // Each round visits every point; within a point direct and pooled run back to back, the
      // order alternating from point to point and reversed in the next round.
      const points = new Map<string, GridPoint>();
      for (let round = 0; round < settings.gridRounds; round++) {
        const later = (PHASES.has("thousand") ? thousandEstimate : 0) + (PHASES.has("tuning") ? tuningRoundS + 25 : 0);
        if (round > 0 && elapsedS() + gridRoundS() + later > deadlineS()) {
          results.notes!.push(`direct vs pooled: ${round} of ${settings.gridRounds} rounds, the rest skipped to stay within the time budget`);
          break;
        }
        let index = 0;
        for (const connections of ["persistent", "per-transaction"] as Connections[]) {
          for (const script of ["select-only", "tpcb-like"] as Script[]) {
            for (const clients of settings.gridClients) {
              const order: Target[] = (index++ + round) % 2 === 0 ? ["direct", "pooled"] : ["pooled", "direct"];
              for (const target of order) {
                if (target === "direct") await resetPool(c);
                const url = target === "direct" ? c.outputs.hostDirectUrl! : c.outputs.hostPooledUrl!;
                const key = `${connections}/${script}/${clients}/${target}`;
                if (!points.has(key)) {
                  const point: GridPoint = { script, connections, clients, target, rounds: [] };
                  points.set(key, point);
                  results.grid.points.push(point);
                }
                const point = points.get(key)!;
                const observed = point.rounds.map((x) => x.run.initialConnectionMs).filter((v): v is number => v !== undefined);
                const durationS = gridWindowS(connections, script, clients, target, observed);
                const options: PgbenchOptions = { url, caFile: c.caFile, script, clients, threads: settings.threads, durationS, connections };
                const { result: run, cpu } = await withCpu(containers, () => runPgbench(options), proxies);
                point.rounds.push({ run, cpu });
                const failure = runFailure(run, settings.minSteadySamples);
                log(`round ${round + 1}: ${pointName(point)} (-T ${durationS}): ${failure ? `FAILED, ${failure}` : `${run.steadyTps} tps`}, ${run.failed ?? "?"} failed, ${run.errorLines} error lines`);
              }
            }
          }
        }
      }
      memory.stop();
    });

    await phase("thousand", thousandEstimate + (gridCluster ? 0 : 30), async () => {
      noteAssumedCost();
      const c = await ensureGridCluster();
      const containers = await clusterContainers(BENCH.name);
      for (const script of settings.thousandScripts) {
        await resetPool(c);
        memory.start(`1000 clients pooled: ${script}`, containers);
        const durationS = thousandWindowS();
        const { result, peak } = await withPoolPeak(c, () =>
          withCpu(containers, () => runPgbench({ url: c.outputs.hostPooledUrl!, caFile: c.caFile, script, clients: settings.thousandClients, threads: settings.threads, durationS, connections: "persistent", timeoutMs: (durationS + 60) * 1000 }), proxyProcesses([BENCH.pooled])));
        memory.stop();
        results.thousand.runs.push({ run: result.result, cpu: result.cpu, pools: peak });
        const failure = runFailure(result.result, settings.minSteadySamples);
        log(`1000 clients ${script} (-T ${durationS}): ${failure ? `FAILED, ${failure}` : `${result.result.steadyTps} tps`}, ${result.result.failed ?? "?"} failed, ${result.result.errorLines} error lines, peak ${peak?.maxClients} clients`);
      }
    });
    await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${BENCH.name}`] });

    // 5 and 6. Tuned vs stock in the same container, and memory under that load.
    await phase("tuning", 25 + tuningRoundS, async () => {
      noteAssumedCost();
      const stockOverrides = {
        "pg-ha:clusterName": STOCK.name, "pg-ha:networkSubnet": STOCK.subnet, "pg-ha:replicas": "0",
        "pg-ha:publishDirectPort": String(STOCK.direct), "pg-ha:publishPooledPort": String(STOCK.pooled), "pg-ha:publishReadOnlyPort": "0",
      };
      const c = await deployCluster("dev", MAJOR, stockOverrides, "bench-stock");
      settings.clusters.stock = describe("dev", stockOverrides, ["bench-stock"], "tuned vs stock postgresql.conf, memory under that load");
      const url = c.outputs.hostDirectUrl!;
      const ca = c.outputs.caCertPem;
      results.environment.postgres.server ??= (await query<{ v: string }>(url, ca, "SELECT version() AS v"))[0].v.replace(/ on .*$/, "");
      if (!results.environment.pgbouncer.version) results.environment.pgbouncer = { ...results.environment.pgbouncer, ...parsePgbouncerUp(await containerLogs(c.pgbouncer)) };
      await prepareData(c, url);
      const dataMb = Number((await query<{ mb: string }>(url, ca, "SELECT pg_database_size('app') / 1048576.0 AS mb"))[0].mb);
      const tunedText = await docker("exec", c.primary, "cat", CONF_PATH);
      const stock = stockConf(tunedText);
      const names = Object.keys(stock.tuned);
      const confs = { tuned: tunedText + "\n", stock: stock.conf };
      results.tuning = { container: c.primary, dataMb, settings: { tuned: {}, stock: {} }, runs: [] };
      const containers = (await clusterContainers(STOCK.name)).filter((x) => x.role === "primary");
      for (let rep = 1; rep <= settings.tuningReps; rep++) {
        if (rep > 1 && elapsedS() + tuningRoundS > deadlineS()) {
          results.notes!.push(`tuned vs stock: ${rep - 1} of ${settings.tuningReps} rounds, the rest skipped to stay within the time budget`);
          break;
        }
        const order: ("tuned" | "stock")[] = rep % 2 === 1 ? ["tuned", "stock"] : ["stock", "tuned"];
        for (const config of order) {
          const restartMs = await applyConf(c.primary, confs[config], url, ca);
          if (Object.keys(results.tuning.settings[config]).length === 0) results.tuning.settings[config] = await currentSettings(url, ca, names);
          memory.start(`${config} postgresql.conf: single node, ${settings.tuningClients} clients direct`, containers);
          for (const script of ["select-only", "tpcb-like"] as Script[]) {
            const run = await runPgbench({ url, caFile: c.caFile, script, clients: settings.tuningClients, threads: settings.threads, durationS: tuningWindowS(), connections: "persistent" });
            results.tuning.runs.push({ config, rep, restartMs, script, run });
            const failure = runFailure(run, settings.minSteadySamples);
            log(`${config} #${rep} ${script}: ${failure ? `FAILED, ${failure}` : `${run.steadyTps} tps`} (restart ${restartMs} ms)`);
          }
          memory.stop();
        }
      }
    });

    // 7. Failover on a Patroni cluster: the leader killed, stopped and switched over under a writer.
    await phase("failover", FAILOVER_BUDGET_S, async () => {
      const phaseEnd = Math.min(t0 + (settings.budgetS - RESERVE_S) * 1000, Date.now() + FAILOVER_BUDGET_S * 1000);
      const c = await deployCluster("dev", MAJOR, FAILOVER_OVERRIDES, "bench-failover");
      settings.clusters.failover = describe("dev", FAILOVER_OVERRIDES, ["bench-failover"], "failover: SIGKILL, clean stop and switchover of the leader under a writer");
      const failover: FailoverResult = {
        cluster: c.spec.clusterName, synchronousMode: FAILOVER_OVERRIDES["pg-ha:synchronousMode"], replicas: c.spec.replicas,
        etcdMembers: Number(FAILOVER_OVERRIDES["pg-ha:etcdMembers"]), budgetS: FAILOVER_BUDGET_S, minEvents: FAILOVER_EVENTS,
        writer: { intervalMs: 0, acknowledged: 0, inDoubt: 0, errors: 0 }, events: [], notes: [],
      };
      results.failover = failover;
      log(`failover: cluster deployed, leader ${c.primary}`);
      // 20 s kept back for the final check of every acknowledged row and removing the cluster.
      await measureFailover({ cluster: c, result: failover, deadlineMs: phaseEnd - 20_000, root: ROOT, log });
      for (const k of summarizeFailover(failover)) {
        const s = (v?: number) => (v === undefined ? "n/a" : (v / 1000).toFixed(1));
        log(`failover ${k.kind}: ${k.measured}/${k.events} measured; ${k.kind === "kill" ? `first write after median ${s(k.recoveryMs.median)} s, max ${s(k.recoveryMs.max)} s; ` : ""}stall median ${s(k.stallMs.median)} s, max ${s(k.stallMs.max)} s; ${k.errors} errors, ${k.lostRows} rows lost`);
      }
    });
    await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${FAILOVER_OVERRIDES["pg-ha:clusterName"]}`] });

    // 8. Backups: throughput, archive lag, expiry, the restore drill and a restored cluster.
    await phase("backup", BACKUP_BUDGET_S, async () => {
      const c = await deployCluster("dev", MAJOR, BACKUP_OVERRIDES, "bench-backup");
      settings.clusters.backup = describe("dev", BACKUP_OVERRIDES, ["bench-backup"], "backups: full and differential throughput, archive lag, expiry, restore drill");
      results.backup = {
        cluster: c.spec.clusterName, restoredCluster: RESTORED_OVERRIDES["pg-ha:clusterName"], scale: BACKUP_SCALE, budgetS: BACKUP_BUDGET_S,
        retentionFull: c.spec.backup.retentionFull, archiveTimeoutS: c.spec.backup.archiveTimeoutSeconds,
        backups: [], archive: { intervalMs: 1000, samples: [] }, repository: {}, notes: [],
      };
      log(`backup: cluster deployed in ${(c.elapsedMs / 1000).toFixed(1)} s, primary ${c.primary}`);
      await measureBackup({
        source: c, result: results.backup, loadDurationS: QUICK ? 10 : 30, loadClients: 10, threads: settings.threads, log,
        deployRestored: async (restore) => {
          const restored = await deployCluster("dev", MAJOR, { ...RESTORED_OVERRIDES, ...restore }, "bench-backup-restored");
          settings.clusters.restored = describe("dev", RESTORED_OVERRIDES, ["bench-backup-restored"], "restored from pgha-bench-bk's repository (pg-ha:restoreFrom, to the end of the archive)");
          return restored;
        },
      });
      const s = summarizeBackup(results.backup);
      log(`backup: full ${s.fullMbPerS?.toFixed(1) ?? "n/a"} MB/s, diff ${s.diffMbPerS?.toFixed(1) ?? "n/a"} MB/s copied, restore ${s.restore?.mbPerS?.toFixed(1) ?? "n/a"} MB/s, queryable after ${s.restore?.queryableS.toFixed(1) ?? "n/a"} s`);
    });
    for (const o of [RESTORED_OVERRIDES, BACKUP_OVERRIDES]) await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${o["pg-ha:clusterName"]}`] });
  } catch (e) {
    results.failures.push({ phase: "run", error: e instanceof Error ? e.message : String(e) });
  } finally {
    clearTimeout(watchdog);
  }
  return finish();
}

function containerLogs(container: string): Promise<string> {
  return new Promise((resolve) => {
    execFile("docker", ["logs", container], { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (_e, out, err) => resolve(`${out}\n${err}`));
  });
}

/** The chart next to the results file, and REPORT.md, both from the results alone. */
async function writeOutputs(results: BenchResults, jsonFile: string): Promise<void> {
  const svgFile = jsonFile.replace(/\.json$/, ".svg");
  fs.writeFileSync(svgFile, await renderChart(results));
  const rel = (p: string) => path.relative(path.dirname(REPORT), p).split(path.sep).join("/");
  fs.writeFileSync(REPORT, renderReport(results, { chart: rel(svgFile), json: rel(jsonFile) }));
  for (const t of evaluateTargets(results)) log(`target ${t.title}: ${t.met === undefined ? "not measured" : t.met ? "met" : "MISSED"} (${t.measured})`);
  log(`wrote ${rel(jsonFile)}, ${rel(svgFile)} and REPORT.md`);
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    void removeBenchClusters().finally(() => process.exit(1));
  },
);
