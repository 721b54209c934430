/**
 * What the HA service drills (tests/e2e/ha-services.test.ts) add to drill.ts: a reader through the
 * read-only endpoint, Patroni's view of the cluster from its REST API (which answers while etcd
 * has no quorum, unlike patronictl), the etcd members' health, and the process that a container's
 * init runs.
 */
import * as https from "https";
import { Client } from "pg";
import { docker, type DeployedCluster, patroniMembers, pgConfig, waitFor } from "./cluster";
import { run, sleep } from "./drill";

/**
 * A client reading through URL every INTERVAL ms until stopped (at most MAX_MS) on one connection.
 * When a read fails (its connection was cut, e.g. it was on a replica that is gone), the reader
 * connects again and retries that read once at once: only a read whose retry fails too is an error.
 */
export class Reader {
  reads = 0;
  /** Reads that failed once and succeeded on their one retry. */
  retried: string[] = [];
  /** Reads that failed again on their retry. */
  errors: string[] = [];
  /** The server address of each successful read -> count. */
  servers: Record<string, number> = {};
  lastServer = "";
  lastOkAt = 0;
  /** The longest time one read (with its retry) took, ms. */
  slowestMs = 0;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();

  static start(url: string, ca: string, intervalMs = 50, maxMs = 120_000): Reader {
    const reader = new Reader();
    const deadline = Date.now() + maxMs;
    let client: Client | undefined;
    const read = async () => {
      if (!client) {
        client = new Client({ ...pgConfig(url, ca), query_timeout: 10_000 });
        client.on("error", () => undefined);
        await client.connect();
      }
      const { rows } = await client.query("SELECT host(inet_server_addr()) AS addr, pg_is_in_recovery() AS ro");
      return `${rows[0].addr}${rows[0].ro ? "" : " (primary)"}`;
    };
    const drop = async () => {
      await client?.end().catch(() => undefined);
      client = undefined;
    };
    reader.done = (async () => {
      while (!reader.stopped && Date.now() < deadline) {
        const started = Date.now();
        let server: string | undefined;
        try {
          server = await read();
        } catch (first) {
          await drop();
          try {
            server = await read();
            reader.retried.push(`${new Date().toISOString()} ${(first as Error).message}`);
          } catch (second) {
            reader.errors.push(`${new Date().toISOString()} ${(second as Error).message} (after ${(first as Error).message})`);
            await drop();
          }
        }
        reader.slowestMs = Math.max(reader.slowestMs, Date.now() - started);
        if (server) {
          reader.reads++;
          reader.servers[server] = (reader.servers[server] ?? 0) + 1;
          reader.lastServer = server;
          reader.lastOkAt = Date.now();
        } else {
          await sleep(200);
        }
        await sleep(intervalMs);
      }
      await drop();
    })();
    return reader;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/**
 * The leader and its timeline as patronictl reports them, asking the nodes in turn until one
 * answers with a running leader, at most TIMEOUT ms (patronictl reads etcd, which may be electing).
 */
export async function leaderAndTimeline(cluster: DeployedCluster, timeoutMs = 90_000): Promise<{ leader: string; timeline: number; members: Awaited<ReturnType<typeof patroniMembers>> }> {
  let found: Awaited<ReturnType<typeof leaderAndTimeline>> | undefined;
  let first = 0;
  const until = Date.now() + timeoutMs;
  await waitFor("patronictl list with a running leader", async () => {
    // Every member in turn, starting from the next one each round: one node's patronictl may hang.
    const order = cluster.members.map((_, k) => cluster.members[(first + k) % cluster.members.length]);
    first++;
    const members = await patroniMembers(order, Math.max(5_000, until - Date.now()));
    const leader = members.find((m) => m.role === "leader" && m.state === "running");
    if (leader) found = { leader: leader.name, timeline: leader.timeline!, members };
    return found !== undefined;
  }, timeoutMs, 500);
  return found!;
}

/** The members that Patroni's REST API reports as a running primary, and their timelines (no etcd needed). */
export async function restPrimaries(cluster: DeployedCluster): Promise<{ node: string; timeline?: number }[]> {
  const statuses = await Promise.all(cluster.members.map(async (node) => ({ node, status: await restStatus(cluster, node) })));
  return statuses.filter((s) => s.status.role === "primary" && s.status.state === "running").map((s) => ({ node: s.node, timeline: s.status.timeline }));
}

/** Waits until patronictl shows LEADER leading and every other member streaming on its timeline. */
export async function waitHealthy(cluster: DeployedCluster, leader: string, timeoutMs: number): Promise<number> {
  return waitFor(`${leader} leading, every other member streaming`, async () => {
    const { leader: now, timeline, members } = await leaderAndTimeline(cluster);
    return now === leader && members.length === cluster.members.length &&
      members.filter((m) => m.name !== leader).every((m) => m.state === "streaming" && m.timeline === timeline);
  }, timeoutMs, 500);
}

export interface RestStatus {
  role?: string;
  state?: string;
  timeline?: number;
  failsafe_mode_is_active?: boolean;
  error?: string;
}

/** GET /patroni of a member's REST API over HTTPS, verified against the cluster CA. */
export async function restStatus(cluster: DeployedCluster, node: string): Promise<RestStatus> {
  const address = await docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", node);
  return new Promise((resolve) => {
    const request = https.request({ host: address, port: 8008, path: "/patroni", ca: cluster.outputs.caCertPem, timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        try {
          resolve(JSON.parse(body) as RestStatus);
        } catch {
          resolve({ error: `HTTP ${res.statusCode}: ${body.slice(0, 200)}` });
        }
      });
    });
    request.on("error", (e) => resolve({ error: e.message }));
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.end();
  });
}

