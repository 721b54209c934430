/** bench/failover.ts's summary functions, and the failover targets and section rendered from a results file. */
import {
  type Ack, errorsBetween, failoverFailures, type FailoverEvent, type FailoverKind, type FailoverResult, firstAckAfter, longestStall, summarizeFailover, type WithFailover,
} from "../../bench/failover";
import { renderReport } from "../../bench/report";
import { evaluateTargets } from "../../bench/targets";

/** Acknowledgements every 20 ms from FROM to TO (ms), sent 5 ms before each. */
const steady = (from: number, to: number, firstId = 1): Ack[] =>
  Array.from({ length: Math.floor((to - from) / 20) + 1 }, (_, i) => ({ id: firstId + i, sentMs: from + i * 20 - 5, ackMs: from + i * 20 }));

describe("event figures", () => {
  test("first acknowledged write after a kill: only writes sent once the leader was dead count", () => {
    const acks: Ack[] = [
      ...steady(0, 1000),
      // Sent before the container was dead (1100), answered late: not the new leader's first.
      { id: 100, sentMs: 1090, ackMs: 21_000 },
      { id: 101, sentMs: 1300, ackMs: 22_500 },
      { id: 102, sentMs: 22_600, ackMs: 22_610 },
    ];
    expect(firstAckAfter(acks, 1000, 1100)).toBe(21_500);
    expect(firstAckAfter(acks, 1000, 30_000)).toBeUndefined();
  });

  test("longest stall: from the last acknowledgement before the event, through the gaps, to the event's end", () => {
    const acks = [...steady(0, 1000), ...steady(4000, 5000, 100)];
    // The last acknowledgement before 1010 is at 1000, the next at 4000: 3 s without one.
    expect(longestStall(acks, 1010, 5000)).toBe(3000);
    // Starting within the second run of writes: its 20 ms steps, then the 1 s from 5000 to the end.
    expect(longestStall(acks, 4100, 6000)).toBe(1000);
    expect(longestStall(acks, 4100, 5000)).toBe(20);
    // Nothing acknowledged after the start: the stall runs to the end.
    expect(longestStall(steady(0, 1000), 1010, 9000)).toBe(8000);
    // No acknowledgement before the start either: it counts from the start.
    expect(longestStall([], 500, 2500)).toBe(2000);
    // Acknowledgements out of order (concurrent clients) are sorted first.
    expect(longestStall([{ id: 2, sentMs: 0, ackMs: 3000 }, { id: 1, sentMs: 0, ackMs: 100 }], 50, 3000)).toBe(2900);
  });

  test("errors within the event, counted by message", () => {
    const errors = [
      { atMs: 50, message: "before" },
      { atMs: 1200, message: "server conn crashed?" },
      { atMs: 1400, message: "Connection terminated unexpectedly" },
      { atMs: 1600, message: "server conn crashed?" },
      { atMs: 9000, message: "after" },
    ];
    expect(errorsBetween(errors, 1000, 2000)).toEqual({ errors: 3, errorMessages: [{ message: "server conn crashed?", count: 2 }, { message: "Connection terminated unexpectedly", count: 1 }] });
  });
});

function event(kind: FailoverKind, n: number, figures: Partial<FailoverEvent>): FailoverEvent {
  return { kind, n, startedAt: "2026-01-01T00:10:00.000Z", oldLeader: `pgha-bench-fo-node-${n % 3 + 1}`, newLeader: `pgha-bench-fo-node-${(n + 1) % 3 + 1}`, errors: 0, errorMessages: [], checkedRows: 1000 * n, lostRows: 0, rejoinMs: 12_000, ...figures };
}

function failover(kills: number[], stops: number[], switchovers: number[], extra: Partial<FailoverResult> = {}): FailoverResult {
  return {
    cluster: "pgha-bench-fo", synchronousMode: "quorum", replicas: 2, etcdMembers: 3, budgetS: 780, minEvents: 5,
    writer: { intervalMs: 20, acknowledged: 20_000, inDoubt: 12, errors: 12 }, switchoverMethod: "pause-resume",
    events: [
      ...kills.map((ms, i) => event("kill", i + 1, { recoveryMs: ms, stallMs: ms + 300, errors: 2, errorMessages: [{ message: "server conn crashed?", count: 2 }] })),
      ...stops.map((ms, i) => event("stop", i + 1, { stallMs: ms, errors: 1, errorMessages: [{ message: "terminating connection due to administrator command", count: 1 }] })),
      ...switchovers.map((ms, i) => event("switchover", i + 1, { stallMs: ms, detail: "PAUSE 0.01 s" })),
    ],
    finalCheck: { primary: "pgha-bench-fo-node-2", checked: 20_000, lost: 0 },
    notes: [],
    ...extra,
  };
}

