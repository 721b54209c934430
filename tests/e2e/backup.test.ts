// Backups on the real engine with the main program (index.ts): pgBackRest's repository host takes
// the first full backup and restore drill by itself; a point-in-time restore into a new cluster
// brings back exactly what was committed before the target; a backup after a failover comes from
// the new primary; a broken backup fails the restore drill loudly; a wrong passphrase is refused.
import { execFile } from "child_process";
import { promisify } from "util";
import { deployCluster, type DeployedCluster, docker, healthOf, patroniMembers, query, removeCluster, report, sqlInContainer, waitFor } from "./support/cluster";
import { logsOf, seconds, sleep } from "./support/drill";

const execFileAsync = promisify(execFile);

jest.setTimeout(900_000);

const SOURCE = {
  "pg-ha:failover": "patroni",
  "pg-ha:clusterName": "pgha-bk",
  "pg-ha:networkSubnet": "172.30.95.0/24",
  "pg-ha:publishDirectPort": "23482",
  "pg-ha:publishPooledPort": "23483",
  "pg-ha:publishReadOnlyPort": "23484",
  "pg-ha:replicas": "1",
  "pg-ha:etcdMembers": "1",
  // The scheduler's first restore drill follows its first full backup.
  "pg-ha:restoreDrillIntervalMinutes": "10",
  "pg-ha:archiveTimeoutSeconds": "30",
  // One full backup kept: the last test sees expiry remove the older ones and their WAL.
  "pg-ha:backupRetentionFull": "1",
};

let source: DeployedCluster;
let host = "";

beforeAll(async () => {
  source = await deployCluster("dev", 18, SOURCE, "backup");
  host = source.outputs.nodes.find((n) => n.role === "backup")!.name;
  report(`backup: deployed ${source.members.length} nodes, etcd, router, repository host ${host} and PgBouncer in ${seconds(source.elapsedMs)}`);
}, 900_000);

afterAll(async () => {
  if (source && !process.env.PGHA_BK_KEEP) await removeCluster(source);
});

interface BackupInfo { label: string; type: string; timestamp: { start: number; stop: number }; archive: { start: string; stop: string }; info: { size: number; repository: { delta: number } } }

