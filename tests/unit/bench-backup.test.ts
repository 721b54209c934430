/** bench/backup.ts's summary functions, and the backup section rendered from a results file. */
import {
  backupFailures, commandEndMs, mbPerS, segmentsWaiting, summarizeArchiveLag, summarizeBackup, walSegmentNumber,
} from "../../bench/backup";
import { renderReport } from "../../bench/report";
import type { ArchiveSample, BackupResult, BackupRun, BenchResults } from "../../bench/results";

const MB = 1024 * 1024;

describe("pure figures", () => {
  test("MB/s needs a positive time", () => {
    expect(mbPerS(330 * MB, 20_000)).toBeCloseTo(16.5);
    expect(mbPerS(330 * MB, 0)).toBeUndefined();
    expect(mbPerS(undefined, 1000)).toBeUndefined();
  });

  test("pgBackRest's own duration: the last \"command end\" line of the command named", () => {
    const log = [
      "2026-12-02 13:45:06.000 P00   INFO: backup command begin 2.60: --type=full",
      "2026-12-02 13:45:26.000 P00   INFO: expire command end: completed successfully (40ms)",
      "2026-12-02 13:45:26.000 P00   INFO: backup command end: completed successfully (20123ms)",
    ].join("\n");
    expect(commandEndMs(log, "backup")).toBe(20_123);
    expect(commandEndMs(log, "expire")).toBe(40);
    expect(commandEndMs(log, "restore")).toBeUndefined();
    expect(commandEndMs("INFO: restore command end: aborted with exception [075]", "restore")).toBeUndefined();
  });

  test("WAL segment numbers: 256 segments of 16 MB per log file; the timeline does not count", () => {
    expect(walSegmentNumber("000000010000000000000003")).toBe(3);
    expect(walSegmentNumber("0000000200000001000000FF")).toBe(511);
    expect(walSegmentNumber("000000010000000200000000")).toBe(512);
    expect(walSegmentNumber("000000010000000100000001", 64 * MB)).toBe(65);
    expect(() => walSegmentNumber("00000002.history")).toThrow(/not a WAL file name/);
  });

  test("segments waiting: completed ones after the newest archived, the one being written not counted", () => {
    expect(segmentsWaiting("000000010000000000000010", "00000001000000000000000F")).toBe(0);
    expect(segmentsWaiting("000000010000000100000002", "0000000100000000000000FE")).toBe(3);
    // A backup's history file and a partial segment name their segment; a timeline history file none.
    expect(segmentsWaiting("000000010000000000000010", "00000001000000000000000E.00000028.backup")).toBe(1);
    expect(segmentsWaiting("000000020000000000000010", "00000001000000000000000F.partial")).toBe(0);
    expect(segmentsWaiting("000000020000000000000010", "00000002.history")).toBeUndefined();
    expect(segmentsWaiting("000000010000000000000010", undefined)).toBeUndefined();
  });
});

const seg = (n: number) => `00000001${(Math.floor(n / 256)).toString(16).toUpperCase().padStart(8, "0")}${(n % 256).toString(16).toUpperCase().padStart(8, "0")}`;

/** One sample a second from 0 to 40 s; during the load (10..30 s) a segment every 2 s, archived 1 s later. */
function samples(): ArchiveSample[] {
  return Array.from({ length: 41 }, (_, i) => {
    const atMs = 1_000_000 + i * 1000;
    const written = i < 10 ? 5 : 5 + Math.floor((Math.min(i, 30) - 10) / 2);
    const archived = i < 10 ? 4 : i % 2 === 1 ? written - 2 : written - 1;
    return { atMs, currentWal: seg(written), lastArchivedWal: seg(archived), lastArchivedAtMs: atMs - (i < 10 ? 30_000 : 1000), failedCount: i >= 20 ? 1 : 0 };
  });
}

function backupRun(type: "full" | "diff", label: string, databaseMb: number, copiedMb: number, seconds: number): BackupRun {
  return { type, label, wallMs: seconds * 1000 + 600, commandMs: seconds * 1000, databaseBytes: databaseMb * MB, deltaBytes: copiedMb * MB, repositoryBytes: 17 * MB, repositoryDeltaBytes: (copiedMb / 20) * MB };
}

