/**
 * Operator commands for a Patroni cluster, driven by the stack outputs
 * (`pulumi stack output --json --show-secrets > outputs.json`):
 *
 *   npm run ops -- switchover --outputs outputs.json [--to <node>] [--timeout <seconds>]
 *   npm run ops -- status --outputs outputs.json [--json]
 *
 * Patroni is driven with `docker exec -u postgres <node> patronictl`, the containers named by the
 * `nodes` output; PgBouncer's consoles and the router's endpoints are reached with the URLs of the
 * outputs, verify-full against `caCertPem`, from wherever this runs (host URLs on the host).
 */
import { execFile } from "child_process";
import * as fs from "fs";
import { promisify } from "util";
import { parseArgs } from "util";
import { Client, type ClientConfig } from "pg";
import { parse as parseConnectionString } from "pg-connection-string";
import { READ_ONLY_SUFFIX } from "../spec";

const execFileAsync = promisify(execFile);

const USAGE =
  "usage: npm run ops -- switchover --outputs <stack-outputs.json> [--to <node>] [--timeout <seconds>]\n" +
  "       npm run ops -- status --outputs <stack-outputs.json> [--json]";

/** Where the nodes keep Patroni's configuration (patroni.yml and the REST credentials). */
const PATRONI_CONFIG_DIR = "/run/pg-ha/patroni";
/** The PgBouncer entry of its own console, not an application database. */
const CONSOLE_DATABASE = "pgbouncer";

export interface OpsOutputs {
  pooledUrl: string;
  readOnlyUrl: string;
  hostPooledUrl?: string;
  hostReadOnlyUrl?: string;
  adminUrls: { monitorUrl: string; pgbouncerAdminUrl: string; pgbouncerStatsUrl: string };
  caCertPem: string;
  networkName: string;
  nodes: { name: string; role: string }[];
}

export interface MemberStatus {
  name: string;
  /** Where Patroni connects to it, on the cluster network. */
  address: string;
  role: string;
  state: string;
  timeline?: number;
  /** How far a replica's received and replayed WAL is behind the leader, in MB. */
  receiveLagMb?: number;
  replayLagMb?: number;
}

export interface EndpointView {
  /** Which output the connection used, and where it went. */
  via: string;
  endpoint: string;
  member?: string;
  address?: string;
  inRecovery?: boolean;
  error?: string;
}

export interface StatusReport {
  cluster: string;
  /** Patroni's maintenance mode (`patronictl pause`): no automatic failover while on. */
  maintenanceMode: boolean;
  members: MemberStatus[];
  router: { readWrite: EndpointView; readOnly: EndpointView };
  pools: Record<string, string>[];
  poolsError?: string;
  /** pgBackRest's repository host, when the cluster has backups. */
  backup?: BackupView;
}

export interface BackupView {
  host: string;
  /** pgBackRest's word on the stanza ("ok", or what is wrong). */
  stanzaStatus?: string;
  backups: { label: string; type: string; stoppedAt: string; ageSeconds: number; sizeBytes: number; repoSizeBytes: number }[];
  /** The scheduler's and the restore drill's last results (the host's status files), as written. */
  lastBackupRun?: Record<string, unknown>;
  lastDrill?: Record<string, unknown>;
  /** The primary's archiver: how old the newest archived WAL is, and failures. */
  archive?: { currentWal: string; lastArchivedWal?: string; lastArchivedAgeSeconds?: number; failedCount: number; lastFailedWal?: string };
  errors: string[];
}

class OpsError extends Error {}

// ---------------------------------------------------------------------------------------------
// Outputs, Patroni and connections

