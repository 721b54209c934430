// Backup faults on the real engine with the main program (index.ts): the pgBackRest repository
// host killed in the middle of a full backup, and its repository volume full. In both a writer
// commits one id per transaction through hostPooledUrl the whole time; every acknowledged row is
// checked on every node afterwards. The primary must keep serving, archiving must fail loudly and
// catch up afterwards, and the repository must hold nothing broken.
import { type DeployedCluster, deployCluster, docker, query, removeCluster, report, waitFor } from "./support/cluster";
import { archivedThrough, archiverOf, BackupHost, leaderOf, switchWal, waitArchived } from "./support/backup-host";
import { Ledger, logsOf, run, seconds, sleep, type Writer } from "./support/drill";
import { cleanupLeftovers } from "./executor";

jest.setTimeout(1_800_000);

const COMMON = {
  "pg-ha:failover": "patroni",
  "pg-ha:replicas": "1",
  "pg-ha:etcdMembers": "1",
  // The drills run the restore drill themselves.
  "pg-ha:restoreDrillIntervalMinutes": "0",
  "pg-ha:archiveTimeoutSeconds": "30",
};

/** Every acknowledged row on every node; returns how many were checked. */
async function verifyEverywhere(cluster: DeployedCluster, ledger: Ledger): Promise<number> {
  let rows = 0;
  for (const node of cluster.members) rows = (await ledger.verifyOn(node, 120_000)).rows;
  return rows;
}

const oneLine = (text: string) => text.split("\n").map((l) => l.trim()).filter(Boolean).join(" / ");

/** `pgbackrest --output=text --verbose verify` passed: stanza ok, each backup valid, no file missing or invalid. */
function expectVerified(verify: { code: number; out: string }, labels: string[]): void {
  expect(verify.code).toBe(0);
  expect(verify.out).toMatch(/status: ok/);
  for (const label of labels) expect(verify.out).toMatch(new RegExp(`backup: ${label}, status: valid`));
  const counts = [...verify.out.matchAll(/missing: (\d+), checksum invalid: (\d+), size invalid: (\d+), other: (\d+)/g)];
  expect(counts.length).toBe(labels.length + 1);
  expect(counts.map((m) => m.slice(1).join(","))).toEqual(counts.map(() => "0,0,0,0"));
}

const firstLines = (text: string, pattern: RegExp, n = 3) => text.split("\n").map((l) => l.trim()).filter((l) => pattern.test(l)).slice(0, n);

