/** bench/summary.ts, targets.ts, report.ts and chart.ts: everything rendered from a results file. */
import { chartData, renderChart, SERIES } from "../../bench/chart";
import type { Connections, PgbenchResult, Script } from "../../bench/pgbench";
import { renderReport } from "../../bench/report";
import type { BenchResults, GridPoint, Target } from "../../bench/results";
import { allFailures, deploySummary, errorCount, gridRows, measurementFailures, runFailure, tuningSummary } from "../../bench/summary";
import { connectionCostReading, evaluateTargets } from "../../bench/targets";

function run(script: Script, connections: Connections, clients: number, tps: number, extra: Partial<PgbenchResult> = {}): PgbenchResult {
  const durationS = 5;
  return {
    args: [], clients, script, connections, durationS, exitCode: 0, timedOut: false, wallMs: 5100,
    transactions: Math.round(tps * durationS), failed: 0, abortedClients: 0, tps: tps * 0.98, tpsBasis: "without initial connection time",
    latencyAvgMs: (clients / tps) * 1000, initialConnectionMs: clients * 5, averageConnectionMs: connections === "per-transaction" ? 9.5 : undefined,
    progress: [1, 2, 3, 4, 5, 6, 7, 8].map((t) => ({ t, tps: t === 1 ? tps / 2 : tps, latencyMs: 1, failed: 0 })), steadyTps: tps, errors: [], errorLines: 0, clientCpuS: { user: 1, system: 0.5 },
    ...extra,
  };
}

const TPS: Record<string, number> = {
  "persistent select-only direct": 8000, "persistent select-only pooled": 4000,
  "persistent tpcb-like direct": 500, "persistent tpcb-like pooled": 450,
  "per-transaction select-only direct": 100, "per-transaction select-only pooled": 350,
  "per-transaction tpcb-like direct": 60, "per-transaction tpcb-like pooled": 200,
};