function backup(extra: Partial<BackupResult> = {}): BackupResult {
  return {
    cluster: "pgha-bench-bk", restoredCluster: "pgha-bench-bkr", scale: 20, dataBytes: 307 * MB, initMs: 24_400, budgetS: 480, retentionFull: 1, archiveTimeoutS: 60,
    backups: [backupRun("full", "20261202-134506F", 330, 330, 20), backupRun("diff", "20261202-134506F_20261202-134600D", 331, 40, 8), backupRun("full", "20261202-134630F", 332, 332, 16)],
    load: { clients: 10, durationS: 30, tps: 400, steadyTps: 410 } as BackupResult["load"],
    archive: { intervalMs: 1000, loadStartMs: 1_010_000, loadEndMs: 1_030_000, samples: samples() },
    repository: {
      beforeExpiry: { backups: 4, fullBackups: 3, infoBytes: 40 * MB, duBytes: 200 * MB, backupDuBytes: 40 * MB, archiveDuBytes: 160 * MB },
      afterExpiry: { backups: 1, fullBackups: 1, infoBytes: 17 * MB, duBytes: 60 * MB, backupDuBytes: 17 * MB, archiveDuBytes: 43 * MB },
      expireMs: 900,
    },
    drill: { result: "passed", backup: "20261202-134630F", seconds: 41, checks: { restoreSeconds: "8", systemId: "ok", canary: "ok", amcheck: "ok", checksums: "ok" }, error: null },
    restore: { backup: "20261202-134630F", databaseBytes: 332 * MB, deployMs: 70_000, queryableMs: 70_400, commandMs: 10_000, rows: 2_000_000, expectedRows: 2_000_000 },
    notes: [],
    ...extra,
  };
}

describe("archive lag", () => {
  test("only the samples during the load: age and segments waiting, segments written, failures counted", () => {
    const a = summarizeArchiveLag(backup().archive);
    expect(a.samples).toBe(21);
    expect(a.ageMs).toMatchObject({ p50: 1000, max: 1000 });
    expect(a.waiting).toMatchObject({ min: 0, max: 1 });
    expect(a.segmentsWritten).toBe(10);
    expect(a.failures).toBe(1);
  });

  test("no load window: no samples", () => {
    expect(summarizeArchiveLag({ intervalMs: 1000, samples: samples() })).toMatchObject({ samples: 0, ageMs: undefined, failures: 0 });
  });
});

describe("summary", () => {
  test("full MB/s from the database and pgBackRest's time; differential from what it copied; restore, drill and expiry", () => {
    const s = summarizeBackup(backup());
    expect(s.full.map((x) => x.mbPerS)).toEqual([16.5, 20.75]);
    expect(s.fullMbPerS).toBeCloseTo(18.625);
    expect(s.diff[0]).toMatchObject({ copiedMb: 40, mbPerS: 5 });
    expect(s.restore).toMatchObject({ databaseMb: 332, commandS: 10, mbPerS: 33.2, queryableS: 70.4, deployS: 70, rowsMatch: true });
    expect(s.drill).toMatchObject({ passed: true, seconds: 41, restoreSeconds: 8, mbPerS: 41.5 });
    expect(s.repository).toEqual({ beforeMb: { info: 40, du: 200 }, afterMb: { info: 17, du: 60 }, freedMb: { info: 23, du: 140 }, backupsBefore: 4, backupsAfter: 1 });
    expect(backupFailures(backup())).toEqual([]);
    expect(backupFailures(undefined)).toEqual([]);
  });

  test("without pgBackRest's own time the bench's wall time counts", () => {
    const b = backup();
    delete b.backups[0].commandMs;
    expect(summarizeBackup(b).full[0].seconds).toBe(20.6);
  });

  test("what is missing or wrong is a failed measurement, named", () => {
    const b = backup({
      backups: [], restore: { ...backup().restore!, rows: 1_999_000 }, drill: { result: "failed", backup: "x", seconds: 3, checks: {}, error: "restore: pgbackrest restore: ERROR" },
      archive: { intervalMs: 1000, samples: [] }, repository: {},
    });
    expect(backupFailures(b).map((x) => x.error)).toEqual([
      "failed measurement: no full backup of the data set was taken",
      "failed measurement: no differential backup was taken",
      "failed measurement: the restored cluster has 1999000 pgbench_accounts rows, the source 2000000",
      "failed measurement: the restore drill failed: restore: pgbackrest restore: ERROR",
      "failed measurement: 0 archiver samples during the load, fewer than 10",
      "failed measurement: the repository's size before and after expiry was not measured",
    ]);
  });
});