/** A results file with nothing but the failover phase, as `BENCH_PHASES=failover` writes it. */
function results(fo?: FailoverResult): WithFailover {
  return {
    schema: 1, id: "2026-01-01T00-00-00Z", startedAt: "2026-01-01T00:00:00.000Z", finishedAt: "2026-01-01T00:13:00.000Z", totalSeconds: 780,
    environment: {
      hostname: "bench-host", cpuModel: "AMD EPYC", cores: 2, memoryGiB: 23.5, os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1", node: "v20.0.0",
      engine: { version: "20.10.24", apiVersion: "1.41", cgroupVersion: "1", storageDriver: "overlay2" },
      postgres: { image: "pgha-test/postgres:18" }, pgbouncer: { image: "pgha-test/pgbouncer:latest" }, client: {}, git: { commit: "0123456789abcdef", dirty: false },
    },
    settings: {
      postgresMajor: 18, scale: 10, threads: 2, gridClients: [10, 50, 100], gridDurationS: 4, gridMaxDurationS: 25, gridRounds: 2, thousandClients: 1000, thousandDurationS: 18,
      thousandMaxDurationS: 30, thousandScripts: ["select-only", "tpcb-like"], lagClients: 50, lagDurationS: 15, lagIntervalMs: 25, tuningClients: 10, tuningDurationS: 5,
      tuningMaxDurationS: 10, minSteadySamples: 3, costConnections: 50, tuningReps: 3, deployReps: 3, budgetS: 1380, clusters: {},
    },
    deploy: { runs: [] }, grid: { points: [] }, thousand: { runs: [] }, memory: [], failures: [], notes: [],
    ...(fo ? { failover: fo } : {}),
  } as WithFailover;
}

describe("summary per kind", () => {
  test("median and max of each kind's figure; errors and lost rows summed", () => {
    const [kill, stop, switchover] = summarizeFailover(failover([21_000, 23_500, 22_000, 29_000, 22_400], [3100, 2900, 4200, 3000, 3300], [1200, 900, 1500, 1100, 1000]));
    expect(kill).toMatchObject({ kind: "kill", events: 5, measured: 5, errors: 10, lostRows: 0, failure: undefined });
    expect(kill.recoveryMs).toEqual({ values: [21_000, 23_500, 22_000, 29_000, 22_400], median: 22_400, max: 29_000 });
    expect(stop.stallMs).toMatchObject({ median: 3100, max: 4200 });
    expect(switchover).toMatchObject({ errors: 0, stallMs: { median: 1100, max: 1500 } });
  });

  test("fewer than 5 kills is a failed measurement, named like the other failed points", () => {
    const fo = failover([21_000, 23_000, 22_000], [3100, 2900, 4200, 3000, 3300], [1200, 900, 1500, 1100, 1000]);
    fo.events.push(event("kill", 4, { recoveryMs: undefined, stallMs: undefined, failure: "a write acknowledged after the fault: not within 120 s" }));
    const kill = summarizeFailover(fo).find((k) => k.kind === "kill")!;
    expect(kill.failure).toBe("3 of 5 kills measured (#4: a write acknowledged after the fault: not within 120 s)");
    // The failed event's figures are in no median.
    expect(kill.recoveryMs.median).toBe(22_000);
    expect(failoverFailures(fo)).toEqual([{ phase: "failover: SIGKILL of the leader (docker kill)", error: "failed measurement: 3 of 5 kills measured (#4: a write acknowledged after the fault: not within 120 s)" }]);
    expect(failoverFailures(failover([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]))).toEqual([]);
    expect(failoverFailures(undefined)).toEqual([]);

    const t = evaluateTargets(results(fo)).find((x) => x.id === "failover-kill")!;
    expect(t).toMatchObject({ met: undefined, measured: "failed measurement", failed: "3 of 5 kills measured (#4: a write acknowledged after the fault: not within 120 s)" });
    const report = renderReport(results(fo), { chart: "c.svg", json: "r.json" });
    expect(report).toContain("| Unplanned failover (leader killed) |");
    expect(report).toContain("**failed measurement**");
    expect(report).toContain("- failover: SIGKILL of the leader (docker kill): failed measurement: 3 of 5 kills measured");
  });
});

