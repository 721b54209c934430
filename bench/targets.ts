/**
 * The issue's targets, judged against a results file: met or missed, by how much, why, and
 * what would close the gap. The explanations are chosen and filled in from the measured figures.
 */
import { healthcheck } from "../components/container-defaults";
import { SCRAM_ITERATIONS } from "../config-templates/scram";
import { type ConnectionCost, costOf } from "./connections";
import type { BenchResults } from "./results";
import { type GridRow, type PointFigures, runFailure, summarize } from "./summary";
import { PATRONI_TIMING, ROUTER_CHECKS } from "../config-templates/render-ha";
import { failoverOf, type FailoverResult, type KindSummary, summarizeFailover } from "./failover";

export interface TargetVerdict {
  id: string;
  title: string;
  goal: string;
  /** undefined: not measured in this run (or its measurement failed: see `failed`). */
  met?: boolean;
  /** Why the measurement the target is judged on failed (a run with no transaction or too few steady samples). */
  failed?: string;
  measured: string;
  margin: string;
  why: string;
  close: string;
}

/** The containers' health-check interval, as the program sets it. */
const HEALTH_INTERVAL = (healthcheck("probe", 0).interval as string).replace(/^(\d+)s$/, "$1 s");

export const TARGETS = {
  pooledPersistentRatio: 0.6,
  pooledPerTransactionRatio: 3,
  thousandErrors: 0,
  lagP99Bytes: 1024 * 1024,
  devDeployS: 30,
  pointClients: 50,
  samplingIntervalMs: 100,
  failoverKillMedianS: 25,
  failoverKillMaxS: 30,
  failoverStallS: 5,
  switchoverErrors: 0,
  failoverLostRows: 0,
} as const;

export const f = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? "n/a" : n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const pct = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? "n/a" : `${f(n * 100, digits)} %`);
export const scriptName = (s: string) => (s === "select-only" ? "select-only" : "TPC-B-like");
const sum = (...xs: (number | undefined)[]) => xs.reduce<number>((a, b) => a + (b ?? 0), 0);

function notMeasured(id: string, title: string, goal: string, reason: string): TargetVerdict {
  return { id, title, goal, met: undefined, measured: "not measured", margin: "n/a", why: reason, close: "Run `npm run bench` to completion." };
}

/** A target whose measurement failed: no verdict, and the reasons. */
function failedMeasurement(id: string, title: string, goal: string, reasons: string[]): TargetVerdict {
  const failed = reasons.join("; ");
  return {
    id, title, goal, met: undefined, failed, measured: "failed measurement", margin: "n/a",
    why: `The measurement failed, so there is no figure to judge: ${failed}.`,
    close: "A run fails when it completes no transaction or leaves too few 1-s samples after its clients connected. Its window is sized from the connection cost measured in the same run; if the clients were still connecting when it ended, this machine's connections were slower under load than measured alone: rerun with the machine otherwise idle.",
  };
}

function pointsAt(rows: GridRow[], connections: "persistent" | "per-transaction", clients: number): GridRow[] {
  return rows.filter((r) => r.connections === connections && r.clients === clients && r.ratio !== undefined);
}

/** The failures of the points a ratio target is judged on. */
function failuresAt(rows: GridRow[], connections: "persistent" | "per-transaction", clients: number): string[] {
  return rows.filter((r) => r.connections === connections && r.clients === clients).flatMap((r) =>
    (["direct", "pooled"] as const).flatMap((target) => (r[target]?.failure ? [`${scriptName(r.script)} ${target}: ${r[target]!.failure}`] : [])));
}

function cpuSplit(p: PointFigures | undefined): string {
  if (!p) return "n/a";
  const c = p.cores;
  const parts = [`pgbench ${f(c.client, 2)}`, `docker-proxy ${f(c.proxy, 2)}`, `PgBouncer ${f(c.pgbouncer, 2)}`, `primary ${f(c.primary, 2)}`];
  if (c.replicas !== undefined && c.replicas > 0.005) parts.push(`replicas ${f(c.replicas, 2)}`);
  return `${parts.join(", ")} of the host's ${f(c.host, 2)} busy cores`;
}