export function loadOutputs(file: string): OpsOutputs {
  let outputs: OpsOutputs;
  try {
    outputs = JSON.parse(fs.readFileSync(file, "utf8")) as OpsOutputs;
  } catch (e) {
    throw new OpsError(`cannot read the stack outputs from ${file}: ${(e as Error).message} ` +
      "(write them with `pulumi stack output --json --show-secrets > outputs.json`)");
  }
  const missing = ["pooledUrl", "readOnlyUrl", "adminUrls", "caCertPem", "networkName", "nodes"].filter((k) => !(k in outputs));
  if (missing.length > 0) throw new OpsError(`${file} lacks ${missing.join(", ")}: is it \`pulumi stack output --json --show-secrets\` of a pg-ha stack?`);
  if (typeof outputs.adminUrls.monitorUrl !== "string" || outputs.adminUrls.monitorUrl.includes("[secret]")) {
    throw new OpsError(`${file} has no revealed adminUrls: write it with --show-secrets`);
  }
  return outputs;
}

/** The PostgreSQL nodes; a cluster without Patroni has none of role "postgres". */
function patroniNodes(outputs: OpsOutputs): string[] {
  const nodes = outputs.nodes.filter((n) => n.role === "postgres").map((n) => n.name);
  if (nodes.length === 0) throw new OpsError("the outputs name no Patroni node (role \"postgres\"): these commands need pg-ha:failover = patroni");
  return nodes;
}

/** patronictl on the first node that answers (any member talks to the same etcd). */
async function patronictl(nodes: string[], args: string[], timeoutMs = 60_000): Promise<string> {
  const failures: string[] = [];
  for (const node of nodes) {
    try {
      // SIGKILL on timeout: the docker client exits 0 on SIGTERM, which would pass for an empty answer.
      const { stdout } = await execFileAsync("docker", ["exec", "-u", "postgres", node, "patronictl", "-c", PATRONI_CONFIG_DIR, ...args], { timeout: timeoutMs, killSignal: "SIGKILL" });
      if (stdout.trim() === "") throw new Error("printed nothing");
      return stdout;
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string; killed?: boolean };
      failures.push(`${node}: ${err.killed ? `no answer within ${secs(timeoutMs)}` : (err.stderr || err.stdout || err.message).trim()}`);
    }
  }
  throw new OpsError(`patronictl ${args.join(" ")} failed on every node:\n  ${failures.join("\n  ")}`);
}

async function members(nodes: string[]): Promise<{ cluster: string; list: MemberStatus[] }> {
  // A member that cannot reach etcd in time prints nothing; ask again (bounded) rather than fail.
  let listed: Record<string, unknown>[] | undefined;
  const deadline = Date.now() + 90_000;
  while (!listed) {
    const out = await patronictl(nodes, ["list", "-f", "json"], 120_000);
    try {
      listed = JSON.parse(out) as Record<string, unknown>[];
    } catch {
      if (Date.now() > deadline) throw new OpsError(`patronictl list printed no member list for 90 s (last: ${JSON.stringify(out.slice(0, 200))})`);
      await sleep(1000);
    }
  }
  const number = (v: unknown) => (v === undefined || v === "" ? undefined : Number(v));
  return {
    cluster: String(listed[0]?.Cluster ?? ""),
    list: listed.map((m) => ({
      name: String(m.Member),
      address: String(m.Host),
      role: String(m.Role),
      state: String(m.State),
      timeline: number(m.TL),
      receiveLagMb: number(m["Receive Lag"]),
      replayLagMb: number(m["Replay Lag"]),
    })),
  };
}

/** address on the cluster network -> member, to say which member answered a connection. */
const addressMap = (list: MemberStatus[]) => new Map(list.map((m) => [m.address, m.name]));

const leaderOf = (list: MemberStatus[]) => list.find((m) => m.role === "Leader" && m.state === "running");

function clientConfig(url: string, caPem: string, connectTimeoutMs = 5000): ClientConfig {
  const { ssl, ...rest } = parseConnectionString(url);
  if (typeof ssl !== "object") throw new OpsError("a URL of the outputs lacks sslmode=verify-full");
  return { ...(rest as ClientConfig), ssl: { rejectUnauthorized: ssl.rejectUnauthorized, ca: caPem }, connectionTimeoutMillis: connectTimeoutMs };
}

