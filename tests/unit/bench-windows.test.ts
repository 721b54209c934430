/** bench/windows.ts and bench/connections.ts: windows sized from the connection cost, and measuring that cost. */
import { spawnSync } from "child_process";
import { connectionCostArgs, connectionCostCommand, costOf, parseConnectionCost } from "../../bench/connections";
import { type ProgressSample, steadySamples } from "../../bench/pgbench";
import { connectPassMs, expectedConnectMs, firstSteadySecond, perTransactionProgress, perTransactionWindowS, runWindowS, windowS } from "../../bench/windows";

/** The progress lines pgbench -P 1 -T DURATION prints, one per second, the last one possibly missing. */
const progress = (durationS: number): ProgressSample[] => Array.from({ length: durationS - 1 }, (_, i) => ({ t: i + 1, tps: 100, latencyMs: 1, failed: 0 }));

/**
 * The progress lines of a -C run whose thread 0 ends its passes over its clients at PASS_ENDS_S:
 * a line at the end of each pass that began before -T ended, once a second at most (pgbench's
 * threadRun checks for a due report only between passes). PASS_ENDS_S is cut short at -T.
 */
const passLines = (durationS: number, passEndsS: number[]): ProgressSample[] => {
  const lines: ProgressSample[] = [];
  let nextReport = 1;
  let begun = 0;
  for (const end of passEndsS) {
    if (begun >= durationS) break;
    if (end >= nextReport) {
      lines.push({ t: end, tps: 10, latencyMs: 100, failed: 0 });
      while (nextReport <= end) nextReport++;
    }
    begun = end;
  }
  return lines;
};
/** Pass ends at FIRST, then every EVERY seconds, up to 400 s. */
const passes = (first: number, every: number) => Array.from({ length: Math.floor((400 - first) / every) + 1 }, (_, i) => Math.round((first + i * every) * 1000) / 1000);

describe("measurement windows", () => {
  test("clients connect one after another per pgbench thread, and slower when they all connect at once", () => {
    // 100 clients on 2 threads: 50 connections each, at twice the lone 56 ms.
    expect(expectedConnectMs({ clients: 100, threads: 2, connections: "persistent", connectionMs: 56 })).toBe(50 * 56 * 2);
    expect(expectedConnectMs({ clients: 1, threads: 2, connections: "persistent", connectionMs: 56 })).toBe(112);
    // With -C every transaction connects by itself: no connection phase before the first one.
    expect(expectedConnectMs({ clients: 100, threads: 2, connections: "per-transaction", connectionMs: 56 })).toBe(0);
  });

  test("the window leaves the samples steadySamples keeps, even when pgbench drops its last progress line", () => {
    for (const connectMs of [0, 120, 999, 1000, 1001, 2800, 4210, 5600, 9999]) {
      for (const samples of [1, 2, 3, 5]) {
        const durationS = windowS({ connectMs, samples, minS: 1, maxS: 100 });
        expect(steadySamples(progress(durationS), connectMs).length).toBeGreaterThanOrEqual(samples);
        // And not longer than that needs: one second less would leave too few.
        expect(steadySamples(progress(durationS - 1), connectMs).length).toBeLessThan(samples);
      }
    }
    expect(firstSteadySecond(0)).toBe(2);
    expect(firstSteadySecond(4210)).toBe(6);
  });

  test("the window stays within its bounds", () => {
    expect(windowS({ connectMs: 100, samples: 3, minS: 4, maxS: 12 })).toBe(5);
    expect(windowS({ connectMs: 100, samples: 1, minS: 4, maxS: 12 })).toBe(4);
    expect(windowS({ connectMs: 60_000, samples: 3, minS: 4, maxS: 12 })).toBe(12);
    expect(() => windowS({ connectMs: 0, samples: 3, minS: 13, maxS: 12 })).toThrow("minS (13) is above maxS (12)");
  });

  test("the issue's case: 100 direct clients at 56 ms per connection get a window longer than 4 s", () => {
    // 50 per thread x 56 ms x 2 = 5.6 s of connecting, then 3 samples and the slack second.
    const durationS = runWindowS({ clients: 100, threads: 2, connections: "persistent", connectionMs: 56, samples: 3, minS: 4, maxS: 12 });
    expect(durationS).toBe(10);
    // The same point, pooled at 9 ms per connection, needs no more than the shortest window that leaves 3 samples.
    expect(runWindowS({ clients: 100, threads: 2, connections: "persistent", connectionMs: 9, samples: 3, minS: 4, maxS: 12 })).toBe(5);
  });

  test("a point that took longer to connect in an earlier round gets a longer window in the next", () => {
    const base = { clients: 50, threads: 2, connections: "persistent" as const, connectionMs: 20, samples: 3, minS: 4, maxS: 12 };
    expect(runWindowS(base)).toBe(5);
    // 3.1 s observed, 1.5 x that = 4.65 s: samples from 6 s on.
    expect(runWindowS({ ...base, observedConnectMs: [3100] })).toBe(9);
    expect(runWindowS({ ...base, connections: "per-transaction", observedConnectMs: [3100] })).toBe(5);
  });
});