/** What would make the pooled path cheaper, most effective first, from where the CPU went. */
function closePersistent(pooled: PointFigures, hostBusy: number | undefined): string {
  const steps: string[] = [];
  if ((pooled.cores.pgbouncer ?? 0) >= 0.85) steps.push("run PgBouncer as several processes on one port (so_reuseport = 1, one per core), since one process saturates a core");
  if (hostBusy !== undefined && hostBusy >= 0.85) steps.push("give the client and the pooler cores of their own (here they compete with the servers for 2 cores), e.g. clients on another machine");
  if ((pooled.cpuMsPerTx.proxy ?? 0) >= (pooled.cpuMsPerTx.pgbouncer ?? Infinity)) {
    steps.push(`connect services on the cluster network (pooledUrl) rather than through a published port: Docker's userland proxy cost ${f(pooled.cpuMsPerTx.proxy, 3)} ms per transaction, ${(pooled.cpuMsPerTx.proxy ?? 0) > (pooled.cpuMsPerTx.pgbouncer ?? 0) * 1.05 ? "more than" : "as much as"} PgBouncer's ${f(pooled.cpuMsPerTx.pgbouncer, 3)} ms`);
  }
  steps.push("use prepared statements through the pooler (-M prepared; max_prepared_statements = 200 is set) to cut per-query parsing");
  return `${steps.join("; ")}.`;
}

const capitalize = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

function persistentTarget(r: BenchResults, rows: GridRow[]): TargetVerdict {
  const goal = `pooled / direct throughput ≥ ${TARGETS.pooledPersistentRatio} at ${TARGETS.pointClients} clients, persistent connections`;
  const title = "Pooling overhead, persistent connections";
  const failures = failuresAt(rows, "persistent", TARGETS.pointClients);
  if (failures.length > 0) return failedMeasurement("pooled-persistent", title, goal, failures);
  const at = pointsAt(rows, "persistent", TARGETS.pointClients);
  if (at.length === 0) return notMeasured("pooled-persistent", title, goal, `No direct and pooled pair at ${TARGETS.pointClients} clients in this run.`);
  const worst = at.reduce((a, b) => (b.ratio! < a.ratio! ? b : a));
  const met = at.every((x) => x.ratio! >= TARGETS.pooledPersistentRatio);
  const cores = r.environment.cores;
  const pooled = worst.pooled!;
  const direct = worst.direct!;
  const pooledMs = sum(pooled.cpuMsPerTx.client, pooled.cpuMsPerTx.proxy, pooled.cpuMsPerTx.pgbouncer, pooled.cpuMsPerTx.primary);
  const directMs = sum(direct.cpuMsPerTx.client, direct.cpuMsPerTx.proxy, direct.cpuMsPerTx.primary);
  const overheadMs = pooledMs - directMs;
  const reasons: string[] = [];
  const perTx = (p: PointFigures, withPooler: boolean) =>
    `pgbench ${f(p.cpuMsPerTx.client, 3)}, docker-proxy ${f(p.cpuMsPerTx.proxy, 3)}${withPooler ? `, PgBouncer ${f(p.cpuMsPerTx.pgbouncer, 3)}` : ""}, primary ${f(p.cpuMsPerTx.primary, 3)}`;
  reasons.push(`Pooled, every query and result crosses PgBouncer, which terminates TLS and opens it again towards the server: in the ${scriptName(worst.script)} runs a transaction cost ${f(pooledMs, 3)} ms of CPU pooled (${perTx(pooled, true)}) against ${f(directMs, 3)} ms direct (${perTx(direct, false)}), ${overheadMs >= 0 ? "+" : ""}${f(overheadMs, 3)} ms, and the average latency was ${f(pooled.latencyMs, 2)} ms against ${f(direct.latencyMs, 2)} ms.`);
  const hostBusy = pooled.cores.host !== undefined ? pooled.cores.host / cores : undefined;
  if (hostBusy !== undefined && hostBusy >= 0.85) {
    reasons.push(`The host's ${cores} cores were ${pct(hostBusy)} busy in the pooled run (${cpuSplit(pooled)}): client, pooler and servers share them, so the pooler's extra CPU comes straight out of the throughput.`);
  } else if (hostBusy !== undefined) {
    reasons.push(`The host's cores were ${pct(hostBusy)} busy in the pooled run (${cpuSplit(pooled)}), so the added latency rather than CPU limited it.`);
  }
  if ((pooled.cores.pgbouncer ?? 0) >= 0.85) {
    reasons.push(`PgBouncer is single-threaded and used ${f(pooled.cores.pgbouncer, 2)} of a core: it was the bottleneck.`);
  }
  const limit = r.settings.clusters.grid?.nodeCpus;
  if (limit !== undefined && direct.cores.primary !== undefined && direct.cores.primary >= 0.85 * limit) {
    reasons.push(`Direct, the primary ran at ${pct(direct.cores.primary / limit)} of its ${limit}-CPU limit, so the direct figure is close to what the server can do at all.`);
  }
  const measured = at.map((x) => `${scriptName(x.script)} ${f(x.ratio, 2)} (${f(x.pooled!.tps)} / ${f(x.direct!.tps)} tps)`).join("; ");
  const short = worst.ratio! - TARGETS.pooledPersistentRatio;
  return {
    id: "pooled-persistent",
    title,
    goal,
    met,
    measured,
    margin: met
      ? `met with ${f(short, 2)} to spare (lowest: ${scriptName(worst.script)}, ${f(worst.ratio, 2)})`
      : `missed by ${f(-short, 2)} (${scriptName(worst.script)} reached ${pct(worst.ratio! / TARGETS.pooledPersistentRatio)} of the target)`,
    why: reasons.join(" "),
    close: met ? `Nothing needed. To widen the margin: ${closePersistent(pooled, hostBusy)}` : capitalize(closePersistent(pooled, hostBusy)),
  };
}

