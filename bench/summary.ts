/** Figures derived from a results file: medians, ratios, per-transaction costs. Pure functions. */
import type { DeployRun } from "./deploytime";
import { type Connections, type PgbenchResult, type Script, steadySamples } from "./pgbench";
import type { BenchResults, GridPoint, Target, TuningRun } from "./results";
import { median, ratio } from "./stats";
import type { CpuUse } from "./usage";

/** The throughput figure every table uses: the median of the 1-s samples after all clients connected. */
export function headlineTps(run: PgbenchResult | undefined): number | undefined {
  if (!run) return undefined;
  return run.steadyTps ?? run.tps;
}

/**
 * Errors of a run: failed transactions plus error lines on stderr (an aborted client, a refused
 * connection); a non-zero exit or a timeout without any such line counts as one.
 */
export function errorCount(run: PgbenchResult): number {
  const unexplained = (run.exitCode !== 0 || run.timedOut) && run.errorLines === 0 ? 1 : 0;
  return (run.failed ?? 0) + run.errorLines + unexplained;
}

/**
 * Why RUN is not a measurement, or undefined when it is one. A run fails when it completed no
 * transaction, or left fewer steady 1-s samples (after all its clients connected) than
 * MIN_SAMPLES: its figure would be the connection phase's, or nothing at all.
 */
export function runFailure(run: PgbenchResult, minSamples: number): string | undefined {
  const connect = run.initialConnectionMs !== undefined ? `, its clients took ${(run.initialConnectionMs / 1000).toFixed(1)} s to connect` : "";
  if (!run.transactions) {
    const what = run.transactions === undefined ? "printed no result" : "completed no transaction";
    const exit = run.timedOut ? ", stopped at its time bound" : run.exitCode !== 0 ? `, exit code ${run.exitCode}` : "";
    const first = run.errors?.[0] ? `; ${run.errors[0].message}` : "";
    return `${what} in its ${run.durationS} s window${connect}${exit}${first}`;
  }
  const steady = steadySamples(run.progress, run.initialConnectionMs).length;
  if (steady < minSamples) return `${steady} steady 1-s sample(s) in its ${run.durationS} s window${connect}; ${minSamples} needed`;
  return undefined;
}

export interface PointFigures {
  /** Set when a round of the point failed (see runFailure): the point has no figure then. */
  failure?: string;
  tps?: number;
  pgbenchTps?: number;
  latencyMs?: number;
  connectionMs?: number;
  errors: number;
  transactions?: number;
  /** 1-s samples the throughput is the median of. */
  samples: number;
  /** pgbench's own CPU per transaction, ms. */
  clientCpuMsPerTx?: number;
  /** Cores used during the run by role (primary, replicas summed, pgbouncer), the host, and pgbench. */
  cores: { primary?: number; replicas?: number; pgbouncer?: number; proxy?: number; host?: number; client?: number };
  /** CPU ms per transaction by role. */
  cpuMsPerTx: { primary?: number; pgbouncer?: number; proxy?: number; client?: number };
}

function roleCores(cpu: CpuUse | undefined, role: "primary" | "replica" | "pgbouncer"): number | undefined {
  if (!cpu) return undefined;
  const entries = Object.entries(cpu.containers).filter(([name]) => (role === "replica" ? /-replica-\d+$/.test(name) : name.endsWith(`-${role}`)));
  return entries.length === 0 ? undefined : entries.reduce((a, [, v]) => a + v, 0);
}

/** One measured run and the CPU used meanwhile. */
export interface Measured {
  run: PgbenchResult;
  cpu?: CpuUse;
}

/**
 * Figures of a point measured in one or more rounds: throughput is the median of all rounds'
 * steady 1-s samples; CPU is summed over the rounds and divided by their time or transactions.
 * A point with a failed round (see runFailure) has no throughput or latency: it is reported as
 * failed, and only its sound rounds' samples and CPU are kept.
 */
