// Failover drills on the program itself (index.ts, failover = patroni): three Patroni nodes under
// quorum commit, three etcd members, the router and PgBouncer. Each drill runs a writer through
// hostPooledUrl (one acknowledged id per transaction) and a reader through hostReadOnlyUrl, then
// checks every acknowledged row on the primary and on every streaming member.
import * as fs from "fs";
import * as https from "https";
import * as path from "path";
import { cleanupLeftovers, deploy } from "./executor";
import { deployCluster, type DeployedCluster, docker, query, report, waitFor } from "./support/cluster";
import { deployedResources, seconds, sleep } from "./support/drill";
import {
  AckLedger, allStreaming, idsInStoppedDataDir, idsOn, leaderOf, logSince, logTime, type Loop, type Member, membersFrom, newLeader, startReader,
} from "./support/failover";

// deployCluster deploys without a checkpoint; the last drill plans against one, so every deploy
// of this file keeps it (function declarations: jest hoists this above the imports).
jest.mock("./executor", () => {
  const actual = jest.requireActual("./executor");
  return {
    ...actual,
    deploy: async (options: Record<string, unknown>) => mockSettled(await actual.deploy({ statePath: mockCheckpoint(), ...options }), options),
  };
});
function mockCheckpoint(): string {
  return path.join(__dirname, "..", "..", ".local", "failover", "state.json");
}
/**
 * deployCluster asks patronictl for the leader right after the deploy; on a loaded machine its
 * first answers can be empty while etcd is slow, so wait until one member answers.
 */
async function mockSettled<T extends { outputs: Record<string, unknown> }>(result: T, options: Record<string, unknown>): Promise<T> {
  const listed = (result.outputs.nodes ?? []) as { name: string; role: string }[];
  const members = listed.filter((n) => n.role === "postgres").map((n) => n.name);
  if (!options.preview && members.length > 0) {
    await waitFor("patronictl list answering", async () => (await membersFrom(members)).length === members.length, 180_000, 1000);
  }
  return result;
}

jest.setTimeout(600_000);

const EXTRA = {
  "pg-ha:failover": "patroni",
  "pg-ha:clusterName": "pgha-fo",
  "pg-ha:networkSubnet": "172.30.92.0/24",
  "pg-ha:publishDirectPort": "23452",
  "pg-ha:publishPooledPort": "23453",
  "pg-ha:publishReadOnlyPort": "23454",
  "pg-ha:replicas": "2",
  "pg-ha:etcdMembers": "3",
  "pg-ha:synchronousMode": "quorum",
  "pg-ha:walArchiving": "false",
};

let cluster: DeployedCluster;
let ca = "";
let nodes: string[] = [];
let network = "";
/** Node name -> its fixed address on the cluster network, and back. */
const ipOf: Record<string, string> = {};
const nameOf: Record<string, string> = {};
let ledger: AckLedger;
let passwords: string[] = [];

beforeAll(async () => {
  fs.rmSync(path.dirname(mockCheckpoint()), { recursive: true, force: true });
  cluster = await deployCluster("dev", 18, EXTRA, "failover");
  ca = cluster.outputs.caCertPem;
  nodes = cluster.members;
  network = cluster.outputs.networkName;
  for (const node of nodes) {
    ipOf[node] = await docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, node);
    nameOf[ipOf[node]] = node;
  }
  passwords = deployedResources().filter((r) => r.type === "random:index/randomPassword:RandomPassword").map((r) => String(r.outputs.result));
  ledger = new AckLedger(cluster.outputs.hostPooledUrl!, ca);
  await ledger.create();
  await allStreaming(nodes);
  report(`failover: deployed ${nodes.length} nodes (leader ${cluster.primary}), 3 etcd members, router and PgBouncer in ${seconds(cluster.elapsedMs)}`);
}, 900_000);

