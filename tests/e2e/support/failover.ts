/**
 * What the failover drills need beyond drill.ts: a ledger that records which server acknowledged
 * each write (split-brain shows as a write acknowledged by the old leader after the new one took
 * over), a reader through the read-only URL, and Patroni's view of the members from whichever
 * node still answers.
 */
import { Client } from "pg";
import { docker, patroniMembers, pgConfig, sqlInContainer, waitFor } from "./cluster";
import { idRanges, run, sleep } from "./drill";

export interface Ack {
  id: number;
  /** When the INSERT was sent and when its acknowledgement arrived (ms since epoch). */
  sentAt: number;
  at: number;
  /** The address of the PostgreSQL server that acknowledged it (inet_server_addr()). */
  server: string;
}

/** A bounded client loop started by the ledger or the reader; its own figures. */
export class Loop {
  ok = 0;
  errors = 0;
  lastError = "";
  /** When each statement was answered (ms since epoch), to find the longest gap. */
  readonly times: number[] = [];
  /** Most errors in a row: 1 means a client that retries once always succeeded. */
  maxErrorStreak = 0;
  private streak = 0;
  stopped = false;
  done: Promise<void> = Promise.resolve();

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  succeeded(): void {
    this.ok++;
    this.times.push(Date.now());
    this.streak = 0;
  }

  failed(e: unknown): void {
    this.errors++;
    this.lastError = (e as Error).message;
    this.streak++;
    this.maxErrorStreak = Math.max(this.maxErrorStreak, this.streak);
  }

  /** The longest time without an answer between FROM and TO (both ends count), ms. */
  longestGap(from: number, to: number): number {
    const points = [from, ...this.times.filter((t) => t > from && t < to), to];
    return Math.max(...points.slice(1).map((t, i) => t - points[i]));
  }
}

export class AckLedger {
  readonly acks: Ack[] = [];
  /** Ids whose INSERT got no answer: committed or not, either is correct. */
  readonly inDoubt: number[] = [];
  private nextId = 1;

  constructor(private readonly url: string, private readonly ca: string) {}

  async create(): Promise<void> {
    const client = new Client(pgConfig(this.url, this.ca));
    await client.connect();
    try {
      await client.query("CREATE TABLE IF NOT EXISTS drill_ledger (id bigint PRIMARY KEY, phase text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())");
    } finally {
      await client.end();
    }
  }

  /** One acknowledged row in a transaction of its own; returns its id. */
  async writeOne(phase: string): Promise<number> {
    const id = this.nextId++;
    const client = new Client(pgConfig(this.url, this.ca));
    await client.connect();
    try {
      const sentAt = Date.now();
      const { rows } = await client.query("INSERT INTO drill_ledger (id, phase) VALUES ($1, $2) RETURNING host(inet_server_addr()) AS server", [id, phase]);
      this.acks.push({ id, sentAt, at: Date.now(), server: String(rows[0].server) });
      return id;
    } finally {
      await client.end();
    }
  }

  /**
   * One row per transaction every INTERVAL ms until stopped (at most MAX_MS); on an error it
   * reconnects after 200 ms and goes on, counting the error.
   */
  startWriter(phase: string, intervalMs = 50, maxMs = 180_000): Loop {
    const loop = new Loop();
    const deadline = Date.now() + maxMs;
    loop.done = (async () => {
      let client: Client | undefined;
      while (!loop.stopped && Date.now() < deadline) {
        const id = this.nextId++;
        const sentAt = Date.now();
        try {
          if (!client) {
            client = new Client({ ...pgConfig(this.url, this.ca), query_timeout: 10_000 });
            client.on("error", () => undefined);
            await client.connect();
          }
          const { rows } = await client.query("INSERT INTO drill_ledger (id, phase) VALUES ($1, $2) RETURNING host(inet_server_addr()) AS server", [id, phase]);
          this.acks.push({ id, sentAt, at: Date.now(), server: String(rows[0].server) });
          loop.succeeded();
        } catch (e) {
          this.inDoubt.push(id);
          loop.failed(e);
          await client?.end().catch(() => undefined);
          client = undefined;
          await sleep(200);
          continue;
        }
        await sleep(intervalMs);
      }
      await client?.end().catch(() => undefined);
    })();
    return loop;
  }

  /** The first acknowledgement of a write sent after T, once there is one. */
  async firstAckSentAfter(t: number, timeoutMs: number): Promise<Ack> {
    await waitFor("a write acknowledged after the fault", async () => this.acks.some((a) => a.sentAt > t), timeoutMs, 50);
    return this.acks.find((a) => a.sentAt > t)!;
  }

  /** The last acknowledgement that arrived before T. */
  lastAckBefore(t: number): Ack | undefined {
    return [...this.acks].reverse().find((a) => a.at < t);
  }

  /** Acknowledged ids missing from NODE's table right now (server user over the local socket). */
  async missingOn(node: string): Promise<number[]> {
    const present = new Set(await idsOn(node));
    return this.acks.map((a) => a.id).filter((id) => !present.has(id));
  }