export function pointFigures(all: Measured[], minSamples: number): PointFigures {
  const failures = all.flatMap((r, i) => {
    const reason = runFailure(r.run, minSamples);
    return reason === undefined ? [] : [all.length > 1 ? `round ${i + 1}: ${reason}` : reason];
  });
  const rounds = all.filter((r) => runFailure(r.run, minSamples) === undefined);
  const samples = rounds.flatMap(({ run }) => steadySamples(run.progress, run.initialConnectionMs).map((p) => p.tps));
  const seconds = rounds.reduce((a, r) => a + (r.cpu?.seconds ?? 0), 0);
  const transactions = rounds.every((r) => r.run.transactions !== undefined) ? rounds.reduce((a, r) => a + r.run.transactions!, 0) : undefined;
  const withCpu = rounds.filter((r) => r.cpu);
  /** Cores averaged over the rounds' time, from a per-round extractor. */
  const cores = (of: (cpu: CpuUse) => number | undefined): number | undefined => {
    if (withCpu.length === 0 || seconds === 0) return undefined;
    const values = withCpu.map((r) => of(r.cpu!));
    if (values.some((v) => v === undefined)) return undefined;
    return withCpu.reduce((a, r, i) => a + values[i]! * r.cpu!.seconds, 0) / seconds;
  };
  const clientS = rounds.every((r) => r.run.clientCpuS) ? rounds.reduce((a, r) => a + r.run.clientCpuS!.user + r.run.clientCpuS!.system, 0) : undefined;
  const c = {
    primary: cores((cpu) => roleCores(cpu, "primary")),
    replicas: cores((cpu) => roleCores(cpu, "replica")),
    pgbouncer: cores((cpu) => roleCores(cpu, "pgbouncer")),
    proxy: cores((cpu) => proxyCores(cpu)),
    host: cores((cpu) => cpu.host),
    client: clientS !== undefined && seconds > 0 ? clientS / seconds : undefined,
  };
  const perTx = (v: number | undefined) => (v !== undefined && transactions ? ((v * seconds) / transactions) * 1000 : undefined);
  const failed = failures.length > 0;
  const med = (of: (run: PgbenchResult) => number | undefined) => (failed ? undefined : median(rounds.map((r) => of(r.run)).filter((v): v is number => v !== undefined)));
  return {
    failure: failed ? failures.join("; ") : undefined,
    tps: failed ? undefined : median(samples),
    pgbenchTps: med((run) => run.tps),
    latencyMs: med((run) => run.latencyAvgMs),
    connectionMs: med((run) => run.averageConnectionMs),
    errors: all.reduce((a, r) => a + errorCount(r.run), 0),
    transactions,
    samples: samples.length,
    clientCpuMsPerTx: clientS !== undefined && transactions ? (clientS / transactions) * 1000 : undefined,
    cores: c,
    cpuMsPerTx: { primary: perTx(c.primary), pgbouncer: perTx(c.pgbouncer), proxy: perTx(c.proxy), client: perTx(c.client) },
  };
}

function proxyCores(cpu: CpuUse): number | undefined {
  const proxies = Object.entries(cpu.processes ?? {}).filter(([label]) => label.startsWith("docker-proxy"));
  return proxies.length ? proxies.reduce((a, [, v]) => a + v, 0) : undefined;
}

export interface GridRow {
  script: Script;
  connections: Connections;
  clients: number;
  direct?: PointFigures;
  pooled?: PointFigures;
  /** pooled tps / direct tps. */
  ratio?: number;
}

export const SCRIPTS: Script[] = ["select-only", "tpcb-like"];
export const CONNECTIONS: Connections[] = ["persistent", "per-transaction"];

/** One row per script, connection mode and client count, direct and pooled side by side. */
export function gridRows(points: GridPoint[], minSamples: number): GridRow[] {
  const rows: GridRow[] = [];
  const clients = [...new Set(points.map((p) => p.clients))].sort((a, b) => a - b);
  for (const connections of CONNECTIONS) {
    for (const script of SCRIPTS) {
      for (const c of clients) {
        const find = (target: Target) => points.find((p) => p.script === script && p.connections === connections && p.clients === c && p.target === target);
        const d = find("direct");
        const p = find("pooled");
        if (!d && !p) continue;
        const direct = d && pointFigures(d.rounds, minSamples);
        const pooled = p && pointFigures(p.rounds, minSamples);
        rows.push({ script, connections, clients: c, direct, pooled, ratio: ratio(pooled?.tps, direct?.tps) });
      }
    }
  }
  return rows;
}

export interface DeployShapeSummary {
  shape: string;
  runs: number;
  healthyMedianMs?: number;
  streamingMedianMs?: number;
  streamingMinMs?: number;
  streamingMaxMs?: number;
  /** Median over runs of each role's ready time, ms after the deploy started (replicas: the last one). */
  readyMedianMs: Record<string, number | undefined>;
  createdMedianMs: Record<string, number | undefined>;
  /** Median time between a tier being ready and the next tier being created: health-check polling. */
  healthWaitMedianMs?: number;
}

