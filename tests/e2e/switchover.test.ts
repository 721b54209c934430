// `npm run ops -- switchover` and `npm run ops -- status` (scripts/ops.ts) against a Patroni cluster
// on the real engine, driven by its stack outputs file as an operator writes it. A writer through
// PgBouncer (hostPooledUrl) and a reader through the read-only pooled URL run the whole time: the
// planned switchovers hold them in PgBouncer's PAUSE and must cost them no error and no
// acknowledged row, only a short stall.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Client } from "pg";
import type { StatusReport } from "../../scripts/ops";
import { cleanupLeftovers } from "./executor";
import {
  deployCluster, type DeployedCluster, patroniMembers, pgConfig, removeCluster, report, sqlInContainer, waitFor,
} from "./support/cluster";
import { idRanges, run, type PsqlResult, seconds, sleep } from "./support/drill";

jest.setTimeout(1_200_000);

const CONFIG = {
  "pg-ha:failover": "patroni",
  "pg-ha:clusterName": "pgha-sw",
  "pg-ha:networkSubnet": "172.30.91.0/24",
  "pg-ha:publishDirectPort": "23442",
  "pg-ha:publishPooledPort": "23443",
  "pg-ha:publishReadOnlyPort": "23444",
  "pg-ha:replicas": "1",
};
/** The issue's target for the longest time a writer waits during a planned switchover. */
const STALL_TARGET_MS = 5000;
/** The load runs at most this long, whatever happens to the test. */
const LOAD_MAX_MS = 300_000;

let cluster: DeployedCluster;
let outputsFile = "";

/** `npm run ops -- ARGS` in the project directory, as an operator runs it. */
function ops(args: string[], quiet = false): Promise<PsqlResult> {
  return run("npm", ["run", ...(quiet ? ["--silent"] : []), "ops", "--", ...args], { timeoutMs: 180_000 });
}

async function statusJson(): Promise<StatusReport> {
  const r = await ops(["status", "--outputs", outputsFile, "--json"], true);
  if (r.status !== 0) throw new Error(`ops status exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

/** Patroni's running leader (asked again while a loaded member answers nothing). */
async function leaderNow(): Promise<string> {
  let leader: string | undefined;
  await waitFor("patronictl naming a running leader", async () => {
    leader = (await patroniMembers(cluster.members[0])).find((m) => m.role === "leader" && m.state === "running")?.name;
    return leader !== undefined;
  }, 60_000, 1000);
  return leader!;
}

/** A client in a bounded loop, one statement every INTERVAL ms, reconnecting after an error. */
class Load {
  readonly ackTimes: number[] = [];
  readonly errors: string[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(url: string, private readonly statement: (client: Client) => Promise<void>, intervalMs = 50) {
    const deadline = Date.now() + LOAD_MAX_MS;
    this.done = (async () => {
      let client: Client | undefined;
      while (!this.stopped && Date.now() < deadline) {
        try {
          if (!client) {
            client = new Client({ ...pgConfig(url, cluster.outputs.caCertPem), query_timeout: 30_000 });
            client.on("error", () => undefined);
            await client.connect();
          }
          await this.statement(client);
          this.ackTimes.push(Date.now());
        } catch (e) {
          this.errors.push(`${new Date().toISOString()} ${(e as Error).message}`);
          await client?.end().catch(() => undefined);
          client = undefined;
        }
        await sleep(intervalMs);
      }
      await client?.end().catch(() => undefined);
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** The longest time between two consecutive acknowledgements within [from, to]. */
  longestGap(from = 0, to = Infinity): number {
    const times = this.ackTimes.filter((t) => t >= from && t <= to);
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
    return gap;
  }
}

beforeAll(async () => {
  cluster = await deployCluster("dev", 18, CONFIG, "switchover");
  // What `pulumi stack output --json --show-secrets > outputs.json` writes.
  outputsFile = path.join(os.tmpdir(), "pgha-switchover-outputs.json");
  fs.writeFileSync(outputsFile, JSON.stringify(cluster.outputs, null, 2), { mode: 0o600 });
  report(`switchover: deployed ${cluster.members.join(", ")} (leader ${cluster.primary}) in ${seconds(cluster.elapsedMs)}`);
  const c = new Client(pgConfig(cluster.outputs.hostPooledUrl!, cluster.outputs.caCertPem));
  await c.connect();
  await c.query("CREATE TABLE IF NOT EXISTS switchover_ledger (id bigint PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now())");
  await c.end();
});

afterAll(async () => {
  if (outputsFile) fs.rmSync(outputsFile, { force: true });
  if (cluster) await removeCluster(cluster);
  // A deploy that failed part-way returned no cluster; what it created carries the cluster's label.
  else await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${CONFIG["pg-ha:clusterName"]}`] });
});