  /**
   * Waits until every acknowledged row is on NODE (a replica may still be replaying), at most
   * TIMEOUT ms; then nothing but acknowledged or in-doubt rows may be there.
   */
  async verifyOn(node: string, timeoutMs = 30_000): Promise<{ rows: number; ms: number }> {
    const ids = this.acks.map((a) => a.id);
    const ranges = idRanges(ids).map(([lo, hi]) => `(${lo},${hi})`).join(",");
    const present = `SELECT count(*) FROM drill_ledger d JOIN (VALUES ${ranges}) r(lo, hi) ON d.id BETWEEN r.lo AND r.hi`;
    const ms = await waitFor(`${ids.length} acknowledged rows on ${node}`, async () =>
      (await sqlInContainer(node, present, "app")) === String(ids.length), timeoutMs, 250);
    const known = new Set([...ids, ...this.inDoubt]);
    expect((await idsOn(node)).filter((id) => !known.has(id))).toEqual([]);
    return { rows: ids.length, ms };
  }
}

/** Every id in NODE's ledger table. */
export async function idsOn(node: string): Promise<number[]> {
  const out = await sqlInContainer(node, "SELECT coalesce(string_agg(id::text, ','), '') FROM drill_ledger", "app");
  return out ? out.split(",").map(Number) : [];
}

/** A reader through URL: the newest id, every INTERVAL ms, reconnecting after errors. */
export function startReader(url: string, ca: string, intervalMs = 100, maxMs = 180_000): Loop {
  const loop = new Loop();
  const deadline = Date.now() + maxMs;
  loop.done = (async () => {
    let client: Client | undefined;
    while (!loop.stopped && Date.now() < deadline) {
      try {
        if (!client) {
          client = new Client({ ...pgConfig(url, ca), query_timeout: 10_000 });
          client.on("error", () => undefined);
          await client.connect();
        }
        await client.query("SELECT max(id) FROM drill_ledger");
        loop.succeeded();
      } catch (e) {
        loop.failed(e);
        await client?.end().catch(() => undefined);
        client = undefined;
        await sleep(200);
        continue;
      }
      await sleep(intervalMs);
    }
    await client?.end().catch(() => undefined);
  })();
  return loop;
}

export type Member = Awaited<ReturnType<typeof patroniMembers>>[number];

/** patronictl's list from the first of NODES that answers (a stopped or cut-off node does not). */
export async function membersFrom(nodes: string[]): Promise<Member[]> {
  let last: unknown;
  for (const node of nodes) {
    try {
      return await patroniMembers(node);
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`no member answered patronictl list: ${String(last)}`);
}

export const leaderOf = (list: Member[]) => list.find((m) => m.role === "leader" && m.state === "running");

/** Waits for a running leader other than EXCEPT, asking only NODES; returns it and when it was first seen. */
export async function newLeader(nodes: string[], except: string, timeoutMs = 120_000): Promise<Member> {
  let found: Member | undefined;
  await waitFor(`a leader other than ${except}`, async () => {
    found = leaderOf(await membersFrom(nodes));
    return found !== undefined && found.name !== except;
  }, timeoutMs, 250);
  return found!;
}

/** Waits until every member but the leader streams on the leader's timeline; returns the list. */
export async function allStreaming(nodes: string[], timeoutMs = 180_000): Promise<Member[]> {
  let list: Member[] = [];
  await waitFor("every member streaming on the leader's timeline", async () => {
    list = await membersFrom(nodes);
    const leader = leaderOf(list);
    return leader !== undefined && list.length === nodes.length &&
      list.every((m) => m === leader || (m.state === "streaming" && m.timeline === leader.timeline));
  }, timeoutMs, 1000);
  return list;
}

/** When (ms, Docker's clock) CONTAINER first logged a line matching PATTERN since SINCE (ms). */
export async function logTime(container: string, since: number, pattern: RegExp): Promise<number | undefined> {
  const r = await run("docker", ["logs", "--timestamps", "--since", new Date(since).toISOString(), container], { timeoutMs: 60_000 });
  const times = `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => pattern.test(l)).map((l) => Date.parse(l.split(" ")[0]));
  return times.length ? Math.min(...times) : undefined;
}

export async function logSince(container: string, since: number): Promise<string> {
  const r = await run("docker", ["logs", "--since", new Date(since).toISOString(), container], { timeoutMs: 60_000 });
  return `${r.stdout}\n${r.stderr}`;
}

/**
 * The ids in a stopped node's data directory, read from a copy by a single-user backend: the
 * node's own server must stay as Patroni left it (a server started on its data directory would be
 * seen by Patroni), and pg_rewind on rejoin would remove the very rows this looks for.
 */
export async function idsInStoppedDataDir(node: string, major: number): Promise<number[]> {
  // Patroni's data_dir is the container's PGDATA (components/patroni-node.ts sets both).
  const dataDir = (await docker("exec", node, "sh", "-c", 'printf %s "$PGDATA"')).trim();
  if (!dataDir) throw new Error(`${node} has no PGDATA`);
  const copy = `/tmp/ledger-copy`;
  const script = [
    `rm -rf ${copy}`, `cp -a ${dataDir} ${copy}`, `rm -f ${copy}/postmaster.pid`,
    `echo "SELECT coalesce(string_agg(id::text, ','), '') AS ids FROM drill_ledger" | /usr/lib/postgresql/${major}/bin/postgres --single -D ${copy} -c shared_buffers=16MB -c archive_mode=off app`,
  ].join(" && ");
  const r = await run("docker", ["exec", "-u", "postgres", node, "sh", "-c", `${script}; rc=$?; rm -rf ${copy}; exit $rc`], { timeoutMs: 120_000 });
  const m = /ids = "([^"]*)"/.exec(r.stdout);
  if (!m) throw new Error(`single-user read of ${node}'s copy failed (${r.status}): ${r.stdout.slice(-500)} ${r.stderr.slice(-1500)}`);
  return m[1] ? m[1].split(",").map(Number) : [];
}