/** The etcd members of the cluster, by name. */
export function etcdMembers(cluster: DeployedCluster): string[] {
  return cluster.outputs.nodes.filter((n) => n.role === "etcd").map((n) => n.name);
}

const ETCDCTL_TLS = ["--cacert=/etc/pg-ha/tls/ca.crt", "--cert=/etc/pg-ha/tls/etcd.crt", "--key=/etc/pg-ha/secrets/etcd.key", "--dial-timeout=2s", "--command-timeout=3s"];

/** `etcdctl endpoint health --cluster` from inside MEMBER: every member's health, as one line each. */
export async function etcdClusterHealth(member: string): Promise<{ healthy: boolean; lines: string }> {
  const r = await run("docker", ["exec", member, "etcdctl", "--endpoints=https://127.0.0.1:2379", ...ETCDCTL_TLS, "endpoint", "health", "--cluster"], { timeoutMs: 20_000 });
  const lines = `${r.stdout}\n${r.stderr}`.trim();
  return { healthy: r.status === 0 && !/unhealthy/.test(lines), lines };
}

/** The member that is etcd's raft leader, asked from MEMBER. */
export async function etcdLeader(member: string, members: string[]): Promise<string> {
  const out = await docker("exec", member, "etcdctl", "--endpoints=https://127.0.0.1:2379", ...ETCDCTL_TLS, "endpoint", "status", "--cluster", "-w", "json");
  const status = JSON.parse(out) as { Endpoint: string; Status: { header: { member_id: number | string }; leader: number | string } }[];
  const leaderId = String(status[0].Status.leader);
  const leader = status.find((s) => String(s.Status.header.member_id) === leaderId);
  if (!leader) throw new Error(`no etcd leader in ${out}`);
  // Endpoints are https://<name>:2379 or https://<ip>:2379.
  const host = new URL(leader.Endpoint).hostname;
  for (const m of members) {
    if (m === host) return m;
    const ip = await docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", m);
    if (ip === host) return m;
  }
  throw new Error(`etcd leader ${leader.Endpoint} is none of ${members.join(", ")}`);
}

/**
 * Kills with SIGKILL, from the host, the process that the container's init (docker-init, PID 1)
 * runs: the service itself, as a crash would kill it. Returns its host PID.
 */
export async function killServiceProcess(container: string): Promise<number> {
  const initPid = Number(await docker("inspect", "-f", "{{.State.Pid}}", container));
  const top = await docker("top", container, "-eo", "pid,ppid,comm");
  const child = top.split("\n").slice(1).map((l) => l.trim().split(/\s+/)).find(([, ppid]) => Number(ppid) === initPid);
  if (!child) throw new Error(`${container}: no child of its init (pid ${initPid}) in\n${top}`);
  process.kill(Number(child[0]), "SIGKILL");
  return Number(child[0]);
}

/** Running state and restart count of a container. */
export async function runState(container: string): Promise<{ running: boolean; restarts: number; startedAt: string }> {
  const [running, restarts, startedAt] = (await docker("inspect", "-f", "{{.State.Running}} {{.RestartCount}} {{.State.StartedAt}}", container)).split(" ");
  return { running: running === "true", restarts: Number(restarts), startedAt };
}