/** host:port of a URL, for messages (never the password). */
function endpointOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port}`;
}

async function connect(url: string, caPem: string, connectTimeoutMs = 5000): Promise<Client> {
  const client = new Client(clientConfig(url, caPem, connectTimeoutMs));
  // A connection cut by the router surfaces on the next query; without a listener it would end the process.
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** A connection the outputs say exists but this machine cannot reach: name it and say why. */
function unreachable(what: string, url: string, outputs: OpsOutputs, cause: unknown): OpsError {
  const host = new URL(url).hostname;
  const inside = !/^(\d+\.){3}\d+$|^\[?[0-9a-f:]+\]?$|^localhost$/i.test(host);
  const hint = inside
    ? ` ${host} is a name inside the cluster network ${outputs.networkName}: this endpoint is not published on the host. ` +
      `Publish it (pg-ha:publishDirectPort for monitorUrl, pg-ha:publishPooledPort for the PgBouncer consoles) or run this from a container attached to ${outputs.networkName}.`
    : "";
  return new OpsError(`${what} (${endpointOf(url)}) cannot be reached: ${(cause as Error).message}.${hint}`);
}

async function whoAnswers(url: string, caPem: string, addresses: Map<string, string>): Promise<{ address: string; member?: string; inRecovery: boolean }> {
  const client = await connect(url, caPem, 3000);
  try {
    const row = (await client.query("SELECT host(inet_server_addr()) AS address, pg_is_in_recovery() AS in_recovery")).rows[0] as { address: string; in_recovery: boolean };
    return { address: row.address, member: addresses.get(row.address), inRecovery: row.in_recovery };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The read-only pooled URL a host reaches: hostReadOnlyUrl, else the host pooler port with the read-only database. */
function readOnlyUrlFromHere(outputs: OpsOutputs): { via: string; url: string } {
  if (outputs.hostReadOnlyUrl) return { via: "hostReadOnlyUrl", url: outputs.hostReadOnlyUrl };
  if (outputs.hostPooledUrl) {
    // The read-only entry is a database of the same PgBouncer, so the published pooler port serves it too.
    const url = new URL(outputs.hostPooledUrl);
    url.pathname = new URL(outputs.readOnlyUrl).pathname;
    return { via: "hostPooledUrl with readOnlyUrl's database", url: url.toString() };
  }
  return { via: "readOnlyUrl", url: outputs.readOnlyUrl };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

// ---------------------------------------------------------------------------------------------
// switchover

interface SwitchoverOptions { to?: string; timeoutMs: number }

async function switchover(outputs: OpsOutputs, options: SwitchoverOptions): Promise<void> {
  const nodes = patroniNodes(outputs);
  const ca = outputs.caCertPem;
  const { monitorUrl, pgbouncerAdminUrl } = outputs.adminUrls;
  const { list: before } = await members(nodes);
  const addresses = addressMap(before);
  const leader = leaderOf(before);
  if (!leader) throw new OpsError(`no running leader to switch over from: ${describeMembers(before)}`);
  if (options.to !== undefined) {
    const target = before.find((m) => m.name === options.to);
    if (!target) throw new OpsError(`--to ${options.to} is not a member; members: ${before.map((m) => m.name).join(", ")}`);
    if (target.name === leader.name) throw new OpsError(`--to ${options.to} already leads the cluster`);
  } else if (!before.some((m) => m.name !== leader.name && m.state === "streaming")) {
    throw new OpsError(`no streaming replica to switch over to: ${describeMembers(before)}`);
  }

  // Both endpoints must answer before anything is paused: a switchover that cannot see the router
  // would keep the applications paused for nothing.
  const admin = await connect(pgbouncerAdminUrl, ca).catch((e) => { throw unreachable("PgBouncer's admin console (adminUrls.pgbouncerAdminUrl)", pgbouncerAdminUrl, outputs, e); });
  admin.on("error", () => undefined);
  try {
    const seen = await whoAnswers(monitorUrl, ca, addresses).catch((e) => { throw unreachable("the router's read-write endpoint (adminUrls.monitorUrl)", monitorUrl, outputs, e); });
    if (seen.member !== leader.name) throw new OpsError(`the read-write endpoint answers from ${seen.member ?? seen.address}, Patroni's leader is ${leader.name}: the router disagrees with Patroni, not switching`);

    const databases = ((await admin.query("SHOW DATABASES")).rows as { name: string }[])
      .map((r) => r.name).filter((name) => name !== CONSOLE_DATABASE);
    process.stdout.write(`switchover: leader ${leader.name} (timeline ${leader.timeline ?? "?"}), target ${options.to ?? "Patroni's choice"}; pausing ${databases.join(", ")} on PgBouncer\n`);

    const start = Date.now();
    const paused: string[] = [];
    let resumed = false;
    const resume = async () => {
      const client = await connect(pgbouncerAdminUrl, ca);
      try {
        for (const db of paused) await client.query(`RESUME ${quoteIdent(db)}`);
      } finally {
        await client.end().catch(() => undefined);
      }
      resumed = true;
    };
    // Interrupted while the applications are held (Ctrl-C, a terminal closed): resume them first.
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`switchover: ${signal} while paused; resuming ${paused.join(", ")}\n`);
      resume().then(() => process.exit(130), (e) => {
        process.stderr.write(`switchover: RESUME FAILED (${(e as Error).message}); run RESUME on PgBouncer's admin console now\n`);
        process.exit(1);
      });
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      // PAUSE returns once the database's running transactions have finished and its server
      // connections are closed; clients queue in PgBouncer meanwhile.
      for (const db of databases) {
        paused.push(db);
        await withTimeout(admin.query(`PAUSE ${quoteIdent(db)}`), options.timeoutMs, `PAUSE ${db} (waiting for its running transactions)`);
      }
      const pausedAt = Date.now();
      process.stdout.write(`  paused in ${secs(pausedAt - start)}\n`);

      const args = ["switchover", "--force", "--leader", leader.name, ...(options.to ? ["--candidate", options.to] : [])];
      const printed = await patronictl(nodes, args, options.timeoutMs);
      const said = printed.trim().split("\n").filter((l) => /switch|fail|error/i.test(l));
      if (said.length > 0) process.stdout.write(`  patronictl: ${said.join(" / ")}\n`);
      const switchedAt = Date.now();
      // Patroni names the member it promoted once the switchover is done; when it could not tell
      // ("status unknown"), Patroni's leader is asked below.
      const promoted = /Successfully switched over to "([^"]+)"/.exec(printed)?.[1];

      // The switch is done for the applications when the router's read-write endpoint leads to
      // a member other than the old leader that is out of recovery and that Patroni names leader.
      const deadline = pausedAt + options.timeoutMs;
      let newLeader: string | undefined;
      let last = "";
      while (!newLeader) {
        if (Date.now() > deadline) throw new OpsError(`the read-write endpoint did not reach a new leader within ${secs(options.timeoutMs)} (last: ${last})`);
        try {
          const seen = await whoAnswers(monitorUrl, ca, addresses);
          last = `${seen.member ?? seen.address}, in recovery ${seen.inRecovery}`;
          if (!seen.inRecovery && seen.member && seen.member !== leader.name && (!options.to || seen.member === options.to)) {
            const now = promoted ?? leaderOf((await members(nodes)).list)?.name;
            if (now === seen.member) newLeader = seen.member;
            else last += `; Patroni's leader ${now ?? "none"}`;
          }
        } catch (e) {
          last = (e as Error).message;
        }
        if (!newLeader) await sleep(200);
      }
      const routedAt = Date.now();
      process.stdout.write(`  ${newLeader} leads; patronictl returned after ${secs(switchedAt - pausedAt)}, the read-write endpoint reached it after ${secs(routedAt - pausedAt)}\n`);

      await resume();
      const end = Date.now();
      process.stdout.write(`  resumed in ${secs(end - routedAt)}\n`);
      process.stdout.write(`switchover: ${leader.name} -> ${newLeader}; pause ${secs(pausedAt - start)}, switch ${secs(routedAt - pausedAt)}, resume ${secs(end - routedAt)}, total (applications held) ${secs(end - start)}\n`);
      await rebalanceReadOnly(nodes, leader.name, paused.filter((db) => db.endsWith(READ_ONLY_SUFFIX)), pgbouncerAdminUrl, ca);
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      if (!resumed && paused.length > 0) {
        try {
          await resume();
          process.stderr.write(`switchover: resumed ${paused.join(", ")} on PgBouncer after the failure\n`);
        } catch (e) {
          process.stderr.write(`switchover: RESUME FAILED (${(e as Error).message}); run RESUME on PgBouncer's admin console now: psql "<pgbouncerAdminUrl>" -c "RESUME"\n`);
        }
      }
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/**
 * While the old leader rejoined, the router's read-only port had only the new leader to offer, so
 * PgBouncer's read-only server connections now sit on the primary, and would stay there for their
 * whole lifetime. Once the old leader streams again (and the router's checks have seen it),
 * RECONNECT closes each of them when it is next released, never under a running query, and new
 * ones go to the replicas. The applications are no longer held while this waits.
 */
