/**
 * Backups with pgBackRest on a Patroni cluster of the program: full and differential backup
 * throughput, restore throughput and the time to a restored, queryable cluster (a new cluster
 * deployed with pg-ha:restoreFrom), the restore drill, how far WAL archiving trails the primary
 * while pgbench writes, and the repository's size before and after expiry.
 *
 * The summary functions (first half) are pure and read only the results; measureBackup (second
 * half) drives the clusters.
 */
import { execFile } from "child_process";
import { promisify } from "util";
import { Client } from "pg";
import { type DeployedCluster, docker, pgConfig, query, sqlInContainer, waitFor } from "../tests/e2e/support/cluster";
import { initPgbench, runPgbench } from "./pgbench";
import type { ArchiveSample, BackupResult, BackupRun, BenchResults, RepositorySize } from "./results";
import { median, summarize, type Summary } from "./stats";

const execFileAsync = promisify(execFile);

const MB = 1024 * 1024;
/** A full backup shorter than this gives a coarse throughput: noted in the report. */
export const SHORT_BACKUP_MS = 3000;
/** Archiver samples during the load needed for a measurement. */
export const MIN_ARCHIVE_SAMPLES = 10;

/** MB (MiB) per second, or undefined without a positive time. */
export function mbPerS(bytes: number | undefined, ms: number | undefined): number | undefined {
  if (bytes === undefined || ms === undefined || !(ms > 0)) return undefined;
  return bytes / MB / (ms / 1000);
}

/** pgBackRest's own duration of COMMAND from its console log ("<command> command end: completed successfully (1234ms)"), the last one. */
export function commandEndMs(log: string, command: string): number | undefined {
  const re = new RegExp(`${command} command end: completed successfully \\((\\d+)ms\\)`, "g");
  let last: number | undefined;
  for (const m of log.matchAll(re)) last = Number(m[1]);
  return last;
}

/** The segment number of a WAL file name (timeline, log, segment; 24 hex digits) for SEGMENT_BYTES segments. */
export function walSegmentNumber(name: string, segmentBytes = 16 * MB): number {
  if (!/^[0-9A-F]{24}$/i.test(name)) throw new Error(`not a WAL file name: "${name}"`);
  const perLog = 0x100000000 / segmentBytes;
  return parseInt(name.slice(8, 16), 16) * perLog + parseInt(name.slice(16, 24), 16);
}

/** Completed segments not yet archived: those between the newest archived one and the one being written. */
export function segmentsWaiting(currentWal: string, lastArchivedWal: string | undefined, segmentBytes = 16 * MB): number | undefined {
  // A backup's history file (…05.00000028.backup) or a partial segment names its segment first;
  // a timeline history file (00000002.history) names none.
  const segment = /^[0-9A-F]{24}(?=$|\.)/i.exec(lastArchivedWal ?? "")?.[0];
  if (!segment) return undefined;
  return Math.max(0, walSegmentNumber(currentWal, segmentBytes) - walSegmentNumber(segment, segmentBytes) - 1);
}

export interface ArchiveLagSummary {
  /** Samples taken during the load. */
  samples: number;
  /** How old the newest archived segment was at each sample, ms. */
  ageMs?: Summary;
  /** Completed segments waiting to be archived at each sample. */
  waiting?: Summary;
  /** Segments the primary wrote during the load, and archive failures counted meanwhile. */
  segmentsWritten?: number;
  failures: number;
}

/** The archiver's samples taken between the load's start and end: age of the newest archived WAL and segments waiting. */
export function summarizeArchiveLag(archive: BackupResult["archive"]): ArchiveLagSummary {
  const { loadStartMs: from, loadEndMs: to } = archive;
  const within = archive.samples.filter((s) => from !== undefined && to !== undefined && s.atMs >= from && s.atMs <= to);
  const ages = within.filter((s) => s.lastArchivedAtMs !== undefined).map((s) => Math.max(0, s.atMs - s.lastArchivedAtMs!));
  const waiting = within.map((s) => segmentsWaiting(s.currentWal, s.lastArchivedWal)).filter((v): v is number => v !== undefined);
  const first = within[0];
  const last = within.at(-1);
  return {
    samples: within.length,
    ageMs: summarize(ages),
    waiting: summarize(waiting),
    segmentsWritten: first && last ? walSegmentNumber(last.currentWal) - walSegmentNumber(first.currentWal) : undefined,
    failures: first && last ? last.failedCount - first.failedCount : 0,
  };
}