describe("the repository host killed mid-backup", () => {
  let cluster: DeployedCluster;
  let host: BackupHost;
  let ledger: Ledger;

  beforeAll(async () => {
    cluster = await deployCluster("dev", 18, {
      ...COMMON,
      "pg-ha:clusterName": "pgha-bf",
      "pg-ha:networkSubnet": "172.30.98.0/24",
      "pg-ha:publishDirectPort": "23502",
      "pg-ha:publishPooledPort": "23503",
      "pg-ha:publishReadOnlyPort": "23504",
    }, "backup-faults-kill");
    host = BackupHost.of(cluster);
    ledger = new Ledger(cluster.outputs.hostPooledUrl!, cluster.outputs.caCertPem);
    await ledger.create();
    report(`backup-faults: pgha-bf deployed in ${seconds(cluster.elapsedMs)}; repository host ${host.name}`);
  }, 900_000);

  afterAll(async () => {
    if (cluster && !process.env.PGHA_BF_KEEP) await removeCluster(cluster);
  });

  test("the repository host killed mid-backup: the primary keeps serving; the next backup succeeds and nothing in the repository is corrupt", async () => {
    const stanza = cluster.outputs.backupRepository!.stanza;
    const first = await host.firstFullBackup();
    // Enough data that a full backup takes seconds: about 150 MB, half of it compressible.
    const t0 = Date.now();
    await query(cluster.outputs.hostDirectUrl!, cluster.outputs.caCertPem,
      "CREATE TABLE bulk AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS pad FROM generate_series(1, 1500000) g");
    const [{ size }] = await query<{ size: string }>(cluster.outputs.hostDirectUrl!, cluster.outputs.caCertPem, "SELECT pg_size_pretty(pg_database_size(current_database())) AS size");
    report(`backup-faults: first scheduled full backup ${first.label}; bulk table written in ${seconds(Date.now() - t0)}, database ${size}`);

    const primary = await leaderOf(cluster);
    const writer = ledger.startWriter("repository host killed mid-backup", 50, 1_500_000);
    try {
      await waitFor("writes before the fault", async () => writer.acknowledged >= 20, 60_000, 100);
      const archiverBefore = await archiverOf(primary);

      // The backup, as an operator starts it; the kill ends its docker exec.
      const backupStarted = Date.now();
      const killedBackup = host.pgbackrest(["--type=full", "backup"]);
      // Running: its process is there and its directory (no final manifest yet) has grown past 4 MB.
      let inProgress = "";
      await waitFor("the full backup copying files", async () => {
        const { out } = await host.sh(`pgrep -f -x 'pgbackrest --type=full backup' >/dev/null || exit 0
          for d in /var/lib/pgbackrest/backup/${stanza}/*F; do [ -d "$d" ] && [ ! -f "$d/backup.manifest" ] && du -sb "$d"; done; true`);
        const [bytes, dir] = out.split(/\s+/);
        inProgress = dir ?? "";
        return Number(bytes) >= 4 << 20;
      }, 300_000, 250);
      const copied = (await host.sh(`du -sb ${inProgress} | cut -f1`)).out;
      await docker("kill", host.name);
      const killedAt = Date.now();
      const ackedAtKill = writer.acknowledged;
      const killed = await killedBackup;
      report(`backup-faults: full backup killed ${seconds(killedAt - backupStarted)} after it started, ${(Number(copied) / 1048576).toFixed(1)} MB in ${inProgress}; `
        + `its docker exec: exit ${killed.code}, last line ${JSON.stringify(killed.out.split("\n").at(-1))}`);
      expect(killed.code).not.toBe(0);
      expect(await host.health()).toMatch(/^exited/);

      // Down for 20 s while the primary writes and switches WAL: archiving must fail, not the writes.
      await sleep(10_000);
      const whileDown = await switchWal(primary);
      await sleep(10_000);
      const ackedWhileDown = writer.acknowledged - ackedAtKill;
      const archiverDown = await archiverOf(primary);
      await docker("start", host.name);
      const startedAt = Date.now();
      await waitFor(`${host.name} healthy`, async () => (await host.health()) === "running healthy", 300_000, 1000);
      const healthyMs = Date.now() - startedAt;

      // Archiving catches up: a segment switched after the restart reaches the repository.
      const afterRestart = await switchWal(primary);
      const caughtUpMs = await waitArchived(primary, afterRestart, 300_000);
      const archiverAfter = await archiverOf(primary);
      report(`backup-faults: ${host.name} down ${seconds(startedAt - killedAt)}: ${ackedWhileDown} writes acknowledged meanwhile, writer errors ${writer.errors.length}; `
        + `archiver before ${JSON.stringify(archiverBefore)}, while down (switched ${whileDown}) ${JSON.stringify(archiverDown)}; started, healthy after ${seconds(healthyMs)}; `
        + `${afterRestart} archived ${seconds(caughtUpMs)} after its switch: ${JSON.stringify(archiverAfter)} (failed_count +${archiverAfter.failed - archiverBefore.failed})`);
      expect(ackedWhileDown).toBeGreaterThan(0);
      expect(archivedThrough(archiverAfter, afterRestart)).toBe(true);

      // The next full backup succeeds; pgBackRest says what it did with the killed one.
      const t = Date.now();
      const next = await host.pgbackrest(["--type=full", "backup"]);
      const nextMs = Date.now() - t;
      const backups = await host.backups();
      const newest = backups.at(-1)!;
      report(`backup-faults: next full backup exit ${next.code} in ${seconds(nextMs)}, ${newest.label} (${(newest.info.size / 1048576).toFixed(1)} MB, `
        + `${(newest.info.repository.delta / 1048576).toFixed(1)} MB stored); about the killed one: ${JSON.stringify(firstLines(next.out, /WARN|resum|invalid|remov/i, 4))}`);
      expect(next.code).toBe(0);
      expect(newest.type).toBe("full");
      expect(newest.label).not.toBe(first.label);

      const verify = await host.pgbackrest(["--log-level-console=warn", "--output=text", "--verbose", "verify"]);
      report(`backup-faults: pgbackrest verify: exit ${verify.code}: ${oneLine(verify.out)}`);
      expectVerified(verify, [first.label, newest.label]);

      const info = await host.info();
      const leftovers = (await host.sh(`ls /var/lib/pgbackrest/backup/${stanza}`)).out.split("\n").filter((n) => /^\d{8}-\d{6}F/.test(n));
      report(`backup-faults: pgbackrest info: status ${JSON.stringify(info.status)}, backups ${JSON.stringify(info.backup.map((b) => ({ label: b.label, type: b.type, error: b.error ?? false })))}; backup directories ${JSON.stringify(leftovers)}`);
      expect(info.status.code).toBe(0);
      expect(info.backup.every((b) => b.error !== true)).toBe(true);
      expect(info.backup.map((b) => b.label)).toEqual(leftovers);

      const drill = await host.restoreDrill();
      report(`backup-faults: restore drill: exit ${drill.code}, ${JSON.stringify(drill.result)}`);
      expect(drill.code).toBe(0);
      expect(drill.result).toMatchObject({ result: "passed", backup: newest.label, error: null });
    } finally {
      await writer.stop();
      if ((await host.health().catch(() => "")).startsWith("exited")) await docker("start", host.name);
    }
    const rows = await verifyEverywhere(cluster, ledger);
    report(`backup-faults: writer acknowledged ${writer.acknowledged}, errors ${writer.errors.length} ${JSON.stringify(writer.errors.slice(0, 3))}; ${rows} acknowledged rows on every node`);
    expect(writer.errors).toEqual([]);
  });
});