async function rebalanceReadOnly(nodes: string[], oldLeader: string, readOnlyDatabases: string[], adminUrl: string, ca: string): Promise<void> {
  if (readOnlyDatabases.length === 0) return;
  const deadline = Date.now() + REJOIN_WAIT_MS;
  while (Date.now() < deadline) {
    const { list } = await members(nodes).catch(() => ({ list: [] as MemberStatus[] }));
    if (list.some((m) => m.name === oldLeader && m.state === "streaming")) {
      await sleep(ROUTER_RISE_MS);
      const client = await connect(adminUrl, ca);
      try {
        for (const db of readOnlyDatabases) await client.query(`RECONNECT ${quoteIdent(db)}`);
      } finally {
        await client.end().catch(() => undefined);
      }
      process.stdout.write(`  ${oldLeader} streams again; ${readOnlyDatabases.join(", ")} reconnected to the replicas as their connections are released\n`);
      return;
    }
    await sleep(1000);
  }
  process.stdout.write(`  ${oldLeader} did not stream within ${secs(REJOIN_WAIT_MS)}: read-only sessions stay on the primary until it does and PgBouncer renews them; see \`status\`\n`);
}

/** How long the switchover waits, after resuming, for the old leader to stream again. */
const REJOIN_WAIT_MS = 120_000;
/** The router's checks: a member that streams is back in its read-only listener within this. */
const ROUTER_RISE_MS = 3_000;