function fixture(thousandErrors = 0): BenchResults {
  const points: GridPoint[] = [];
  for (const connections of ["persistent", "per-transaction"] as Connections[]) {
    for (const script of ["select-only", "tpcb-like"] as Script[]) {
      for (const clients of [10, 50, 100]) {
        for (const target of ["direct", "pooled"] as Target[]) {
          const tps = TPS[`${connections} ${script} ${target}`] * (clients === 50 ? 1 : 0.9);
          points.push({
            script, connections, clients, target, rounds: [{ run: run(script, connections, clients, tps),
            cpu: {
              seconds: 5,
              containers: { "pgha-bench-primary": target === "direct" ? 0.95 : 0.6, "pgha-bench-replica-1": 0.05, "pgha-bench-pgbouncer": target === "pooled" ? 0.4 : 0.01 },
              processes: { "docker-proxy:35432": target === "direct" ? 0.2 : 0, "docker-proxy:35433": target === "pooled" ? 0.2 : 0 },
              host: 1.95,
            },
          }] });
        }
      }
    }
  }
  const timeline = (offset: number, replicas: number) => [
    { container: "pgha-bench-primary", role: "primary", createdMs: 700, startedMs: 1400, readyMs: 2400 + offset },
    ...Array.from({ length: replicas }, (_, i) => ({ container: `pgha-bench-replica-${i + 1}`, role: "replica", createdMs: 4500 + offset, startedMs: 5300 + offset, readyMs: 6100 + offset })),
    { container: "pgha-bench-pgbouncer", role: "pgbouncer", createdMs: 8400 + offset, startedMs: 9700 + offset, readyMs: 9800 + offset },
  ];
  const deployRuns = [0, 1, 2].flatMap((rep) => [
    { shape: "dev" as const, rep: rep + 1, healthyMs: 13000 + rep * 100, streamingMs: 13200 + rep * 100, timeline: timeline(rep * 100, 1) },
    { shape: "prod" as const, rep: rep + 1, healthyMs: 13500 + rep * 100, streamingMs: 13700 + rep * 100, timeline: timeline(rep * 100, 2) },
  ]);
  const cluster = (name: string, replicas: number, cpus: number) => ({
    cluster: name, shape: "dev" as const, deployments: ["bench-grid"], overrides: { "pg-ha:clusterName": name, "pg-ha:maxClientConn": "1100" },
    nodeMemoryMb: 1024, nodeCpus: cpus, maxConnections: 125, replicas,
    pool: { mode: "transaction", defaultPoolSize: 20, reservePoolSize: 5, maxDbConnections: 25, maxClientConn: 1100 }, purpose: "test",
  });
  const thousand = (script: Script, tps: number) => ({
    run: run(script, "persistent", 1000, tps, thousandErrors
      ? { durationS: 18, errorLines: thousandErrors, exitCode: 2, errors: [{ message: 'connection to server at "127.0.0.1", port N failed: FATAL:  no more connections allowed (max_client_conn)', count: thousandErrors }] }
      : { durationS: 18 }),
    cpu: { seconds: 18, containers: { "pgha-bench-primary": 0.7, "pgha-bench-pgbouncer": 0.5 }, host: 1.9 },
    pools: { maxClients: 1000, maxWaiting: 970, maxServers: 30, samples: 17 },
  });
  const summary = (p50: number, p99: number, max: number) => ({ n: 500, min: 0, p50, p99, max, mean: p50 });
  return {
    schema: 1, id: "2026-01-01T00-00-00Z", startedAt: "2026-01-01T00:00:00.000Z", finishedAt: "2026-01-01T00:08:00.000Z", totalSeconds: 480,
    environment: {
      hostname: "bench-host", cpuModel: "AMD EPYC", cores: 2, hypervisor: "KVM", memoryGiB: 23.5, os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1", node: "v20.0.0",
      engine: { version: "20.10.24", apiVersion: "1.41", cgroupVersion: "1", storageDriver: "overlay2" },
      postgres: { image: "pgha-test/postgres:18", imageId: "sha256:62898ac62771aaaa", server: "PostgreSQL 18.6 (Debian 18.6-3)" },
      pgbouncer: { image: "pgha-test/pgbouncer:latest", imageId: "sha256:aeba2031bfce", version: "1.26.1", tls: "OpenSSL 3.6.5" },
      client: { pgbench: "pgbench (PostgreSQL) 15.18", openssl: "OpenSSL 3.0.19" },
      git: { commit: "0123456789abcdef", dirty: false },
    },
    settings: {
      postgresMajor: 18, scale: 10, threads: 2, gridClients: [10, 50, 100], gridDurationS: 5, gridMaxDurationS: 12, gridRounds: 1, thousandClients: 1000, thousandDurationS: 18,
      thousandMaxDurationS: 30, thousandScripts: ["select-only", "tpcb-like"], lagClients: 50, lagDurationS: 15, lagIntervalMs: 25, tuningClients: 10, tuningDurationS: 5,
      tuningMaxDurationS: 10, minSteadySamples: 3, costConnections: 50, tuningReps: 3, deployReps: 3, budgetS: 600,
      clusters: { grid: cluster("pgha-bench", 1, 1), stock: cluster("pgha-bench-stock", 0, 1) },
    },
    deploy: { runs: deployRuns },
    connectionCost: [
      { path: "stock-socket", connections: 50, averageMs: 31.2, perSecond: 30.1, exitCode: 0, timedOut: false, wallMs: 1700 },
      { path: "primary-socket", connections: 50, averageMs: 33.6, perSecond: 28.2, exitCode: 0, timedOut: false, wallMs: 1800 },
      { path: "direct-tls", connections: 50, averageMs: 56.4, perSecond: 17.2, exitCode: 0, timedOut: false, wallMs: 3000 },
      { path: "pooled-tls", connections: 50, averageMs: 9.4, perSecond: 98.5, exitCode: 0, timedOut: false, wallMs: 700 },
    ],
    grid: { initMs: 2000, points },
    thousand: { runs: [thousand("select-only", 3900), thousand("tpcb-like", 470)] },
    lag: {
      load: run("tpcb-like", "persistent", 50, 550),
      cpu: { seconds: 15, containers: { "pgha-bench-replica-1": 0.08, "pgha-bench-replica-2": 0.07 }, host: 1.9 },
      lag: {
        loadStart: 0, loadEnd: 15000, intervalMs: summary(25, 65, 101), ticks: 590, walBytesPerS: 1.7 * 1024 * 1024,
        replicas: {
          replica_1: { samples: 590, replayBytes: summary(200, 140_000, 160_000), sentReplayBytes: summary(0, 120_000, 150_000), replayLagMs: summary(1.3, 35, 60), nullLagSamples: 10, notStreamingSamples: 0, catchUpMs: 40 },
          replica_2: { samples: 590, replayBytes: summary(180, 110_000, 120_000), sentReplayBytes: summary(0, 100_000, 110_000), replayLagMs: summary(1.1, 14, 30), nullLagSamples: 12, notStreamingSamples: 0, catchUpMs: 45 },
        },
      },
    },
    tuning: {
      container: "pgha-bench-stock-primary", dataMb: 160,
      settings: { tuned: { max_connections: "70", shared_buffers: "256MB", wal_compression: "lz4" }, stock: { max_connections: "70", shared_buffers: "128MB", wal_compression: "off" } },
      runs: [1, 2, 3].flatMap((rep) => (["tuned", "stock"] as const).flatMap((config) => (["select-only", "tpcb-like"] as Script[]).map((script) => ({
        config, rep, restartMs: 1500, script, run: run(script, "persistent", 10, (script === "select-only" ? 6500 : 700) * (config === "tuned" ? 1.1 : 1) + rep),
      })))),
    },
    memory: [
      { phase: "tuned postgresql.conf", container: "pgha-bench-stock-primary", role: "primary", samples: 15, usedMedianMb: 300, usedMaxMb: 320, rssMaxMb: 40, cacheMaxMb: 290, limitMb: 1024 },
      { phase: "1000 clients pooled: select-only", container: "pgha-bench-pgbouncer", role: "pgbouncer", samples: 17, usedMedianMb: 37, usedMaxMb: 44, rssMaxMb: 41, cacheMaxMb: 0, limitMb: 256 },
    ],
    failures: [],
  };
}