/**
 * The per-transaction ratio read against this machine's own connection costs, measured in the
 * same run one connection at a time: how much of a direct connection is starting a backend (which
 * the pooler saves, and which depends on the machine) and which ratio the costs alone allow.
 */
export function connectionCostReading(costs: ConnectionCost[] | undefined, measuredRatio: number): { text: string; allows?: number } {
  const stock = costOf(costs, "stock-socket");
  const primary = costOf(costs, "primary-socket");
  const direct = costOf(costs, "direct-tls");
  const pooled = costOf(costs, "pooled-tls");
  if (direct === undefined || pooled === undefined || pooled <= 0) {
    return { text: "This machine's connection cost was not measured in this run, so its own process-creation cost cannot be told apart from the project's." };
  }
  const allows = direct / pooled;
  const parts = [
    `On this machine, measured in this run one connection at a time, a direct connection with TLS and SCRAM took ${f(direct, 1)} ms and a pooled one ${f(pooled, 1)} ms: connection cost alone puts the ratio at about ${f(allows, 1)}×, and the measured ${f(measuredRatio, 2)}× is ${pct(measuredRatio / allows)} of that.`,
  ];
  if (stock !== undefined) {
    const backend = primary ?? stock;
    const project = primary === undefined ? "" : primary >= stock
      ? `, ${f(primary, 1)} ms on the cluster's primary the same way (its configuration adds ${f(primary - stock, 1)} ms)`
      : `, ${f(primary, 1)} ms on the cluster's primary the same way`;
    parts.push(
      `Of the direct ${f(direct, 1)} ms, starting a backend takes ${f(stock, 1)} ms on a stock PostgreSQL over its Unix socket without TLS (${pct(stock / direct)})${project}; TLS and SCRAM are the other ${f(Math.max(0, direct - backend), 1)} ms.`,
      "A pooled connection starts no backend, so the ratio follows the machine's backend start: lower where processes start quickly, higher where they start slowly, whatever the project does.",
    );
  }
  if (allows < TARGETS.pooledPerTransactionRatio) {
    parts.push(`Even a pooler that cost nothing would stay below ${TARGETS.pooledPerTransactionRatio}× here: this machine's connection costs allow about ${f(allows, 1)}×.`);
  }
  return { text: parts.join(" "), allows };
}