export interface BackupFigure {
  label: string;
  seconds?: number;
  databaseMb: number;
  copiedMb: number;
  repositoryMb: number;
  /** Database MB per second (full); MB of the files found changed per second (diff). */
  mbPerS?: number;
}

export interface BackupSummary {
  full: BackupFigure[];
  diff: BackupFigure[];
  /** Median of the full backups' MB/s, and of the differentials' MB/s of changed files. */
  fullMbPerS?: number;
  diffMbPerS?: number;
  restore?: { databaseMb: number; commandS?: number; mbPerS?: number; queryableS: number; deployS: number; rowsMatch: boolean };
  drill?: { passed: boolean; seconds: number; restoreSeconds?: number; mbPerS?: number };
  archive: ArchiveLagSummary;
  repository?: { beforeMb: { info: number; du: number }; afterMb: { info: number; du: number }; freedMb: { info: number; du: number }; backupsBefore: number; backupsAfter: number };
}

/** A backup's figure: pgBackRest's own time when it printed one, else the bench's wall time. */
function figureOf(b: BackupRun): BackupFigure {
  const ms = b.commandMs ?? b.wallMs;
  return {
    label: b.label, seconds: ms / 1000, databaseMb: b.databaseBytes / MB, copiedMb: b.deltaBytes / MB, repositoryMb: b.repositoryDeltaBytes / MB,
    mbPerS: mbPerS(b.type === "full" ? b.databaseBytes : b.deltaBytes, ms),
  };
}

export function summarizeBackup(b: BackupResult): BackupSummary {
  const full = b.backups.filter((x) => x.type === "full").map(figureOf);
  const diff = b.backups.filter((x) => x.type === "diff").map(figureOf);
  const mbs = (xs: BackupFigure[]) => median(xs.map((x) => x.mbPerS).filter((v): v is number => v !== undefined));
  const r = b.restore;
  const restored = r && {
    databaseMb: r.databaseBytes / MB, commandS: r.commandMs === undefined ? undefined : r.commandMs / 1000, mbPerS: mbPerS(r.databaseBytes, r.commandMs),
    queryableS: r.queryableMs / 1000, deployS: r.deployMs / 1000, rowsMatch: r.rows === r.expectedRows,
  };
  const d = b.drill;
  const drillSet = d && b.backups.find((x) => x.label === d.backup);
  const restoreSeconds = d?.checks.restoreSeconds === undefined ? undefined : Number(d.checks.restoreSeconds);
  const drill = d && {
    passed: d.result === "passed", seconds: d.seconds, restoreSeconds,
    mbPerS: drillSet && restoreSeconds ? mbPerS(drillSet.databaseBytes, restoreSeconds * 1000) : undefined,
  };
  const { beforeExpiry: before, afterExpiry: after } = b.repository;
  const repository = before && after && {
    beforeMb: { info: before.infoBytes / MB, du: before.duBytes / MB },
    afterMb: { info: after.infoBytes / MB, du: after.duBytes / MB },
    freedMb: { info: (before.infoBytes - after.infoBytes) / MB, du: (before.duBytes - after.duBytes) / MB },
    backupsBefore: before.backups, backupsAfter: after.backups,
  };
  return { full, diff, fullMbPerS: mbs(full), diffMbPerS: mbs(diff), restore: restored, drill, archive: summarizeArchiveLag(b.archive), repository };
}