afterAll(async () => {
  if (process.env.PGHA_FO_KEEP) return;
  // By label: a deploy that failed half-way leaves containers but no DeployedCluster.
  await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${EXTRA["pg-ha:clusterName"]}`] });
  fs.rmSync(path.dirname(mockCheckpoint()), { recursive: true, force: true });
}, 300_000);

/** A writer through PgBouncer and a reader through the read-only URL, started once 20 writes are in. */
async function traffic(phase: string, maxMs = 180_000): Promise<{ writer: Loop; reader: Loop; stop: () => Promise<string> }> {
  const writer = ledger.startWriter(phase, 50, maxMs);
  const reader = startReader(cluster.outputs.hostReadOnlyUrl!, ca, 100, maxMs);
  await waitFor(`writes before the ${phase} fault`, async () => writer.ok >= 20, 30_000, 100);
  return {
    writer, reader,
    stop: async () => {
      await Promise.all([writer.stop(), reader.stop()]);
      return `writer ${writer.ok} acknowledged / ${writer.errors} errors, reader ${reader.ok} reads / ${reader.errors} errors`;
    },
  };
}

/** Waits for N more acknowledged writes (the new leader taking load), then returns. */
async function moreWrites(writer: Loop, n = 20): Promise<void> {
  const target = writer.ok + n;
  await waitFor(`${n} more acknowledged writes`, async () => writer.ok >= target, 60_000, 100);
}

/** Every acknowledged row on the current leader, then on each streaming member once it caught up. */
async function verifyEverywhere(list: Member[]): Promise<string> {
  const leader = leaderOf(list)!;
  const lost = await ledger.missingOn(leader.name);
  expect(lost).toEqual([]);
  const checked: string[] = [];
  for (const m of list) {
    if (m !== leader) expect(m.state).toBe("streaming");
    const { rows, ms } = await ledger.verifyOn(m.name, m === leader ? 5_000 : 30_000);
    checked.push(`${m.name} ${rows} rows${m === leader ? "" : ` after ${ms} ms`}`);
  }
  return checked.join(", ");
}

/** Starts OLD again and waits until it streams on the leader's timeline; returns the figures. */
async function rejoin(old: string): Promise<{ list: Member[]; text: string }> {
  const started = Date.now();
  await docker("start", old);
  const list = await allStreaming(nodes);
  const leader = leaderOf(list)!;
  const member = list.find((m) => m.name === old)!;
  expect(member).toMatchObject({ state: "streaming", timeline: leader.timeline });
  expect(member.role).not.toBe("leader");
  const rewound = /pg_rewind/i.test(await logSince(old, started - 1000));
  return { list, text: `${old} streaming again on timeline ${member.timeline} ${seconds(Date.now() - started)} after start${rewound ? " (pg_rewind ran)" : ""}` };
}

function rest(node: string, method: string, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = https.request({ host: ipOf[node], servername: node, port: 8008, method, path: urlPath, ca, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    request.on("error", reject);
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.end();
  });
}

test("no password in any container's env, command or labels; the REST API over verified HTTPS refuses changes without credentials; routing by role", async () => {
  const rest64 = passwords.map((p) => Buffer.from(`patroni:${p}`).toString("base64"));
  const ids = (await docker("ps", "-aq", "--filter", `label=pgha.cluster=${cluster.spec.clusterName}`)).split("\n").filter(Boolean);
  expect(ids.length).toBeGreaterThanOrEqual(nodes.length + 3 + 2);
  expect(passwords.length).toBeGreaterThanOrEqual(3);
  for (const id of ids) {
    const [c] = JSON.parse(await docker("inspect", id));
    const visible = JSON.stringify([c.Config.Env, c.Config.Cmd, c.Config.Entrypoint, c.Config.Labels, c.Path, c.Args]);
    for (const secret of [...passwords, ...rest64]) expect(visible).not.toContain(secret);
  }
  for (const node of nodes) {
    expect(await rest(node, "GET", "/health")).toBe(200);
    expect(await rest(node, "POST", "/restart")).toBe(401);
  }
  const leader = leaderOf(await membersFrom(nodes))!.name;
  const [rw] = await query<{ r: boolean; addr: string }>(cluster.outputs.hostDirectUrl!, ca, "SELECT pg_is_in_recovery() AS r, host(inet_server_addr()) AS addr");
  expect(rw).toEqual({ r: false, addr: ipOf[leader] });
  const [ro] = await query<{ r: boolean; addr: string }>(cluster.outputs.hostReadOnlyUrl!, ca, "SELECT pg_is_in_recovery() AS r, host(inet_server_addr()) AS addr");
  expect(ro.r).toBe(true);
  expect(nameOf[ro.addr]).not.toBe(leader);
  const id = await ledger.writeOne("routing");
  const ms = await waitFor("a write on the read-only URL", async () =>
    (await query<{ n: number }>(cluster.outputs.hostReadOnlyUrl!, ca, "SELECT count(*)::int AS n FROM drill_ledger WHERE id = $1", [id]))[0].n === 1, 5_000, 100);
  report(`failover: leader ${leader} behind the read-write port; ${nameOf[ro.addr]} behind the read-only URL, a write visible there after ${ms} ms`);
});

test("drill 1: leader SIGKILLed: writes through PgBouncer again, nothing acknowledged lost, the old leader rejoins streaming", async () => {
  const before = leaderOf(await membersFrom(nodes))!;
  const t = await traffic("kill");
  const start = Date.now();
  await docker("kill", before.name);
  const killed = Date.now();
  const first = await ledger.firstAckSentAfter(killed, 120_000);
  const leader = await newLeader(nodes.filter((n) => n !== before.name), before.name);
  await moreWrites(t.writer);
  const figures = await t.stop();
  expect(nameOf[first.server]).not.toBe(before.name);
  expect(leader.timeline).toBeGreaterThan(before.timeline!);
  const lost = await ledger.missingOn(leader.name);
  report(`failover drill 1: docker kill ${before.name} -> ${leader.name} leads (timeline ${before.timeline} -> ${leader.timeline}); writes acknowledged again ${seconds(first.at - start)} after the kill; ${lost.length} acknowledged rows lost; ${figures}`);
  expect(lost).toEqual([]);
  const { list, text } = await rejoin(before.name);
  report(`failover drill 1: ${text}; rows checked: ${await verifyEverywhere(list)}`);
});

test("drill 2: leader cut off from the network: it demotes itself, nothing acknowledged by it after the promotion, it rejoins", async () => {
  const before = leaderOf(await membersFrom(nodes))!;
  const old = before.name;
  const others = nodes.filter((n) => n !== old);
  const t = await traffic("partition");
  const start = Date.now();
  await docker("network", "disconnect", network, old);
  // Whatever fails below, the node goes back on the network, or the later drills run on two nodes.
  let reconnected = false;
  const reconnect = async () => {
    if (!reconnected) await docker("network", "connect", "--ip", ipOf[old], "--alias", old, network, old);
    reconnected = true;
  };
  try {
  // The old leader as a client there would see it: a primary, or not (in recovery, or stopped).
  let demotedAt = 0;
  const watchDemotion = waitFor(`${old} no longer a primary`, async () => {
    const r = await docker("exec", "-u", "postgres", old, "psql", "-X", "-qAt", "-c", "SELECT pg_is_in_recovery()").catch(() => "down");
    if (r === "f") return false;
    demotedAt = Date.now();
    return true;
  }, 60_000, 250);
  const leader = await newLeader(others, old);
  await watchDemotion;
  const first = await ledger.firstAckSentAfter(start, 120_000);
  await moreWrites(t.writer);
  const figures = await t.stop();
  const promotedAt = await logTime(leader.name, start, /promoted self to leader/);
  expect(promotedAt).toBeDefined();
  // The old primary's own log says when it stopped (polling through docker exec lags under load).
  const shutDownAt = await logTime(old, start, /database system is shut down/);
  if (shutDownAt !== undefined) demotedAt = Math.min(demotedAt, shutDownAt);
  const byOld = ledger.acks.filter((a) => a.server === ipOf[old]);
  const lastByOld = byOld[byOld.length - 1];
  report(`failover drill 2: ${old} disconnected at 0 s; no longer a primary at ${seconds(demotedAt - start)}; ${leader.name} promoted at ${seconds(promotedAt! - start)} (timeline ${leader.timeline}); last write acknowledged by ${old} at ${lastByOld ? seconds(lastByOld.at - start) : "never"}; first acknowledged after at ${seconds(first.at - start)} by ${nameOf[first.server]}; ${figures}`);
  expect(lastByOld.at).toBeLessThan(promotedAt!);
  expect(ledger.acks.filter((a) => a.server === ipOf[old] && a.at >= promotedAt!)).toEqual([]);
  expect(demotedAt).toBeLessThan(promotedAt!);
  // Still cut off: what the old node holds that the new primary does not (only in-doubt writes may be).
  const running = (await docker("exec", "-u", "postgres", old, "psql", "-X", "-qAt", "-c", "SELECT 1").catch(() => "")) === "1";
  const onOld = running ? await idsOn(old) : await idsInStoppedDataDir(old, 18);
  const onNew = new Set(await idsOn(leader.name));
  const extra = onOld.filter((id) => !onNew.has(id));
  const acked = new Set(ledger.acks.map((a) => a.id));
  report(`failover drill 2: ${old} (${running ? "running" : "stopped"}) holds ${onOld.length} rows, ${extra.length} not on ${leader.name} (${JSON.stringify(extra)}, none acknowledged: ${extra.every((id) => !acked.has(id))})`);
  expect(onOld.length).toBeGreaterThan(0);
  expect(extra.filter((id) => acked.has(id))).toEqual([]);
  await reconnect();
  } finally {
    await reconnect().catch(() => undefined);
  }
  const { list, text } = await rejoin(old).catch(async (e) => {
    throw new Error(`${String(e)}\n${await logSince(old, start)}`.slice(0, 8000));
  });
  report(`failover drill 2: ${text}; rows checked: ${await verifyEverywhere(list)}`);
});

test("drill 3: leader stopped cleanly: the write stall, then it rejoins", async () => {
  const before = leaderOf(await membersFrom(nodes))!;
  const t = await traffic("stop");
  const start = Date.now();
  const stopping = docker("stop", before.name);
  const first = await ledger.firstAckSentAfter(start, 60_000);
  await stopping;
  const leader = await newLeader(nodes.filter((n) => n !== before.name), before.name);
  await moreWrites(t.writer);
  const figures = await t.stop();
  const lastBefore = ledger.lastAckBefore(start)!;
  // The longest gap between two acknowledgements from the stop on.
  const window = ledger.acks.filter((a) => a.at >= lastBefore.at);
  const stall = Math.max(...window.slice(1).map((a, i) => a.at - window[i].at));
  const lost = await ledger.missingOn(leader.name);
  report(`failover drill 3: docker stop ${before.name} -> ${leader.name} leads (timeline ${leader.timeline}); write stall ${seconds(stall)} (first write after the stop acknowledged by ${nameOf[first.server]} ${seconds(first.at - start)} after it); ${lost.length} acknowledged rows lost; ${figures}`);
  expect(lost).toEqual([]);
  // The stall's target (<= 5 s) is judged by `npm run bench` over repeated stops, not here: one
  // timed sample on a shared machine proves nothing either way.
  const { list, text } = await rejoin(before.name);
  report(`failover drill 3: ${text}; rows checked: ${await verifyEverywhere(list)}`);
});

test("drill 5: three failovers in a row converge: every member streaming, timelines advanced by 3", async () => {
  const initial = leaderOf(await membersFrom(nodes))!;
  const t = await traffic("three", 420_000);
  const rounds: string[] = [];
  for (let round = 1; round <= 3; round++) {
    const old = leaderOf(await membersFrom(nodes))!;
    const start = Date.now();
    await docker("kill", old.name);
    const killed = Date.now();
    const leader = await newLeader(nodes.filter((n) => n !== old.name), old.name);
    const first = await ledger.firstAckSentAfter(killed, 120_000);
    const { text } = await rejoin(old.name);
    rounds.push(`round ${round}: ${old.name} killed, ${leader.name} leads on timeline ${leader.timeline}, writes after ${seconds(first.at - start)}; ${text}`);
    await sleep(1000);
  }
  await moreWrites(t.writer);
  const figures = await t.stop();
  const list = await allStreaming(nodes);
  const leader = leaderOf(list)!;
  report(`failover drill 5: ${rounds.join("; ")}`);
  report(`failover drill 5: timeline ${initial.timeline} -> ${leader.timeline}; members ${JSON.stringify(list.map((m) => [m.name, m.role, m.state, m.timeline]))}; ${figures}`);
  expect(leader.timeline).toBe(initial.timeline! + 3);
  report(`failover drill 5: rows checked: ${await verifyEverywhere(list)}`);
});

test("drill 9: after the drills, the unchanged stack plans no change (which node leads is nobody's configuration)", async () => {
  const preview = await deploy({ programPath: path.join(__dirname, "..", "..", "index.ts"), stack: cluster.deployment, config: cluster.config, statePath: mockCheckpoint(), preview: true });
  const changed = preview.steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.name}`);
  report(`failover drill 9: preview after the drills: ${preview.steps.length} resources, ${changed.length} steps`);
  expect(preview.steps.length).toBeGreaterThan(0);
  expect(changed).toEqual([]);
});
