/**
 * Changes without outage: each kind of change is applied through the executor (as `pulumi up`)
 * to a live Patroni cluster with data, while a writer runs through PgBouncer (one acknowledged
 * id per transaction) and a reader through the read-only URL. Each test checks that the change
 * took effect, which containers the plan replaced, every acknowledged row on every member, and
 * prints the longest write and read gaps and the client errors.
 *
 * A reloadable setting, a pool size and a certificate renewal replace no server: only the
 * created-only writers of the live configuration. A setting PostgreSQL takes only at start rolls:
 * replicas restart first, then one switchover, then the old primary (patroni-rollout.py).
 */
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import * as tls from "tls";
import { Client } from "pg";
import { cleanupLeftovers, loadStackConfig } from "./executor";
import type { Step } from "./executor/planner";
import { docker, patroniMembers, pgConfig, query, report, sqlInContainer, testOverrides, waitFor, type StackOutputs } from "./support/cluster";
import { deployInProcess } from "./support/deploy-process";
import { seconds, sleep } from "./support/drill";
import { AckLedger, type Loop, startReader } from "./support/failover";

jest.setTimeout(1_800_000);

const ROOT = path.join(__dirname, "..", "..");
const CLUSTER = "pgha-chg";
const SUBNET_PREFIX = "172.30.100";
const STATE = path.join(ROOT, ".local", "changes", "state.json");
const BASE: Record<string, string> = {
  ...loadStackConfig("dev"),
  ...testOverrides("dev", 18, "patroni"),
  "pg-ha:failover": "patroni",
  "pg-ha:clusterName": CLUSTER,
  "pg-ha:networkSubnet": `${SUBNET_PREFIX}.0/24`,
  "pg-ha:publishDirectPort": "23522",
  "pg-ha:publishPooledPort": "23523",
  "pg-ha:publishReadOnlyPort": "23524",
  "pg-ha:replicas": "1",
  // Backups have suites of their own; here they would only add load.
  "pg-ha:walArchiving": "false",
};
const NODES = [`${CLUSTER}-node-1`, `${CLUSTER}-node-2`];
const PGBOUNCER = `${CLUSTER}-pgbouncer`;
/** The load runs at most this long per change, whatever happens to the test. */
const LOAD_MAX_MS = 600_000;

/** The stack config as changed so far: each test's change stays for the next. */
let config: Record<string, string> = { ...BASE };
let outputs: StackOutputs;
let ledger: AckLedger;

/** `pulumi up` of the changed config, in a process of its own (support/deploy-process.ts). */
async function up(extra: Record<string, string> = {}, now?: Date): Promise<Step[]> {
  config = { ...config, ...extra };
  const result = await deployInProcess({ programPath: path.join(ROOT, "index.ts"), stack: "changes", config, statePath: STATE, now });
  outputs = result.outputs as unknown as StackOutputs;
  return result.steps;
}

const containersTouched = (steps: Step[]) =>
  steps.filter((s) => s.op !== "same" && s.type === "docker:index/container:Container").map((s) => `${s.op} ${s.name}`).sort();

async function containerIds(): Promise<Record<string, string>> {
  const lines = await docker("ps", "-a", "--filter", `label=pgha.cluster=${CLUSTER}`, "--format", "{{.Names}} {{.ID}}");
  return Object.fromEntries(lines.split("\n").filter(Boolean).map((l) => l.split(" ")));
}

/** Servers only: the created-only writers (`-secrets`, `-config`) are replaced by design. */
const serverIds = (ids: Record<string, string>) => Object.fromEntries(Object.entries(ids).filter(([n]) => !/-(secrets|config)$/.test(n)));

async function members() {
  return patroniMembers(NODES);
}

async function leader(): Promise<string> {
  let name: string | undefined;
  await waitFor("a running leader", async () => {
    name = (await members()).find((m) => m.role === "leader" && m.state === "running")?.name;
    return name !== undefined;
  }, 120_000, 1000);
  return name!;
}

async function settingOnEveryNode(setting: string): Promise<string[]> {
  return Promise.all(NODES.map((n) => sqlInContainer(n, `SHOW ${setting}`).catch(() => "")));
}

/**
 * The certificate a server presents: PostgreSQL and PgBouncer after their SSLRequest, Patroni's
 * REST API straight away. Its serial number and fingerprint.
 */