/** pgBackRest on the repository host, as postgres: what an operator runs (its environment names the stanza). */
async function pgbackrest(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileAsync("docker", ["exec", "-u", "postgres", host, "pgbackrest", ...args], { timeout: 600_000, maxBuffer: 16 << 20 });
    return { code: 0, out: `${stdout}${stderr}` };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

async function backups(): Promise<BackupInfo[]> {
  const { code, out } = await pgbackrest("--output=json", "info");
  if (code !== 0) throw new Error(`pgbackrest info failed: ${out}`);
  return (JSON.parse(out)[0]?.backup ?? []) as BackupInfo[];
}

/** The WAL the repository still holds for the current database: its first and last segment. */
async function archiveRange(): Promise<{ min: string; max: string }> {
  const { out } = await pgbackrest("--output=json", "info");
  const archive = (JSON.parse(out)[0]?.archive ?? []) as { min: string; max: string }[];
  return archive[archive.length - 1];
}

async function statusFile(name: "last-drill.json" | "last-backup.json"): Promise<Record<string, any> | undefined> {
  const text = await docker("exec", host, "sh", "-c", `cat /var/lib/pgbackrest/pg-ha/${name} 2>/dev/null || true`);
  return text ? JSON.parse(text) : undefined;
}

/** The restore drill run on demand, as the scheduler runs it: its exit code and its result file. */
async function drill(): Promise<{ code: number; output: string; result: Record<string, any> }> {
  let code = 0, output = "";
  try {
    const { stdout, stderr } = await execFileAsync("docker", ["exec", host, "/usr/local/lib/pg-ha/restore-drill.sh"], { timeout: 900_000 });
    output = `${stdout}${stderr}`;
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    code = typeof err.code === "number" ? err.code : -1;
    output = `${err.stdout ?? ""}${err.stderr ?? ""}`;
  }
  return { code, output: output.trim(), result: (await statusFile("last-drill.json"))! };
}

async function leader(cluster: DeployedCluster): Promise<{ name: string; timeline: number }> {
  let found: { name: string; timeline: number } | undefined;
  await waitFor("a running leader", async () => {
    const m = (await patroniMembers(cluster.members)).find((x) => x.role === "leader" && x.state === "running");
    found = m && { name: m.name, timeline: m.timeline! };
    return found !== undefined;
  }, 180_000, 1000);
  return found!;
}

/** Switches the primary to a new WAL segment and waits until its archiver has pushed the old one. */
async function archiveCurrentWal(cluster: DeployedCluster): Promise<string> {
  const primary = (await leader(cluster)).name;
  const segment = await sqlInContainer(primary, "SELECT pg_walfile_name(pg_switch_wal())");
  await waitFor(`${segment} archived`, async () => (await sqlInContainer(primary, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")) >= segment, 120_000, 500);
  return segment;
}

const app = (cluster: DeployedCluster) => cluster.outputs.hostDirectUrl!;

test("the repository host takes the first full backup and the first restore drill by itself; the drill passes", async () => {
  const t = Date.now();
  await waitFor("the first full backup", async () => (await backups()).some((b) => b.type === "full"), 600_000, 2000);
  const backupMs = Date.now() - t;
  await waitFor("the first restore drill", async () => (await statusFile("last-drill.json")) !== undefined, 900_000, 2000);
  const drillResult = (await statusFile("last-drill.json"))!;
  const [full] = await backups();
  const logLine = (await logsOf(host)).split("\n").find((l) => /restore drill (passed|FAILED)/.test(l));
  report(`backup: first full backup ${full.label} (${(full.info.size / 1048576).toFixed(1)} MB, ${(full.info.repository.delta / 1048576).toFixed(1)} MB in the repository, `
    + `${full.timestamp.stop - full.timestamp.start} s) ${seconds(backupMs)} after the deploy; scheduled drill: ${JSON.stringify(drillResult)}`);
  expect(drillResult).toMatchObject({ result: "passed", backup: full.label, error: null });
  expect(logLine).toMatch(/restore drill passed/);
  await waitFor(`${host} healthy`, async () => (await healthOf(host)) === "healthy", 120_000, 1000);
});

test("point-in-time recovery into a new cluster: every row before T, the table dropped after T, nothing written after T", async () => {
  const ca = source.outputs.caCertPem;
  await query(app(source), ca, "CREATE TABLE events (id int PRIMARY KEY, phase text NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())");
  await query(app(source), ca, "INSERT INTO events (id, phase) SELECT g, 'before the backup' FROM generate_series(1, 500) g");
  const diff = await pgbackrest("--type=diff", "backup");
  expect(diff.code).toBe(0);
  // Acknowledged one by one, each commit before T.
  for (let id = 501; id <= 600; id++) await query(app(source), ca, "INSERT INTO events (id, phase) VALUES ($1, 'after the backup')", [id]);
  const [{ t }] = await query<{ t: Date }>(app(source), ca, "SELECT clock_timestamp() AS t");
  const target = t.toISOString();
  await sleep(1_500);
  await query(app(source), ca, "DROP TABLE events");
  await query(app(source), ca, "CREATE TABLE after_target AS SELECT 1 AS x");
  const archived = await archiveCurrentWal(source);
  const labelsBefore = (await backups()).map((b) => b.label);

  const restoredAt = Date.now();
  const restored = await deployCluster("dev", 18, {
    "pg-ha:failover": "patroni",
    "pg-ha:clusterName": "pgha-bkr",
    "pg-ha:networkSubnet": "172.30.97.0/24",
    "pg-ha:publishDirectPort": "23492",
    "pg-ha:publishPooledPort": "23493",
    "pg-ha:publishReadOnlyPort": "23494",
    "pg-ha:replicas": "0",
    "pg-ha:etcdMembers": "1",
    "pg-ha:restoreDrillIntervalMinutes": "0",
    "pg-ha:restoreFrom": JSON.stringify({ repositoryVolume: source.outputs.backupRepository!.volumeName, stanza: source.outputs.backupRepository!.stanza, targetTime: target }),
    "pg-ha:restoreCipherPass": source.outputs.backupCipherPass!,
  }, "backup-restored");
  try {
    const deployMs = Date.now() - restoredAt;
    const rca = restored.outputs.caCertPem;
    const rows = await query<{ phase: string; n: number; last: Date }>(app(restored), rca,
      "SELECT phase, count(*)::int AS n, max(written_at) AS last FROM events GROUP BY phase ORDER BY phase");
    const [{ after }] = await query<{ after: string | null }>(app(restored), rca, "SELECT to_regclass('after_target')::text AS after");
    const [{ ids }] = await query<{ ids: number }>(app(restored), rca, "SELECT count(DISTINCT id)::int AS ids FROM events WHERE id BETWEEN 1 AND 600");
    report(`backup: PITR to ${target} (WAL archived through ${archived}) into pgha-bkr deployed and queryable in ${seconds(deployMs)}: ${JSON.stringify(rows)}, after_target ${after ?? "absent"}`);
    expect(rows.map((r) => [r.phase, r.n])).toEqual([["after the backup", 100], ["before the backup", 500]]);
    expect(ids).toBe(600);
    expect(rows.every((r) => r.last.getTime() <= t.getTime())).toBe(true);
    expect(after).toBeNull();
    // The source is untouched: its table stays dropped, its repository holds the same backups.
    const [{ dropped }] = await query<{ dropped: string | null }>(app(source), ca, "SELECT to_regclass('events')::text AS dropped");
    expect(dropped).toBeNull();
    expect((await backups()).map((b) => b.label)).toEqual(labelsBefore);

    // A wrong passphrase: the node's restore refuses and says which setting is wrong.
    const node = restored.members[0];
    const passFile = "/run/pg-ha/restore-source.d/cipher.conf";
    await docker("exec", node, "sh", "-c", `cp -p ${passFile} ${passFile}.right && printf '[global]\\nrepo1-cipher-pass=not-the-passphrase\\n' > ${passFile}`);
    let refusal = "";
    let code = 0;
    try {
      await execFileAsync("docker", ["exec", "-u", "postgres", "-e", "PGDATA=/tmp/wrong-passphrase", node, "/usr/local/lib/pg-ha/patroni-restore.sh",
        `--stanza=${source.spec.clusterName}`, "--type=default"], { timeout: 300_000 });
    } catch (e) {
      const err = e as { code?: number; stderr?: string };
      code = err.code ?? -1;
      refusal = err.stderr ?? "";
    } finally {
      await docker("exec", node, "sh", "-c", `mv ${passFile}.right ${passFile}`);
    }
    const lines = refusal.split("\n").filter((l) => /ERROR|pg-ha:/.test(l)).map((l) => l.trim());
    report(`backup: restore with a wrong passphrase: exit ${code}: ${lines.join(" / ")}`);
    expect(code).toBe(1);
    expect(refusal).toMatch(/ERROR: \[075\]: no backup set found to restore/);
    expect(refusal).toMatch(/pg-ha: the repository of pg-ha:restoreFrom cannot be read with pg-ha:restoreCipherPass/);
    expect(await docker("exec", node, "sh", "-c", "ls -A /tmp/wrong-passphrase 2>/dev/null | wc -l")).toBe("0");
  } finally {
    if (!process.env.PGHA_BK_KEEP) await removeCluster(restored);
  }
});

test("after a failover, the new primary archives WAL and the next backup is taken from it", async () => {
  const before = await leader(source);
  await docker("kill", before.name);
  let after: { name: string; timeline: number };
  try {
    await waitFor("a new leader", async () => {
      const m = (await patroniMembers(source.members.filter((n) => n !== before.name))).find((x) => x.role === "leader" && x.state === "running");
      return m !== undefined && m.name !== before.name;
    }, 180_000, 1000);
    after = await leader(source);
    await query(app(source), source.outputs.caCertPem, "CREATE TABLE after_failover AS SELECT g AS id FROM generate_series(1, 1000) g");
    const segment = await archiveCurrentWal(source);
    const t = Date.now();
    const run = await pgbackrest("--type=diff", "backup");
    const newest = (await backups()).at(-1)!;
    report(`backup: ${before.name} killed, ${after.name} leads on timeline ${after.timeline}; it archived ${segment}; diff backup ${newest.label} in ${seconds(Date.now() - t)}, WAL ${newest.archive.start}..${newest.archive.stop}`);
    expect(run.code).toBe(0);
    expect(after.timeline).toBeGreaterThan(before.timeline);
    // A WAL file name starts with its timeline: the backup began on the new primary's.
    expect(parseInt(newest.archive.start.slice(0, 8), 16)).toBe(after.timeline);
    expect(parseInt(segment.slice(0, 8), 16)).toBe(after.timeline);
  } finally {
    await docker("start", before.name);
  }
  await waitFor(`${before.name} streaming again`, async () => (await patroniMembers(source.members)).some((m) => m.name === before.name && m.state === "streaming"), 300_000, 2000);
});

test("a broken backup fails the restore drill loudly (exit code, result file, log, health); the next good backup passes", async () => {
  const newest = (await backups()).at(-1)!;
  // The largest data file of the newest backup (not its manifest, which has a copy), 4 KiB overwritten in its middle.
  const [size, file] = (await docker("exec", host, "sh", "-c",
    `find /var/lib/pgbackrest/backup/${source.spec.clusterName}/${newest.label} -type f ! -name 'backup.manifest*' -printf '%s %p\\n' | sort -n | tail -1`)).split(" ");
  await docker("exec", "-u", "postgres", host, "dd", "if=/dev/urandom", `of=${file}`, "bs=4096", "count=1", `seek=${Math.floor(Number(size) / 2 / 4096)}`, "conv=notrunc", "status=none");
  const broken = await drill();
  report(`backup: ${newest.label} broken (${file}, ${size} bytes): drill exit ${broken.code}, ${JSON.stringify(broken.result)}`);
  expect(broken.code).toBe(1);
  expect(broken.result).toMatchObject({ result: "failed", backup: newest.label });
  expect(String(broken.result.error)).toMatch(/restore/);
  expect(broken.output).toMatch(/restore drill FAILED/);
  await waitFor(`${host} unhealthy`, async () => (await healthOf(host)) === "unhealthy", 120_000, 1000);

  const before = await backups();
  const full = await pgbackrest("--type=full", "backup");
  expect(full.code).toBe(0);
  // Expiry after the backup: one full kept (backupRetentionFull 1), the older backups and the WAL only they needed gone.
  const after = await backups();
  const archive = await archiveRange();
  report(`backup: retention 1: ${before.length} backups (${before.map((b) => b.label).join(", ")}) -> ${after.length} after a new full (${after.map((b) => b.label).join(", ")}); archive now ${archive.min}..${archive.max}`);
  expect(after).toHaveLength(1);
  expect(after[0].type).toBe("full");
  expect(before.map((b) => b.label)).not.toContain(after[0].label);
  // WAL file names sort by timeline, then position: nothing older than the kept backup's start is left.
  expect(archive.min >= after[0].archive.start).toBe(true);
  const good = await drill();
  report(`backup: a new full backup, then the drill: exit ${good.code}, ${JSON.stringify(good.result)}`);
  expect(good.code).toBe(0);
  expect(good.result).toMatchObject({ result: "passed", error: null });
  await waitFor(`${host} healthy again`, async () => (await healthOf(host)) === "healthy", 120_000, 1000);
});
