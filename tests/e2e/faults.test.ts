/**
 * Fault drills: what the cluster survives. Each drill writes rows before the fault and keeps a
 * client writing through PgBouncer during it; afterwards every row whose commit was acknowledged
 * must be on the primary and on every replica (the ledger, support/drill.ts). Each drill prints
 * its time to recover and the rows it checked.
 */
import { Client } from "pg";
import {
  allStreaming, type DeployedCluster, docker, healthOf, pgConfig, removeCluster, replicationState, report, sqlInContainer, waitFor,
} from "./support/cluster";
import {
  DRILLS, containerIp, deployDrill, killMainProcess, Ledger, logsOf, restartCount, seconds, sleep, stateOf,
} from "./support/drill";

jest.setTimeout(180_000);

/** "16/B374D848" -> bytes. */
function lsn(text: string): bigint {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/** Checks the ledger on the primary and every replica; returns the rows checked per node. */
async function verifyEverywhere(cluster: DeployedCluster, ledger: Ledger, drill: string): Promise<number> {
  const checked: string[] = [];
  let rows = 0;
  for (const node of [cluster.primary, ...cluster.replicas]) {
    const result = await ledger.verifyOn(node, 60_000);
    rows = result.rows;
    checked.push(`${node.replace(`${cluster.spec.clusterName}-`, "")} ${result.ms} ms`);
  }
  report(`${drill}: ${rows} acknowledged rows present on ${checked.length} nodes (${ledger.inDoubt.length} in doubt); waited ${checked.join(", ")}`);
  return rows;
}

async function untilHealthy(container: string, timeoutMs: number): Promise<number> {
  return waitFor(`${container} running and healthy`, async () => (await stateOf(container)) === "running healthy", timeoutMs, 100);
}

async function pooledClient(cluster: DeployedCluster): Promise<Client> {
  const client = new Client({ ...pgConfig(cluster.outputs.hostPooledUrl!, cluster.outputs.caCertPem), query_timeout: 40_000 });
  client.on("error", () => undefined); // a killed PgBouncer is reported by the next query
  await client.connect();
  return client;
}

describe("faults on a running cluster (dev shape with 2 replicas, PostgreSQL 18)", () => {
  const shape = DRILLS.faults;
  let cluster: DeployedCluster;
  let ledger: Ledger;

  beforeAll(async () => {
    cluster = await deployDrill(shape);
    ledger = new Ledger(cluster.outputs.hostPooledUrl!, cluster.outputs.caCertPem);
    await ledger.create();
    await waitFor("replicas streaming", () => allStreaming(cluster), 30_000);
    report(`faults: cluster ${shape.clusterName} up in ${seconds(cluster.elapsedMs)} with ${cluster.replicas.length} replicas`);
  }, 300_000);

  afterAll(async () => {
    if (cluster) await removeCluster(cluster);
  }, 300_000);

  test("the primary restarts: the replicas reconnect and catch up, pooled clients recover, nothing acknowledged is lost", async () => {
    await ledger.writeBatch("before the primary restarts", 1000);
    const held = await pooledClient(cluster);
    await held.query("SELECT 1");
    const writer = ledger.startWriter("while the primary restarts");
    await waitFor("writer running", async () => writer.acknowledged >= 5, 10_000, 50);

    const start = Date.now();
    await docker("restart", cluster.primary);
    const restarted = Date.now();
    await untilHealthy(cluster.primary, 120_000);
    const healthyMs = Date.now() - start;
    await writer.ackedAfter(restarted, 60_000);
    const writesMs = writer.lastAckAt - start;
    // The client connected to PgBouncer before the restart goes on on the same connection.
    expect((await held.query("SELECT 2 AS two")).rows).toEqual([{ two: 2 }]);
    await waitFor("replicas streaming after the restart", () => allStreaming(cluster), 60_000, 100);
    const streamingMs = Date.now() - start;
    await writer.stop();
    await held.end();

    const rows = await verifyEverywhere(cluster, ledger, "primary restart");
    expect(rows).toBeGreaterThan(1000);
    report(`primary restart: healthy after ${seconds(healthyMs)}, pooled writes acknowledged again after ${seconds(writesMs)}, `
      + `both replicas streaming after ${seconds(streamingMs)}; the held pooled session survived; writer: ${writer.acknowledged} acknowledged, ${writer.errors.length} errors`);
  });

  test("the primary's postmaster is killed with SIGKILL: the restart policy brings it back, crash recovery keeps every acknowledged write", async () => {
    await ledger.writeBatch("before the postmaster is killed", 1000);
    const writer = ledger.startWriter("while the postmaster is killed");
    await waitFor("writer running", async () => writer.acknowledged >= 5, 10_000, 50);
    const restartsBefore = await restartCount(cluster.primary);

    const start = Date.now();
    await killMainProcess(cluster.primary);
    // Docker restarts it by itself (restart: unless-stopped); nothing here starts it.
    await waitFor("the restart policy restarting the primary", async () => (await restartCount(cluster.primary)) === restartsBefore + 1, 30_000, 100);
    await untilHealthy(cluster.primary, 120_000);
    const recoveredMs = Date.now() - start;
    await writer.ackedAfter(start + recoveredMs, 60_000);
    const writesMs = writer.lastAckAt - start;
    await waitFor("replicas streaming after the crash", () => allStreaming(cluster), 60_000, 100);
    const streamingMs = Date.now() - start;
    await writer.stop();

    // The start-up script's bootstrap server found a crashed data directory and recovered it.
    const bootstrapLog = await docker("exec", cluster.primary, "cat", "/run/pg-ha/bootstrap.log");
    expect(bootstrapLog).toContain("database system was interrupted");
    expect(bootstrapLog).toContain("redo done at");
    const rows = await verifyEverywhere(cluster, ledger, "postmaster SIGKILL");
    expect(rows).toBeGreaterThan(2000);
    report(`postmaster SIGKILL: restarted by the restart policy and healthy after ${seconds(recoveredMs)}, pooled writes acknowledged again after ${seconds(writesMs)}, `
      + `replicas streaming after ${seconds(streamingMs)}; writer: ${writer.acknowledged} acknowledged, ${writer.errors.length} errors`);
  });

  test("a replica stopped while writes continue catches up from its slot when started", async () => {
    const replica = cluster.replicas[0];
    await ledger.writeBatch("before replica-1 stops", 1000);
    // A fresh segment, so the outage's WAL stays in one unarchived segment: it can come only from the slot.
    await sqlInContainer(cluster.primary, "SELECT pg_switch_wal()");
    await ledger.verifyOn(replica, 15_000);
    await docker("stop", replica);
    const stoppedAt = await sqlInContainer(cluster.primary, "SELECT pg_current_wal_lsn()");
    const slotBefore = await sqlInContainer(cluster.primary, "SELECT active, restart_lsn, wal_status FROM pg_replication_slots WHERE slot_name = 'replica_1'");
    expect(slotBefore).toMatch(/^f\|[0-9A-F]+\/[0-9A-F]+\|reserved$/);

    const writer = ledger.startWriter("while replica-1 is stopped");
    await ledger.writeBatch("while replica-1 is stopped", 20_000);
    await sleep(2_000);
    await writer.stop();
    // While it is away the slot holds its place: inactive, same restart_lsn, WAL still reserved.
    expect(await sqlInContainer(cluster.primary, "SELECT active, restart_lsn, wal_status FROM pg_replication_slots WHERE slot_name = 'replica_1'")).toBe(slotBefore);
    const behind = await sqlInContainer(cluster.primary, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${stoppedAt}')`);

    const since = Math.floor(Date.now() / 1000) - 1;
    const start = Date.now();
    await docker("start", replica);
    await waitFor("replica-1 streaming", () => allStreaming(cluster), 60_000, 100);
    const streamingMs = Date.now() - start;
    const caughtUp = await ledger.verifyOn(replica, 60_000);
    const caughtUpMs = Date.now() - start;
    // It resumed streaming at or before the point it stopped at: the outage's WAL came from the slot.
    const started = /started streaming WAL from primary at ([0-9A-F]+\/[0-9A-F]+)/.exec(await logsOf(replica, since));
    expect(started).not.toBeNull();
    expect(lsn(started![1]) <= lsn(stoppedAt)).toBe(true);

    await verifyEverywhere(cluster, ledger, "replica stopped");
    report(`replica stopped: ${(Number(behind) / 1048576).toFixed(1)} MB of WAL behind; streaming ${seconds(streamingMs)} after start (from ${started![1]}, stopped at ${stoppedAt}), `
      + `all ${caughtUp.rows} acknowledged rows on it after ${seconds(caughtUpMs)}; writer: ${writer.acknowledged} acknowledged, ${writer.errors.length} errors`);
  });

  test("a replica cut off from the network resumes streaming when reconnected, and receives what was written meanwhile", async () => {
    const replica = cluster.replicas[1];
    const network = cluster.outputs.networkName;
    const address = await containerIp(replica, network);
    await docker("network", "disconnect", network, replica);
    let reconnected = false;
    try {
      const writer = ledger.startWriter("while replica-2 is disconnected");
      await ledger.writeBatch("while replica-2 is disconnected", 1000);
      await sleep(3_000);
      // The cut is real: what the primary committed meanwhile has not reached the replica.
      expect(await sqlInContainer(replica, "SELECT count(*) FROM drill_ledger WHERE phase = 'while replica-2 is disconnected'", "app")).toBe("0");
      await sleep(3_000);
      await writer.stop();

      const start = Date.now();
      // Same address and alias, as after a network blip.
      await docker("network", "connect", "--ip", address, "--alias", replica, network, replica);
      reconnected = true;
      const caughtUp = await ledger.verifyOn(replica, 90_000);
      const caughtUpMs = Date.now() - start;
      await waitFor("replica-2 streaming", () => allStreaming(cluster), 90_000, 100);
      const streamingMs = Date.now() - start;
      await verifyEverywhere(cluster, ledger, "replica disconnected");
      report(`replica disconnected for ~6 s: ${caughtUp.rows} acknowledged rows on it ${seconds(caughtUpMs)} after reconnecting, streaming after ${seconds(streamingMs)}; `
        + `writer: ${writer.acknowledged} acknowledged, ${writer.errors.length} errors`);
    } finally {
      if (!reconnected) await docker("network", "connect", "--ip", address, "--alias", replica, network, replica).catch(() => undefined);
    }
  });

  test("PgBouncer is killed: the restart policy brings it back and clients reconnect", async () => {
    await ledger.writeBatch("before PgBouncer is killed", 1000);
    const held = await pooledClient(cluster);
    await held.query("SELECT 1");
    const writer = ledger.startWriter("while PgBouncer is killed");
    await waitFor("writer running", async () => writer.acknowledged >= 5, 10_000, 50);
    const restartsBefore = await restartCount(cluster.pgbouncer);

    const start = Date.now();
    await killMainProcess(cluster.pgbouncer);
    // A session on the killed process is gone; its client sees an error, not a hang.
    await expect(held.query("SELECT 1")).rejects.toThrow();
    const killedSeen = Date.now();
    await waitFor("the restart policy restarting PgBouncer", async () => (await restartCount(cluster.pgbouncer)) === restartsBefore + 1, 30_000, 100);
    await waitFor("a new pooled connection", async () => {
      const c = await pooledClient(cluster);
      try {
        return (await c.query("SELECT 1 AS ok")).rows[0].ok === 1;
      } finally {
        await c.end();
      }
    }, 60_000, 100);
    const newClientMs = Date.now() - start;
    // The writer reconnects by itself: an acknowledgement after the kill comes from the new process.
    await writer.ackedAfter(killedSeen, 60_000);
    const writesMs = writer.lastAckAt - start;
    await untilHealthy(cluster.pgbouncer, 60_000);
    await writer.stop();
    await held.end().catch(() => undefined);

    const rows = await verifyEverywhere(cluster, ledger, "PgBouncer SIGKILL");
    expect(rows).toBeGreaterThan(5000);
    report(`PgBouncer SIGKILL: new clients connect ${seconds(newClientMs)} after the kill, the writer's writes acknowledged again after ${seconds(writesMs)}; `
      + `writer: ${writer.acknowledged} acknowledged, ${writer.errors.length} errors (its session died with the process)`);
  });
});

describe("a replica that falls behind past max_slot_wal_keep_size (dedicated cluster, 64 MB)", () => {
  const shape = DRILLS.slot;
  const KEEP_MB = 64;
  let cluster: DeployedCluster;
  let ledger: Ledger;
  let replica: string;
  const sql = (text: string) => sqlInContainer(cluster.primary, text, "app");

  beforeAll(async () => {
    cluster = await deployDrill(shape);
    expect(cluster.spec.maxSlotWalKeepMb).toBe(KEEP_MB);
    replica = cluster.replicas[0];
    ledger = new Ledger(cluster.outputs.hostPooledUrl!, cluster.outputs.caCertPem);
    await ledger.create();
    await ledger.writeBatch("before the replica falls behind", 1000);
    await waitFor("replica streaming", () => allStreaming(cluster), 30_000);
    report(`slot: cluster ${shape.clusterName} up in ${seconds(cluster.elapsedMs)}, max_slot_wal_keep_size ${await sql("SHOW max_slot_wal_keep_size")}`);
  }, 300_000);

  afterAll(async () => {
    if (cluster) await removeCluster(cluster);
  }, 300_000);

  test("does not fill the primary's disk: its slot is invalidated and the WAL it held is removed", async () => {
    const segmentMb = Number(await sql("SELECT setting::bigint / 1048576 FROM pg_settings WHERE name = 'wal_segment_size'"));
    const maxWalMb = Number(await sql("SELECT setting FROM pg_settings WHERE name = 'max_wal_size'"));
    const walDirMb = async () => Number(await sql("SELECT round(sum(size) / 1048576.0) FROM pg_ls_waldir()"));
    const walBeforeMb = await walDirMb();
    await docker("stop", replica);
    const heldLsn = await sql("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'replica_1'");

    // About 50 MB of WAL per batch, at most 8 batches: stop once 200 MB are past the slot.
    await sql("CREATE TABLE drill_filler (id bigint, pad text)");
    await ledger.writeBatch("while the replica falls behind", 1000);
    let writtenMb = 0;
    for (let batch = 1; batch <= 8 && writtenMb < 200; batch++) {
      await sql(`INSERT INTO drill_filler SELECT g, repeat(md5(g::text), 30) FROM generate_series(${(batch - 1) * 50_000 + 1}, ${batch * 50_000}) g`);
      writtenMb = Number(await sql(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${heldLsn}') / 1048576`));
    }
    expect(writtenMb).toBeGreaterThanOrEqual(200);
    // Past the limit: the slot's WAL is no longer reserved (or, if a checkpoint ran, already gone).
    const statusBefore = await sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'replica_1'");
    expect(["unreserved", "lost"]).toContain(statusBefore);

    // Every finished segment reaches the archive first (unarchived WAL is never removed), then a checkpoint.
    const lastSegment = await sql("SELECT pg_walfile_name(pg_switch_wal())");
    await waitFor("the archiver to catch up", async () => (await sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")) >= lastSegment, 60_000, 250);
    await sql("CHECKPOINT");

    expect(await sql("SELECT active, coalesce(restart_lsn::text, 'none'), wal_status, invalidation_reason FROM pg_replication_slots WHERE slot_name = 'replica_1'"))
      .toBe("f|none|lost|wal_removed");
    // The WAL the slot held is gone: the oldest segment left starts after it, within the limit of the current position.
    const oldest = await sql("SELECT min(name) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'");
    const oldestStart = (BigInt(`0x${oldest.slice(8, 16)}`) << 32n) + BigInt(`0x${oldest.slice(16, 24)}`) * BigInt(segmentMb * 1048576);
    const current = lsn(await sql("SELECT pg_current_wal_lsn()"));
    expect(oldestStart > lsn(heldLsn)).toBe(true);
    const retainedMb = Number(current - oldestStart) / 1048576;
    expect(retainedMb).toBeLessThanOrEqual(KEEP_MB + segmentMb);
    // pg_wal's size on disk: WAL since the last checkpoint (at most max_wal_size), what a slot may
    // keep (max_slot_wal_keep_size), and recycled segments (counted against max_wal_size), plus the
    // segment being written and one pre-allocated.
    const walAfterMb = await walDirMb();
    expect(walAfterMb).toBeLessThanOrEqual(maxWalMb + KEEP_MB + 2 * segmentMb);
    report(`slot: ${writtenMb.toFixed(0)} MB of WAL written past the stopped replica's slot; slot ${statusBefore} -> lost (wal_removed) at the checkpoint; `
      + `WAL retained behind the insert position ${retainedMb.toFixed(1)} MB (limit ${KEEP_MB} MB); pg_wal ${walBeforeMb} MB before, ${walAfterMb} MB after (recycled segments included)`);
  });

  test("one command on the primary recovers it: the slot is recreated, the replica catches up from the WAL archive and streams again", async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await docker("start", replica);
    // On its own the replica replays the archive but cannot stream: its slot is lost.
    await waitFor("the replica to find its slot lost", async () => (await logsOf(replica, since)).includes('can no longer access replication slot "replica_1"'), 60_000, 500);
    expect(await logsOf(replica, since)).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
    expect(await healthOf(replica)).not.toBe("healthy");

    const start = Date.now();
    // The recovery: one statement on the primary (it is also what the README should tell operators).
    expect(await sql("SELECT pg_drop_replication_slot('replica_1'), pg_create_physical_replication_slot('replica_1')")).toBe("|(replica_1,)");
    await waitFor("the replica streaming again", () => allStreaming(cluster), 60_000, 100);
    const streamingMs = Date.now() - start;
    await waitFor("the replica healthy", async () => (await healthOf(replica)) === "healthy", 30_000, 250);
    expect((await replicationState(cluster)).replica_1).toEqual({ state: "streaming", slotActive: true });

    const filler = await sql("SELECT count(*) FROM drill_filler");
    await waitFor("filler rows on the replica", async () => (await sqlInContainer(replica, "SELECT count(*) FROM drill_filler", "app")) === filler, 30_000, 250);
    const checked = await ledger.verifyOn(replica, 30_000);
    await ledger.verifyOn(cluster.primary, 10_000);
    report(`slot recovery: streaming ${seconds(streamingMs)} after the one command; ${checked.rows} acknowledged rows and ${filler} filler rows on the replica`);
  });
});