describe("summary", () => {
  test("grid rows pair direct and pooled, with the ratio of the medians", () => {
    const rows = gridRows(fixture().grid.points, 3);
    expect(rows).toHaveLength(12);
    const row = rows.find((r) => r.connections === "persistent" && r.script === "select-only" && r.clients === 50)!;
    expect(row.direct!.tps).toBe(8000);
    expect(row.pooled!.tps).toBe(4000);
    expect(row.ratio).toBe(0.5);
    // 0.4 cores of PgBouncer at 4000 tx/s (20000 transactions in 5 s): 0.1 ms per transaction.
    expect(row.pooled!.cpuMsPerTx.pgbouncer).toBeCloseTo(0.1, 6);
    expect(row.pooled!.cores.proxy).toBeCloseTo(0.2, 6);
    expect(row.pooled!.cores.client).toBeCloseTo(0.3, 6);
  });

  test("deploy medians and the health-check waits between tiers", () => {
    const [dev, prod] = deploySummary(fixture().deploy.runs);
    expect(dev).toMatchObject({ shape: "dev", runs: 3, streamingMedianMs: 13300, healthyMedianMs: 13100 });
    expect(dev.readyMedianMs).toEqual({ primary: 2500, replica: 6200, pgbouncer: 9900 });
    // (4600 - 2500) + (8500 - 6200) + (13100 - 9900) = 7600 for the median run.
    expect(dev.healthWaitMedianMs).toBe(7600);
    expect(prod.shape).toBe("prod");
  });

  test("tuned / stock per script", () => {
    const [s] = tuningSummary(fixture().tuning!.runs, 3);
    expect(s.script).toBe("select-only");
    expect(s.tuned).toHaveLength(3);
    expect(s.ratio).toBeCloseTo(7152 / 6502, 6);
  });

  test("errors: failed transactions and error lines; an unexplained non-zero exit counts once", () => {
    expect(errorCount(run("select-only", "persistent", 10, 1))).toBe(0);
    expect(errorCount(run("select-only", "persistent", 10, 1, { failed: 2, errorLines: 3 }))).toBe(5);
    expect(errorCount(run("select-only", "persistent", 10, 1, { exitCode: 1 }))).toBe(1);
    expect(errorCount(run("select-only", "persistent", 10, 1, { timedOut: true }))).toBe(1);
  });
});

