// The services around Patroni lost on the real engine, with the main program (index.ts): etcd
// (one member, then its quorum), the router (HAProxy), PgBouncer and a replica. During each drill
// a writer commits one id per transaction through hostPooledUrl and a reader reads through
// hostReadOnlyUrl; every acknowledged row is checked on every node afterwards.
import { deployCluster, type DeployedCluster, docker, removeCluster, report, waitFor } from "./support/cluster";
import { Ledger, logsOf, seconds, sleep, type Writer } from "./support/drill";
import {
  etcdClusterHealth, etcdLeader, etcdMembers, killServiceProcess, leaderAndTimeline, Reader, restPrimaries, restStatus, runState, waitHealthy,
} from "./support/ha-drill";

jest.setTimeout(600_000);

let cluster: DeployedCluster;
let ledger: Ledger;

beforeAll(async () => {
  cluster = await deployCluster("dev", 18, {
    "pg-ha:failover": "patroni",
    "pg-ha:clusterName": "pgha-hs",
    "pg-ha:networkSubnet": "172.30.93.0/24",
    "pg-ha:publishDirectPort": "23462",
    "pg-ha:publishPooledPort": "23463",
    "pg-ha:publishReadOnlyPort": "23464",
    "pg-ha:replicas": "2",
    "pg-ha:etcdMembers": "3",
    "pg-ha:walArchiving": "false",
  }, "ha-services");
  report(`ha-services: deployed in ${seconds(cluster.elapsedMs)}; leader ${cluster.primary}, replicas ${cluster.replicas.join(", ")}, etcd ${etcdMembers(cluster).join(", ")}`);
  await waitHealthy(cluster, cluster.primary, 180_000);
  ledger = new Ledger(cluster.outputs.hostPooledUrl!, cluster.outputs.caCertPem);
  await ledger.create();
}, 900_000);

afterAll(async () => {
  if (cluster && !process.env.PGHA_HS_KEEP) await removeCluster(cluster);
});

/** A writer through hostPooledUrl and a reader through hostReadOnlyUrl, both already answering. */
async function startClients(phase: string): Promise<{ writer: Writer; reader: Reader }> {
  const writer = ledger.startWriter(phase, 20, 240_000);
  const reader = Reader.start(cluster.outputs.hostReadOnlyUrl!, cluster.outputs.caCertPem, 50, 240_000);
  await waitFor(`${phase}: writes and reads before the fault`, async () => writer.acknowledged >= 20 && reader.reads >= 20, 60_000, 100);
  return { writer, reader };
}

async function stopClients(c: { writer: Writer; reader: Reader }): Promise<void> {
  await Promise.all([c.writer.stop(), c.reader.stop()]);
}

/** Every acknowledged row on every node; returns the number of rows checked. */
async function verifyEverywhere(): Promise<number> {
  let rows = 0;
  for (const node of cluster.members) rows = (await ledger.verifyOn(node, 60_000)).rows;
  return rows;
}

const describeErrors = (errors: string[]) => (errors.length ? ` [${errors.slice(0, 3).join(" | ")}${errors.length > 3 ? " | ..." : ""}]` : "");

/** When reads answer again after time T: the first answer after T, in ms since T0. */
async function firstReadAfter(reader: Reader, t: number, t0: number, timeoutMs: number): Promise<number> {
  await waitFor("a read answered", async () => reader.lastOkAt > t, timeoutMs, 50);
  return reader.lastOkAt - t0;
}

/** When writes are acknowledged again after time T: the first acknowledgement after T, in ms since T0. */
async function firstAckAfter(writer: Writer, t: number, t0: number, timeoutMs: number): Promise<number> {
  await waitFor("a write acknowledged", async () => writer.lastAckAt > t, timeoutMs, 50);
  return writer.lastAckAt - t0;
}