describe("measurement windows with a new connection per transaction (-C)", () => {
  // Connection cost measured in the run of 2026-12-02T03-53-27Z: direct (TLS + SCRAM) 59.7 ms, pooled 8.8 ms.
  const direct = { threads: 2, connectionMs: 59.7, samples: 3, minS: 4, maxS: 25 };

  test("progress lines come once a pass of thread 0 over its clients, each pass opening their connections one after another", () => {
    // 100 clients on 2 threads: 50 connections per pass at twice the lone 59.7 ms.
    expect(connectPassMs({ clients: 100, threads: 2, connectionMs: 59.7 })).toBeCloseTo(5970, 6);
    expect(perTransactionProgress({ clients: 100, threads: 2, connectionMs: 59.7, script: "select-only" })).toEqual({ firstMs: connectPassMs({ clients: 100, threads: 2, connectionMs: 59.7 }), everyMs: connectPassMs({ clients: 100, threads: 2, connectionMs: 59.7 }) });
    // TPC-B-like: every client reconnects in the first pass, then about one in 7 round trips per pass.
    const tpcb = perTransactionProgress({ clients: 100, threads: 2, connectionMs: 59.7, script: "tpcb-like" });
    expect(tpcb.firstMs).toBeCloseTo(5970, 6);
    expect(tpcb.everyMs).toBe(1000);
    // Pooled connections are quick: one line a second, as with persistent connections.
    expect(perTransactionProgress({ clients: 100, threads: 2, connectionMs: 8.8, script: "select-only" })).toEqual({ firstMs: 1000, everyMs: 1000 });
  });

  test("the issue's case: select-only direct at 50 and 100 clients get windows that hold 4 progress lines, not 5 s", () => {
    expect(runWindowS({ ...direct, clients: 50, connections: "per-transaction", script: "select-only" })).toBe(13);
    expect(runWindowS({ ...direct, clients: 100, connections: "per-transaction", script: "select-only" })).toBe(25);
    expect(runWindowS({ ...direct, clients: 100, connections: "per-transaction", script: "tpcb-like" })).toBe(10);
    expect(runWindowS({ ...direct, clients: 10, connections: "per-transaction", script: "select-only" })).toBe(5);
    expect(runWindowS({ ...direct, clients: 100, connectionMs: 8.8, connections: "per-transaction", script: "select-only" })).toBe(5);
    // Without a script a -C run is sized as select-only, the longest.
    expect(runWindowS({ ...direct, clients: 100, connections: "per-transaction" })).toBe(25);
  });

  test("the pass model gives the samples the failed runs of that run had, and the new windows give enough", () => {
    // Recorded passes: 50 clients, lines at 2.7 and 5.0 s (2.3 to 2.7 s apart); 100 clients, 6.2 s for one pass.
    const fifty = passes(2.7, 2.3);
    const hundred = passes(6.2, 6.2);
    expect(steadySamples(passLines(5, fifty)).length).toBe(1);
    expect(steadySamples(passLines(5, hundred)).length).toBe(0);
    const fiftyS = runWindowS({ ...direct, clients: 50, connections: "per-transaction", script: "select-only" });
    const hundredS = runWindowS({ ...direct, clients: 100, connections: "per-transaction", script: "select-only" });
    expect(steadySamples(passLines(fiftyS, fifty)).length).toBeGreaterThanOrEqual(3);
    expect(steadySamples(passLines(hundredS, hundred)).length).toBeGreaterThanOrEqual(3);
  });

  test("the window leaves the samples steadySamples keeps even when the last line does not come, and no more", () => {
    for (const clients of [1, 10, 50, 100, 301]) {
      for (const connectionMs of [1, 8.8, 33.3, 59.7, 120]) {
        for (const script of ["select-only", "tpcb-like"] as const) {
          for (const samples of [1, 2, 3, 5]) {
            const o = { clients, threads: 2, connectionMs, script };
            const durationS = perTransactionWindowS({ ...o, samples, minS: 1, maxS: 1000 });
            const { firstMs, everyMs } = perTransactionProgress(o);
            // Lines the model expects, counted only up to a second before the end (LAST_SAMPLE_SLACK_S).
            const lines = (d: number) => passLines(1000, passes(firstMs / 1000, everyMs / 1000)).filter((l) => l.t <= d - 1);
            expect(steadySamples(lines(durationS)).length).toBeGreaterThanOrEqual(samples);
            expect(steadySamples(lines(durationS - 1)).length).toBeLessThan(samples);
          }
        }
      }
    }
  });

  test("the -C window stays within its bounds", () => {
    expect(perTransactionWindowS({ ...direct, clients: 100, script: "select-only", maxS: 12 })).toBe(12);
    expect(perTransactionWindowS({ ...direct, clients: 1, script: "select-only", minS: 8 })).toBe(8);
    expect(() => perTransactionWindowS({ ...direct, clients: 1, script: "select-only", minS: 13, maxS: 12 })).toThrow("minS (13) is above maxS (12)");
  });
});