describe("targets", () => {
  test("each verdict, margin and explanation follows the figures", () => {
    const t = Object.fromEntries(evaluateTargets(fixture()).map((x) => [x.id, x]));
    expect(t["pooled-persistent"]).toMatchObject({ met: false, margin: "missed by 0.10 (select-only reached 83 % of the target)" });
    expect(t["pooled-persistent"].measured).toBe("select-only 0.50 (4,000 / 8,000 tps); TPC-B-like 0.90 (450 / 500 tps)");
    expect(t["pooled-persistent"].why).toContain("a transaction cost 0.375 ms of CPU pooled (pgbench 0.075, docker-proxy 0.050, PgBouncer 0.100, primary 0.150) against 0.181 ms direct");
    expect(t["pooled-persistent"].why).toContain("The host's 2 cores were 98 % busy in the pooled run");
    expect(t["pooled-persistent"].why).toContain("Direct, the primary ran at 95 % of its 1-CPU limit");
    expect(t["pooled-persistent"].why).not.toContain("PgBouncer is single-threaded");
    expect(t["pooled-per-transaction"]).toMatchObject({ met: true });
    expect(t["pooled-per-transaction"].margin).toBe("met (lowest: TPC-B-like, 3.33×, 0.33× above; this machine's connection costs allow about 6.0×)");
    expect(t.thousand).toMatchObject({ met: true, margin: "met: 0 errors" });
    expect(t.lag).toMatchObject({ met: true, margin: "met: worst p99 136.7 kB, 887.3 kB below 1 MB" });
    expect(t["deploy-dev"]).toMatchObject({ met: true, measured: "13.3 s (min 13.2, max 13.4)", margin: "met with 16.7 s to spare (44 % of the budget)" });
    expect(t["deploy-dev"].why).toContain("took 7.6 s of it");
  });

  test("errors with 1000 clients: missed, with the messages and the setting that closes it", () => {
    const t = evaluateTargets(fixture(3)).find((x) => x.id === "thousand")!;
    expect(t.met).toBe(false);
    expect(t.margin).toBe("missed by 6 error(s)");
    expect(t.why).toContain("no more connections allowed (max_client_conn)");
    expect(t.close).toContain("Raise pg-ha:maxClientConn");
  });

  test("a phase that did not run is 'not measured'", () => {
    const r = fixture();
    delete r.lag;
    r.thousand.runs = [];
    const t = Object.fromEntries(evaluateTargets(r).map((x) => [x.id, x]));
    expect(t.lag.met).toBeUndefined();
    expect(t.thousand.met).toBeUndefined();
  });
});

