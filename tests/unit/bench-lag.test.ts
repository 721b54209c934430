/** bench/lag.ts, bench/stock.ts, bench/usage.ts and bench/deploytime.ts: their pure parts. */
import { lagQuery, parseLagRows, parseLsn, summarizeLag } from "../../bench/lag";
import { stockConf } from "../../bench/stock";
import { memoryFromStat, parseMemoryStat, summarizeMemory } from "../../bench/usage";
import { readyTime } from "../../bench/deploytime";
import { parsePgbouncerUp } from "../../bench/env";
import { parseClusterConfig } from "../../config";
import { renderPostgresqlConf } from "../../config-templates/render";
import { clusterTuning } from "../../config-templates/tuning";
import { primaryNode } from "../../topology";
import { loadStackConfig } from "../e2e/executor";

describe("replication lag", () => {
  test("parseLsn reads both halves", () => {
    expect(parseLsn("0/B5A19A0")).toBe(0xb5a19a0);
    expect(parseLsn("16/B374D848")).toBe(0x16 * 2 ** 32 + 0xb374d848);
    expect(() => parseLsn("nope")).toThrow("not an LSN");
  });

  test("the query stops returning rows at the deadline, so that \\watch m=1 ends", () => {
    expect(lagQuery(1_700_000_000_123)).toContain("clock_timestamp() < to_timestamp(1700000000.123)");
  });

  const out = [
    "1000|0/1000|replica_1|streaming|0|0|",
    "1000|0/1000|replica_2|streaming|0|0|",
    "1050|0/9000|replica_1|streaming|4096|1024|2.5",
    "1050|0/9000|replica_2|streaming|8192|0|4.0",
    "1100|0/11000|replica_1|streaming|2048|0|1.5",
    // replica_2 missing at this tick: it was not connected.
    "1175|0/11000|replica_1|streaming|0|0|",
    "1175|0/11000|replica_2|catchup|0|0|",
    "not a row",
    "",
    "1300|0/11000|replica_1|streaming|0|0|",
    "1300|0/11000|replica_2|streaming|0|0|",
  ].join("\n");

  test("rows are parsed with NULL as null, other lines skipped", () => {
    const rows = parseLagRows(out);
    expect(rows).toHaveLength(9);
    expect(rows[0]).toEqual({ t: 1000, currentLsn: 0x1000, replica: "replica_1", state: "streaming", replayBytes: 0, sentReplayBytes: 0, replayLagMs: null });
    expect(rows[3].replayLagMs).toBe(4);
  });

  test("statistics cover the load window; missing ticks and non-streaming rows are counted; catch-up after the load", () => {
    const lag = summarizeLag(parseLagRows(out), 1000, 1200, ["replica_1", "replica_2"]);
    expect(lag.ticks).toBe(4);
    expect(lag.intervalMs).toMatchObject({ n: 3, p50: 50, max: 75 });
    expect(lag.walBytesPerS).toBeCloseTo(((0x11000 - 0x1000) / 175) * 1000, 6);
    expect(lag.replicas.replica_1).toMatchObject({ samples: 4, nullLagSamples: 2, notStreamingSamples: 0, catchUpMs: 100 });
    expect(lag.replicas.replica_1.replayBytes).toMatchObject({ max: 4096, p50: 1024 });
    expect(lag.replicas.replica_1.replayLagMs).toMatchObject({ max: 2.5, p50: 0.75 });
    expect(lag.replicas.replica_2).toMatchObject({ samples: 3, notStreamingSamples: 2 });
  });
});