function perTransactionTarget(r: BenchResults, rows: GridRow[]): TargetVerdict {
  const goal = `pooled ≥ ${TARGETS.pooledPerTransactionRatio}× direct at ${TARGETS.pointClients} clients, a new connection per transaction (pgbench -C)`;
  const title = "New connection per transaction";
  const failures = failuresAt(rows, "per-transaction", TARGETS.pointClients);
  if (failures.length > 0) return failedMeasurement("pooled-per-transaction", title, goal, failures);
  const at = pointsAt(rows, "per-transaction", TARGETS.pointClients);
  if (at.length === 0) return notMeasured("pooled-per-transaction", title, goal, `No -C pair at ${TARGETS.pointClients} clients in this run.`);
  const worst = at.reduce((a, b) => (b.ratio! < a.ratio! ? b : a));
  const met = at.every((x) => x.ratio! >= TARGETS.pooledPerTransactionRatio);
  const p = worst.pooled!;
  const d = worst.direct!;
  const cores = r.environment.cores;
  const directMs = sum(d.cpuMsPerTx.client, d.cpuMsPerTx.proxy, d.cpuMsPerTx.primary);
  const pooledMs = sum(p.cpuMsPerTx.client, p.cpuMsPerTx.proxy, p.cpuMsPerTx.pgbouncer, p.cpuMsPerTx.primary);
  const bound = pooledMs > 0 ? directMs / pooledMs : undefined;
  const clientShare = p.cpuMsPerTx.client !== undefined && pooledMs > 0 ? p.cpuMsPerTx.client / pooledMs : undefined;
  const why = [
    `Every transaction pays for a TCP connection, a TLS 1.3 handshake with verify-full and a SCRAM-SHA-256 exchange (${SCRAM_ITERATIONS} PBKDF2 iterations on the client).`,
    `Direct, the primary also forks and starts a backend for it: ${f(d.cpuMsPerTx.primary, 2)} ms of the primary's CPU per transaction against ${f(p.cpuMsPerTx.primary, 2)} ms pooled, which is what the pooler saves.`,
    `What it cannot save is the client's side: pgbench spent ${f(d.cpuMsPerTx.client, 2)} ms of CPU per transaction direct and ${f(p.cpuMsPerTx.client, 2)} ms pooled, and PgBouncer ${f(p.cpuMsPerTx.pgbouncer, 2)} ms (its side of TLS and SCRAM).`,
    `With client, pooler and servers on the same ${cores} cores (pooled run: ${cpuSplit(p)}), CPU per transaction bounds the ratio: ${f(directMs, 2)} ms direct against ${f(pooledMs, 2)} ms pooled allows at most about ${f(bound, 1)}×${clientShare !== undefined ? `; the client alone is ${pct(clientShare)} of the pooled cost` : ""}.`,
  ];
  if (d.cores.primary !== undefined && r.settings.clusters.grid && d.cores.primary >= 0.9 * r.settings.clusters.grid.nodeCpus) {
    why.push(`Direct, the primary ran at its ${r.settings.clusters.grid.nodeCpus}-CPU limit (${f(d.cores.primary, 2)} cores), so the direct figure is the server's connection rate.`);
  }
  const reading = connectionCostReading(r.connectionCost, worst.ratio!);
  why.push(reading.text);
  const allows = reading.allows === undefined ? "" : `; this machine's connection costs allow about ${f(reading.allows, 1)}×`;
  const measured = at.map((x) => `${scriptName(x.script)} ${f(x.ratio, 2)}× (${f(x.pooled!.tps)} / ${f(x.direct!.tps)} tps)`).join("; ");
  return {
    id: "pooled-per-transaction",
    title,
    goal,
    met,
    measured,
    margin: met
      ? `met (lowest: ${scriptName(worst.script)}, ${f(worst.ratio, 2)}×, ${f(worst.ratio! - TARGETS.pooledPerTransactionRatio, 2)}× above${allows})`
      : `missed by ${f(TARGETS.pooledPerTransactionRatio - worst.ratio!, 2)}× (${scriptName(worst.script)} reached ${f(worst.ratio, 2)}×, ${pct(worst.ratio! / TARGETS.pooledPerTransactionRatio)} of the target${allows})`,
    why: why.join(" "),
    close: met
      ? (reading.allows !== undefined ? "Nothing needed. The figure rests on this machine's backend start (see the connection cost in section 2); on a machine that starts processes faster, expect a lower ratio." : "Nothing needed.")
      : "The 3× appears where the server's per-connection cost dominates, i.e. when the clients do not share the server's cores: run the clients on another machine (or pin pgbench, PgBouncer and PostgreSQL to separate cores) and the pooled rate is bounded by PgBouncer's handshake cost instead of the client's. Within one machine, only a cheaper handshake helps: fewer SCRAM iterations (scram_iterations, a security trade-off) or TLS session resumption (not offered by libpq). The real fix is on the application side: keep connections open (any client-side pool) so that no transaction pays a handshake.",
  };
}

function thousandTarget(r: BenchResults): TargetVerdict {
  const goal = "1000 clients through PgBouncer: zero errors";
  const title = "1000 pooled clients";
  const runs = summarize(r).thousand;
  if (runs.length === 0) return notMeasured("thousand", title, goal, "The 1000-client phase did not run.");
  const failures = runs.filter((x) => x.failure).map((x) => `${scriptName(x.script)}: ${x.failure}`);
  if (failures.length > 0) return failedMeasurement("thousand", title, goal, failures);
  const errors = runs.reduce((a, x) => a + x.errors, 0);
  const met = errors === 0 && runs.every((x) => x.exitCode === 0);
  const measured = runs.map((x) => `${scriptName(x.script)}: ${f(x.tps)} tps, ${f(x.errors)} errors${x.pools ? `, ${f(x.pools.maxClients)} clients connected at peak` : ""}`).join("; ");
  const messages = runs.flatMap((x) => x.errorMessages.map((e) => `${e.count}× "${e.message}"`));
  const peak = Math.max(...runs.map((x) => x.pools?.maxClients ?? 0));
  const servers = Math.max(...runs.map((x) => x.pools?.maxServers ?? 0));
  const latency = Math.max(...runs.map((x) => x.latencyMs ?? 0));
  const why = met
    ? `Every client connected (TLS and SCRAM each; initial connection ${runs.map((x) => `${f((x.initialConnectionMs ?? 0) / 1000, 1)} s`).join(" and ")}) and was served${peak ? `: ${f(peak)} clients at peak shared at most ${f(servers)} server connections` : ""}. max_client_conn = ${r.settings.clusters.grid?.pool.maxClientConn ?? "n/a"} leaves room for them, and a queued transaction fails only after query_wait_timeout (30 s): the highest average latency was ${f(latency / 1000, 2)} s (${pct(latency / 30_000)} of it).`
    : `Errors: ${messages.join("; ") || "pgbench exited with an error"}.`;
  let close = "Nothing needed.";
  if (!met) {
    const text = messages.join(" ");
    close = /no more connections|max_client_conn/i.test(text)
      ? "Raise pg-ha:maxClientConn above the client count (it was " + (r.settings.clusters.grid?.pool.maxClientConn ?? "n/a") + ")."
      : /query_wait_timeout|timeout/i.test(text)
        ? "Clients waited longer than query_wait_timeout for a server connection: raise defaultPoolSize / maxDbConnections within max_connections, or query_wait_timeout."
        : /open files|too many/i.test(text)
          ? "Raise the open-file limit of pgbench and PgBouncer (ulimit -n, the container's nofile ulimit)."
          : "Read the messages above; PgBouncer's log (docker logs <cluster>-pgbouncer) names the cause.";
  }
  return { id: "thousand", title, goal, met, measured, margin: met ? "met: 0 errors" : `missed by ${f(errors)} error(s)`, why, close };
}