export function deploySummary(runs: DeployRun[]): DeployShapeSummary[] {
  const shapes = [...new Set(runs.map((r) => r.shape))];
  return shapes.map((shape) => {
    const mine = runs.filter((r) => r.shape === shape);
    const roleTimes = (role: string, key: "readyMs" | "createdMs") =>
      median(mine.flatMap((r) => {
        const values = r.timeline.filter((e) => e.role === role).map((e) => e[key]).filter((v): v is number => v !== undefined);
        return values.length ? [Math.max(...values)] : [];
      }));
    const waits = mine.flatMap((r) => {
      const ready = (role: string) => Math.max(...r.timeline.filter((e) => e.role === role).map((e) => e.readyMs ?? NaN));
      const created = (role: string) => Math.min(...r.timeline.filter((e) => e.role === role).map((e) => e.createdMs));
      const hasReplicas = r.timeline.some((e) => e.role === "replica");
      const gaps = hasReplicas
        ? [created("replica") - ready("primary"), created("pgbouncer") - ready("replica"), r.healthyMs - ready("pgbouncer")]
        : [created("pgbouncer") - ready("primary"), r.healthyMs - ready("pgbouncer")];
      const total = gaps.reduce((a, b) => a + b, 0);
      return Number.isFinite(total) ? [total] : [];
    });
    const streaming = mine.map((r) => r.streamingMs);
    return {
      shape,
      runs: mine.length,
      healthyMedianMs: median(mine.map((r) => r.healthyMs)),
      streamingMedianMs: median(streaming),
      streamingMinMs: streaming.length ? Math.min(...streaming) : undefined,
      streamingMaxMs: streaming.length ? Math.max(...streaming) : undefined,
      readyMedianMs: Object.fromEntries(["primary", "replica", "pgbouncer"].map((role) => [role, roleTimes(role, "readyMs")])),
      createdMedianMs: Object.fromEntries(["primary", "replica", "pgbouncer"].map((role) => [role, roleTimes(role, "createdMs")])),
      healthWaitMedianMs: median(waits),
    };
  });
}

export interface TuningSummaryRow {
  script: Script;
  /** Each sound run's figure, in round order; failed runs (see runFailure) are left out and listed in `failed`. */
  tuned: number[];
  stock: number[];
  failed: { config: "tuned" | "stock"; rep: number; reason: string }[];
  tunedMedian?: number;
  stockMedian?: number;
  /** tuned / stock. */
  ratio?: number;
}

export function tuningSummary(runs: TuningRun[], minSamples: number): TuningSummaryRow[] {
  const scripts = [...new Set(runs.map((r) => r.script))];
  return scripts.map((script) => {
    const mine = runs.filter((r) => r.script === script);
    const failed = mine.flatMap((r) => {
      const reason = runFailure(r.run, minSamples);
      return reason === undefined ? [] : [{ config: r.config, rep: r.rep, reason }];
    });
    const of = (config: "tuned" | "stock") => mine.filter((r) => r.config === config && runFailure(r.run, minSamples) === undefined).map((r) => headlineTps(r.run)).filter((v): v is number => v !== undefined);
    const tuned = of("tuned");
    const stock = of("stock");
    return { script, tuned, stock, failed, tunedMedian: median(tuned), stockMedian: median(stock), ratio: ratio(median(tuned), median(stock)) };
  });
}

/** The name of a grid point, as the run's log and the failures list give it. */
export function pointName(p: { connections: Connections; script: Script; clients: number; target: Target }): string {
  return `${p.connections} ${p.script} ${p.clients} clients ${p.target}`;
}

/** Every failed measurement of a results file (see runFailure), named as the failures list names them. */
export function measurementFailures(r: BenchResults): { phase: string; error: string }[] {
  const min = r.settings.minSteadySamples;
  const out: { phase: string; error: string }[] = [];
  const check = (phase: string, run: PgbenchResult, prefix = "") => {
    const reason = runFailure(run, min);
    if (reason !== undefined) out.push({ phase, error: `failed measurement: ${prefix}${reason}` });
  };
  for (const p of r.grid.points) p.rounds.forEach((x, i) => check(`grid: ${pointName(p)}`, x.run, `round ${i + 1}: `));
  for (const x of r.thousand.runs) check(`thousand: ${x.run.script} ${x.run.clients} clients pooled`, x.run);
  if (r.lag) check("lag: tpcb-like load", r.lag.load);
  for (const x of r.tuning?.runs ?? []) check(`tuning: ${x.config} #${x.rep} ${x.script}`, x.run);
  return out;
}

/** The run's failures list, plus any failed measurement it does not name yet (a file written before they were listed). */
export function allFailures(r: BenchResults): { phase: string; error: string }[] {
  const known = new Set(r.failures.map((x) => `${x.phase}\n${x.error}`));
  return [...r.failures, ...measurementFailures(r).filter((x) => !known.has(`${x.phase}\n${x.error}`))];
}

/** Everything the report and the chart need, derived once. */
export function summarize(results: BenchResults) {
  const min = results.settings.minSteadySamples;
  return {
    grid: gridRows(results.grid.points, min),
    deploy: deploySummary(results.deploy.runs),
    tuning: results.tuning ? tuningSummary(results.tuning.runs, min) : [],
    thousand: results.thousand.runs.map((r) => ({ ...pointFigures([r], min), script: r.run.script, clients: r.run.clients, pools: r.pools, exitCode: r.run.exitCode, initialConnectionMs: r.run.initialConnectionMs, errorMessages: r.run.errors })),
  };
}

export type Summary = ReturnType<typeof summarize>;