describe("etcd", () => {
  test("one member of three lost: no failover, no client error; it rejoins", async () => {
    const members = etcdMembers(cluster);
    expect(members).toHaveLength(3);
    const before = await leaderAndTimeline(cluster);
    // The raft leader is the harder loss: the other two elect a new one while Patroni goes on.
    const victim = await etcdLeader(members[0], members);
    const clients = await startClients("one etcd member lost");
    const ackedBefore = clients.writer.acknowledged;
    await docker("kill", victim);
    const killedAt = Date.now();
    let during: { node: string; timeline?: number }[];
    let ackedDuring: number;
    try {
      await sleep(20_000); // longer than Patroni's ttl (20 s): a lock it could not renew would expire
      // From the REST API: patronictl would wait for etcd's election.
      during = await restPrimaries(cluster);
      ackedDuring = clients.writer.acknowledged - ackedBefore;
    } finally {
      await docker("start", victim);
    }
    const startedAt = Date.now();
    const rejoinMs = await waitFor("etcd healthy, three members", async () => (await etcdClusterHealth(members[0])).healthy, 120_000, 500);
    const health = await etcdClusterHealth(victim);
    await stopClients(clients);
    const after = await leaderAndTimeline(cluster);
    const rows = await verifyEverywhere();
    report(`etcd member ${victim} (raft leader) killed for ${seconds(startedAt - killedAt)}: Patroni leader ${before.leader} TL ${before.timeline}, after 20 s the REST API's running primaries ${JSON.stringify(during)}; `
      + `${ackedDuring} writes acknowledged meanwhile, writer errors ${clients.writer.errors.length}, reader reads ${clients.reader.reads}, retried ${clients.reader.retried.length}, errors ${clients.reader.errors.length}; `
      + `started again, etcd healthy after ${seconds(rejoinMs)}; ${rows} acknowledged rows on every node`);
    expect(health.healthy).toBe(true);
    expect(health.lines.split("\n").filter((l) => /is healthy/.test(l))).toHaveLength(3);
    expect(during).toEqual([{ node: before.leader, timeline: before.timeline }]);
    expect([after.leader, after.timeline]).toEqual([before.leader, before.timeline]);
    expect(ackedDuring).toBeGreaterThan(20);
    expect(clients.writer.errors).toEqual([]);
    expect(clients.reader.errors).toEqual([]);
  });

  test("quorum lost (two of three killed): failsafe_mode keeps the primary writable while every member confirms it; restored, same leader", async () => {
    const members = etcdMembers(cluster);
    const before = await leaderAndTimeline(cluster);
    await waitHealthy(cluster, before.leader, 60_000);
    const [lost1, lost2] = members;
    const clients = await startClients("etcd quorum lost");
    const ackedAt: number[] = [clients.writer.acknowledged];
    const samples: { at: number; node: string; status: Awaited<ReturnType<typeof restStatus>> }[] = [];
    await docker("kill", lost1, lost2);
    const killedAt = Date.now();
    const killedUnix = Math.floor(killedAt / 1000) - 1;
    let restored = false;
    try {
      // 30 s without quorum, Patroni's view sampled from each member's REST API every 5 s.
      for (let i = 1; i <= 6; i++) {
        await sleep(5_000 - ((Date.now() - killedAt) % 5_000));
        ackedAt.push(clients.writer.acknowledged);
        for (const node of cluster.members) samples.push({ at: Date.now() - killedAt, node, status: await restStatus(cluster, node) });
      }
      const readerDuring = { reads: clients.reader.reads, retried: clients.reader.retried.length, errors: clients.reader.errors.length };
      const writerErrorsDuring = [...clients.writer.errors];
      const patroniLog = (await logsOf(before.leader, killedUnix)).split("\n").filter((l) => /^\d{4}-\d\d-\d\d .*(failsafe|DCS|demot|leader|lock)/i.test(l));
      const perWindow = ackedAt.slice(1).map((n, i) => n - ackedAt[i]);
      report(`etcd quorum lost (${lost1}, ${lost2} killed, ${members[2]} alone) for 30 s: writes acknowledged per 5 s ${JSON.stringify(perWindow)}, writer errors ${writerErrorsDuring.length}${describeErrors(writerErrorsDuring)}, `
        + `reader reads ${readerDuring.reads}, retried ${readerDuring.retried}, errors ${readerDuring.errors}${describeErrors(clients.reader.errors)}`);
      report(`etcd quorum lost: Patroni REST /patroni ${JSON.stringify(samples.filter((s) => s.at > 25_000).map((s) => ({ node: s.node, role: s.status.role, state: s.status.state, tl: s.status.timeline, failsafe: s.status.failsafe_mode_is_active, error: s.status.error })))}`);
      report(`etcd quorum lost: leader's Patroni log: ${patroniLog.slice(0, 4).join(" / ")}${patroniLog.length > 4 ? ` ... (${patroniLog.length} lines) ... ${patroniLog[patroniLog.length - 1]}` : ""}`);

      await docker("start", lost1, lost2);
      const t = Date.now();
      await waitFor("etcd healthy, three members", async () => (await etcdClusterHealth(members[2])).healthy, 120_000, 500);
      const etcdMs = Date.now() - t;
      await waitHealthy(cluster, before.leader, 120_000);
      restored = true;
      const healthyMs = Date.now() - t;
      await stopClients(clients);
      const after = await leaderAndTimeline(cluster);
      const rows = await verifyEverywhere();
      report(`etcd quorum restored: etcd healthy after ${seconds(etcdMs)}, Patroni: ${after.leader} leading on TL ${after.timeline}, every replica streaming after ${seconds(healthyMs)}; `
        + `writer errors in the whole drill ${clients.writer.errors.length}; ${rows} acknowledged rows on every node`);

      // The leader stayed primary on its timeline in every sample, the others replicas.
      for (const s of samples) {
        if (s.node === before.leader) expect({ node: s.node, role: s.status.role, state: s.status.state, tl: s.status.timeline }).toEqual({ node: before.leader, role: "primary", state: "running", tl: before.timeline });
        else expect({ node: s.node, role: s.status.role }).toEqual({ node: s.node, role: "replica" });
      }
      // Writes acknowledged in every 5 s of the outage, without one client error.
      for (const n of perWindow) expect(n).toBeGreaterThan(0);
      expect(writerErrorsDuring).toEqual([]);
      expect(clients.reader.errors).toEqual([]);
      expect([after.leader, after.timeline]).toEqual([before.leader, before.timeline]);
    } finally {
      if (!restored) {
        await docker("start", lost1, lost2).catch(() => undefined);
        await stopClients(clients);
        report(`etcd quorum lost: members after the drill ${JSON.stringify(await leaderAndTimeline(cluster).catch((e) => String(e)))}`);
      }
    }
  });
});

