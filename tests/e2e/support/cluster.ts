/**
 * Brings a stack up on the local engine through the executor, and reaches it the way services do:
 * `pg` and `psql` with the URLs from the stack outputs and the CA, verify-full.
 */
import { execFile, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { Client, type ClientConfig } from "pg";
import { parse as parseConnectionString } from "pg-connection-string";
import { type FailoverMode, parseClusterConfig, SETTINGS, type ClusterSpec } from "../../../config";
import { cleanupLeftovers, deploy, destroy, loadStackConfig } from "../executor";

const execFileAsync = promisify(execFile);
const ROOT = path.join(__dirname, "..", "..", "..");

export type Stack = "dev" | "prod";
export type Major = 17 | 18;

/** Stack outputs with secrets revealed, as `pulumi stack output --show-secrets` prints them. */
export interface StackOutputs {
  directUrl: string;
  pooledUrl: string;
  readOnlyUrl: string;
  hostDirectUrl?: string;
  hostPooledUrl?: string;
  hostReadOnlyUrl?: string;
  adminUrls: { monitorUrl: string; pgbouncerAdminUrl: string; pgbouncerStatsUrl: string };
  caCertPem: string;
  networkName: string;
  nodes: { name: string; role: "primary" | "replica" | "postgres" | "etcd" | "router" | "backup" | "pgbouncer" }[];
  /** With backups: the repository, for pg-ha:restoreFrom, and its passphrase (revealed). */
  backupRepository?: { volumeName: string; stanza: string };
  backupCipherPass?: string;
}

/**
 * What the tests change in a committed stack: the locally built images (nothing can be pulled
 * here) and, for prod's 4 CPUs, no more CPUs than this machine has (Docker refuses more).
 */
export function testOverrides(stack: Stack, major: Major, failover: FailoverMode = "patroni"): Record<string, string> {
  const cpus = Number(loadStackConfig(stack)["pg-ha:nodeCpus"] ?? 1);
  return {
    "pg-ha:pullImages": "false",
    "pg-ha:postgresMajor": String(major),
    "pg-ha:postgresImage": `pgha-test/postgres:${major}`,
    "pg-ha:pgbouncerImage": "pgha-test/pgbouncer:latest",
    "pg-ha:nodeCpus": String(Math.min(cpus, os.cpus().length)),
    "pg-ha:failover": failover,
    // One local image stands in for the etcd and HAProxy images (tests/images/build.sh). Without
    // Patroni, the dev stack's etcdMembers goes back to its default: config.ts refuses etcd
    // settings that would have no effect.
    ...(failover === "patroni"
      ? { "pg-ha:etcdImage": HA_TOOLS_IMAGE, "pg-ha:haproxyImage": HA_TOOLS_IMAGE }
      : { "pg-ha:etcdMembers": String(SETTINGS.etcdMembers.default) }),
  };
}

export const HA_TOOLS_IMAGE = "pgha-test/ha-tools:latest";

/**
 * The topology deployCluster gives a suite that does not choose one in its extra config: the
 * fixed primary and replicas, which the suites written before Patroni were built around.
 */
export const SUITE_DEFAULT_FAILOVER: FailoverMode = "none";

/**
 * The members of a Patroni cluster as patronictl reports them, asked of ANY_NODE (or, when it
 * does not answer, of the others in turn) until one answers within the deadline. A loaded node's
 * patronictl may take tens of seconds; the docker client exits 0 on SIGTERM, so it is killed with
 * SIGKILL and an empty answer counts as none.
 */
export async function patroniMembers(
  anyNode: string | string[],
  deadlineMs = 180_000,
): Promise<{ name: string; role: string; state: string; timeline?: number; lag?: number | string; pendingRestart: boolean }[]> {
  const nodes = Array.isArray(anyNode) ? anyNode : [anyNode];
  const until = Date.now() + deadlineMs;
  const failures: string[] = [];
  for (let attempt = 0; Date.now() < until; attempt++) {
    const node = nodes[attempt % nodes.length];
    try {
      const { stdout } = await execFileAsync("docker", ["exec", "-u", "postgres", node, "patronictl", "-c", PATRONI_CONFIG_DIR, "list", "-f", "json"], {
        timeout: Math.max(5_000, Math.min(60_000, until - Date.now())), killSignal: "SIGKILL",
      });
      const listed = JSON.parse(stdout) as Record<string, unknown>[];
      if (listed.length === 0) throw new Error("an empty member list");
      return listed.map((m) => ({
        name: String(m.Member), role: String(m.Role).toLowerCase(), state: String(m.State),
        timeline: m.TL === undefined || m.TL === "" ? undefined : Number(m.TL),
        lag: m["Lag in MB"] as number | string | undefined,
        // A column patronictl adds only while some member waits for a restart ("*").
        pendingRestart: Boolean(m["Pending restart"]),
      }));
    } catch (e) {
      const err = e as { killed?: boolean; message: string };
      const said = (err as { stderr?: string }).stderr?.trim().split("\n").pop();
      failures.push(`${node}: ${err.killed ? "no answer within the bound" : said || err.message.split("\n")[0]}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
  throw new Error(`patronictl list answered on no node within ${deadlineMs / 1000} s: ${failures.slice(-nodes.length).join("; ")}`);
}

/** Where patroni-start.sh gathers Patroni's configuration (patroni.yml and the REST credentials). */
export const PATRONI_CONFIG_DIR = "/run/pg-ha/patroni";

export interface DeployedCluster {
  stack: Stack;
  /** The label the executor puts on everything of this deployment. */
  deployment: string;
  spec: ClusterSpec;
  config: Record<string, string>;
  outputs: StackOutputs;
  elapsedMs: number;
  caFile: string;
  primary: string;
  replicas: string[];
  pgbouncer: string;
  /** Every PostgreSQL node. */
  members: string[];
}

/**
 * Removes what an earlier run left of this cluster, then deploys STACK's program with its
 * committed config. `fresh` also removes its data volumes; without it kept volumes are adopted,
 * as a re-deploy with retained volumes does.
 */
export async function deployCluster(
  stack: Stack,
  major: Major,
  extra: Record<string, string> = {},
  deployment = `${stack}-${major}`,
  fresh = true,
): Promise<DeployedCluster> {
  const failover = (extra["pg-ha:failover"] ?? SUITE_DEFAULT_FAILOVER) as FailoverMode;
  const config = { ...loadStackConfig(stack), ...testOverrides(stack, major, failover), ...extra };
  const spec = parseClusterConfig(config);
  // Whatever run left objects of this cluster (same names), they must go first.
  await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${spec.clusterName}`], keepData: !fresh });
  const result = await deploy({ programPath: path.join(ROOT, "index.ts"), stack: deployment, config });
  const outputs = result.outputs as unknown as StackOutputs;
  const caFile = path.join(os.tmpdir(), `pgha-${deployment}-ca.pem`);
  fs.writeFileSync(caFile, outputs.caCertPem);
  const pgbouncer = outputs.nodes.find((n) => n.role === "pgbouncer")!.name;
  if (spec.failover === "patroni") {
    // Which member leads is run-time state: this is who led when the deploy finished.
    const members = outputs.nodes.filter((n) => n.role === "postgres").map((n) => n.name);
    const listed = await patroniMembers(members);
    const leader = listed.find((m) => m.role === "leader")?.name;
    if (!leader) throw new Error(`no leader among ${JSON.stringify(listed)}`);
    return { stack, deployment, spec, config, outputs, elapsedMs: result.elapsedMs, caFile, primary: leader, replicas: members.filter((m) => m !== leader), pgbouncer, members };
  }
  return {
    stack, deployment, spec, config, outputs, elapsedMs: result.elapsedMs, caFile,
    primary: outputs.nodes.find((n) => n.role === "primary")!.name,
    replicas: outputs.nodes.filter((n) => n.role === "replica").map((n) => n.name),
    pgbouncer,
    members: outputs.nodes.filter((n) => n.role === "primary" || n.role === "replica").map((n) => n.name),
  };
}

export async function removeCluster(cluster: DeployedCluster, keepData = false): Promise<void> {
  await destroy({ stack: cluster.deployment, keepData });
}

/** A `pg` client for URL exactly as given, verifying the server against the cluster CA. */
export function pgConfig(url: string, caPem: string): ClientConfig {
  // The URL's sslmode=verify-full gives an `ssl` object that verifies host and chain; add the CA.
  const { ssl, ...rest } = parseConnectionString(url);
  if (typeof ssl !== "object") throw new Error("connection string without sslmode=verify-full");
  return { ...(rest as ClientConfig), ssl: { rejectUnauthorized: ssl.rejectUnauthorized, ca: caPem }, connectionTimeoutMillis: 5000 };
}

export async function withClient<T>(url: string, caPem: string, work: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client(pgConfig(url, caPem));
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function query<T = Record<string, unknown>>(url: string, caPem: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return withClient(url, caPem, async (c) => (await c.query(sql, params)).rows as T[]);
}

/** psql with the URL as given; libpq takes the CA from PGSSLROOTCERT. */
export function psql(url: string, caFile: string, sql: string, extraEnv: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync("psql", ["-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql, url], {
    env: { ...process.env, PGSSLROOTCERT: caFile, PGCONNECT_TIMEOUT: "5", ...extraEnv },
    encoding: "utf8",
    timeout: 30_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

/** SQL as the server user over the container's own socket (peer authentication), as an operator would. */
export async function sqlInContainer(container: string, sql: string, database = "postgres"): Promise<string> {
  const { stdout } = await execFileAsync("docker", ["exec", "-u", "postgres", container, "psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], { timeout: 30_000 });
  return stdout.trim();
}

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("docker", args, { timeout: 120_000 });
  return stdout.trim();
}

export async function healthOf(container: string): Promise<string> {
  return docker("inspect", "-f", "{{.State.Health.Status}}", container);
}

/** Polls CHECK until it returns true, at most TIMEOUT ms; returns the time it took. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<number> {
  const start = Date.now();
  let lastError: unknown;
  while (Date.now() - start < timeoutMs) {
    try {
      if (await check()) return Date.now() - start;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `; last error: ${String(lastError)}` : ""}`);
}

/** Replication as the primary sees it: application_name -> {state, slot active}. */
export async function replicationState(cluster: DeployedCluster): Promise<Record<string, { state: string; slotActive: boolean }>> {
  const rows = await sqlInContainer(
    cluster.primary,
    `SELECT s.slot_name, coalesce(r.state, 'absent'), s.active
       FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid ORDER BY 1`,
  );
  return Object.fromEntries(
    rows.split("\n").filter(Boolean).map((line) => {
      const [slot, state, active] = line.split("|");
      return [slot, { state, slotActive: active === "t" }];
    }),
  );
}

export async function walReceiverStatus(replica: string): Promise<string> {
  return sqlInContainer(replica, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')");
}

/** True when every replica streams through an active slot. */
export async function allStreaming(cluster: DeployedCluster): Promise<boolean> {
  const state = await replicationState(cluster);
  const slots = cluster.replicas.map((_, i) => `replica_${i + 1}`);
  if (!slots.every((s) => state[s]?.state === "streaming" && state[s].slotActive)) return false;
  const receivers = await Promise.all(cluster.replicas.map(walReceiverStatus));
  return receivers.every((s) => s === "streaming");
}

/** Prints a figure so that the test run's output carries it (jest shows console output). */
export function report(line: string): void {
  process.stdout.write(`[pg-ha e2e] ${line}\n`);
}