describe("connection cost", () => {
  test("pgbench -C -c 1 for a fixed number of connections, SELECT 1 from stdin", () => {
    expect(connectionCostArgs(50)).toEqual(["-n", "-C", "-c", "1", "-j", "1", "-t", "50", "-M", "simple", "-f", "/dev/stdin"]);
    expect(connectionCostCommand(["docker", "exec", "-u", "postgres", "c"], ["-t", "5", "postgres"]))
      .toEqual(["docker", "exec", "-u", "postgres", "c", "sh", "-c", 'printf "SELECT 1;\\n" | pgbench "$@"', "sh", "-t", "5", "postgres"]);
  });

  test("the script reaches pgbench through a pipe that /dev/stdin can open, with the arguments intact", () => {
    // The same shell line with \`cat\` in pgbench's place, run the way measureConnectionCost runs it (stdin ignored).
    const [sh, c, line, zero] = connectionCostCommand([], []);
    const r = spawnSync(sh, [c, line.replace('pgbench "$@"', 'cat /dev/stdin; printf "%s|" "$@"'), zero, "-h", "/tmp", "a b"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(r.stdout).toBe("SELECT 1;\n-h|/tmp|a b|");
  });

  const OUTPUT = `pgbench (18.6 (Debian 18.6-3))
transaction type: /dev/stdin
scaling factor: 1
query mode: simple
number of clients: 1
number of threads: 1
maximum number of tries: 1
number of transactions per client: 50
number of transactions actually processed: 50/50
number of failed transactions: 0 (0.000%)
latency average = 255.677 ms
average connection time = 244.047 ms
tps = 3.911183 (including reconnection times)
`;

  test("the average connection time of a complete run", () => {
    expect(parseConnectionCost("stock-socket", 50, OUTPUT, "", 0, false, 13_700)).toEqual({
      path: "stock-socket", connections: 50, averageMs: 244.047, perSecond: 3.911183, exitCode: 0, timedOut: false, wallMs: 13_700, error: undefined,
    });
  });

  test("an incomplete or failed run gives no figure, and says why", () => {
    const partial = parseConnectionCost("direct-tls", 50, OUTPUT.replace("50/50", "20/50"), "pgbench: error: client 0 aborted while establishing connection\n", 2, false, 900);
    expect(partial.averageMs).toBeUndefined();
    expect(partial.error).toBe("client N aborted while establishing connection");
    const killed = parseConnectionCost("pooled-tls", 50, "", "", null, true, 60_000);
    expect(killed).toMatchObject({ averageMs: undefined, timedOut: true, error: "stopped at its time bound after 60000 ms" });
    expect(costOf([partial, killed], "direct-tls")).toBeUndefined();
    expect(costOf(undefined, "direct-tls")).toBeUndefined();
  });
});
