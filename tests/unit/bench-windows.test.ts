/** bench/windows.ts and bench/connections.ts: windows sized from the connection cost, and measuring that cost. */
import { spawnSync } from "child_process";
import { connectionCostArgs, connectionCostCommand, costOf, parseConnectionCost } from "../../bench/connections";
import { type ProgressSample, steadySamples } from "../../bench/pgbench";
import { expectedConnectMs, firstSteadySecond, runWindowS, windowS } from "../../bench/windows";

/** The progress lines pgbench -P 1 -T DURATION prints, one per second, the last one possibly missing. */
const progress = (durationS: number): ProgressSample[] => Array.from({ length: durationS - 1 }, (_, i) => ({ t: i + 1, tps: 100, latencyMs: 1, failed: 0 }));

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