function presentedCertificate(host: string, port: number, postgres: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no certificate from ${host}:${port} within 10 s`)); }, 10_000);
    const startTls = () => {
      const secure = tls.connect({ socket, rejectUnauthorized: false, servername: undefined }, () => {
        const cert = secure.getPeerCertificate();
        clearTimeout(timer);
        secure.destroy();
        resolve(`${cert.serialNumber} ${cert.fingerprint256}`);
      });
      secure.on("error", (e) => { clearTimeout(timer); reject(e); });
    };
    socket.on("error", (e) => { clearTimeout(timer); reject(e); });
    socket.on("connect", () => {
      if (!postgres) return startTls();
      const request = Buffer.alloc(8);
      request.writeInt32BE(8, 0);
      request.writeInt32BE(80877103, 4);
      socket.write(request);
      socket.once("data", (answer) => {
        if (answer.toString() !== "S") { clearTimeout(timer); socket.destroy(); reject(new Error(`${host}:${port} refused SSL: ${answer.toString()}`)); return; }
        startTls();
      });
    });
  });
}

const nodeAddress = (i: number) => `${SUBNET_PREFIX}.${11 + i}`;

async function presentedCertificates(): Promise<Record<string, string>> {
  const entries: [string, string][] = [];
  for (const [i, node] of NODES.entries()) {
    entries.push([`${node} PostgreSQL`, await presentedCertificate(nodeAddress(i), 5432, true)]);
    entries.push([`${node} REST API`, await presentedCertificate(nodeAddress(i), 8008, false)]);
  }
  entries.push([`${PGBOUNCER}`, await presentedCertificate("127.0.0.1", Number(BASE["pg-ha:publishPooledPort"]), true)]);
  return Object.fromEntries(entries);
}

interface Impact {
  writeGapMs: number;
  readGapMs: number;
  writes: Loop;
  reads: Loop;
  appliedMs: number;
  steps: Step[];
}

/**
 * Applies EXTRA with the writer and the reader running, waits until APPLIED says the cluster
 * took it, lets the load run a little longer, then stops it and checks every acknowledged row
 * on every member.
 */
async function measure(what: string, extra: Record<string, string>, applied: () => Promise<boolean>, now?: Date): Promise<Impact> {
  const writes = ledger.startWriter(what, 50, LOAD_MAX_MS);
  const reads = startReader(outputs.hostReadOnlyUrl!, outputs.caCertPem, 100, LOAD_MAX_MS);
  try {
    await sleep(3000);
    const started = Date.now();
    const steps = await up(extra, now);
    await waitFor(`${what} applied on the live cluster`, applied, 600_000, 500);
    const appliedMs = Date.now() - started;
    await sleep(3000);
    const ended = Date.now();
    await writes.stop();
    await reads.stop();
    const impact = { writeGapMs: writes.longestGap(started, ended), readGapMs: reads.longestGap(started, ended), writes, reads, appliedMs, steps };
    report(`${what}: applied in ${seconds(impact.appliedMs)}; longest write gap ${seconds(impact.writeGapMs)}, longest read gap ${seconds(impact.readGapMs)}; ` +
      `writes ${writes.ok} ok, ${writes.errors} errors (at most ${writes.maxErrorStreak} in a row${writes.errors ? `, last: ${writes.lastError}` : ""}); ` +
      `reads ${reads.ok} ok, ${reads.errors} errors (at most ${reads.maxErrorStreak} in a row${reads.errors ? `, last: ${reads.lastError}` : ""}); ` +
      `containers: ${containersTouched(steps).join(", ") || "none"}`);
    return impact;
  } finally {
    await writes.stop();
    await reads.stop();
  }
}

async function everyRowOnEveryMember(): Promise<void> {
  for (const node of NODES) {
    const { rows } = await ledger.verifyOn(node, 120_000);
    report(`${node}: all ${rows} acknowledged rows present`);
  }
}

beforeAll(async () => {
  await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${CLUSTER}`] });
  fs.rmSync(path.dirname(STATE), { recursive: true, force: true });
  await up();
  ledger = new AckLedger(outputs.hostPooledUrl!, outputs.caCertPem);
  await ledger.create();
  await waitFor("every member streaming", async () => (await members()).filter((m) => m.state === "streaming").length === NODES.length - 1, 180_000, 1000);
});