function lagTarget(r: BenchResults): TargetVerdict {
  const goal = "replica replay lag p99 < 1 MB during the TPC-B-like write load";
  const title = "Replication lag";
  if (!r.lag) return notMeasured("lag", title, goal, "The replication-lag phase did not run.");
  const loadFailure = runFailure(r.lag.load, r.settings.minSteadySamples);
  if (loadFailure !== undefined) return failedMeasurement("lag", title, goal, [`the TPC-B-like load ${loadFailure}`]);
  const { lag, load } = r.lag;
  const replicas = Object.entries(lag.replicas);
  if (replicas.length === 0 || replicas.some(([, x]) => !x.replayBytes)) return notMeasured("lag", title, goal, `No lag samples${r.lag.samplerError ? `: ${r.lag.samplerError}` : ""}.`);
  const worst = replicas.reduce((a, b) => (b[1].replayBytes!.p99 > a[1].replayBytes!.p99 ? b : a));
  const p99 = worst[1].replayBytes!.p99;
  const met = replicas.every(([, x]) => x.replayBytes!.p99 < TARGETS.lagP99Bytes);
  const kb = (b: number) => `${f(b / 1024, 1)} kB`;
  const measured = replicas.map(([name, x]) => `${name}: p99 ${kb(x.replayBytes!.p99)}, max ${kb(x.replayBytes!.max)}; ${f(x.replayLagMs?.p99, 1)} ms p99`).join("; ");
  const interval = lag.intervalMs;
  const sampling = interval
    ? ` Sampling: ${f(lag.ticks)} samples, interval median ${f(interval.p50)} ms, p99 ${f(interval.p99)} ms, max ${f(interval.max)} ms${interval.p99 > TARGETS.samplingIntervalMs ? ` (above ${TARGETS.samplingIntervalMs} ms at p99: the sampling session shares the loaded cores)` : ""}.`
    : "";
  const cpu = r.lag.cpu;
  const replicaCores = cpu ? Object.entries(cpu.containers).filter(([n]) => /-replica-\d+$/.test(n)).map(([n, c]) => `${n} ${f(c, 2)}`).join(", ") : "";
  const why = met
    ? `The load (${f(load.steadyTps ?? load.tps)} tps) wrote ${f((lag.walBytesPerS ?? 0) / 1024 / 1024, 2)} MB of WAL per second; each replica received and replayed it within ${f(Math.max(...replicas.map(([, x]) => x.replayLagMs?.p99 ?? 0)), 1)} ms at p99, so the bytes in flight stayed at ${kb(p99)} at p99 (${pct(p99 / TARGETS.lagP99Bytes)} of the target)${replicaCores ? `; replay used ${replicaCores} cores` : ""}.${sampling}`
    : `At ${f((lag.walBytesPerS ?? 0) / 1024 / 1024, 2)} MB of WAL per second, ${worst[0]} fell ${kb(p99)} behind at p99 (${f(worst[1].replayLagMs?.p99, 1)} ms)${replicaCores ? `; replay used ${replicaCores} cores` : ""}: replay is a single process per replica and competes for the same cores as the load.${sampling}`;
  return {
    id: "lag",
    title,
    goal,
    met,
    measured,
    margin: met ? `met: worst p99 ${kb(p99)}, ${kb(TARGETS.lagP99Bytes - p99)} below 1 MB` : `missed by ${kb(p99 - TARGETS.lagP99Bytes)} (${worst[0]})`,
    why,
    close: met
      ? "Nothing needed."
      : "Give the replicas CPU of their own (replay is single-threaded), faster storage for their WAL, or bound the lag by design with pg-ha:synchronousMode = quorum (commits wait for one replica).",
  };
}