describe("failed measurements", () => {
  /** A round in which every client was still connecting when the window ended: pgbench exits 0 with 0 transactions. */
  const empty = (script: Script, connections: Connections, clients: number): PgbenchResult => run(script, connections, clients, 1, {
    durationS: 4, transactions: 0, tps: 0, latencyAvgMs: undefined, initialConnectionMs: 4210.5, steadyTps: undefined, clientCpuS: { user: 0.4, system: 0.2 },
    progress: [1, 2, 3, 4].map((t) => ({ t, tps: 0, latencyMs: 0, failed: 0 })),
  });
  /** The fixture with a second round added to one grid point. */
  const withRound = (connections: Connections, script: Script, clients: number, target: Target, second: PgbenchResult): BenchResults => {
    const r = fixture();
    const point = r.grid.points.find((p) => p.connections === connections && p.script === script && p.clients === clients && p.target === target)!;
    point.rounds.push({ run: second, cpu: { seconds: 4, containers: { "pgha-bench-primary": 0.9 }, host: 1.9 } });
    return r;
  };

  test("a round with 0 transactions fails its point: no figure, no ratio, nothing folded into a median", () => {
    const r = withRound("persistent", "select-only", 100, "direct", empty("select-only", "persistent", 100));
    const row = gridRows(r.grid.points, 3).find((x) => x.connections === "persistent" && x.script === "select-only" && x.clients === 100)!;
    expect(row.direct!.failure).toBe("round 2: completed no transaction in its 4 s window, its clients took 4.2 s to connect");
    expect(row.direct!.tps).toBeUndefined();
    expect(row.direct!.latencyMs).toBeUndefined();
    expect(row.ratio).toBeUndefined();
    // The sound round's samples alone are kept for the record, not reported as the point's figure.
    expect(row.direct!.samples).toBe(7);
    expect(row.pooled!.failure).toBeUndefined();
    expect(row.pooled!.tps).toBe(3600);
  });

  test("the failed round is listed under failures with its reason, and named in the report", () => {
    const r = withRound("persistent", "select-only", 100, "direct", empty("select-only", "persistent", 100));
    const expected = { phase: "grid: persistent select-only 100 clients direct", error: "failed measurement: round 2: completed no transaction in its 4 s window, its clients took 4.2 s to connect" };
    expect(measurementFailures(r)).toEqual([expected]);
    // A results file that does not list it yet (written before) still shows it; one that does, once.
    expect(allFailures(r)).toEqual([expected]);
    r.failures.push(expected);
    expect(allFailures(r)).toEqual([expected]);
    const report = renderReport(r, { chart: "c.svg", json: "r.json" });
    expect(report).toContain("| select-only | 100 | **failed** | 3,600 | n/a |");
    expect(report).toContain("- grid: persistent select-only 100 clients direct: failed measurement: round 2: completed no transaction in its 4 s window, its clients took 4.2 s to connect");
    expect(report).toContain("- select-only, 100 clients, direct: round 2: completed no transaction");
    expect(report).not.toMatch(/undefined|NaN/);
  });

  test("too few steady samples after the clients connected is a failure; enough is not", () => {
    const late = run("select-only", "persistent", 100, 4000, { initialConnectionMs: 6100 });
    // Samples at 8 s only: the 7th interval began after 6.1 s.
    expect(runFailure(late, 3)).toBe("1 steady 1-s sample(s) in its 5 s window, its clients took 6.1 s to connect; 3 needed");
    expect(runFailure(late, 1)).toBeUndefined();
    expect(runFailure(run("select-only", "persistent", 10, 4000), 3)).toBeUndefined();
    expect(runFailure(run("select-only", "persistent", 10, 4000, { transactions: undefined, exitCode: 1, errors: [{ message: "connection refused", count: 2 }] }), 3))
      .toBe("printed no result in its 5 s window, its clients took 0.1 s to connect, exit code 1; connection refused");
  });

  test("a failed point at the target's client count fails the target's measurement rather than judging the rest", () => {
    const r = withRound("per-transaction", "tpcb-like", 50, "pooled", empty("tpcb-like", "per-transaction", 50));
    const t = evaluateTargets(r).find((x) => x.id === "pooled-per-transaction")!;
    expect(t.met).toBeUndefined();
    expect(t.failed).toContain("TPC-B-like pooled: round 2: completed no transaction");
    const report = renderReport(r, { chart: "c.svg", json: "r.json" });
    expect(report).toContain("| New connection per transaction | pooled ≥ 3× direct at 50 clients, a new connection per transaction (pgbench -C) | failed measurement | **failed measurement** | n/a |");
    expect(report).toContain("### New connection per transaction: failed measurement");
  });

  test("a 1000-client run with no transaction is a failed measurement, not 'met: 0 errors'", () => {
    const r = fixture();
    r.thousand.runs[1].run = { ...empty("tpcb-like", "persistent", 1000), durationS: 18, initialConnectionMs: 18_050 };
    const t = evaluateTargets(r).find((x) => x.id === "thousand")!;
    expect(t.met).toBeUndefined();
    expect(t.failed).toBe("TPC-B-like: completed no transaction in its 18 s window, its clients took 18.1 s to connect");
    expect(measurementFailures(r).map((x) => x.phase)).toEqual(["thousand: tpcb-like 1000 clients pooled"]);
  });

  test("replication lag under a load that ran nothing is a failed measurement, not 'met'", () => {
    const r = fixture();
    r.lag!.load = { ...empty("tpcb-like", "persistent", 50), durationS: 15, initialConnectionMs: 15_200 };
    const t = evaluateTargets(r).find((x) => x.id === "lag")!;
    expect(t.met).toBeUndefined();
    expect(t.failed).toBe("the TPC-B-like load completed no transaction in its 15 s window, its clients took 15.2 s to connect");
    expect(measurementFailures(r).map((x) => x.phase)).toEqual(["lag: tpcb-like load"]);
  });

  test("a failed tuning run is left out of the medians and shown as failed", () => {
    const r = fixture();
    const failed = r.tuning!.runs.find((x) => x.config === "stock" && x.rep === 2 && x.script === "select-only")!;
    failed.run = empty("select-only", "persistent", 10);
    const [row] = tuningSummary(r.tuning!.runs, 3);
    expect(row.stock).toEqual([6501, 6503]);
    expect(row.stockMedian).toBe(6502);
    expect(row.failed).toEqual([{ config: "stock", rep: 2, reason: "completed no transaction in its 4 s window, its clients took 4.2 s to connect" }]);
    expect(renderReport(r, { chart: "c.svg", json: "r.json" })).toContain("| select-only | 7,151, 7,152, 7,153 | 6,501, 6,503, #2 failed |");
  });
});

