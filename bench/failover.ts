/**
 * Failover on a Patroni cluster of the program while one client writes through PgBouncer: the
 * leader killed (SIGKILL), stopped cleanly, and switched over in a planned way, each several times.
 * Per event: seconds from the fault to the first acknowledged write after it, the longest time no
 * write was acknowledged, the client's errors, and acknowledged rows missing on the new primary.
 *
 * The summary functions (first half) are pure and read only the results; measureFailover (second
 * half) drives the cluster.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { Client } from "pg";
import { type DeployedCluster, docker, patroniMembers, pgConfig, query, sqlInContainer } from "../tests/e2e/support/cluster";
import { idRanges } from "../tests/e2e/support/drill";
import type { BenchResults } from "./results";
import { median } from "./stats";

const execFileAsync = promisify(execFile);

export type FailoverKind = "kill" | "stop" | "switchover";
export const FAILOVER_KINDS: FailoverKind[] = ["kill", "stop", "switchover"];
export const FAILOVER_TITLES: Record<FailoverKind, string> = {
  kill: "SIGKILL of the leader (docker kill)",
  stop: "clean stop of the leader (docker stop)",
  switchover: "planned switchover",
};
const PLURAL: Record<FailoverKind, string> = { kill: "kills", stop: "stops", switchover: "switchovers" };

/** One acknowledged write: when it was sent and when its COMMIT returned (ms since the epoch). */
export interface Ack {
  id: number;
  sentMs: number;
  ackMs: number;
}

/** A write that got an error instead of an acknowledgement (ms since the epoch). */
export interface WriteError {
  atMs: number;
  message: string;
}

export interface FailoverEvent {
  kind: FailoverKind;
  /** 1, 2, ... within its kind. */
  n: number;
  startedAt: string;
  oldLeader: string;
  newLeader?: string;
  /** SIGKILL only: ms from the kill to the first acknowledged write sent after the container was dead. */
  recoveryMs?: number;
  /** Longest time without an acknowledged write, from the last one before the event to its end, ms. */
  stallMs?: number;
  /** Writes that got an error during the event, and their messages. */
  errors: number;
  errorMessages: { message: string; count: number }[];
  /** Acknowledged rows (all of the run's so far) looked up on the new primary, and how many were missing. */
  checkedRows?: number;
  lostRows?: number;
  /** ms from the old leader's start again (kill, stop) or the switchover's end until it streamed again. */
  rejoinMs?: number;
  /** How the event was driven, and what the switchover tool said. */
  detail?: string;
  /** Why the event has no figure (it is then no measurement). */
  failure?: string;
}

export interface FailoverResult {
  cluster: string;
  synchronousMode: string;
  replicas: number;
  etcdMembers: number;
  /** Seconds the phase may take, added to the rest of the run's budget. */
  budgetS: number;
  /** Events of each kind needed for a measurement. */
  minEvents: number;
  writer: { intervalMs: number; acknowledged: number; inDoubt: number; errors: number };
  /** "ops": `npm run ops -- switchover`; "pause-resume": PAUSE, patronictl switchover, RESUME on PgBouncer's console. */
  switchoverMethod?: "ops" | "pause-resume";
  events: FailoverEvent[];
  /** Every acknowledged row looked up on the last primary at the end. */
  finalCheck?: { primary: string; checked: number; lost: number };
  notes: string[];
}

/** The results of a run with the failover phase (the field is absent in files without it). */
export type WithFailover = BenchResults & { failover?: FailoverResult };
export const failoverOf = (r: BenchResults): FailoverResult | undefined => (r as WithFailover).failover;

/**
 * ms from FAULT_MS to the first acknowledgement of a write sent at or after SENT_AFTER_MS (a write
 * sent before then could have been answered by the old leader); undefined when there is none.
 */
export function firstAckAfter(acks: readonly Ack[], faultMs: number, sentAfterMs: number): number | undefined {
  let first: number | undefined;
  for (const a of acks) if (a.sentMs >= sentAfterMs && (first === undefined || a.ackMs < first)) first = a.ackMs;
  return first === undefined ? undefined : first - faultMs;
}

/**
 * The longest time without an acknowledged write within an event: from the last acknowledgement
 * at or before FROM_MS (FROM_MS itself when there is none) through every acknowledgement up to
 * TO_MS, and on to TO_MS.
 */