describe("stockConf", () => {
  const spec = parseClusterConfig({ ...loadStackConfig("dev"), "pg-ha:replicas": "0" });
  const tuned = renderPostgresqlConf(spec, primaryNode(spec));
  const stock = stockConf(tuned);

  test("finds every tuning setting the template rendered", () => {
    expect(stock.tuned).toEqual(clusterTuning(spec));
    expect(stock.kept).toEqual({ max_connections: String(spec.node.maxConnections) });
  });

  test("removes the TUNING block only: everything else is byte-identical", () => {
    const withoutBlock = (text: string) => text.replace(/# TUNING[\s\S]*?(?=#-{10,}\n# WRITE-AHEAD)/, "");
    expect(withoutBlock(stock.conf)).toBe(withoutBlock(tuned));
    expect(stock.conf).toContain(`max_connections = ${spec.node.maxConnections}\n`);
    for (const name of Object.keys(stock.tuned).filter((n) => n !== "max_connections")) {
      expect(stock.conf).not.toMatch(new RegExp(`^${name} =`, "m"));
    }
    expect(stock.conf).toMatch(/^ssl = on$/m);
    expect(stock.conf).toMatch(/^shared_preload_libraries = /m);
  });

  test("refuses a file without the block", () => {
    expect(() => stockConf("ssl = on\n")).toThrow("no '# TUNING' section");
  });
});

describe("memory from cgroups", () => {
  test("cgroup v1: docker stats' usage minus inactive file", () => {
    const stat = parseMemoryStat("cache 100\nrss 50\ntotal_cache 700\ntotal_rss 200\ntotal_inactive_file 300\n");
    expect(memoryFromStat(1000, stat, 4096)).toEqual({ usedBytes: 700, rssBytes: 200, cacheBytes: 700, limitBytes: 4096 });
  });
  test("cgroup v2: anon and file", () => {
    const stat = parseMemoryStat("anon 200\nfile 600\ninactive_file 250\n");
    expect(memoryFromStat(900, stat, Infinity)).toEqual({ usedBytes: 650, rssBytes: 200, cacheBytes: 600, limitBytes: Infinity });
  });
  test("summaries per phase and container, in MiB", () => {
    const MB = 1024 * 1024;
    const s = (phase: string, used: number) => ({ phase, container: "c", role: "primary", t: 0, usedBytes: used * MB, rssBytes: MB, cacheBytes: 2 * MB, limitBytes: 1024 * MB });
    expect(summarizeMemory([s("a", 10), s("a", 30), s("a", 20), s("b", 5)])).toEqual([
      { phase: "a", container: "c", role: "primary", samples: 3, usedMedianMb: 20, usedMaxMb: 30, rssMaxMb: 1, cacheMaxMb: 2, limitMb: 1024 },
      { phase: "b", container: "c", role: "primary", samples: 1, usedMedianMb: 5, usedMaxMb: 5, rssMaxMb: 1, cacheMaxMb: 2, limitMb: 1024 },
    ]);
  });
});

describe("deploy timeline", () => {
  const logs = [
    "2026-11-28T05:46:19.926404460Z server started",
    "2026-11-28T05:46:19.990000000Z 2026-11-28 05:46:19.990 GMT [50] LOG:  database system is ready to accept connections",
    "2026-11-28T05:46:20.283547824Z 2026-11-28 05:46:20.283 GMT [1] LOG:  database system is ready to accept connections",
    "2026-11-28T05:46:23.259653811Z 2026-11-28 05:46:23.259 GMT [53] LOG:  started streaming WAL from primary at 0/4000000 on timeline 1",
    "2026-11-28T05:46:26.534810577Z 2026-11-28 05:46:26.534 UTC [1] LOG process up: PgBouncer 1.26.1, libevent 2.1.13-stable (epoll), adns: c-ares 1.34.8, tls: OpenSSL 3.6.5 29 Sep 2026",
  ].join("\n");
  test("the primary's last ready line (after the bootstrap server), a replica's first streaming line, PgBouncer's process up", () => {
    expect(readyTime("primary", logs)).toBe(Date.parse("2026-11-28T05:46:20.283547824Z"));
    expect(readyTime("replica", logs)).toBe(Date.parse("2026-11-28T05:46:23.259653811Z"));
    expect(readyTime("pgbouncer", logs)).toBe(Date.parse("2026-11-28T05:46:26.534810577Z"));
    expect(readyTime("replica", "nothing")).toBeUndefined();
  });
  test("PgBouncer's version and TLS library from its start-up line", () => {
    expect(parsePgbouncerUp(logs)).toEqual({ version: "1.26.1", tls: "OpenSSL 3.6.5 29 Sep 2026" });
    expect(parsePgbouncerUp("")).toEqual({ version: undefined, tls: undefined });
  });
});