describe("failover targets", () => {
  test("met: median and max within 25 and 30 s, stalls within 5 s, no switchover error, nothing lost", () => {
    const t = Object.fromEntries(evaluateTargets(results(failover([21_000, 23_500, 22_000, 29_000, 22_400], [3100, 2900, 4200, 3000, 3300], [1200, 900, 1500, 1100, 1000]))).map((x) => [x.id, x]));
    expect(t["failover-kill"]).toMatchObject({ met: true, measured: "median 22.4 s, max 29.0 s over 5 kills (each: 21.0, 23.5, 22.0, 29.0, 22.4 s)", margin: "met: median 2.6 s and max 1.0 s under" });
    expect(t["failover-kill"].why).toContain("20 s (ttl) after its last renewal");
    expect(t["failover-kill"].why).toContain("Amazon RDS Multi-AZ (one standby instance) 60–120 s");
    expect(t["failover-stop"]).toMatchObject({ met: true, margin: "met: max 0.8 s under" });
    expect(t["failover-switchover"]).toMatchObject({ met: true, margin: "met: max 3.5 s under, 0 errors" });
    expect(t["failover-lost"]).toMatchObject({ met: true, margin: "met: 0 lost" });
  });

  test("missed: a slow kill, a long stop stall, switchover errors and a lost row each show", () => {
    const fo = failover([21_000, 23_500, 26_000, 31_000, 25_500], [3100, 2900, 6200, 3000, 3300], [1200, 900, 1500, 1100, 1000]);
    const sw = fo.events.find((e) => e.kind === "switchover" && e.n === 2)!;
    sw.errors = 1;
    sw.errorMessages = [{ message: "cannot execute INSERT in a read-only transaction", count: 1 }];
    fo.events.find((e) => e.kind === "kill" && e.n === 4)!.lostRows = 2;
    const t = Object.fromEntries(evaluateTargets(results(fo)).map((x) => [x.id, x]));
    expect(t["failover-kill"]).toMatchObject({ met: false, margin: "median missed by 0.5 s; max missed by 1.0 s" });
    expect(t["failover-stop"]).toMatchObject({ met: false, margin: "stall missed by 1.2 s" });
    expect(t["failover-switchover"]).toMatchObject({ met: false, margin: "1 client error(s)" });
    expect(t["failover-switchover"].why).toContain('"cannot execute INSERT in a read-only transaction"');
    expect(t["failover-lost"]).toMatchObject({ met: false, margin: "missed by 2 row(s) (most at kill #4: 2)" });
  });

  test("without the phase every failover target is 'not measured'", () => {
    const t = evaluateTargets(results()).filter((x) => x.id.startsWith("failover-"));
    expect(t.map((x) => x.id)).toEqual(["failover-kill", "failover-stop", "failover-switchover", "failover-lost"]);
    for (const x of t) expect(x.met).toBeUndefined();
    const report = renderReport(results(), { chart: "c.svg", json: "r.json" });
    expect(report).toContain("### 7. Failover under a writer\n\nNot measured in this run.");
    expect(report).not.toMatch(/undefined|NaN/);
  });
});

describe("report section", () => {
  const fo = failover([21_000, 23_500, 22_000, 29_000, 22_400], [3100, 2900, 4200, 3000, 3300], [1200, 900, 1500, 1100, 1000]);
  const report = renderReport(results(fo), { chart: "c.svg", json: "r.json" });

  test("each kind's figures beside its target, and ours beside the published figures", () => {
    expect(report).toContain("| SIGKILL of the leader (docker kill) | 5 of 5 | kill to first acknowledged write | 21.0, 23.5, 22.0, 29.0, 22.4 | **22.4** | **29.0** | median ≤ 25 s, max ≤ 30 s | 10 | 0 |");
    expect(report).toContain("| planned switchover | 5 of 5 | longest write stall | 1.2, 0.9, 1.5, 1.1, 1.0 | **1.1** | **1.5** | ≤ 5 s, 0 errors | 0 | 0 |");
    expect(report).toContain("| pg-ha, measured here (SIGKILL of the leader, 5 kills) | **median 22.4 s, max 29.0 s** |");
    expect(report).toContain("| Amazon Aurora | under 30 s |");
    expect(report).toContain("| kill #4 | pgha-bench-fo-node-2 → pgha-bench-fo-node-3 | 29.0 | 29.3 | 2 | 4,000 / 0 | 12.0 |");
    expect(report).toContain("- 10× SIGKILL of the leader (docker kill): server conn crashed?");
  });

  test("the method says the failover phase's budget is added to the total", () => {
    expect(report).toContain("7. **Failover** (a budget of its own, 780 s, added to the run's)");
    expect(report).toContain("the run stops itself after 23 minutes (13 of them the failover phase's own budget, added to the 10 minutes of the other phases)");
    expect(report).not.toMatch(/undefined|NaN/);
  });
});