let timelineBefore = 0;

test("two switchovers through `npm run ops`: no client error through PgBouncer, a short write stall, every acknowledged row kept", async () => {
  const first = cluster.primary;
  const replica = cluster.replicas[0];
  await waitFor(`${replica} streaming`, async () => (await patroniMembers(first)).some((m) => m.name === replica && m.state === "streaming"), 180_000, 1000);
  await waitFor("the leader's timeline", async () => {
    timelineBefore = (await patroniMembers(first)).find((m) => m.name === first)?.timeline ?? 0;
    return timelineBefore > 0;
  }, 60_000, 1000);

  const acknowledged: number[] = [];
  const inDoubt: number[] = [];
  let nextId = 1;
  const writer = new Load(cluster.outputs.hostPooledUrl!, async (c) => {
    const id = nextId++;
    try {
      await c.query("INSERT INTO switchover_ledger (id) VALUES ($1)", [id]);
    } catch (e) {
      inDoubt.push(id);
      throw e;
    }
    acknowledged.push(id);
  });
  const reader = new Load(cluster.outputs.hostReadOnlyUrl!, async (c) => {
    await c.query("SELECT count(*) FROM switchover_ledger");
  });

  const windows: { to: string; from: number; until: number; printed: string }[] = [];
  try {
    await sleep(2000);
    // To the replica, named; then back with Patroni's own choice (the only other member).
    for (const to of [replica, undefined]) {
      const from = Date.now();
      const r = await ops(["switchover", "--outputs", outputsFile, ...(to ? ["--to", to] : [])]);
      const until = Date.now();
      // Its reason is in what it printed to stderr: shown when it failed.
      expect({ status: r.status, stderr: r.status === 0 ? "" : r.stderr }).toEqual({ status: 0, stderr: "" });
      const printed = r.stdout.split("\n").filter((l) => l.startsWith("switchover:") || l.startsWith("  ")).join("\n");
      expect(printed).toMatch(/switchover: \S+ -> \S+; pause [\d.]+ s, switch [\d.]+ s, resume [\d.]+ s, total \(applications held\) [\d.]+ s/);
      windows.push({ to: await leaderNow(), from, until, printed });
      report(`switchover: ops switchover${to ? ` --to ${to}` : ""} took ${seconds(until - from)} (with npm and ts-node start-up):\n${printed}`);
      // The old leader must stream again before it can be switched back to.
      const old = to ? first : replica;
      await waitFor(`${old} streaming again`, async () => (await patroniMembers(cluster.members[0])).some((m) => m.name === old && m.state === "streaming"), 180_000, 1000);
      await sleep(1000);
    }
  } finally {
    await writer.stop();
    await reader.stop();
  }

  expect(windows.map((w) => w.to)).toEqual([replica, first]);
  const writeStalls = windows.map((w) => writer.longestGap(w.from, w.until + 5000));
  const readStalls = windows.map((w) => reader.longestGap(w.from, w.until + 5000));
  report(`switchover: writer ${writer.ackTimes.length} acknowledged, ${writer.errors.length} errors, longest stall ${writeStalls.map(seconds).join(" / ")} (target ${seconds(STALL_TARGET_MS)}); `
    + `reader ${reader.ackTimes.length} answered, ${reader.errors.length} errors, longest stall ${readStalls.map(seconds).join(" / ")}`);
  expect(writer.errors).toEqual([]);
  expect(reader.errors).toEqual([]);
  // The stall's target is judged by `npm run bench` over repeated switchovers; here it is reported.

  // Every acknowledged row is on the primary now, and nothing but acknowledged or in-doubt rows.
  const leader = await leaderNow();
  const ranges = idRanges(acknowledged).map(([lo, hi]) => `(${lo},${hi})`).join(",");
  const present = Number(await sqlInContainer(leader, `SELECT count(*) FROM switchover_ledger d JOIN (VALUES ${ranges}) r(lo, hi) ON d.id BETWEEN r.lo AND r.hi`, "app"));
  const total = Number(await sqlInContainer(leader, "SELECT count(*) FROM switchover_ledger", "app"));
  report(`switchover: ${present} of ${acknowledged.length} acknowledged rows on ${leader}, ${total} rows in all, ${inDoubt.length} in doubt`);
  expect(acknowledged.length).toBeGreaterThan(100);
  expect(present).toBe(acknowledged.length);
  expect(total).toBeLessThanOrEqual(acknowledged.length + inDoubt.length);
});