function deployTarget(r: BenchResults): TargetVerdict {
  const goal = `dev stack cold deploy < ${TARGETS.devDeployS} s (median, empty engine to every container healthy and every replica streaming)`;
  const title = "Cold deploy, dev stack";
  const dev = summarize(r).deploy.find((d) => d.shape === "dev");
  if (!dev || dev.streamingMedianMs === undefined) return notMeasured("deploy-dev", title, goal, "No dev deploy completed.");
  const s = dev.streamingMedianMs / 1000;
  const met = s < TARGETS.devDeployS;
  const ready = dev.readyMedianMs;
  const why = `Median of ${dev.runs}: the primary served after ${f((ready.primary ?? NaN) / 1000, 1)} s (initdb with checksums, reconcile on a socket-only server, restart), the replica streamed after ${f((ready.replica ?? NaN) / 1000, 1)} s (created once the primary was healthy, then pg_basebackup through its slot), PgBouncer was up after ${f((ready.pgbouncer ?? NaN) / 1000, 1)} s; waiting for health checks between these tiers (Docker probes every ${HEALTH_INTERVAL}, the executor polls each second) took ${f((dev.healthWaitMedianMs ?? NaN) / 1000, 1)} s of it.`;
  return {
    id: "deploy-dev",
    title,
    goal,
    met,
    measured: `${f(s, 1)} s (min ${f((dev.streamingMinMs ?? NaN) / 1000, 1)}, max ${f((dev.streamingMaxMs ?? NaN) / 1000, 1)})`,
    margin: met ? `met with ${f(TARGETS.devDeployS - s, 1)} s to spare (${pct(s / TARGETS.devDeployS)} of the budget)` : `missed by ${f(s - TARGETS.devDeployS, 1)} s`,
    why,
    close: met
      ? `Nothing needed. The health-check wait (${f((dev.healthWaitMedianMs ?? NaN) / 1000, 1)} s) is the largest avoidable part: a 1 s interval or Docker's start_interval (engine 25+) would cut it.`
      : "Shorten the health-check interval during start-up (Docker's start_interval on engine 25+), and create PgBouncer alongside the replicas rather than after them (it needs only the primary).",
  };
}

// ---------------------------------------------------------------------------------------------
// Failover

/** Published failover times, unplanned, until the database takes writes again: what ours is read against. */
export const FAILOVER_ANCHORS: { system: string; figure: string }[] = [
  { system: "Amazon RDS Multi-AZ (one standby instance)", figure: "60–120 s" },
  { system: "Amazon RDS Multi-AZ DB cluster (two readable standbys)", figure: "under 35 s" },
  { system: "Amazon Aurora", figure: "under 30 s" },
  { system: "CloudNativePG, as its users measured it", figure: "40–80 s" },
  { system: "Patroni at its defaults (ttl 30 s, loop_wait 10 s)", figure: "about 30–45 s" },
];

const sec = (ms: number | undefined, digits = 1) => (ms === undefined ? "n/a" : `${f(ms / 1000, digits)} s`);
const each = (k: KindSummary, values: number[]) => values.map((v) => f(v / 1000, 1)).join(", ");

/** A failover kind with too few events measured: no verdict, and which events failed. */
function failedFailover(id: string, title: string, goal: string, k: KindSummary): TargetVerdict {
  return {
    id, title, goal, met: undefined, failed: k.failure, measured: "failed measurement", margin: "n/a",
    why: `The measurement failed, so there is no figure to judge: ${k.failure}.`,
    close: `Each kind needs its events measured in full (fault, first acknowledged write, the old leader streaming again). Rerun the failover phase alone (\`BENCH_PHASES=failover npm run bench\`) with the machine otherwise idle; a failed event names the wait that ran out.`,
  };
}

function kindOf(fo: FailoverResult, kind: KindSummary["kind"]): KindSummary {
  return summarizeFailover(fo).find((k) => k.kind === kind)!;
}