export function longestStall(acks: readonly Ack[], fromMs: number, toMs: number): number {
  const times = acks.map((a) => a.ackMs).sort((x, y) => x - y);
  let previous = fromMs;
  for (const t of times) if (t <= fromMs) previous = t;
  let longest = 0;
  for (const t of times) {
    if (t <= fromMs || t > toMs) continue;
    longest = Math.max(longest, t - previous);
    previous = t;
  }
  return Math.max(longest, toMs - previous);
}

/** Errors between FROM_MS and TO_MS, counted by message. */
export function errorsBetween(errors: readonly WriteError[], fromMs: number, toMs: number): { errors: number; errorMessages: { message: string; count: number }[] } {
  const within = errors.filter((e) => e.atMs >= fromMs && e.atMs <= toMs);
  const counts = new Map<string, number>();
  for (const e of within) counts.set(e.message, (counts.get(e.message) ?? 0) + 1);
  return { errors: within.length, errorMessages: [...counts].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count) };
}

export interface FigureSummary {
  values: number[];
  median?: number;
  max?: number;
}

const figures = (values: number[]): FigureSummary => ({ values, median: median(values), max: values.length ? Math.max(...values) : undefined });

export interface KindSummary {
  kind: FailoverKind;
  title: string;
  /** Events run, and those with figures. */
  events: number;
  measured: number;
  recoveryMs: FigureSummary;
  stallMs: FigureSummary;
  errors: number;
  lostRows: number;
  /** Set when fewer than minEvents events have figures: the kind is a failed measurement then. */
  failure?: string;
}

/** Per kind: each event's figures, their median and maximum, and whether there are enough of them. */
export function summarizeFailover(f: FailoverResult): KindSummary[] {
  return FAILOVER_KINDS.map((kind) => {
    const all = f.events.filter((e) => e.kind === kind);
    const measured = all.filter((e) => e.failure === undefined);
    const reasons = all.filter((e) => e.failure !== undefined).map((e) => `#${e.n}: ${e.failure}`);
    const failure = measured.length < f.minEvents
      ? `${measured.length} of ${f.minEvents} ${PLURAL[kind]} measured${reasons.length ? ` (${reasons.join("; ")})` : ""}`
      : undefined;
    const of = (k: "recoveryMs" | "stallMs") => measured.map((e) => e[k]).filter((v): v is number => v !== undefined);
    return {
      kind, title: FAILOVER_TITLES[kind], events: all.length, measured: measured.length,
      recoveryMs: figures(of("recoveryMs")), stallMs: figures(of("stallMs")),
      errors: measured.reduce((a, e) => a + e.errors, 0),
      lostRows: all.reduce((a, e) => a + (e.lostRows ?? 0), 0),
      failure,
    };
  });
}

/** The failover phase's failed measurements, named as the failures list names the others. */
export function failoverFailures(f: FailoverResult | undefined): { phase: string; error: string }[] {
  if (!f) return [];
  return summarizeFailover(f).filter((k) => k.failure !== undefined).map((k) => ({ phase: `failover: ${k.title}`, error: `failed measurement: ${k.failure}` }));
}

// ---------------------------------------------------------------------------------------------
// Measuring

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const TABLE = "bench_failover";

