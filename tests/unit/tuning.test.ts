import { parseClusterConfig } from "../../config";
import { clusterTuning, clusterTuningSettings, parseMemory, pgtune, walSenders } from "../../config-templates/tuning";
import { stackConfig } from "./harness";

const prod = parseClusterConfig(stackConfig("prod"));

describe("the cluster's tuning is PGTune's plus documented deviations", () => {
  test("prod seed: 8 GB, 4 CPUs, 300 connections -> PGTune's 2GB shared_buffers and 6GB cache", () => {
    const tuning = clusterTuning(prod);
    expect(tuning.shared_buffers).toBe("2GB");
    expect(tuning.effective_cache_size).toBe("6GB");
    expect(tuning.max_connections).toBe("300");
  });

  test("every value PGTune gives is kept unless a deviation says why", () => {
    const base = pgtune({ pgVersion: 18, workload: "web", memoryBytes: 8192 * 2 ** 20, cpus: 4, maxConnections: 300, storage: "ssd" });
    for (const s of clusterTuningSettings(prod)) {
      if (s.why === undefined) expect(s.value).toBe(base[s.name]);
      else expect(s.value).not.toBe(base[s.name]);
    }
  });

  test("deviation: io_uring is replaced by worker I/O on PostgreSQL 18 (Docker's seccomp blocks io_uring)", () => {
    expect(pgtune({ pgVersion: 18, workload: "web", memoryBytes: 2 ** 30, storage: "ssd" }).io_method).toBe("io_uring");
    expect(clusterTuningSettings(prod).find((s) => s.name === "io_method")).toEqual({
      name: "io_method", value: "worker", why: "Docker's default seccomp profile blocks io_uring",
    });
  });

  test("PostgreSQL 17 has no io_method at all", () => {
    const pg17 = parseClusterConfig({ ...stackConfig("prod"), "pg-ha:postgresMajor": "17" });
    expect(clusterTuning(pg17).io_method).toBeUndefined();
  });

  test("deviation: the desktop profile keeps wal_level replica and WAL senders, so replication still works", () => {
    const desktop = parseClusterConfig({ ...stackConfig("dev"), "pg-ha:workload": "desktop" });
    expect(pgtune({ pgVersion: 18, workload: "desktop", memoryBytes: 2 ** 30, storage: "ssd" }).wal_level).toBe("minimal");
    const tuning = clusterTuning(desktop);
    expect(tuning.wal_level).toBe("replica");
    expect(tuning.max_wal_senders).toBe("10");
  });

  test("deviation: WAL senders and slots cover the replicas with room for clones", () => {
    expect(walSenders(0)).toBe(10);
    expect(walSenders(5)).toBe(14);
    const five = parseClusterConfig({ ...stackConfig("prod"), "pg-ha:replicas": "5" });
    expect(clusterTuning(five).max_wal_senders).toBe("14");
    expect(clusterTuning(five).max_replication_slots).toBe("14");
  });

  test("max_connections covers the pooler, reserved and replication connections", () => {
    const budget = prod.databases.length * (prod.pool.maxDbConnections + prod.pool.reservePoolSize) + 3 + walSenders(prod.replicas);
    expect(budget).toBe(273);
    expect(Number(clusterTuning(prod).max_connections)).toBeGreaterThanOrEqual(budget);
  });

  test("parseMemory reads PGTune's units", () => {
    expect(parseMemory("6898kB")).toBe(6898);
    expect(parseMemory("512MB")).toBe(512 * 1024);
    expect(parseMemory("2GB")).toBe(2 * 1024 * 1024);
    expect(() => parseMemory("2 GB")).toThrow('"2 GB" is not a memory value');
  });
});