/** The backup phase's failed measurements, named as the failures list names the others. */
export function backupFailures(b: BackupResult | undefined): { phase: string; error: string }[] {
  if (!b) return [];
  const s = summarizeBackup(b);
  const out: string[] = [];
  if (s.full.length === 0) out.push("no full backup of the data set was taken");
  if (s.diff.length === 0) out.push("no differential backup was taken");
  if (!s.restore) out.push("no cluster was restored from the repository");
  else if (!s.restore.rowsMatch) out.push(`the restored cluster has ${b.restore!.rows ?? "no"} pgbench_accounts rows, the source ${b.restore!.expectedRows}`);
  if (!s.drill) out.push("the restore drill did not run");
  else if (!s.drill.passed) out.push(`the restore drill failed: ${b.drill!.error ?? "no reason given"}`);
  if (s.archive.samples < MIN_ARCHIVE_SAMPLES) out.push(`${s.archive.samples} archiver samples during the load, fewer than ${MIN_ARCHIVE_SAMPLES}`);
  if (!s.repository) out.push("the repository's size before and after expiry was not measured");
  return out.map((error) => ({ phase: "backup", error: `failed measurement: ${error}` }));
}

export const backupOf = (r: BenchResults): BackupResult | undefined => r.backup;

// ---------------------------------------------------------------------------------------------
// Measuring

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const REPO = "/var/lib/pgbackrest";

interface InfoBackup { label: string; type: string; info: { size: number; delta: number; repository: { size: number; delta: number } } }

export interface BackupOptions {
  source: DeployedCluster;
  /** Deploys the restored cluster with the pg-ha:restoreFrom and pg-ha:restoreCipherPass given. */
  deployRestored: (restoreOverrides: Record<string, string>) => Promise<DeployedCluster>;
  /** Filled in as the steps happen, so that a run stopped half-way keeps what it measured. */
  result: BackupResult;
  loadDurationS: number;
  loadClients: number;
  threads: number;
  log: (line: string) => void;
}

/** The repository host's container of CLUSTER. */
const hostOf = (c: DeployedCluster): string => c.outputs.nodes.find((n) => n.role === "backup")!.name;

/** pgBackRest on the repository host as postgres, as an operator runs it; throws with its output on failure. */
async function pgbackrest(host: string, args: string[], timeoutMs = 600_000): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync("docker", ["exec", "-u", "postgres", host, "pgbackrest", ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return `${stdout}${stderr}`;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`pgbackrest ${args.join(" ")} failed: ${(err.stderr || err.stdout || err.message).trim().split("\n").slice(-3).join(" / ")}`);
  }
}

async function infoBackups(host: string): Promise<InfoBackup[]> {
  return (JSON.parse(await pgbackrest(host, ["--output=json", "info"], 120_000))[0]?.backup ?? []) as InfoBackup[];
}

/** Takes one backup of KIND without the automatic expiry (expiry is measured on its own), and describes it. */
async function takeBackup(host: string, kind: "full" | "diff"): Promise<BackupRun> {
  const t = Date.now();
  const out = await pgbackrest(host, [`--type=${kind}`, "--no-expire-auto", "backup"]);
  const wallMs = Date.now() - t;
  const label = /new backup label = (\S+)/.exec(out)?.[1];
  const entry = (await infoBackups(host)).find((b) => b.label === label) ?? (await infoBackups(host)).at(-1)!;
  return {
    type: kind, label: entry.label, wallMs, commandMs: commandEndMs(out, "backup"),
    databaseBytes: entry.info.size, deltaBytes: entry.info.delta, repositoryBytes: entry.info.repository.size, repositoryDeltaBytes: entry.info.repository.delta,
  };
}

async function repositorySize(host: string): Promise<RepositorySize> {
  const backups = await infoBackups(host);
  const du = async (dir: string) => Number((await docker("exec", host, "du", "-sb", dir)).split(/\s+/)[0]);
  return {
    backups: backups.length, fullBackups: backups.filter((b) => b.type === "full").length,
    infoBytes: backups.reduce((a, b) => a + b.info.repository.delta, 0),
    duBytes: await du(REPO), backupDuBytes: await du(`${REPO}/backup`), archiveDuBytes: await du(`${REPO}/archive`),
  };
}