/** A client writing one id per transaction every INTERVAL ms, reconnecting after an error; bounded in time and count. */
class Writer {
  readonly acks: Ack[] = [];
  readonly errors: WriteError[] = [];
  readonly inDoubt: number[] = [];
  private stopped = false;
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly url: string, private readonly ca: string, readonly intervalMs: number) {}

  start(untilMs: number, maxWrites: number): void {
    this.done = (async () => {
      let client: Client | undefined;
      let next = 1;
      while (!this.stopped && Date.now() < untilMs && next <= maxWrites) {
        const id = next++;
        const sentMs = Date.now();
        try {
          if (!client) {
            client = new Client({ ...pgConfig(this.url, this.ca), query_timeout: 15_000 });
            client.on("error", () => undefined);
            await client.connect();
          }
          await client.query(`INSERT INTO ${TABLE} (id) VALUES ($1)`, [id]);
          this.acks.push({ id, sentMs, ackMs: Date.now() });
        } catch (e) {
          this.inDoubt.push(id);
          this.errors.push({ atMs: Date.now(), message: String((e as Error).message).split("\n")[0].slice(0, 160) });
          await client?.end().catch(() => undefined);
          client = undefined;
          await sleep(200);
          continue;
        }
        await sleep(this.intervalMs);
      }
      await client?.end().catch(() => undefined);
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

export interface FailoverOptions {
  cluster: DeployedCluster;
  /** Filled in as the events happen, so that a run stopped half-way keeps what it measured. */
  result: FailoverResult;
  /** No event starts unless it can end before this (ms since the epoch). */
  deadlineMs: number;
  /** The project's root, for scripts/ops.ts. */
  root: string;
  log: (line: string) => void;
}

/** About how long each kind of event takes here (fault, recovery, rejoin), for the deadline checks. */
const EVENT_ESTIMATE_MS: Record<FailoverKind, number> = { kill: 75_000, stop: 50_000, switchover: 45_000 };
/** Bounds of the waits within an event. */
const RECOVERY_BOUND_MS = 120_000;
const REJOIN_BOUND_MS = 150_000;
const WRITE_INTERVAL_MS = 20;

interface MemberView { leader?: string; streaming: string[]; listed: number }

/** Patroni's view from the first of NODES that answers (a dead member cannot). */
async function view(nodes: string[]): Promise<MemberView> {
  let last: unknown;
  for (const node of nodes) {
    try {
      const list = await patroniMembers(node);
      return {
        leader: list.find((m) => m.role === "leader" && m.state === "running")?.name,
        streaming: list.filter((m) => m.role !== "leader" && m.state === "streaming").map((m) => m.name),
        listed: list.length,
      };
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`no member answered patronictl list: ${String(last)}`);
}

async function waitUntil<T>(what: string, timeoutMs: number, intervalMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastError = "";
  while (Date.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = (e as Error).message.split("\n")[0];
    }
    await sleep(intervalMs);
  }
  throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s${lastError ? ` (last error: ${lastError})` : ""}`);
}

/** Waits until one member leads and every other streams; returns the leader. */
function whole(nodes: string[], timeoutMs: number): Promise<string> {
  return waitUntil("a leader and every other member streaming", timeoutMs, 1000, async () => {
    const v = await view(nodes);
    return v.leader && v.streaming.length === nodes.length - 1 ? v.leader : undefined;
  });
}

/** Acknowledged rows of IDS missing on NODE (a primary: what it has is final). */
async function missingOn(node: string, ids: number[]): Promise<number> {
  if (ids.length === 0) return 0;
  // As ranges of consecutive ids: tens of thousands of ids would not fit in one argument.
  const ranges = idRanges(ids).map(([lo, hi]) => `(${lo},${hi})`).join(",");
  const present = Number(await sqlInContainer(node, `SELECT count(*) FROM ${TABLE} d JOIN (VALUES ${ranges}) r(lo, hi) ON d.id BETWEEN r.lo AND r.hi`, "app"));
  return ids.length - present;
}

/** PAUSE, patronictl switchover, wait for the router to reach the new leader, RESUME (PgBouncer's console). */
async function pauseSwitchResume(c: DeployedCluster, leader: string, nodes: string[]): Promise<string> {
  const ca = c.outputs.caCertPem;
  // PAUSE waits for running transactions: bounded, like every wait here.
  const admin = new Client({ ...pgConfig(c.outputs.adminUrls.pgbouncerAdminUrl, ca), query_timeout: 60_000 });
  admin.on("error", () => undefined);
  await admin.connect();
  const addresses = new Map<string, string>();
  for (const n of nodes) addresses.set(await docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${c.outputs.networkName}").IPAddress}}`, n), n);
  const t0 = Date.now();
  let paused = false;
  try {
    await admin.query("PAUSE app");
    paused = true;
    const pausedAt = Date.now();
    await docker("exec", "-u", "postgres", leader, "patronictl", "-c", "/run/pg-ha/patroni", "switchover", "--force", "--leader", leader);
    const switchedAt = Date.now();
    // Writes may go on once the router's read-write port leads to the new primary, and only there
    // (several connections in a row: with two members up, HAProxy would alternate between them).
    const direct = c.outputs.hostDirectUrl ?? c.outputs.adminUrls.monitorUrl;
    let inARow = 0;
    const reached = await waitUntil("the router's read-write port at the new leader", 60_000, 100, async () => {
      const row = (await query<{ a: string; r: boolean }>(direct, ca, "SELECT host(inet_server_addr()) AS a, pg_is_in_recovery() AS r"))[0];
      const member = addresses.get(row.a);
      inARow = !row.r && member && member !== leader ? inARow + 1 : 0;
      return inARow >= 3 ? member : undefined;
    });
    const routedAt = Date.now();
    // Server connections opened before the switch are closed once released, so none reaches the old leader.
    await admin.query("RECONNECT app");
    await admin.query("RESUME app");
    paused = false;
    const end = Date.now();
    return `PAUSE ${((pausedAt - t0) / 1000).toFixed(2)} s, patronictl ${((switchedAt - pausedAt) / 1000).toFixed(2)} s, router at ${reached} after ${((routedAt - switchedAt) / 1000).toFixed(2)} s, RESUME ${((end - routedAt) / 1000).toFixed(2)} s`;
  } finally {
    if (paused) await admin.query("RESUME app").catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}

/** `npm run ops -- <ARGS>` with the stack outputs in a private temporary file; returns what it printed. */
async function ops(c: DeployedCluster, root: string, args: string[]): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgha-bench-fo-"));
  const file = path.join(dir, "outputs.json");
  fs.writeFileSync(file, JSON.stringify(c.outputs), { mode: 0o600 });
  try {
    const { stdout } = await execFileAsync(path.join(root, "node_modules", ".bin", "ts-node"), ["--transpile-only", path.join(root, "scripts", "ops.ts"), ...args, "--outputs", file],
      { cwd: root, timeout: 150_000 });
    return stdout.trim();
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm run ops -- ${args[0]} failed: ${(err.stderr || err.stdout || err.message).trim().split("\n").slice(-3).join(" / ")}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function opsSwitchover(c: DeployedCluster, root: string): Promise<string> {
  const said = await ops(c, root, ["switchover", "--timeout", "60"]);
  return said.split("\n").filter((l) => /^switchover:/.test(l)).join(" / ");
}

/**
 * Runs rounds of kill, stop and switchover (so that each kind gets events even if time runs
 * short) until each has minEvents or the deadline is near; fills options.result as it goes.
 */
export async function measureFailover(o: FailoverOptions): Promise<void> {
  const { cluster: c, result, log } = o;
  const nodes = c.members;
  let useOps = fs.existsSync(path.join(o.root, "scripts", "ops.ts"));
  if (useOps) {
    // The operator tool drives the switchovers when it works here; else the same steps are taken directly.
    const failed = await ops(c, o.root, ["status"]).then(() => undefined, (e: Error) => e.message);
    if (failed !== undefined) {
      useOps = false;
      result.notes.push(`scripts/ops.ts did not run (${failed}): switchovers driven by PAUSE, patronictl switchover and RESUME instead`);
      log(`failover: ops status failed, switching over without it: ${failed}`);
    }
  }
  result.switchoverMethod = useOps ? "ops" : "pause-resume";
  await query(c.outputs.hostPooledUrl!, c.outputs.caCertPem, `CREATE TABLE IF NOT EXISTS ${TABLE} (id bigint PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now())`);
  let leader = await whole(nodes, 120_000);
  const writer = new Writer(c.outputs.hostPooledUrl!, c.outputs.caCertPem, WRITE_INTERVAL_MS);
  const counts: Record<FailoverKind, number> = { kill: 0, stop: 0, switchover: 0 };
  const outOfTime = new Set<FailoverKind>();
  writer.start(o.deadlineMs, 200_000);
  try {
    await waitUntil("the writer's first acknowledgements", 30_000, 100, async () => (writer.acks.length >= 20 ? true : undefined));
    for (let round = 1; round <= result.minEvents; round++) {
      for (const kind of FAILOVER_KINDS) {
        if (outOfTime.has(kind)) continue;
        if (Date.now() + EVENT_ESTIMATE_MS[kind] > o.deadlineMs) {
          outOfTime.add(kind);
          result.notes.push(`${FAILOVER_TITLES[kind]} #${counts[kind] + 1} and later not run: too little of the phase's ${result.budgetS} s left`);
          log(`failover: no time left for ${kind} #${counts[kind] + 1}`);
          continue;
        }
        const event: FailoverEvent = { kind, n: ++counts[kind], startedAt: new Date().toISOString(), oldLeader: leader, errors: 0, errorMessages: [] };
        result.events.push(event);
        const startMs = Date.now();
        try {
          leader = await runEvent(o, event, writer, nodes, useOps);
        } catch (e) {
          event.failure = (e as Error).message.split("\n")[0];
          log(`failover: ${kind} #${event.n} failed: ${event.failure}`);
          // The next event needs the whole cluster again; without it the phase ends here.
          await docker("start", event.oldLeader).catch(() => undefined);
          leader = await whole(nodes, REJOIN_BOUND_MS);
        } finally {
          const endMs = Date.now();
          Object.assign(event, errorsBetween(writer.errors, startMs, endMs));
          event.stallMs = event.failure === undefined ? longestStall(writer.acks, startMs, endMs) : undefined;
        }
        log(`failover: ${kind} #${event.n} ${event.oldLeader} -> ${event.newLeader ?? "?"}: ${event.recoveryMs !== undefined ? `first write after ${(event.recoveryMs / 1000).toFixed(1)} s, ` : ""}longest stall ${((event.stallMs ?? NaN) / 1000).toFixed(1)} s, ${event.errors} errors, ${event.lostRows ?? "?"} of ${event.checkedRows ?? "?"} acknowledged rows missing, rejoined after ${((event.rejoinMs ?? NaN) / 1000).toFixed(1)} s${event.detail ? `; ${event.detail}` : ""}`);
        // A few steady writes between events, so that each starts from a normal pace.
        await sleep(2000);
      }
    }
  } finally {
    await writer.stop();
    result.writer = { intervalMs: WRITE_INTERVAL_MS, acknowledged: writer.acks.length, inDoubt: writer.inDoubt.length, errors: writer.errors.length };
  }
  const final = (await view(nodes)).leader ?? leader;
  const ids = writer.acks.map((a) => a.id);
  result.finalCheck = { primary: final, checked: ids.length, lost: await missingOn(final, ids) };
  log(`failover: ${ids.length} acknowledged rows checked on ${final}, ${result.finalCheck.lost} missing; ${writer.errors.length} write errors in all`);
}

/** One event; returns the leader after it. */
async function runEvent(o: FailoverOptions, event: FailoverEvent, writer: Writer, nodes: string[], useOps: boolean): Promise<string> {
  const old = event.oldLeader;
  const others = nodes.filter((n) => n !== old);
  if (event.kind === "switchover") {
    event.detail = useOps ? await opsSwitchover(o.cluster, o.root) : await pauseSwitchResume(o.cluster, old, nodes);
    const switchedAt = Date.now();
    const leader = await whole(nodes, REJOIN_BOUND_MS);
    event.rejoinMs = Date.now() - switchedAt;
    event.newLeader = leader;
    if (leader === old) throw new Error(`${old} still leads after the switchover`);
    const ids = writer.acks.map((a) => a.id);
    event.checkedRows = ids.length;
    event.lostRows = await missingOn(leader, ids);
    return leader;
  }
  const faultAt = Date.now();
  await docker(event.kind, old);
  const deadAt = Date.now();
  // The first write acknowledged after the fault, of those sent once the old leader was gone.
  const recoveryMs = await waitUntil("a write acknowledged after the fault", RECOVERY_BOUND_MS, 50, async () => firstAckAfter(writer.acks, faultAt, deadAt));
  if (event.kind === "kill") event.recoveryMs = recoveryMs;
  const newLeader = await waitUntil("a new leader", 30_000, 500, async () => {
    const v = await view(others);
    return v.leader && v.leader !== old ? v.leader : undefined;
  });
  event.newLeader = newLeader;
  const ids = writer.acks.map((a) => a.id);
  event.checkedRows = ids.length;
  event.lostRows = await missingOn(newLeader, ids);
  const startedAt = Date.now();
  await docker("start", old);
  const leader = await whole(nodes, REJOIN_BOUND_MS);
  event.rejoinMs = Date.now() - startedAt;
  return leader;
}