/** An identifier for the PgBouncer console (database names are plain words here, quoted in case). */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new OpsError(`${what} did not finish within ${secs(ms)}`)), ms); });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describeMembers(list: MemberStatus[]): string {
  return list.map((m) => `${m.name} ${m.role} ${m.state}`).join("; ");
}

// ---------------------------------------------------------------------------------------------
// status

export async function status(outputs: OpsOutputs): Promise<StatusReport> {
  const nodes = patroniNodes(outputs);
  const ca = outputs.caCertPem;
  const { cluster, list } = await members(nodes);
  const addresses = addressMap(list);
  const maintenanceMode = /^pause:\s*true\s*$/m.test(await patronictl(nodes, ["show-config"], 120_000));

  const view = async (via: string, url: string): Promise<EndpointView> => {
    const base = { via, endpoint: endpointOf(url) };
    try {
      return { ...base, ...(await whoAnswers(url, ca, addresses)) };
    } catch (e) {
      return { ...base, error: unreachable(via, url, outputs, e).message };
    }
  };
  const readOnly = readOnlyUrlFromHere(outputs);
  const router = {
    readWrite: await view("adminUrls.monitorUrl", outputs.adminUrls.monitorUrl),
    readOnly: await view(readOnly.via, readOnly.url),
  };

  let pools: Record<string, string>[] = [];
  let poolsError: string | undefined;
  try {
    const client = await connect(outputs.adminUrls.pgbouncerStatsUrl, ca);
    try {
      pools = ((await client.query("SHOW POOLS")).rows as Record<string, unknown>[])
        .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? "" : String(v)])));
    } finally {
      await client.end().catch(() => undefined);
    }
  } catch (e) {
    poolsError = unreachable("PgBouncer's stats console (adminUrls.pgbouncerStatsUrl)", outputs.adminUrls.pgbouncerStatsUrl, outputs, e).message;
  }
  const backupHost = outputs.nodes.find((n) => n.role === "backup")?.name;
  const backup = backupHost ? await backupStatus(backupHost, outputs) : undefined;
  return { cluster, maintenanceMode, members: list, router, pools, ...(poolsError ? { poolsError } : {}), ...(backup ? { backup } : {}) };
}