function killTarget(r: BenchResults): TargetVerdict {
  const { failoverKillMedianS: medianS, failoverKillMaxS: maxS } = TARGETS;
  const goal = `SIGKILL of the leader to the first acknowledged write through PgBouncer: median ≤ ${medianS} s, max ≤ ${maxS} s (published: ${FAILOVER_ANCHORS.map((a) => `${a.system.replace(/ \(.*\)$/, "")} ${a.figure}`).join("; ")})`;
  const title = "Unplanned failover (leader killed)";
  const fo = failoverOf(r);
  if (!fo) return notMeasured("failover-kill", title, goal, "The failover phase did not run.");
  const k = kindOf(fo, "kill");
  if (k.failure !== undefined) return failedFailover("failover-kill", title, goal, k);
  const med = k.recoveryMs.median! / 1000;
  const max = k.recoveryMs.max! / 1000;
  const met = med <= medianS && max <= maxS;
  const { ttl, loopWait } = PATRONI_TIMING;
  const why = [
    `A killed leader cannot release its lock: the others wait until it expires, ${ttl} s (ttl) after its last renewal, which happens every ${loopWait} s (loop_wait), so ${ttl - loopWait} to ${ttl} s after the kill.`,
    `Then a member of the quorum takes the lock and promotes itself, HAProxy's check of each member's REST API (every ${ROUTER_CHECKS.inter}, ${ROUTER_CHECKS.fastInter} after a change) routes the read-write port to it, and PgBouncer's next login attempt (server_login_retry 1 s) reaches it; the writer's next try after its error (200 ms later) is then acknowledged.`,
    `Measured over ${k.measured} kills: ${each(k, k.recoveryMs.values)} s; the median is ${f(med - ttl, 1)} s ${med >= ttl ? "beyond" : "short of"} the lock's ttl, the time promotion, routing and the pooler took on top of the expiry.`,
    `Read against published figures for unplanned failover: ${FAILOVER_ANCHORS.map((a) => `${a.system} ${a.figure}`).join("; ")}. Those are the services' own figures or users' measurements on other machines and loads, not measured here.`,
  ];
  const close = met
    ? `Nothing needed. The lock's ttl is the floor and already the lowest Patroni accepts (${ttl} s); what is left above it is promotion and routing.`
    : max > ttl + 5
      ? `The lock's expiry explains ${ttl} s of it; the rest went to promotion and routing. Check in the run's log which events were slow: a member that had to catch up before promoting (maximum_lag_on_failover) or a loaded machine delaying Patroni's loop. Giving the nodes and the router CPU of their own (here they share ${r.environment.cores} cores) shortens it.`
      : `The figure is close to the lock's ttl (${ttl} s), the lowest Patroni accepts: a shorter unplanned failover would need a watchdog or a fencing agent that releases the lock of a dead leader sooner, which Patroni does not offer.`;
  return {
    id: "failover-kill", title, goal, met,
    measured: `median ${f(med, 1)} s, max ${f(max, 1)} s over ${k.measured} kills (each: ${each(k, k.recoveryMs.values)} s)`,
    margin: met
      ? `met: median ${f(medianS - med, 1)} s and max ${f(maxS - max, 1)} s under`
      : [med > medianS ? `median missed by ${f(med - medianS, 1)} s` : "", max > maxS ? `max missed by ${f(max - maxS, 1)} s` : ""].filter(Boolean).join("; "),
    why: why.join(" "),
    close,
  };
}