/** Samples the primary's archiver every INTERVAL ms until stopped (bounded by a count). */
function sampleArchiver(c: DeployedCluster, intervalMs: number, into: ArchiveSample[]): { stop: () => Promise<void> } {
  let stopped = false;
  const done = (async () => {
    const client = new Client({ ...pgConfig(c.outputs.hostDirectUrl!, c.outputs.caCertPem), query_timeout: 10_000 });
    client.on("error", () => undefined);
    await client.connect();
    try {
      for (let i = 0; i < 1200 && !stopped; i++) {
        const next = Date.now() + intervalMs;
        const row = (await client.query(
          "SELECT pg_walfile_name(pg_current_wal_lsn()) AS cur, last_archived_wal AS wal, extract(epoch FROM last_archived_time) * 1000 AS at, failed_count AS failed FROM pg_stat_archiver",
        )).rows[0] as { cur: string; wal: string | null; at: string | null; failed: string };
        into.push({ atMs: Date.now(), currentWal: row.cur, lastArchivedWal: row.wal ?? undefined, lastArchivedAtMs: row.at === null ? undefined : Number(row.at), failedCount: Number(row.failed) });
        await sleep(Math.max(0, next - Date.now()));
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return { stop: async () => { stopped = true; await done; } };
}

/**
 * The scheduler's first full backup (of the empty cluster), pgbench -i, a full backup, pgbench
 * traffic with the archiver sampled, a differential, two more full backups, `pgbackrest expire`
 * (the repository measured before and after), the restore drill, and a new cluster restored from
 * the repository until a query on the restored data answers. Fills options.result as it goes.
 */
export async function measureBackup(o: BackupOptions): Promise<void> {
  const { source: c, result, log } = o;
  const host = hostOf(c);
  const url = c.outputs.hostDirectUrl!;
  const ca = c.outputs.caCertPem;
  // The scheduler takes the first full backup once the stanza exists; the bench's own come after it.
  await waitFor("the scheduler's first full backup", async () => (await infoBackups(host).catch(() => [])).some((b) => b.type === "full"), 300_000, 2000);
  log("backup: the scheduler's first full backup is there");

  const init = await initPgbench(url, c.caFile, result.scale, 300_000);
  if (init.exitCode !== 0) throw new Error(`pgbench -i failed: ${init.output}`);
  result.initMs = init.wallMs;
  await sqlInContainer(c.primary, "CHECKPOINT");
  result.dataBytes = Number((await query<{ b: string }>(url, ca, "SELECT pg_database_size('app') AS b"))[0].b);
  const expectedRows = result.scale * 100_000;
  log(`backup: pgbench -i -s ${result.scale} in ${(init.wallMs / 1000).toFixed(1)} s, app database ${(result.dataBytes / MB).toFixed(0)} MB`);

  const took = (b: BackupRun) => {
    result.backups.push(b);
    const s = figureOf(b);
    log(`backup: ${b.type} ${b.label}: ${s.databaseMb.toFixed(0)} MB database, ${s.copiedMb.toFixed(0)} MB in changed files, ${s.repositoryMb.toFixed(1)} MB in the repository, ${s.seconds?.toFixed(1)} s, ${s.mbPerS?.toFixed(1)} MB/s`);
  };
  took(await takeBackup(host, "full"));

  // Traffic for the differential, with the archiver sampled every second meanwhile.
  const sampler = sampleArchiver(c, result.archive.intervalMs, result.archive.samples);
  try {
    await sleep(2000);
    result.archive.loadStartMs = Date.now();
    result.load = await runPgbench({ url, caFile: c.caFile, script: "tpcb-like", clients: o.loadClients, threads: o.threads, durationS: o.loadDurationS, connections: "persistent" });
    result.archive.loadEndMs = Date.now();
    await sleep(2000);
  } finally {
    await sampler.stop();
  }
  const lag = summarizeArchiveLag(result.archive);
  log(`backup: pgbench ${result.load.steadyTps ?? result.load.tps} tps for ${o.loadDurationS} s; archive age p50 ${((lag.ageMs?.p50 ?? NaN) / 1000).toFixed(1)} s, max ${((lag.ageMs?.max ?? NaN) / 1000).toFixed(1)} s; waiting segments max ${lag.waiting?.max ?? "n/a"}; ${lag.segmentsWritten ?? "?"} segments written`);
  took(await takeBackup(host, "diff"));
  took(await takeBackup(host, "full"));

  result.repository.beforeExpiry = await repositorySize(host);
  const t = Date.now();
  await pgbackrest(host, ["expire"]);
  result.repository.expireMs = Date.now() - t;
  result.repository.afterExpiry = await repositorySize(host);
  const [before, after] = [result.repository.beforeExpiry, result.repository.afterExpiry];
  log(`backup: expire (retention ${result.retentionFull} full) in ${(result.repository.expireMs / 1000).toFixed(1)} s: ${before.backups} -> ${after.backups} backups, info ${(before.infoBytes / MB).toFixed(1)} -> ${(after.infoBytes / MB).toFixed(1)} MB, du ${(before.duBytes / MB).toFixed(1)} -> ${(after.duBytes / MB).toFixed(1)} MB`);

  await execFileAsync("docker", ["exec", host, "/usr/local/lib/pg-ha/restore-drill.sh"], { timeout: 600_000 }).catch((e: Error) => log(`backup: restore drill exited non-zero: ${e.message.split("\n")[0]}`));
  const drill = JSON.parse(await docker("exec", host, "cat", `${REPO}/pg-ha/last-drill.json`)) as BackupResult["drill"] & object;
  result.drill = { result: drill.result, backup: drill.backup, seconds: drill.seconds, checks: drill.checks ?? {}, error: drill.error };
  log(`backup: restore drill ${drill.result} in ${drill.seconds} s (${JSON.stringify(drill.checks)})`);

  // A new cluster from the repository, to the end of the archive.
  const newest = (await infoBackups(host)).at(-1)!;
  const restoreOverrides = {
    "pg-ha:restoreFrom": JSON.stringify({ repositoryVolume: c.outputs.backupRepository!.volumeName, stanza: c.outputs.backupRepository!.stanza }),
    "pg-ha:restoreCipherPass": c.outputs.backupCipherPass!,
  };
  const start = Date.now();
  const restored = await o.deployRestored(restoreOverrides);
  const deployMs = Date.now() - start;
  let rows: number | undefined;
  await waitFor("a query on the restored data", async () => {
    rows = Number((await query<{ n: string }>(restored.outputs.hostDirectUrl!, restored.outputs.caCertPem, "SELECT count(*) AS n FROM pgbench_accounts").catch(() => [{ n: "NaN" }]))[0].n);
    return Number.isFinite(rows);
  }, 120_000, 250);
  const queryableMs = Date.now() - start;
  const logs = await execFileAsync("docker", ["logs", restored.primary], { timeout: 30_000, maxBuffer: 32 << 20 }).then((x) => `${x.stdout}${x.stderr}`, () => "");
  result.restore = { backup: newest.label, databaseBytes: newest.info.size, deployMs, queryableMs, commandMs: commandEndMs(logs, "restore"), rows, expectedRows };
  if (result.restore.commandMs === undefined) result.notes.push("the restored node's log has no \"restore command end\" line: no restore throughput from pgBackRest's own time");
  log(`backup: restored ${newest.label} into ${restored.spec.clusterName}: deployed in ${(deployMs / 1000).toFixed(1)} s, queryable after ${(queryableMs / 1000).toFixed(1)} s, pgBackRest restore ${result.restore.commandMs === undefined ? "n/a" : `${(result.restore.commandMs / 1000).toFixed(1)} s`}; ${rows} of ${expectedRows} rows`);
}