/** `docker exec` on the repository host, as postgres (its environment names the configuration and the stanza). */
async function onBackupHost(host: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await execFileAsync("docker", ["exec", "-u", "postgres", host, ...args], { timeout: timeoutMs, killSignal: "SIGKILL" });
  return stdout;
}

/** The repository (pgbackrest info), the status files of the scheduler and the drill, and the primary's archiver. */
export async function backupStatus(host: string, outputs: OpsOutputs): Promise<BackupView> {
  const view: BackupView = { host, backups: [], errors: [] };
  const now = Date.now() / 1000;
  try {
    const stanza = (JSON.parse(await onBackupHost(host, ["pgbackrest", "--output=json", "info"])) as Record<string, any>[])[0];
    view.stanzaStatus = String(stanza?.status?.message ?? "no stanza");
    view.backups = ((stanza?.backup ?? []) as Record<string, any>[]).map((b) => ({
      label: String(b.label), type: String(b.type),
      stoppedAt: new Date(Number(b.timestamp.stop) * 1000).toISOString(),
      ageSeconds: Math.round(now - Number(b.timestamp.stop)),
      sizeBytes: Number(b.info.size), repoSizeBytes: Number(b.info.repository.delta),
    }));
  } catch (e) {
    view.errors.push(`pgbackrest info on ${host}: ${(e as Error).message.split("\n").slice(-2).join(" ")}`);
  }
  for (const [key, file] of [["lastBackupRun", "last-backup.json"], ["lastDrill", "last-drill.json"]] as const) {
    try {
      view[key] = JSON.parse(await onBackupHost(host, ["sh", "-c", `cat /var/lib/pgbackrest/pg-ha/${file} 2>/dev/null || echo null`])) ?? undefined;
    } catch (e) {
      view.errors.push(`${file} on ${host}: ${(e as Error).message}`);
    }
  }
  try {
    const client = await connect(outputs.adminUrls.monitorUrl, outputs.caCertPem);
    try {
      const row = (await client.query(`SELECT pg_walfile_name(pg_current_wal_lsn()) AS current_wal, last_archived_wal,
          round(extract(epoch FROM now() - last_archived_time))::int AS archived_age, failed_count, last_failed_wal FROM pg_stat_archiver`)).rows[0];
      view.archive = {
        currentWal: row.current_wal, lastArchivedWal: row.last_archived_wal ?? undefined,
        lastArchivedAgeSeconds: row.archived_age ?? undefined, failedCount: Number(row.failed_count), lastFailedWal: row.last_failed_wal ?? undefined,
      };
    } finally {
      await client.end().catch(() => undefined);
    }
  } catch (e) {
    view.errors.push(unreachable("the primary's archiver (adminUrls.monitorUrl)", outputs.adminUrls.monitorUrl, outputs, e).message);
  }
  return view;
}

