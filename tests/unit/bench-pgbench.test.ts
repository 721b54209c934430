/** bench/pgbench.ts and bench/stats.ts: parsing pgbench's output and the order statistics. */
import { foldError, parsePgbench, pgbenchArgs, steadySamples } from "../../bench/pgbench";
import { gaps, median, percentile, ratio, summarize } from "../../bench/stats";

const PERSISTENT_STDOUT = `pgbench (15.18 (Debian 15.18-0+deb12u1), server 18.6 (Debian 18.6-3))
transaction type: <builtin: select only>
scaling factor: 10
query mode: simple
number of clients: 10
number of threads: 2
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 37623
number of failed transactions: 0 (0.000%)
latency average = 1.290 ms
latency stddev = 1.916 ms
initial connection time = 109.733 ms
tps = 7687.532642 (without initial connection time)
`;
const PERSISTENT_STDERR = `progress: 1.0 s, 5457.7 tps, lat 1.611 ms stddev 2.521, 0 failed
progress: 2.0 s, 7512.9 tps, lat 1.316 ms stddev 2.088, 0 failed
progress: 3.0 s, 8561.6 tps, lat 1.159 ms stddev 2.167, 0 failed
progress: 4.0 s, 8610.8 tps, lat 1.153 ms stddev 1.268, 0 failed
progress: 5.0 s, 7468.0 tps, lat 1.333 ms stddev 1.448, 0 failed
@@times
0m0.000000s 0m0.000000s
0m1.320000s 0m0.890000s
`;

describe("parsePgbench", () => {
  test("a persistent-connection run: summary, progress, steady median and the client's CPU", () => {
    const r = parsePgbench(PERSISTENT_STDOUT, PERSISTENT_STDERR);
    expect(r).toMatchObject({
      transactions: 37623, failed: 0, abortedClients: 0, tps: 7687.532642, tpsBasis: "without initial connection time",
      latencyAvgMs: 1.29, latencyStddevMs: 1.916, initialConnectionMs: 109.733, errors: [], errorLines: 0,
      clientCpuS: { user: 1.32, system: 0.89 }, serverVersion: "18.6",
    });
    expect(r.averageConnectionMs).toBeUndefined();
    expect(r.progress).toHaveLength(5);
    expect(r.progress[1]).toEqual({ t: 2, tps: 7512.9, latencyMs: 1.316, failed: 0 });
    // The first second is left out: median of 7512.9, 8561.6, 8610.8, 7468.0.
    expect(r.steadyTps).toBeCloseTo((7512.9 + 8561.6) / 2, 6);
  });

  test("a new connection per transaction (-C)", () => {
    const r = parsePgbench(
      `number of transactions actually processed: 117
number of failed transactions: 0 (0.000%)
latency average = 41.415 ms
latency stddev = 29.324 ms
average connection time = 27.230 ms
tps = 57.632686 (including reconnection times)
`,
      "progress: 1.0 s, 54.0 tps, lat 42.117 ms stddev 28.523, 0 failed\nprogress: 2.0 s, 58.8 tps, lat 41.490 ms stddev 30.381, 0 failed\n",
    );
    expect(r).toMatchObject({ tps: 57.632686, tpsBasis: "including reconnection times", averageConnectionMs: 27.23, steadyTps: 58.8 });
    expect(r.initialConnectionMs).toBeUndefined();
  });

  test("aborted clients and connection errors are counted and folded by cause", () => {
    const stderr = [
      'pgbench: error: connection to server at "127.0.0.1", port 35433 failed: FATAL:  no more connections allowed (max_client_conn)',
      "pgbench: error: client 17 aborted while establishing connection",
      "pgbench: error: client 18 aborted while establishing connection",
      "pgbench: error: Run was aborted; the above results are incomplete.",
    ].join("\n");
    const r = parsePgbench("number of transactions actually processed: 10\nnumber of failed transactions: 2 (1.000%)\n", stderr);
    expect(r.abortedClients).toBe(2);
    expect(r.errorLines).toBe(4);
    expect(r.failed).toBe(2);
    expect(r.errors).toEqual([
      { message: "client N aborted while establishing connection", count: 2 },
      { message: 'connection to server at "127.0.0.1", port N failed: FATAL:  no more connections allowed (max_client_conn)', count: 1 },
      { message: "Run was aborted; the above results are incomplete.", count: 1 },
    ]);
  });

  test("empty output yields no figures rather than zeros", () => {
    const r = parsePgbench("", "");
    expect(r.tps).toBeUndefined();
    expect(r.steadyTps).toBeUndefined();
    expect(r.progress).toEqual([]);
  });
});

describe("steadySamples", () => {
  const progress = [1, 2, 3, 4, 5, 6, 7, 8].map((t) => ({ t, tps: t * 100, latencyMs: 1, failed: 0 }));
  test("leaves out the first interval and those that ended before all clients had connected", () => {
    expect(steadySamples(progress, 6141).map((s) => s.t)).toEqual([8]);
    expect(steadySamples(progress, 100).map((s) => s.t)).toEqual([2, 3, 4, 5, 6, 7, 8]);
  });
  test("a run whose clients were still connecting when it ended has none", () => {
    expect(steadySamples(progress.slice(0, 3), 60_000)).toEqual([]);
    expect(parsePgbench("number of transactions actually processed: 0\ninitial connection time = 4210.5 ms\n", "progress: 1.0 s, 0.0 tps, lat 0.000 ms stddev 0.000, 0 failed\nprogress: 2.0 s, 0.0 tps, lat 0.000 ms stddev 0.000, 0 failed\n").steadyTps).toBeUndefined();
  });
});

test("pgbenchArgs: bounded, progress every second, the URL last; threads never above clients", () => {
  expect(pgbenchArgs({ url: "postgresql://u@h/db", caFile: "/ca", script: "select-only", clients: 1, threads: 2, durationS: 5, connections: "per-transaction" }))
    .toEqual(["-n", "-c", "1", "-j", "1", "-T", "5", "-P", "1", "-M", "simple", "-S", "-C", "postgresql://u@h/db"]);
  expect(pgbenchArgs({ url: "u", caFile: "/ca", script: "tpcb-like", clients: 50, threads: 2, durationS: 8, connections: "persistent", protocol: "extended" }))
    .toEqual(["-n", "-c", "50", "-j", "2", "-T", "8", "-P", "1", "-M", "extended", "u"]);
});

test("foldError folds client, command and port numbers", () => {
  expect(foldError("pgbench: error: client 5 aborted in command 4 (SQL) of script 0; ERROR:  x")).toBe("client N aborted in command N (SQL) of script N; ERROR:  x");
});

describe("stats", () => {
  test("percentile interpolates between the closest ranks", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([10], 99)).toBe(10);
    expect(percentile(Array.from({ length: 101 }, (_, i) => i), 99)).toBe(99);
    expect(percentile([], 50)).toBeUndefined();
    expect(median([3, 1, 2, NaN])).toBe(2);
    expect(() => percentile([1], 101)).toThrow("within 0..100");
  });
  test("summarize, ratio and gaps", () => {
    expect(summarize([4, 1, 3, 2])).toEqual({ n: 4, min: 1, p50: 2.5, p99: expect.closeTo(3.97, 9), max: 4, mean: 2.5 });
    expect(summarize([])).toBeUndefined();
    expect(ratio(3, 4)).toBe(0.75);
    expect(ratio(3, 0)).toBeUndefined();
    expect(ratio(undefined, 4)).toBeUndefined();
    expect(gaps([10, 35, 60, 100])).toEqual([25, 25, 40]);
  });
});
