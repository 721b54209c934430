/**
 * The README's operations section, run the way an operator runs it: the setup block and then each
 * `ops-check` block exactly as written, in bash, with psql and jq on the host reaching the cluster
 * through its published ports, and `pulumi stack output` answering from this deployment's outputs.
 * What each block prints is checked against the live cluster (tests/e2e/support/operations.ts).
 *
 * The cluster is the dev shape with a second application database, so "in each application
 * database" is shown for more than one.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Client } from "pg";
import {
  allStreaming, deployCluster, type DeployedCluster, docker, healthOf, pgConfig, removeCluster, report, waitFor,
} from "./support/cluster";
import {
  OPS_CHECKS, type OpsBlock, type OpsContext, README_PATH, opsBlocks, runOperatorShell, writePulumiStackOutput,
} from "./support/operations";

jest.setTimeout(180_000);

const OPS = {
  clusterName: "pgha-ops",
  subnet: "172.30.72.0/24",
  ports: { direct: 21442, pooled: 21443, readOnly: 21444 },
  databases: ["app", "reports"],
  deployment: "ops",
};
/** A statement run in each database before the checks, slower than the application's, for pg_stat_statements to list. */
const PROBE = { word: "ops_probe", minMs: 1000 };

const blocks = opsBlocks(fs.readFileSync(README_PATH, "utf8"));
const setup = blocks.find((b) => b.kind === "setup");
const checks = blocks.filter((b) => b.kind === "check");

type DatabaseUrls = Record<string, { hostDirectUrl: string; hostPooledUrl: string; hostReadOnlyUrl: string }>;

let cluster: DeployedCluster;
let ctx: OpsContext;
let workDir: string;
let binDir: string;
let held: Client[] = [];

const databaseUrls = () => (cluster.outputs as unknown as { databaseUrls: DatabaseUrls }).databaseUrls;

/** A connected `pg` client; the connect timeout is generous, as the shared machine may be loaded. */
async function connect(url: string): Promise<Client> {
  const client = new Client({ ...pgConfig(url, cluster.outputs.caCertPem), connectionTimeoutMillis: 60_000 });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** Statements in each application database that pg_stat_statements must then show. */
async function probeEveryDatabase(): Promise<void> {
  for (const database of OPS.databases) {
    const client = await connect(databaseUrls()[database].hostDirectUrl);
    try {
      await client.query(`SELECT pg_sleep(${PROBE.minMs / 1000}) AS ${PROBE.word}`);
    } finally {
      await client.end();
    }
  }
}

/** One idle client on each endpoint of each database, as connected services would be. */
async function holdClients(): Promise<void> {
  for (const database of OPS.databases) {
    const urls = databaseUrls()[database];
    for (const url of [urls.hostDirectUrl, urls.hostPooledUrl, urls.hostReadOnlyUrl]) {
      const client = await connect(url);
      held.push(client);
      await client.query("SELECT 1");
    }
  }
}

async function releaseClients(): Promise<void> {
  await Promise.allSettled(held.map((c) => c.end()));
  held = [];
}

function runBlock(block: OpsBlock) {
  return runOperatorShell(`${setup!.code}\n${block.code}`, workDir, binDir);
}

beforeAll(async () => {
  expect(setup).toBeDefined();
  cluster = await deployCluster("dev", 18, {
    "pg-ha:clusterName": OPS.clusterName,
    "pg-ha:networkSubnet": OPS.subnet,
    "pg-ha:publishDirectPort": String(OPS.ports.direct),
    "pg-ha:publishPooledPort": String(OPS.ports.pooled),
    "pg-ha:publishReadOnlyPort": String(OPS.ports.readOnly),
    "pg-ha:databases": JSON.stringify(OPS.databases),
  }, OPS.deployment);
  await waitFor("every replica streaming", () => allStreaming(cluster), 120_000, 500);
  ctx = { spec: cluster.spec, replicaSlots: cluster.replicas.map((_, i) => `replica_${i + 1}`), probe: PROBE };
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "pgha-ops-"));
  binDir = path.join(workDir, "bin");
  writePulumiStackOutput(binDir, cluster.outputs as unknown as Record<string, unknown>);
  await probeEveryDatabase();
  await holdClients();
  report(`operations: ${OPS.clusterName} up in ${(cluster.elapsedMs / 1000).toFixed(1)} s; README has ${checks.length} ops-check blocks: ${checks.map((b) => b.name).join(", ")}`);
}, 600_000);

afterAll(async () => {
  await releaseClients();
  if (cluster) await removeCluster(cluster);
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
}, 300_000);

test("the setup block, as written, writes the CA and sets the monitor, PgBouncer and database variables from the stack outputs", () => {
  const run = runOperatorShell(`${setup!.code}\nprintf '%s\\n' "$MONITOR_URL" "$PGBOUNCER_STATS_URL" $DATABASES`, workDir, binDir);
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  expect(run.stdout.trim().split("\n")).toEqual([cluster.outputs.adminUrls.monitorUrl, cluster.outputs.adminUrls.pgbouncerStatsUrl, ...OPS.databases]);
  // The URLs reach the cluster through the published ports on the host.
  expect(cluster.outputs.adminUrls.monitorUrl).toContain(`@127.0.0.1:${OPS.ports.direct}/`);
  expect(cluster.outputs.adminUrls.pgbouncerStatsUrl).toContain(`@127.0.0.1:${OPS.ports.pooled}/`);
  expect(fs.readFileSync(path.join(workDir, "ca.pem"), "utf8").trim()).toBe(cluster.outputs.caCertPem.trim());
});

test.each(checks.map((b) => [b.name, b] as const))("README ops-check %s runs as written and prints what it should", (name, block) => {
  const check = OPS_CHECKS[name];
  if (!check) throw new Error(`README.md line ${block.line}: ops-check "${name}" has no entry in OPS_CHECKS (tests/e2e/support/operations.ts)`);
  const run = runBlock(block);
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  report(`operations ${name} (${check.shows}): ${check.verify(run, ctx)}`);
});

test("a restart of the primary runs its reconcile step again over the existing extensions: it comes back healthy and the check still passes", async () => {
  const block = checks.find((b) => b.name === "pg-stat-statements");
  expect(block).toBeDefined();
  await releaseClients();
  const start = Date.now();
  await docker("restart", "-t", "30", cluster.primary);
  await waitFor(`${cluster.primary} healthy`, async () => (await healthOf(cluster.primary)) === "healthy", 180_000, 500);
  await waitFor("every replica streaming again", () => allStreaming(cluster), 180_000, 500);
  // The reconcile step ran again and met each extension already there: postgres and every database.
  const logs = spawnSync("docker", ["logs", "--since", new Date(start - 1000).toISOString(), cluster.primary], { encoding: "utf8" });
  const skipped = (logs.stdout + logs.stderr).match(/extension "pg_stat_statements" already exists, skipping/g) ?? [];
  expect(skipped).toHaveLength(1 + OPS.databases.length);
  await probeEveryDatabase();
  const run = runBlock(block!);
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  report(`operations after a primary restart (${((Date.now() - start) / 1000).toFixed(1)} s): ${OPS_CHECKS["pg-stat-statements"].verify(run, ctx)}`);
}, 600_000);