afterAll(async () => {
  if (process.env.PGHA_KEEP_CLUSTERS) return;
  await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${CLUSTER}`] });
  fs.rmSync(path.dirname(STATE), { recursive: true, force: true });
});

test("a reloadable PostgreSQL setting (slowQueryMs) is applied by reload on every member: no server replaced, no client error, no write gap above 1 s", async () => {
  const before = await containerIds();
  const leaderBefore = await leader();
  expect(await settingOnEveryNode("log_min_duration_statement")).toEqual(NODES.map(() => "1s"));
  const impact = await measure("slowQueryMs 1000 -> 500", { "pg-ha:slowQueryMs": "500" },
    async () => (await settingOnEveryNode("log_min_duration_statement")).every((v) => v === "500ms"));
  expect(containersTouched(impact.steps)).toEqual(NODES.map((n) => `replace ${n}-config`).sort());
  expect(serverIds(await containerIds())).toEqual(serverIds(before));
  expect(await leader()).toBe(leaderBefore);
  expect((await members()).filter((m) => m.pendingRestart)).toEqual([]);
  expect({ writeErrors: impact.writes.errors, readErrors: impact.reads.errors }).toEqual({ writeErrors: 0, readErrors: 0 });
  expect(impact.writeGapMs).toBeLessThanOrEqual(1000);
  await everyRowOnEveryMember();
});

test("pool sizes (defaultPoolSize) change by PgBouncer's RELOAD: PgBouncer is not replaced and a session opened before keeps working", async () => {
  const before = await containerIds();
  const showConfig = async () => Object.fromEntries((await query<{ key: string; value: string }>(outputs.adminUrls.pgbouncerAdminUrl, outputs.caCertPem, "SHOW CONFIG")).map((r) => [r.key, r.value]));
  expect((await showConfig()).default_pool_size).toBe("20");
  const session = new Client(pgConfig(outputs.hostPooledUrl!, outputs.caCertPem));
  await session.connect();
  try {
    await session.query("SELECT 1");
    const impact = await measure("defaultPoolSize 20 -> 25", { "pg-ha:defaultPoolSize": "25" }, async () => (await showConfig()).default_pool_size === "25");
    expect(containersTouched(impact.steps)).toEqual([`replace ${PGBOUNCER}-config`]);
    expect(serverIds(await containerIds())).toEqual(serverIds(before));
    expect((await session.query("SELECT count(*)::int AS n FROM drill_ledger")).rows[0].n).toBeGreaterThan(0);
    expect({ writeErrors: impact.writes.errors, readErrors: impact.reads.errors }).toEqual({ writeErrors: 0, readErrors: 0 });
    expect(impact.writeGapMs).toBeLessThanOrEqual(1000);
  } finally {
    await session.end();
  }
  await everyRowOnEveryMember();
});

test("a certificate renewal (a `pulumi up` inside tlsRenewBeforeDays) is picked up by reload: PostgreSQL, Patroni's REST API and PgBouncer present the new certificates, no node or PgBouncer replaced", async () => {
  const before = await containerIds();
  const certificatesBefore = await presentedCertificates();
  const renewalDay = new Date(Date.now() + (365 - 29) * 86_400_000);
  const impact = await measure("certificate renewal", {}, async () => {
    const now = await presentedCertificates().catch(() => certificatesBefore);
    return Object.keys(now).every((k) => now[k] !== certificatesBefore[k]);
  }, renewalDay);
  const replacedServers = containersTouched(impact.steps).filter((s) => !/-(secrets|config)$/.test(s));
  report(`certificate renewal: servers replaced: ${replacedServers.join(", ") || "none"}`);
  for (const name of [...NODES, PGBOUNCER, `${CLUSTER}-router`]) expect({ name, id: (await containerIds())[name] }).toEqual({ name, id: before[name] });
  expect({ writeErrors: impact.writes.errors, readErrors: impact.reads.errors }).toEqual({ writeErrors: 0, readErrors: 0 });
  expect(impact.writeGapMs).toBeLessThanOrEqual(1000);
  await everyRowOnEveryMember();
});

/** The issue's target for a change that needs one switchover; this machine does not meet it yet (README, "What a `pulumi up` changes"). */
const SWITCHOVER_GAP_TARGET_MS = 5000;

test("a restart-only PostgreSQL setting (maxConnections) rolls: the replica restarts, one switchover, then the old primary; no server replaced, every error retried once succeeds, no row lost", async () => {
  const before = await containerIds();
  const leaderBefore = await leader();
  const impact = await measure("maxConnections 70 -> 80", { "pg-ha:maxConnections": "80" }, async () => {
    const values = await settingOnEveryNode("max_connections");
    if (!values.every((v) => v === "80")) return false;
    const list = await members();
    return list.every((m) => !m.pendingRestart) && list.filter((m) => m.state === "streaming").length === NODES.length - 1;
  });
  expect(serverIds(await containerIds())).toEqual(serverIds(before));
  const leaderAfter = await leader();
  report(`maxConnections: leader ${leaderBefore} -> ${leaderAfter}`);
  expect(leaderAfter).not.toBe(leaderBefore);
  report(`maxConnections: longest write gap ${seconds(impact.writeGapMs)} against a target of ${seconds(SWITCHOVER_GAP_TARGET_MS)}: ${impact.writeGapMs <= SWITCHOVER_GAP_TARGET_MS ? "met" : "NOT met"}`);
  // A client that retries a failed statement once always succeeds; nothing acknowledged is lost.
  expect(impact.writes.maxErrorStreak).toBeLessThanOrEqual(1);
  expect(impact.reads.maxErrorStreak).toBeLessThanOrEqual(1);
  await everyRowOnEveryMember();
});

/** Samples every 300 ms how many of the nodes' containers are not running (or do not exist). */
function startDownSampler(): { stop(): Promise<number> } {
  let stopped = false;
  let most = 0;
  const done = (async () => {
    const deadline = Date.now() + LOAD_MAX_MS;
    while (!stopped && Date.now() < deadline) {
      const states = await Promise.all(NODES.map((n) => docker("inspect", "-f", "{{.State.Running}}", n).catch(() => "missing")));
      most = Math.max(most, states.filter((s) => s !== "true").length);
      await sleep(300);
    }
  })();
  return { stop: async () => { stopped = true; await done; return most; } };
}

test("an image upgrade (postgresImage) replaces the nodes one at a time: never two down at once, every member streaming at the end, every error retried once succeeds, no row lost", async () => {
  const image = "pgha-test/postgres:18-upgrade";
  // The same PostgreSQL under another name: to the program and the engine, a new image.
  await docker("tag", config["pg-ha:postgresImage"], image);
  const before = await containerIds();
  const down = startDownSampler();
  let mostDown = 0;
  try {
    const impact = await measure(`postgresImage -> ${image}`, { "pg-ha:postgresImage": image }, async () => {
      const ids = await containerIds();
      if (NODES.some((n) => !ids[n] || ids[n] === before[n])) return false;
      const list = await members().catch(() => []);
      return list.some((m) => m.role === "leader" && m.state === "running") && list.filter((m) => m.state === "streaming").length === NODES.length - 1;
    });
    mostDown = await down.stop();
    report(`postgresImage: at most ${mostDown} node(s) down at once; leader now ${await leader()}`);
    expect(containersTouched(impact.steps)).toEqual(expect.arrayContaining(NODES.map((n) => `replace ${n}`)));
    for (const n of NODES) expect({ n, image: await docker("inspect", "-f", "{{.Config.Image}}", n) }).toEqual({ n, image });
    expect(mostDown).toBe(1);
    expect(impact.writes.maxErrorStreak).toBeLessThanOrEqual(1);
  } finally {
    await down.stop();
  }
  await everyRowOnEveryMember();
});

test("a resize (nodeMemoryMb 1024 -> 1280) replaces the nodes one at a time with their new memory and tuning: never two down at once, no row lost", async () => {
  const before = await containerIds();
  const down = startDownSampler();
  try {
    const impact = await measure("nodeMemoryMb 1024 -> 1280", { "pg-ha:nodeMemoryMb": "1280" }, async () => {
      const ids = await containerIds();
      if (NODES.some((n) => !ids[n] || ids[n] === before[n])) return false;
      const list = await members().catch(() => []);
      return list.every((m) => !m.pendingRestart) && list.some((m) => m.role === "leader" && m.state === "running") &&
        list.filter((m) => m.state === "streaming").length === NODES.length - 1;
    });
    const mostDown = await down.stop();
    report(`nodeMemoryMb: at most ${mostDown} node(s) down at once; shared_buffers now ${(await settingOnEveryNode("shared_buffers")).join(", ")}`);
    for (const n of NODES) expect({ n, memory: await docker("inspect", "-f", "{{.HostConfig.Memory}}", n) }).toEqual({ n, memory: String(1280 * 1024 * 1024) });
    expect(mostDown).toBe(1);
    expect(impact.writes.maxErrorStreak).toBeLessThanOrEqual(1);
  } finally {
    await down.stop();
  }
  await everyRowOnEveryMember();
});

test("replicas 1 -> 2 -> 1: the new member clones and streams, the read-only endpoint keeps answering, no write error; removing it again costs none either", async () => {
  const third = `${CLUSTER}-node-3`;
  const grown = await measure("replicas 1 -> 2", { "pg-ha:replicas": "2" }, async () =>
    (await patroniMembers([...NODES, third]).catch(() => [])).filter((m) => m.state === "streaming").length === 2);
  expect(containersTouched(grown.steps)).toEqual(expect.arrayContaining([`create ${third}`]));
  expect({ writeErrors: grown.writes.errors, readsAnswered: grown.reads.ok > 0 }).toEqual({ writeErrors: 0, readsAnswered: true });
  const { rows } = await ledger.verifyOn(third, 120_000);
  report(`${third}: all ${rows} acknowledged rows present`);
  const shrunk = await measure("replicas 2 -> 1", { "pg-ha:replicas": "1" }, async () =>
    !(await containerIds())[third] && (await members()).filter((m) => m.state === "streaming").length === NODES.length - 1);
  expect(containersTouched(shrunk.steps)).toEqual(expect.arrayContaining([`delete ${third}`]));
  expect({ writeErrors: shrunk.writes.errors, readsAnswered: shrunk.reads.ok > 0 }).toEqual({ writeErrors: 0, readsAnswered: true });
  await everyRowOnEveryMember();
});