function stallTarget(r: BenchResults, kind: "stop" | "switchover"): TargetVerdict {
  const id = `failover-${kind}`;
  const title = kind === "stop" ? "Leader stopped cleanly" : "Planned switchover";
  const goal = kind === "stop"
    ? `longest write stall ≤ ${TARGETS.failoverStallS} s at every clean stop of the leader (docker stop)`
    : `longest write stall ≤ ${TARGETS.failoverStallS} s and ${TARGETS.switchoverErrors} client errors at every planned switchover`;
  const fo = failoverOf(r);
  if (!fo) return notMeasured(id, title, goal, "The failover phase did not run.");
  const k = kindOf(fo, kind);
  if (k.failure !== undefined) return failedFailover(id, title, goal, k);
  const max = k.stallMs.max! / 1000;
  const stallMet = max <= TARGETS.failoverStallS;
  const met = kind === "stop" ? stallMet : stallMet && k.errors <= TARGETS.switchoverErrors;
  const events = fo.events.filter((e) => e.kind === kind && e.failure === undefined);
  const messages = [...new Set(events.flatMap((e) => e.errorMessages.map((m) => m.message)))];
  const why: string[] = [];
  if (kind === "stop") {
    why.push(`On SIGTERM Patroni stops PostgreSQL (a fast shutdown, which ends the running transaction: the writer gets an error and reconnects) and deletes its lock at once, so a quorum standby takes it on its next loop without waiting for the ttl; HAProxy's check (every ${ROUTER_CHECKS.inter}) follows the new primary and PgBouncer logs in to it.`);
  } else {
    why.push(fo.switchoverMethod === "ops"
      ? "Driven by `npm run ops -- switchover`: PgBouncer holds the applications' transactions (PAUSE) while Patroni hands the lock over and the router follows, then lets them go (RESUME) to the new primary; clients wait instead of failing."
      : "PgBouncer holds the writer's transactions (PAUSE on its admin console) while `patronictl switchover` hands the lock over and the router's read-write port follows, then lets them go (RECONNECT, RESUME) to the new primary; the client waits instead of failing.");
  }
  why.push(`Stalls: ${each(k, k.stallMs.values)} s (median ${sec(k.stallMs.median)}, max ${sec(k.stallMs.max)}); ${k.errors} client error(s)${messages.length ? `: ${messages.map((m) => `"${m}"`).join(", ")}` : ""}.`);
  const close = met
    ? "Nothing needed."
    : !stallMet
      ? kind === "stop"
        ? `The stall runs from the last write before the stop to the first on the new primary: shutdown, the lock's hand-over (Patroni's loop every ${PATRONI_TIMING.loopWait} s), promotion and the router's check. A planned move should use the switchover (which holds the clients in PgBouncer) rather than stopping the leader.`
        : "The stall is PAUSE, the hand-over and the router following: see the event details in the results for which part took long; a loaded machine slows Patroni's promotion and HAProxy's checks."
      : "Client errors during a switchover mean a transaction reached a server that was going away: PAUSE must hold every database of the leader, and RESUME come only after the router reaches the new primary.";
  return {
    id, title, goal, met,
    measured: `stall median ${sec(k.stallMs.median)}, max ${sec(k.stallMs.max)} over ${k.measured} ${kind === "stop" ? "stops" : "switchovers"}; ${k.errors} client error(s)`,
    margin: met
      ? `met: max ${f(TARGETS.failoverStallS - max, 1)} s under${kind === "switchover" ? ", 0 errors" : ""}`
      : [!stallMet ? `stall missed by ${f(max - TARGETS.failoverStallS, 1)} s` : "", kind === "switchover" && k.errors > 0 ? `${k.errors} client error(s)` : ""].filter(Boolean).join("; "),
    why: why.join(" "),
    close,
  };
}

function lostRowsTarget(r: BenchResults): TargetVerdict {
  const goal = `${TARGETS.failoverLostRows} acknowledged rows lost over every failover event (synchronous_mode quorum)`;
  const title = "Acknowledged writes kept through failover";
  const fo = failoverOf(r);
  if (!fo) return notMeasured("failover-lost", title, goal, "The failover phase did not run.");
  const checked = fo.events.filter((e) => e.lostRows !== undefined);
  if (checked.length === 0) return notMeasured("failover-lost", title, goal, "No failover event got as far as checking the acknowledged rows.");
  const lost = checked.reduce((a, e) => a + e.lostRows!, 0) + (fo.finalCheck?.lost ?? 0);
  const met = lost <= TARGETS.failoverLostRows;
  const kills = checked.filter((e) => e.kind === "kill").length;
  const worst = checked.reduce((a, e) => (e.lostRows! > a.lostRows! ? e : a));
  return {
    id: "failover-lost", title, goal, met,
    measured: `${f(lost)} lost: every acknowledged row looked up on the new primary after each of ${checked.length} events (${kills} kills), up to ${f(Math.max(...checked.map((e) => e.checkedRows ?? 0)))} rows${fo.finalCheck ? `, and all ${f(fo.finalCheck.checked)} on ${fo.finalCheck.primary} at the end` : ""}`,
    margin: met ? "met: 0 lost" : `missed by ${f(lost)} row(s) (most at ${worst.kind} #${worst.n}: ${f(worst.lostRows)})`,
    why: met
      ? `With synchronous_mode quorum and ${fo.replicas} replicas, a commit is acknowledged only once ${fo.replicas > 1 ? "one of the replicas has" : "the replica has"} it, and Patroni promotes only a member of the quorum, so the new primary holds every acknowledged commit even when the old one is killed.`
      : `Rows acknowledged to the client were missing on the new primary: a member outside the quorum was promoted, or the commit was acknowledged before a standby confirmed it. The events' figures in the results say which.`,
    close: met ? "Nothing needed." : "Check that synchronous_mode is quorum in Patroni's dynamic configuration (`patronictl show-config`) and that synchronous_standby_names on the primary names the standbys.",
  };
}

export function evaluateTargets(r: BenchResults): TargetVerdict[] {
  const rows = summarize(r).grid;
  return [persistentTarget(r, rows), perTransactionTarget(r, rows), thousandTarget(r), lagTarget(r), deployTarget(r),
    killTarget(r), stallTarget(r, "stop"), stallTarget(r, "switchover"), lostRowsTarget(r)];
}