/**
 * A service container lost two ways: `docker kill` (for the engine a stop that the restart policy
 * does not undo, so an operator starts it) and SIGKILL of its service process, the child of the
 * container's init (a crash, which the restart policy answers). Returns the figures it printed.
 */
async function serviceDrill(container: string, what: string): Promise<void> {
  const clients = await startClients(`${what} killed`);

  // 1. docker kill
  const state = await runState(container);
  const killedAt = Date.now();
  await docker("kill", container);
  let restartedByPolicy = true;
  try {
    await waitFor(`${container} running again by its restart policy`, async () => (await runState(container)).running, 15_000, 200);
  } catch {
    restartedByPolicy = false;
  }
  const afterKill = await runState(container);
  if (!restartedByPolicy) await docker("start", container);
  const runningAt = Date.now();
  const [killAckMs, killReadMs] = await Promise.all([
    firstAckAfter(clients.writer, runningAt, killedAt, 60_000), firstReadAfter(clients.reader, runningAt, killedAt, 60_000)]);
  const writerErrors1 = clients.writer.errors.length;
  report(`${what}: docker kill of ${container} (restart policy unless-stopped, Docker ${await docker("version", "-f", "{{.Server.Version}}")}): `
    + `${restartedByPolicy ? `restarted by the policy after ${seconds(runningAt - killedAt)}` : `not restarted by the policy in 15 s (restart count ${state.restarts} -> ${afterKill.restarts}), docker start`}; `
    + `writes acknowledged again ${seconds(killAckMs - (runningAt - killedAt))} after it runs again (${seconds(killAckMs)} after the kill), reads ${seconds(killReadMs - (runningAt - killedAt))} after (${seconds(killReadMs)}); writer errors ${writerErrors1}`);

  // 2. SIGKILL of the service process under docker-init
  await waitFor(`${container} healthy`, async () => (await docker("inspect", "-f", "{{.State.Health.Status}}", container)) === "healthy", 60_000, 200);
  await sleep(2_000);
  const restartsBefore = (await runState(container)).restarts;
  const crashedAt = Date.now();
  const pid = await killServiceProcess(container);
  await waitFor(`${container} restarted by its policy`, async () => {
    const s = await runState(container);
    return s.running && s.restarts === restartsBefore + 1;
  }, 30_000, 100);
  const restartedAt = Date.now();
  const [crashAckMs, crashReadMs] = await Promise.all([
    firstAckAfter(clients.writer, restartedAt, crashedAt, 60_000), firstReadAfter(clients.reader, restartedAt, crashedAt, 60_000)]);
  await sleep(2_000);
  await stopClients(clients);
  const rows = await verifyEverywhere();
  const readOnlyWrites = clients.writer.errors.filter((e) => /read-only transaction/.test(e));
  report(`${what}: SIGKILL of its process (host pid ${pid}) under docker-init: restarted by the policy after ${seconds(restartedAt - crashedAt)}, `
    + `writes acknowledged again ${seconds(crashAckMs)} after the kill, reads ${seconds(crashReadMs)}; writer errors ${clients.writer.errors.length - writerErrors1}; `
    + `whole drill: writer errors ${clients.writer.errors.length}${describeErrors(clients.writer.errors)}, reader retried ${clients.reader.retried.length}, errors ${clients.reader.errors.length}${describeErrors(clients.reader.errors)}; ${rows} acknowledged rows on every node`);
  // docker kill with SIGKILL is a manual stop for this engine (the daemon cancels the restart
  // manager before signalling), so the policy does not bring the container back.
  expect(restartedByPolicy).toBe(false);
  expect(afterKill).toMatchObject({ running: false, restarts: state.restarts });
  // Writes reach only the leader, also while a restarted router runs its first checks.
  expect(readOnlyWrites).toEqual([]);
}