describe("the repository volume full", () => {
  const CLUSTER = "pgha-bg";
  const VOLUME = `${CLUSTER}-backup-repo`;
  const SIZE_MB = 48;
  let cluster: DeployedCluster;
  let host: BackupHost;
  let ledger: Ledger;

  beforeAll(async () => {
    // A small tmpfs in place of the repository volume, created before the deploy: the program's
    // volume of the same name must adopt it. A crashed earlier run's objects go first.
    await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${CLUSTER}`] });
    await run("docker", ["volume", "rm", "-f", VOLUME]);
    await docker("volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
      "--opt", `o=size=${SIZE_MB}m,uid=999,gid=999`, VOLUME);
    cluster = await deployCluster("dev", 18, {
      ...COMMON,
      "pg-ha:clusterName": CLUSTER,
      "pg-ha:networkSubnet": "172.30.99.0/24",
      "pg-ha:publishDirectPort": "23512",
      "pg-ha:publishPooledPort": "23513",
      "pg-ha:publishReadOnlyPort": "23514",
    }, "backup-faults-full");
    host = BackupHost.of(cluster);
    ledger = new Ledger(cluster.outputs.hostPooledUrl!, cluster.outputs.caCertPem);
    await ledger.create();
    report(`backup-faults: ${CLUSTER} deployed in ${seconds(cluster.elapsedMs)}; repository host ${host.name}`);
  }, 900_000);

  afterAll(async () => {
    if (process.env.PGHA_BF_KEEP) return;
    if (cluster) await removeCluster(cluster);
    await run("docker", ["volume", "rm", "-f", VOLUME]);
  });

  test("the repository volume full: archiving fails loudly, the primary keeps serving, and recovers when space returns", async () => {
    const repo = "/var/lib/pgbackrest";
    // The program adopted the tmpfs volume (the engine returns an existing volume of the same name).
    const mounted = await docker("inspect", "-f", `{{range .Mounts}}{{if eq .Destination "${repo}"}}{{.Name}}{{end}}{{end}}`, host.name);
    const fsType = (await host.sh(`stat -f -c %T ${repo}`)).out;
    expect([mounted, fsType]).toEqual([VOLUME, "tmpfs"]);
    const first = await host.firstFullBackup();
    const df = async () => {
      const [size, used, free] = (await host.sh(`df -k --output=size,used,avail ${repo} | tail -1`)).out.trim().split(/\s+/).map((k) => (Number(k) / 1024).toFixed(1));
      return `${size} MB, ${used} MB used, ${free} MB free`;
    };
    report(`backup-faults: ${host.name} mounts ${mounted} (${fsType}); first full backup ${first.label} (${(first.info.repository.delta / 1048576).toFixed(1)} MB stored); repository: ${await df()}`);

    const primary = await leaderOf(cluster);
    const writer: Writer = ledger.startWriter("repository volume full", 50, 1_200_000);
    try {
      await waitFor("writes before the fault", async () => writer.acknowledged >= 20, 60_000, 100);
      const archiverBefore = await archiverOf(primary);

      // Filled by postgres, who owns the repository, until the filesystem refuses.
      const fill = await host.sh(`dd if=/dev/zero of=${repo}/filler bs=1M count=${SIZE_MB * 2} 2>&1`);
      const filledAt = Date.now();
      const filledUnix = Math.floor(filledAt / 1000) - 1;
      const ackedAtFill = writer.acknowledged;
      report(`backup-faults: filler: dd exit ${fill.code}: ${JSON.stringify(firstLines(fill.out, /\S/, 1))}; repository: ${await df()}`);
      expect(fill.code).not.toBe(0);
      expect(fill.out).toMatch(/No space left on device/);

      // WAL to archive: the writer's, and a switch every 5 s until the archiver has failed 3 times.
      let switches = 0;
      await waitFor("archive failures", async () => {
        await switchWal(primary);
        switches++;
        return (await archiverOf(primary)).failed >= archiverBefore.failed + 3;
      }, 300_000, 5000);
      const archiverFull = await archiverOf(primary);
      const nodeLog = await logsOf(primary, filledUnix);
      const failures = firstLines(nodeLog, /archive command failed/, 1);
      // pgBackRest's error and the lines that carry its cause.
      const errorAt = nodeLog.split("\n").findIndex((l) => /ERROR: \[\d+\]/.test(l));
      const pgbackrestError = errorAt < 0 ? "" : oneLine(nodeLog.split("\n").slice(errorAt, errorAt + 3).join("\n"));
      const check = await host.pgbackrest(["--archive-timeout=30", "check"], 300_000);
      const infoText = await host.pgbackrest(["info"], 300_000);
      const ackedWhileFull = writer.acknowledged - ackedAtFill;
      const fullForMs = Date.now() - filledAt;
      report(`backup-faults: volume full for ${seconds(fullForMs)}, ${switches} WAL switches: archiver before ${JSON.stringify(archiverBefore)}, now ${JSON.stringify(archiverFull)}; `
        + `${ackedWhileFull} writes acknowledged meanwhile, writer errors ${writer.errors.length}`);
      report(`backup-faults: ${primary}'s log: ${JSON.stringify(failures)} ${JSON.stringify(pgbackrestError)}`);
      report(`backup-faults: ${host.name}: pgbackrest check exit ${check.code}: ${JSON.stringify(firstLines(check.out, /ERROR|HINT/, 3))}; `
        + `pgbackrest info: ${JSON.stringify(firstLines(infoText.out, /status|wal archive/, 3))}`);
      expect(archiverFull.failed).toBeGreaterThan(archiverBefore.failed);
      expect(failures).toHaveLength(1);
      expect(pgbackrestError).toMatch(/No space left on device/);
      expect(ackedWhileFull).toBeGreaterThan(0);
      expect(writer.errors).toEqual([]);
      expect(check.code).not.toBe(0);

      // Space returns: archiving catches up and stops failing; a backup succeeds.
      await host.sh(`rm -f ${repo}/filler`);
      const freedAt = Date.now();
      const segment = await switchWal(primary);
      const caughtUpMs = await waitArchived(primary, segment, 300_000);
      const caughtUp = await archiverOf(primary);
      const next = await switchWal(primary);
      await waitArchived(primary, next, 120_000);
      await sleep(10_000);
      const settled = await archiverOf(primary);
      report(`backup-faults: filler removed (${await df()}); ${segment} archived ${seconds(caughtUpMs)} after its switch: ${JSON.stringify(caughtUp)}; `
        + `after one more switch and 10 s: ${JSON.stringify(settled)}`);
      expect(archivedThrough(caughtUp, segment)).toBe(true);
      expect(settled.failed).toBe(caughtUp.failed);
      expect(archivedThrough(settled, next)).toBe(true);

      const checkAfter = await host.pgbackrest(["check"], 300_000);
      const t = Date.now();
      const backup = await host.pgbackrest(["--type=full", "backup"]);
      const newest = (await host.backups()).at(-1)!;
      const verify = await host.pgbackrest(["--log-level-console=warn", "--output=text", "--verbose", "verify"]);
      report(`backup-faults: recovered ${seconds(Date.now() - freedAt)} after the filler went: check exit ${checkAfter.code}; full backup exit ${backup.code} in ${seconds(Date.now() - t)}, `
        + `${newest.label} (${(newest.info.repository.delta / 1048576).toFixed(1)} MB stored); repository: ${await df()}; verify exit ${verify.code}: ${oneLine(verify.out)}`);
      expect(checkAfter.code).toBe(0);
      expect(backup.code).toBe(0);
      expect(newest).toMatchObject({ type: "full" });
      expect(newest.label).not.toBe(first.label);
      expectVerified(verify, [first.label, newest.label]);
    } finally {
      await writer.stop();
      await host.sh(`rm -f ${repo}/filler`);
    }
    const rows = await verifyEverywhere(cluster, ledger);
    report(`backup-faults: writer acknowledged ${writer.acknowledged}, errors ${writer.errors.length}; ${rows} acknowledged rows on every node`);
    expect(writer.errors).toEqual([]);
  });
});