describe("connection cost", () => {
  test("the per-transaction ratio is read against the machine's own connection costs", () => {
    const r = fixture();
    const { text, allows } = connectionCostReading(r.connectionCost, 3.33);
    expect(allows).toBeCloseTo(56.4 / 9.4, 9);
    expect(text).toContain("a direct connection with TLS and SCRAM took 56.4 ms and a pooled one 9.4 ms: connection cost alone puts the ratio at about 6.0×, and the measured 3.33× is 56 % of that.");
    expect(text).toContain("starting a backend takes 31.2 ms on a stock PostgreSQL over its Unix socket without TLS (55 %), 33.6 ms on the cluster's primary the same way (its configuration adds 2.4 ms); TLS and SCRAM are the other 22.8 ms.");
    expect(text).not.toContain("Even a pooler that cost nothing");
    const t = evaluateTargets(r).find((x) => x.id === "pooled-per-transaction")!;
    expect(t.why).toContain(text);
  });

  test("when the costs allow less than the target, the report says no pooler could reach it here", () => {
    const costs = fixture().connectionCost!.map((c) => (c.path === "direct-tls" ? { ...c, averageMs: 25 } : c));
    expect(connectionCostReading(costs, 1.5).text).toContain("Even a pooler that cost nothing would stay below 3× here: this machine's connection costs allow about 2.7×.");
    expect(connectionCostReading(undefined, 1.5)).toEqual({ text: expect.stringContaining("was not measured in this run"), allows: undefined });
  });

  test("the report gives the connection cost table beside the per-transaction ratios", () => {
    const report = renderReport(fixture(), { chart: "c.svg", json: "r.json" });
    expect(report).toContain("**What a connection costs on this machine** (measured in this run, before the grid: `pgbench -C -c 1 -t 50`");
    expect(report).toContain("| stock PostgreSQL, Unix socket, no TLS (trust) | 50 | **31.2** | 30.1 | 1.0× |");
    expect(report).toContain("| cluster primary, published port, TLS 1.3 + SCRAM | 50 | **56.4** | 17.2 | 1.8× |");
    expect(report).toContain("| PgBouncer, published port, TLS 1.3 + SCRAM | 50 | **9.4** | 98.5 | 0.3× |");
    expect(report).toContain("connection cost alone puts the per-transaction ratio (pooled / direct, below) at about **6.0×** on this machine");
    expect(report.indexOf("What a connection costs")).toBeLessThan(report.indexOf("**A new connection per transaction (-C)**"));
    // The method says how the windows were sized from it and what fails a run.
    expect(report).toContain("Each window is sized to leave at least 3 steady 1-s samples after all clients connected");
    expect(report).toContain("windows stay within 5 to 12 s (used: 5 s). A run that completes no transaction, or leaves fewer than 3 steady samples, is a failed measurement");
    expect(report).toContain("`-c 1000 -T 18` (sized the same way, within 18 to 30 s); all clients connect first");
  });
});