/** A results file with nothing but the backup phase, as `BENCH_PHASES=backup` writes it. */
function results(b?: BackupResult): BenchResults {
  return {
    schema: 1, id: "2026-12-02T13-43-40Z", startedAt: "2026-12-02T13:43:40.000Z", finishedAt: "2026-12-02T13:50:00.000Z", totalSeconds: 380,
    environment: {
      hostname: "bench-host", cpuModel: "AMD EPYC", cores: 2, memoryGiB: 23.5, os: "Debian GNU/Linux 12 (bookworm)", kernel: "6.1", node: "v20.0.0",
      engine: { version: "20.10.24", apiVersion: "1.41", cgroupVersion: "1", storageDriver: "overlay2" },
      postgres: { image: "pgha-test/postgres:18" }, pgbouncer: { image: "pgha-test/pgbouncer:latest" }, client: {}, git: { commit: "0123456789abcdef", dirty: false },
    },
    settings: {
      postgresMajor: 18, scale: 10, threads: 2, gridClients: [10, 50, 100], gridDurationS: 4, gridMaxDurationS: 25, gridRounds: 2, thousandClients: 1000, thousandDurationS: 18,
      thousandMaxDurationS: 30, thousandScripts: ["select-only", "tpcb-like"], lagClients: 50, lagDurationS: 15, lagIntervalMs: 25, tuningClients: 10, tuningDurationS: 5,
      tuningMaxDurationS: 10, minSteadySamples: 3, costConnections: 50, tuningReps: 3, deployReps: 3, budgetS: 1080, clusters: {},
    },
    deploy: { runs: [] }, grid: { points: [] }, thousand: { runs: [] }, memory: [], failures: [], notes: [],
    ...(b ? { backup: b } : {}),
  };
}

describe("report", () => {
  const report = renderReport(results(backup()), { chart: "c.svg", json: "r.json" });

  test("backup, restore and drill figures", () => {
    expect(report).toContain("### 8. Backups and restore (pgBackRest)");
    expect(report).toContain("| full | `20261202-134506F` | 330 | 330 | 16.5 | 20.0 | **16.5** |");
    expect(report).toContain("| differential | `20261202-134506F_20261202-134600D` | 331 | 40 | 2.0 | 8.0 | **5.0** |");
    expect(report).toContain("Full backups: median **18.6 MB/s** of the database; differential: **5.0 MB/s**");
    expect(report).toContain("| new cluster `pgha-bench-bkr` from `20261202-134630F` + WAL | 332 | 10.0 | **33.2** | **70.4** (deploy returned after 70.0) | 2,000,000 of 2,000,000 pgbench_accounts rows |");
    expect(report).toContain("| restore drill (`20261202-134630F`) |  | 8 | 41.5 | 41 (whole drill) | passed: systemId=ok, canary=ok, amcheck=ok, checksums=ok |");
  });

  test("archive lag and the repository before and after expiry", () => {
    expect(report).toContain("**Archive lag** while pgbench wrote (410 tps, 30 s): 21 samples, 10 WAL segments written, 1 archive failures.");
    expect(report).toContain("| Age of the newest archived segment (s) | 1.0 | 1.0 | **1.0** |");
    expect(report).toContain("| before expiry | 4 (3) | 40.0 | 200.0 | 40.0 | 160.0 |");
    expect(report).toContain("| freed |  | **23.0** | **140.0** |  |  |");
  });

  test("the method names the phase and its own budget", () => {
    expect(report).toContain("8. **Backups** (a budget of its own, 480 s, added to the run's)");
    expect(report).toContain("the run stops itself after 18 minutes (8 of them the backup phase's own budget, added to the 10 minutes of the other phases)");
  });

  test("a short full backup is said to be coarse; failed measurements are listed; a run without the phase says so", () => {
    const b = backup({ backups: [backupRun("full", "F1", 150, 150, 2), backupRun("diff", "D1", 150, 10, 1)] });
    const r = renderReport(results(b), { chart: "c.svg", json: "r.json" });
    expect(r).toContain("- F1 took less than 3 s: the throughput is coarse");
    const failed = renderReport(results(backup({ drill: undefined })), { chart: "c.svg", json: "r.json" });
    expect(failed).toContain("- backup: failed measurement: the restore drill did not run");
    expect(renderReport(results(), { chart: "c.svg", json: "r.json" })).toMatch(/### 8\. Backups and restore \(pgBackRest\)\n\nNot measured in this run\./);
  });
});