function printStatus(report: StatusReport): void {
  const out: string[] = [`Cluster ${report.cluster}: members (patronictl list)${report.maintenanceMode ? ", maintenance mode on: no automatic failover" : ""}`];
  const cell = (v?: number) => (v === undefined ? "" : String(v));
  out.push(...table(["member", "address", "role", "state", "timeline", "receive lag MB", "replay lag MB"],
    report.members.map((m) => [m.name, m.address, m.role, m.state, cell(m.timeline), cell(m.receiveLagMb), cell(m.replayLagMb)])));
  out.push("", "Router");
  for (const [name, v] of [["read-write", report.router.readWrite], ["read-only", report.router.readOnly]] as const) {
    out.push(v.error
      ? `  ${name}: ${v.error}`
      : `  ${name} (${v.via}, ${v.endpoint}): ${v.member ?? "an unknown server"} (${v.address}), ${v.inRecovery ? "in recovery (replica)" : "primary"}`);
  }
  out.push("", "PgBouncer pools (SHOW POOLS)");
  if (report.poolsError) out.push(`  ${report.poolsError}`);
  else {
    const columns = ["database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "sv_login", "maxwait", "pool_mode"];
    out.push(...table(columns, report.pools.map((p) => columns.map((c) => p[c] ?? ""))));
  }
  if (report.backup) out.push("", ...describeBackup(report.backup));
  process.stdout.write(`${out.join("\n")}\n`);
}

function describeBackup(b: BackupView): string[] {
  const age = (s?: number) => (s === undefined ? "?" : s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);
  const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
  const out = [`Backups (pgBackRest repository host ${b.host}): stanza ${b.stanzaStatus ?? "unknown"}`];
  const newest = b.backups[b.backups.length - 1];
  out.push(newest
    ? `  newest backup: ${newest.label} (${newest.type}), finished ${newest.stoppedAt}, ${age(newest.ageSeconds)} ago; ${b.backups.length} kept, ${mb(b.backups.reduce((sum, x) => sum + x.repoSizeBytes, 0))} in the repository`
    : "  no backup yet");
  if (b.archive) {
    const a = b.archive;
    out.push(`  WAL archive: newest archived ${a.lastArchivedWal ?? "none"} (${age(a.lastArchivedAgeSeconds)} ago), the primary writes ${a.currentWal}; ${a.failedCount} failed attempts${a.lastFailedWal ? ` (last ${a.lastFailedWal})` : ""}`);
  }
  const run = (r?: Record<string, unknown>) => (r ? `${r.result} (${r.backup ?? r.type ?? ""}, started ${r.startedAt}, ${r.seconds} s)${r.error ? `: ${r.error}` : ""}` : "none yet");
  out.push(`  last scheduled backup: ${run(b.lastBackupRun)}`, `  last restore drill: ${run(b.lastDrill)}`);
  for (const e of b.errors) out.push(`  ${e}`);
  return out;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i])).join("  ")}`.trimEnd();
  return [line(header), ...rows.map(line)];
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== "switchover" && command !== "status") {
    process.stderr.write(`unknown command "${command ?? ""}"; accepted: switchover, status\n${USAGE}\n`);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { outputs: { type: "string" }, to: { type: "string" }, timeout: { type: "string" }, json: { type: "boolean" } },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!values.outputs) {
    process.stderr.write(`--outputs is required\n${USAGE}\n`);
    return 2;
  }
  if (command === "status" && (values.to !== undefined || values.timeout !== undefined)) {
    process.stderr.write(`--to and --timeout apply to switchover only\n${USAGE}\n`);
    return 2;
  }
  if (command === "switchover" && values.json) {
    process.stderr.write(`--json applies to status only\n${USAGE}\n`);
    return 2;
  }
  // Paused clients wait at most PgBouncer's query_wait_timeout (30 s) before they get an error:
  // the switchover is given up, and the pools resumed, well before that.
  const timeoutSeconds = Number(values.timeout ?? 20);
  if (!(timeoutSeconds > 0)) {
    process.stderr.write(`--timeout "${values.timeout}" is not a positive number of seconds\n${USAGE}\n`);
    return 2;
  }
  try {
    const outputs = loadOutputs(values.outputs);
    if (command === "switchover") {
      await switchover(outputs, { to: values.to, timeoutMs: timeoutSeconds * 1000 });
    } else {
      const report = await status(outputs);
      if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else printStatus(report);
    }
    return 0;
  } catch (e) {
    process.stderr.write(`${command} failed: ${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
    process.stderr.write(`${String(e)}\n`);
    process.exit(1);
  });
}