test("the router (HAProxy) killed: docker kill, then its process under docker-init; clients through PgBouncer work again", async () => {
  const leader = (await leaderAndTimeline(cluster)).leader;
  await serviceDrill(cluster.outputs.nodes.find((n) => n.role === "router")!.name, "router");
  expect((await leaderAndTimeline(cluster)).leader).toBe(leader);
});

test("PgBouncer killed: docker kill, then its process under docker-init; clients work again", async () => {
  await serviceDrill(cluster.pgbouncer, "PgBouncer");
});

test("a replica lost: the read-only endpoint keeps answering, writes go on; started again it streams", async () => {
  const before = await leaderAndTimeline(cluster);
  await waitHealthy(cluster, before.leader, 60_000);
  const clients = await startClients("replica lost");
  // The replica the reader is on, so that its connection is the one lost.
  const addresses = Object.fromEntries(await Promise.all(cluster.members.map(async (m) =>
    [await docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", m), m] as const)));
  const victim = addresses[clients.reader.lastServer];
  expect(victim).toBeDefined();
  expect(victim).not.toBe(before.leader);
  const ackedBefore = clients.writer.acknowledged;
  const readsBefore = clients.reader.reads;
  await docker("kill", victim);
  const killedAt = Date.now();
  await sleep(15_000);
  const ackedDuring = clients.writer.acknowledged - ackedBefore;
  const readsDuring = clients.reader.reads - readsBefore;
  const serversAfter = { ...clients.reader.servers };
  const during = await leaderAndTimeline(cluster);

  await docker("start", victim);
  const t = Date.now();
  await waitHealthy(cluster, before.leader, 180_000);
  const streamingMs = Date.now() - t;
  await sleep(2_000);
  await stopClients(clients);
  const rows = await verifyEverywhere();
  report(`replica ${victim} (the reader's) killed for ${seconds(t - killedAt)}: ${ackedDuring} writes acknowledged meanwhile, writer errors ${clients.writer.errors.length}${describeErrors(clients.writer.errors)}; `
    + `reader: ${readsDuring} reads, ${clients.reader.retried.length} retried once${describeErrors(clients.reader.retried)}, ${clients.reader.errors.length} errors, slowest read ${seconds(clients.reader.slowestMs)}, servers ${JSON.stringify(serversAfter)}; `
    + `leader ${during.leader} TL ${during.timeline}; started again, streaming after ${seconds(streamingMs)}; ${rows} acknowledged rows on every node`);
  expect([during.leader, during.timeline]).toEqual([before.leader, before.timeline]);
  expect(clients.writer.errors).toEqual([]);
  expect(ackedDuring).toBeGreaterThan(20);
  // A read on the lost replica's connection may fail once; its retry, and every other read, answers.
  expect(clients.reader.errors).toEqual([]);
  expect(clients.reader.retried.length).toBeLessThanOrEqual(1);
  expect(readsDuring).toBeGreaterThan(20);
});
