// Patroni, etcd and HAProxy on the real engine (tests/e2e/fixtures/ha-program.ts): three etcd
// members, two Patroni-managed PostgreSQL 18 nodes and the router, reached from the host through
// HAProxy's published ports with `pg` and `psql`, verify-full against the cluster's CA.
import { spawnSync } from "child_process";
import * as https from "https";
import * as path from "path";
import { Client } from "pg";
import { cleanupLeftovers, deploy, destroy, loadStackConfig } from "./executor";
import { docker, psql, report, testOverrides, waitFor } from "./support/cluster";
import { tempFile } from "./support/drill";

jest.setTimeout(1_200_000);

const CLUSTER = "pgha-ha";
const STACK = "pgha-ha";
const PORTS = { readWrite: 23432, readOnly: 23433 };
const PROGRAM = path.join(__dirname, "fixtures/ha-program.ts");

interface Member { Member: string; Role: string; State: string; TL?: number; "Lag in MB"?: number }

let caPem = "";
let caFile = "";
let password = "";
let database = "";
let nodes: string[] = [];
let addresses: string[] = [];
let restPassword = "";

const url = (port: number) =>
  `postgresql://${database}@127.0.0.1:${port}/${database}?sslmode=verify-full`;

async function connect(port: number): Promise<Client> {
  const client = new Client({
    host: "127.0.0.1", port, database, user: database, password,
    ssl: { ca: caPem, rejectUnauthorized: true }, connectionTimeoutMillis: 3000,
  });
  // A connection cut by HAProxy surfaces on the next query; without a listener it would crash the run.
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

async function one<T>(port: number, sql: string, params: unknown[] = []): Promise<T> {
  const client = await connect(port);
  try {
    return (await client.query(sql, params)).rows[0] as T;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Patroni's own view of the cluster, from any running member (patronictl over the REST API). */
async function members(): Promise<Member[]> {
  for (const node of nodes) {
    try {
      const out = await docker("exec", node, "patronictl", "-c", "/run/pg-ha/patroni", "list", "-f", "json");
      return JSON.parse(out) as Member[];
    } catch {
      // that member is down: ask the next
    }
  }
  throw new Error("no member answered patronictl list");
}

const leaderOf = (list: Member[]) => list.find((m) => m.Role === "Leader" && m.State === "running")?.Member;
const streamingReplicas = (list: Member[]) => list.filter((m) => m.Role === "Replica" && m.State === "streaming").map((m) => m.Member);

beforeAll(async () => {
  await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${CLUSTER}`] });
  const config = {
    ...loadStackConfig("dev"),
    ...testOverrides("dev", 18),
    "pg-ha:clusterName": CLUSTER,
    "pg-ha:replicas": "1",
    "pg-ha:networkSubnet": "172.30.90.0/24",
    "pg-ha:walArchiving": "false",
    "pg-ha:publishDirectPort": "0",
    "pg-ha:publishPooledPort": "0",
    "pg-ha:publishReadOnlyPort": "0",
    "ha-fixture:etcdMembers": "3",
    "ha-fixture:readWritePort": String(PORTS.readWrite),
    "ha-fixture:readOnlyPort": String(PORTS.readOnly),
  };
  const started = Date.now();
  const result = await deploy({ programPath: PROGRAM, stack: STACK, config });
  const outputs = result.outputs as Record<string, any>;
  caPem = outputs.caCertPem;
  password = outputs.appPassword;
  database = outputs.database;
  nodes = outputs.nodeNames;
  addresses = outputs.nodeAddresses;
  restPassword = outputs.patroniRestPassword;
  caFile = tempFile("pgha-ha-ca.crt", caPem);
  report(`patroni: deployed ${nodes.length} nodes, ${outputs.etcdNames.length} etcd members and the router in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await one(PORTS.readWrite, "CREATE TABLE IF NOT EXISTS acknowledged (id bigint PRIMARY KEY, at timestamptz DEFAULT now())");
});

afterAll(async () => {
  if (!process.env.PGHA_HA_KEEP) await destroy({ stack: STACK });
});

/** A request to a member's REST API over HTTPS, its certificate verified against the cluster CA. */
function rest(address: string, method: string, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = https.request({ host: address, port: 8008, method, path: urlPath, ca: caPem, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    request.on("error", reject);
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.end();
  });
}

test("no password in any container's env, command, entrypoint or labels", async () => {
  const ids = (await docker("ps", "-aq", "--filter", `label=pgha.cluster=${CLUSTER}`)).split("\n").filter(Boolean);
  expect(ids.length).toBeGreaterThanOrEqual(nodes.length + 3 + 1);
  for (const id of ids) {
    const [config] = JSON.parse(await docker("inspect", id));
    const visible = JSON.stringify([config.Config.Env, config.Config.Cmd, config.Config.Entrypoint, config.Config.Labels, config.Path, config.Args]);
    for (const secret of [password, restPassword, Buffer.from(`patroni:${restPassword}`).toString("base64")]) {
      expect(visible).not.toContain(secret);
    }
  }
});

test("Patroni's REST API: HTTPS verified against the CA; changing endpoints refuse a request without credentials", async () => {
  await waitFor("a leader", async () => leaderOf(await members()) !== undefined, 120_000, 1000);
  for (const address of addresses) {
    expect(await rest(address, "GET", "/health")).toBe(200);
    expect(await rest(address, "POST", "/restart")).toBe(401);
  }
});

test("a leader is elected and the read-write port reaches it (psql through HAProxy)", async () => {
  await waitFor("a leader", async () => leaderOf(await members()) !== undefined, 120_000, 1000);
  const leader = leaderOf(await members())!;
  const r = psql(url(PORTS.readWrite), caFile, "SELECT pg_is_in_recovery(), current_setting('cluster_name'), inet_server_addr()", { PGPASSWORD: password });
  expect(r.stderr).toBe("");
  const [inRecovery, , address] = r.stdout.split("|");
  expect(inRecovery).toBe("f");
  const leaderAddress = await docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", leader);
  expect(address).toBe(leaderAddress);
  report(`patroni: leader ${leader} (${leaderAddress}) serves the read-write port`);
});

test("the replica streams; the read-only port serves it and sees a write within 5 s", async () => {
  await waitFor("every replica streaming", async () => streamingReplicas(await members()).length === nodes.length - 1, 180_000, 1000);
  const list = await members();
  const replica = streamingReplicas(list)[0];
  const replicaAddress = await docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", replica);
  // HAProxy takes a replica in after its first 200 on /replica
  await waitFor("the read-only port on the replica", async () =>
    (await one<{ r: boolean }>(PORTS.readOnly, "SELECT pg_is_in_recovery() AS r")).r === true, 30_000, 500);
  const ro = await one<{ r: boolean; addr: string }>(PORTS.readOnly, "SELECT pg_is_in_recovery() AS r, host(inet_server_addr()) AS addr");
  expect(ro).toEqual({ r: true, addr: replicaAddress });
  await one(PORTS.readWrite, "INSERT INTO acknowledged (id) VALUES (0) ON CONFLICT DO NOTHING");
  const ms = await waitFor("the row on the replica", async () =>
    (await one<{ n: number }>(PORTS.readOnly, "SELECT count(*)::int AS n FROM acknowledged WHERE id = 0")).n === 1, 5_000, 100);
  report(`patroni: ${replica} streaming (${JSON.stringify(list.map((m) => [m.Member, m.Role, m.State, m.TL]))}); a write visible on the read-only port after ${ms} ms`);
});

test("docker kill of the leader: a new leader, writes acknowledged again through the read-write port; the old leader rejoins streaming", async () => {
  const before = await members();
  const oldLeader = leaderOf(before)!;
  const oldTimeline = before.find((m) => m.Member === oldLeader)!.TL!;

  // A writer through HAProxy: one id per transaction, reconnecting after any error, bounded in time.
  const acknowledged: number[] = [];
  let errors = 0;
  let nextId = 1;
  let stop = false;
  let killedAt = 0;
  let firstAfterKill = 0;
  const writer = (async () => {
    let client: Client | undefined;
    const deadline = Date.now() + 240_000;
    while (!stop && Date.now() < deadline) {
      try {
        client ??= await connect(PORTS.readWrite);
        const id = nextId++;
        const sentAt = Date.now();
        await client.query({ text: "INSERT INTO acknowledged (id) VALUES ($1)", values: [id] });
        acknowledged.push(id);
        // Only a write sent after the old leader is dead counts as the new leader's first.
        if (killedAt > 0 && sentAt > killedAt && firstAfterKill === 0) firstAfterKill = Date.now();
      } catch {
        errors++;
        await client?.end().catch(() => undefined);
        client = undefined;
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await client?.end().catch(() => undefined);
  })();

  await waitFor("writes before the kill", async () => acknowledged.length >= 20, 30_000, 100);
  const killStarted = Date.now();
  await docker("kill", oldLeader);
  killedAt = Date.now();
  await waitFor("an acknowledged write after the kill", async () => firstAfterKill > 0, 120_000, 100);
  const seconds = (firstAfterKill - killStarted) / 1000;
  // a few more writes on the new leader, then stop the writer
  const afterCount = acknowledged.length;
  await waitFor("writes on the new leader", async () => acknowledged.length >= afterCount + 20, 30_000, 100);
  stop = true;
  await writer;

  const after = await members();
  const newLeader = leaderOf(after);
  expect(newLeader).toBeDefined();
  expect(newLeader).not.toBe(oldLeader);
  const newTimeline = after.find((m) => m.Member === newLeader)!.TL!;
  expect(newTimeline).toBeGreaterThan(oldTimeline);
  const rows = await one<{ ids: number[] }>(PORTS.readWrite, "SELECT coalesce(array_agg(id ORDER BY id), '{}') AS ids FROM acknowledged WHERE id > 0");
  const present = new Set(rows.ids.map(Number));
  const lost = acknowledged.filter((id) => !present.has(id));
  report(`patroni: docker kill of leader ${oldLeader} -> new leader ${newLeader} (timeline ${oldTimeline} -> ${newTimeline}); first acknowledged write ${seconds.toFixed(1)} s after the kill; ${acknowledged.length} writes acknowledged, ${errors} client errors, ${lost.length} acknowledged rows missing (asynchronous replication)`);
  // Every write acknowledged by the new leader is there.
  expect(acknowledged.filter((id) => id >= acknowledged[afterCount - 1] && !present.has(id))).toEqual([]);

  const restarted = Date.now();
  await docker("start", oldLeader);
  await waitFor(`${oldLeader} streaming from ${newLeader}`, async () => {
    const list = await members();
    const old = list.find((m) => m.Member === oldLeader);
    return leaderOf(list) === newLeader && old?.Role === "Replica" && old.State === "streaming" && old.TL === newTimeline;
  }, 300_000, 1000);
  const rejoin = (Date.now() - restarted) / 1000;
  // Patroni logs to stderr, which `docker logs` passes on as its own stderr.
  const logs = spawnSync("docker", ["logs", "--since", new Date(restarted - 1000).toISOString(), oldLeader], { encoding: "utf8" });
  const rewound = /pg_rewind: Done!/.test(`${logs.stdout}${logs.stderr}`);
  report(`patroni: ${oldLeader} started again rejoined as a streaming replica on timeline ${newTimeline} in ${rejoin.toFixed(1)} s${rewound ? " (pg_rewind ran)" : ""}`);
  // and it replays the new leader's writes
  await one(PORTS.readWrite, "INSERT INTO acknowledged (id) VALUES (-1)");
  await waitFor("the newest row on the rejoined node", async () =>
    (await docker("exec", "-u", "postgres", oldLeader, "psql", "-X", "-qAt", "-d", database, "-c", "SELECT count(*) FROM acknowledged WHERE id = -1")) === "1", 10_000, 200);
});