describe("report and chart", () => {
  const r = fixture();
  const report = renderReport(r, { chart: "results/2026-01-01T00-00-00Z.svg", json: "results/2026-01-01T00-00-00Z.json" });

  test("the report names the machine, embeds the chart and gives every table and target", () => {
    expect(report).toContain("| CPU | AMD EPYC, 2 cores |");
    expect(report).toContain("| Docker engine | 20.10.24 (API 1.41, cgroup v1, overlay2) |");
    expect(report).toContain("PgBouncer | 1.26.1 (OpenSSL 3.6.5)");
    expect(report).toContain("![Throughput by client count, direct vs pooled](results/2026-01-01T00-00-00Z.svg)");
    expect(report).toContain("| Pooling overhead, persistent connections |");
    expect(report).toContain("**missed**");
    expect(report).toContain("| select-only | 50 | 8,000 | 4,000 | **0.50** |");
    expect(report).toContain("| replica_1 | 590 | 0.2 kB | **136.7 kB** |");
    expect(report).toContain("| `shared_buffers` | 256MB | 128MB |");
    expect(report).toContain("### Pooling overhead, persistent connections: missed");
    for (const heading of ["## Machine", "## Method", "### 1. Cold deploy", "### 2. Direct vs pooled", "### 3. 1000 clients", "### 4. Replication lag", "### 5. Tuned", "### 6. Resident memory", "## Targets in detail"]) {
      expect(report).toContain(heading);
    }
    expect(report).not.toMatch(/undefined|NaN/);
  });

  test("rendering is deterministic", async () => {
    expect(renderReport(fixture(), { chart: "results/2026-01-01T00-00-00Z.svg", json: "results/2026-01-01T00-00-00Z.json" })).toBe(report);
    expect(await renderChart(fixture())).toBe(await renderChart(r));
  });

  test("the chart data: every grid point of both series, the 1000-client points pooled and persistent only", () => {
    const data = chartData(r);
    expect(data).toHaveLength(4 * 3 * 2 + 2);
    const at = (panel: string, clients: number, series: string) => data.filter((d) => d.panel === panel && d.clients === clients && d.series === series);
    expect(at("Select-only, persistent connections", 50, SERIES.direct.name)).toEqual([{ panel: "Select-only, persistent connections", clients: 50, series: "direct (primary)", tps: 8000, above: true }]);
    expect(at("Select-only, persistent connections", 50, SERIES.pooled.name)).toMatchObject([{ tps: 4000, above: false }]);
    expect(at("TPC-B-like, new connection per transaction (-C)", 10, SERIES.pooled.name)).toMatchObject([{ tps: 180, above: true }]);
    expect(at("TPC-B-like, persistent connections", 1000, SERIES.pooled.name)).toMatchObject([{ tps: 470, above: true }]);
    expect(data.filter((d) => d.clients === 1000).map((d) => [d.panel, d.series])).toEqual([
      ["Select-only, persistent connections", "pooled (PgBouncer)"],
      ["TPC-B-like, persistent connections", "pooled (PgBouncer)"],
    ]);
  });

  test("the chart has four panels with a direct and a pooled line each, and the 1000-client points", async () => {
    const svg = await renderChart(r);
    expect(svg.startsWith("<?xml")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    // The title names the machine and the run.
    expect(svg).toContain("pg-ha: throughput by client count, direct vs pooled");
    expect(svg).toContain("AMD EPYC, 2 cores");
    expect(svg).toContain("run 2026-01-01T00-00-00Z");
    for (const title of ["Select-only, persistent connections", "TPC-B-like, persistent connections", "Select-only, new connection per transaction (-C)", "TPC-B-like, new connection per transaction (-C)"]) {
      expect(svg).toContain(`Title text '${title}'`);
    }
    // One line per series and panel, in the series' colour; a point and a value label per measurement.
    const lines = [...svg.matchAll(/<path aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="line mark"[^>]* stroke="([^"]+)"/g)];
    expect(lines).toHaveLength(8);
    expect(lines.filter(([, label, stroke]) => label.includes(SERIES.direct.name) && stroke === SERIES.direct.color)).toHaveLength(4);
    expect(lines.filter(([, label, stroke]) => label.includes(SERIES.pooled.name) && stroke === SERIES.pooled.color)).toHaveLength(4);
    expect(svg.match(/aria-roledescription="point"/g)).toHaveLength(26);
    expect(svg.match(/aria-roledescription="text mark"/g)).toHaveLength(26);
    // The legend, the axes (1000 clients only in the persistent panels) and the values.
    expect(svg).toContain(">direct (primary)</text>");
    expect(svg).toContain(">pooled (PgBouncer)</text>");
    expect(svg.match(/X-axis titled 'clients' for a discrete scale with 4 values: 10, 50, 100, 1000/g)).toHaveLength(2);
    expect(svg.match(/X-axis titled 'clients' for a discrete scale with 3 values: 10, 50, 100"/g)).toHaveLength(2);
    expect(svg.match(/Y-axis titled 'transactions\/s'/g)).toHaveLength(4);
    expect(svg).toContain(">1000</text>");
    expect(svg).toContain(">8,000</text>");
    expect(svg).toContain("clients: 1000; transactions/s: 3,900; series: pooled (PgBouncer)");
    expect(svg).not.toMatch(/NaN|undefined/);
  });
});