test("`npm run ops -- status`: both members with roles and the advanced timeline, the router's view, PgBouncer's pools", async () => {
  const leader = await leaderNow();
  const replica = cluster.members.find((m) => m !== leader)!;
  // The read-only listener takes the replica back once it streams within the lag limit.
  let status: StatusReport | undefined;
  await waitFor("the read-only endpoint on the replica", async () => {
    status = await statusJson();
    return status.router.readOnly.member === replica;
  }, 60_000, 1000);
  const s = status!;
  expect(s.maintenanceMode).toBe(false);
  const roles = Object.fromEntries(s.members.map((m) => [m.name, m.role]));
  expect(roles).toEqual({ [leader]: "Leader", [replica]: "Replica" });
  const states = Object.fromEntries(s.members.map((m) => [m.name, m.state]));
  expect(states).toEqual({ [leader]: "running", [replica]: "streaming" });
  // Two switchovers, two promotions: each starts a new timeline.
  expect(s.members.map((m) => m.timeline)).toEqual([timelineBefore + 2, timelineBefore + 2]);
  expect(s.router.readWrite).toMatchObject({ via: "adminUrls.monitorUrl", endpoint: "127.0.0.1:23442", member: leader, inRecovery: false });
  expect(s.router.readOnly).toMatchObject({ via: "hostReadOnlyUrl", endpoint: "127.0.0.1:23444", member: replica, inRecovery: true });
  const pools = s.pools.map((p) => `${p.database}/${p.user}`);
  expect(pools).toEqual(expect.arrayContaining(["app/app", "app_ro/app"]));
  for (const p of s.pools) expect(Object.keys(p)).toEqual(expect.arrayContaining(["cl_active", "cl_waiting", "sv_active", "sv_idle", "maxwait", "pool_mode"]));

  const text = await ops(["status", "--outputs", outputsFile]);
  expect(text.status).toBe(0);
  for (const expected of [
    new RegExp(`${leader}\\s+\\S+\\s+Leader\\s+running\\s+${timelineBefore + 2}`),
    new RegExp(`${replica}\\s+\\S+\\s+Replica\\s+streaming\\s+${timelineBefore + 2}\\s+0\\s+0`),
    new RegExp(`read-write \\(adminUrls.monitorUrl, 127.0.0.1:23442\\): ${leader} \\(\\S+\\), primary`),
    new RegExp(`read-only \\(hostReadOnlyUrl, 127.0.0.1:23444\\): ${replica} \\(\\S+\\), in recovery`),
    /PgBouncer pools \(SHOW POOLS\)\n\s+database\s+user\s+cl_active/,
    /\n\s+app_ro\s+app\s+\d+/,
  ]) expect(text.stdout).toMatch(expected);
  report(`switchover: ops status after two switchovers (timeline ${timelineBefore} -> ${timelineBefore + 2}):\n${text.stdout.split("\n").filter((l) => !l.startsWith(">")).join("\n").trim()}`);
});

test("a switchover to a member that does not exist is refused before anything is paused", async () => {
  const r = await ops(["switchover", "--outputs", outputsFile, "--to", "pgha-sw-node-9"]);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain("switchover failed: --to pgha-sw-node-9 is not a member; members: pgha-sw-node-1, pgha-sw-node-2");
  expect(r.stdout).not.toContain("pausing");
});

test("status shows the backups: the newest (scheduled after the deploy), its age, the primary's archiver and the last restore drill", async () => {
  let s: StatusReport | undefined;
  // The repository host takes the first full backup, then its first restore drill, by itself.
  await waitFor("a backup and a restore drill in the status", async () => {
    s = await statusJson();
    return (s.backup?.backups.length ?? 0) > 0 && s.backup?.lastDrill !== undefined;
  }, 600_000, 5000);
  const b = s!.backup!;
  expect(b.host).toBe("pgha-sw-backup");
  expect(b.stanzaStatus).toBe("ok");
  expect(b.backups[0]).toMatchObject({ type: "full" });
  expect(b.backups[0].ageSeconds).toBeGreaterThanOrEqual(0);
  expect(b.backups[0].ageSeconds).toBeLessThan(3600);
  expect(b.lastDrill).toMatchObject({ result: "passed", backup: b.backups[0].label });
  // After a switchover the old timeline's last, partial segment is archived too (".partial").
  expect(b.archive?.lastArchivedWal).toMatch(/^[0-9A-F]{24}(\.partial)?$/);
  expect(b.errors).toEqual([]);
  const text = await ops(["status", "--outputs", outputsFile]);
  expect(text.stdout).toMatch(new RegExp(`Backups \\(pgBackRest repository host pgha-sw-backup\\): stanza ok\\n\\s+newest backup: ${b.backups[0].label} \\(full\\)`));
  expect(text.stdout).toMatch(/last restore drill: passed/);
  report(`switchover: ops status, backups:\n${text.stdout.split("\n").slice(text.stdout.split("\n").findIndex((l) => l.startsWith("Backups"))).join("\n").trim()}`);
});
