/**
 * What the security and fault drills share: their own clusters (names, subnets and host ports that
 * no other suite uses), client containers on a Docker network, psql run inside them, the
 * executor's record of a deployment, and a ledger of acknowledged writes that every fault drill
 * checks afterwards on every node.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { Client } from "pg";
import { cleanupLeftovers } from "../executor";
import { currentSession } from "../executor/state";
import type { CreatedResource } from "../executor/types";
import {
  deployCluster, type DeployedCluster, docker, type Major, pgConfig, sqlInContainer, type Stack, waitFor,
} from "./cluster";

const execFileAsync = promisify(execFile);

export interface DrillShape {
  stack: Stack;
  major: Major;
  clusterName: string;
  subnet: string;
  /** Host ports; 0 = not published. */
  ports: { direct: number; pooled: number; readOnly: number };
  /** Label of the executor's deployment (pgha.e2e.stack). */
  deployment: string;
  extra?: Record<string, string>;
}

/**
 * Every drill cluster. The drill files run one after another (jest --runInBand), so a subnet may
 * serve more than one of them; names, host ports and deployment labels are all distinct.
 */
export const DRILLS = {
  refusals: {
    stack: "dev", major: 18, clusterName: "pgha-drill", subnet: "172.30.30.0/24",
    ports: { direct: 25432, pooled: 25433, readOnly: 25434 }, deployment: "drill-refusals",
    extra: { "pg-ha:failover": "patroni" },
  },
  secrets: {
    stack: "dev", major: 18, clusterName: "pgha-drill-secrets", subnet: "172.30.31.0/24",
    ports: { direct: 25442, pooled: 25443, readOnly: 25444 }, deployment: "drill-secrets",
    extra: { "pg-ha:failover": "patroni" },
  },
  faults: {
    stack: "dev", major: 18, clusterName: "pgha-drill-faults", subnet: "172.30.30.0/24",
    ports: { direct: 25452, pooled: 25453, readOnly: 25454 }, deployment: "drill-faults",
    // Two replicas, so "the replicas reconnect" is shown for more than one.
    extra: { "pg-ha:replicas": "2" },
  },
  slot: {
    stack: "dev", major: 18, clusterName: "pgha-drill-slot", subnet: "172.30.32.0/24",
    ports: { direct: 25462, pooled: 25463, readOnly: 0 }, deployment: "drill-slot",
    // The smallest accepted max_slot_wal_keep_size, so a bounded write can exceed it.
    extra: { "pg-ha:maxSlotWalKeepMb": "64" },
  },
  load: {
    stack: "prod", major: 18, clusterName: "pgha-drill-load", subnet: "172.30.31.0/24",
    ports: { direct: 25472, pooled: 25473, readOnly: 0 }, deployment: "drill-load",
    // prod's max_client_conn is 800 (the audit's seed): 1000 clients need more, so this drill raises it.
    extra: { "pg-ha:maxClientConn": "1100" },
  },
} satisfies Record<string, DrillShape>;

/** The second network of the refusals drill: a Docker network that is not the cluster's. */
export const OUTSIDE_SUBNET = "172.30.31.0/24";

/** Overrides that put a committed stack shape on the drill's own names, subnet and ports. */
export function drillOverrides(shape: DrillShape): Record<string, string> {
  return {
    "pg-ha:clusterName": shape.clusterName,
    "pg-ha:networkSubnet": shape.subnet,
    "pg-ha:publishDirectPort": String(shape.ports.direct),
    "pg-ha:publishPooledPort": String(shape.ports.pooled),
    "pg-ha:publishReadOnlyPort": String(shape.ports.readOnly),
    ...shape.extra,
  };
}

/**
 * Deploys a drill cluster, after removing what a crashed earlier run left of any drill cluster
 * (a leftover network on the same subnet would make the new one fail).
 */
export async function deployDrill(shape: DrillShape): Promise<DeployedCluster> {
  // The drill files run one at a time, so any drill object still on the engine is a leftover.
  for (const drill of Object.values(DRILLS as Record<string, DrillShape>)) {
    await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${drill.clusterName}`] });
  }
  return deployCluster(shape.stack, shape.major, drillOverrides(shape), shape.deployment);
}

/** The resources the executor created for the last deployment (passwords, keys, containers, ...). */
export function deployedResources(): CreatedResource[] {
  return [...currentSession().resources];
}

/** The passwords the last deployment generated, by role ("<cluster>-secrets-<role>-password"). */
export function generatedPasswords(clusterName: string): Record<string, string> {
  const prefix = `${clusterName}-secrets-`;
  return Object.fromEntries(
    deployedResources()
      .filter((r) => r.type === "random:index/randomPassword:RandomPassword")
      .map((r) => [r.name.slice(prefix.length, -"-password".length), String(r.outputs.result)]),
  );
}

/** The password in a postgresql:// URL. */
export function passwordOf(url: string): string {
  return decodeURIComponent(new URL(url).password);
}

/** A libpq keyword/value connection string (values here contain no spaces or quotes). */
export function conninfo(params: Record<string, string | number | undefined>): string {
  return Object.entries(params).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join(" ");
}

export interface PsqlResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command, never throwing on a non-zero exit: the drills assert on refusals. */
export async function run(file: string, args: string[], options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<PsqlResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  try {
    const { stdout, stderr } = await execFileAsync(file, args, {
      timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...options.env },
    });
    return { status: 0, stdout: stdout.trim(), stderr: stderr.trim() };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; killed?: boolean };
    if (err.killed) throw new Error(`${file} ${args.join(" ")}: killed after ${timeoutMs} ms`);
    return { status: typeof err.code === "number" ? err.code : -1, stdout: (err.stdout ?? "").trim(), stderr: (err.stderr ?? "").trim() };
  }
}

/** psql on the host (libpq 15) with CONNINFO as given, the cluster CA, a 5 s connect timeout. */
export function hostPsql(cluster: DeployedCluster, connection: string, sql: string): Promise<PsqlResult> {
  return run("psql", ["-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql, connection], { env: { PGSSLROOTCERT: cluster.caFile, PGCONNECT_TIMEOUT: "5" } });
}

const CONTAINER_CA = "/tmp/pgha-ca.pem";

/** A throw-away client container (libpq 18) on a Docker network, labelled so every cleanup finds it. */
export class ClientContainer {
  private constructor(readonly name: string, readonly network: string) {}

  static async start(cluster: DeployedCluster, name: string, network = cluster.outputs.networkName): Promise<ClientContainer> {
    await docker("rm", "-f", name).catch(() => undefined);
    await docker(
      "run", "-d", "--name", name, "--network", network,
      "--label", "pgha.e2e=true", "--label", `pgha.e2e.stack=${cluster.deployment}`, "--label", `pgha.cluster=${cluster.spec.clusterName}`,
      "--entrypoint", "sleep", `pgha-test/postgres:${cluster.spec.postgres.major}`, "900",
    );
    await docker("cp", cluster.caFile, `${name}:${CONTAINER_CA}`);
    return new ClientContainer(name, network);
  }

  /** psql inside the container with CONNINFO as given and the cluster CA. */
  psql(connection: string, sql: string): Promise<PsqlResult> {
    return run("docker", ["exec", "-e", `PGSSLROOTCERT=${CONTAINER_CA}`, "-e", "PGCONNECT_TIMEOUT=5", this.name,
      "psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql, connection]);
  }

  address(): Promise<string> {
    return containerIp(this.name, this.network);
  }

  async remove(): Promise<void> {
    await docker("rm", "-f", this.name);
  }
}

/** psql as the server user inside a cluster container (for connections only that container can make). */
export function psqlAsPostgres(container: string, connection: string, sql: string): Promise<PsqlResult> {
  return run("docker", ["exec", "-u", "postgres", "-e", "PGCONNECT_TIMEOUT=5", container, "psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql, connection]);
}

export async function containerIp(container: string, network: string): Promise<string> {
  return docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container);
}

/** The gateway of CONTAINER's NETWORK: the source address of connections arriving through published ports. */
export async function gatewayOf(container: string, network: string): Promise<string> {
  return docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${network}").Gateway}}`, container);
}

/**
 * Kills a container's main process (PID 1 inside it) with SIGKILL from the host: a crash as far as
 * Docker is concerned, so the restart policy applies (docker kill and docker stop are manual stops).
 */
export async function killMainProcess(container: string): Promise<number> {
  const pid = Number(await docker("inspect", "-f", "{{.State.Pid}}", container));
  if (!(pid > 1)) throw new Error(`${container} has no running main process (pid ${pid})`);
  process.kill(pid, "SIGKILL");
  return pid;
}

export async function restartCount(container: string): Promise<number> {
  return Number(await docker("inspect", "-f", "{{.RestartCount}}", container));
}

/** The container's running state and health, e.g. "running healthy". */
export async function stateOf(container: string): Promise<string> {
  return docker("inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", container);
}

/** Logs (stdout and stderr) of a container, optionally since a Unix time in seconds. */
export async function logsOf(container: string, since?: number): Promise<string> {
  const args = ["logs", ...(since !== undefined ? ["--since", String(since)] : []), container];
  const r = await run("docker", args, { timeoutMs: 60_000 });
  return `${r.stdout}\n${r.stderr}`;
}

/** Writes the CA of a cluster to a file for tools that want one (psql, pgbench). */
export function tempFile(name: string, content: string): string {
  const file = path.join(os.tmpdir(), name);
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// The ledger: rows whose commit was acknowledged to a client. After every fault, each of them
// must be on every node; nothing acknowledged may be lost.

export class Ledger {
  /** Ids whose INSERT was acknowledged (committed). */
  readonly acknowledged: number[] = [];
  /** Ids whose INSERT failed without an answer: committed or not, either is correct. */
  readonly inDoubt: number[] = [];
  private nextId = 1;

  constructor(private readonly url: string, private readonly ca: string) {}

  async create(): Promise<void> {
    await this.withClient((c) => c.query("CREATE TABLE IF NOT EXISTS drill_ledger (id bigint PRIMARY KEY, phase text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())"));
  }

  /** One transaction of COUNT rows for PHASE; acknowledged when the COMMIT returns. */
  async writeBatch(phase: string, count: number): Promise<void> {
    const first = this.nextId;
    this.nextId += count;
    await this.withClient((c) => c.query("INSERT INTO drill_ledger (id, phase) SELECT g, $3 FROM generate_series($1::bigint, $2::bigint) g", [first, first + count - 1, phase]));
    for (let id = first; id < first + count; id++) this.acknowledged.push(id);
  }

  /**
   * A client writing one row per transaction every INTERVAL ms until stopped (at most MAX_MS): on
   * an error it reconnects after 200 ms and goes on. Returns a handle with its figures.
   */
  startWriter(phase: string, intervalMs = 20, maxMs = 120_000): Writer {
    const writer = new Writer();
    const deadline = Date.now() + maxMs;
    writer.done = (async () => {
      let client: Client | undefined;
      while (!writer.stopped && Date.now() < deadline) {
        const id = this.nextId++;
        try {
          if (!client) {
            client = new Client({ ...pgConfig(this.url, this.ca), query_timeout: 10_000 });
            client.on("error", () => undefined);
            await client.connect();
          }
          await client.query("INSERT INTO drill_ledger (id, phase) VALUES ($1, $2)", [id, phase]);
          this.acknowledged.push(id);
          writer.acknowledged++;
          writer.lastAckAt = Date.now();
        } catch (e) {
          this.inDoubt.push(id);
          writer.errors.push(`${new Date().toISOString()} ${(e as Error).message}`);
          await client?.end().catch(() => undefined);
          client = undefined;
          await sleep(200);
          continue;
        }
        await sleep(intervalMs);
      }
      await client?.end().catch(() => undefined);
    })();
    return writer;
  }

  /**
   * Waits until every acknowledged row is on NODE (replicas may still be replaying), at most
   * TIMEOUT ms; returns how many acknowledged rows were checked and how long it took.
   */
  async verifyOn(node: string, timeoutMs = 30_000): Promise<{ rows: number; ms: number }> {
    const ids = [...this.acknowledged];
    // As ranges of consecutive ids: tens of thousands of ids would not fit in one argument.
    const ranges = idRanges(ids).map(([lo, hi]) => `(${lo},${hi})`).join(",");
    const present = `SELECT count(*) FROM drill_ledger d JOIN (VALUES ${ranges}) r(lo, hi) ON d.id BETWEEN r.lo AND r.hi`;
    const ms = await waitFor(`${ids.length} acknowledged rows on ${node}`, async () =>
      (await sqlInContainer(node, present, "app")) === String(ids.length), timeoutMs, 250);
    // Rows in doubt (no answer to their COMMIT) may be there or not; nothing else may be.
    const total = Number(await sqlInContainer(node, "SELECT count(*) FROM drill_ledger", "app"));
    expect(total).toBeGreaterThanOrEqual(ids.length);
    expect(total).toBeLessThanOrEqual(ids.length + this.inDoubt.length);
    return { rows: ids.length, ms };
  }

  private async withClient<T>(work: (c: Client) => Promise<T>): Promise<T> {
    const client = new Client(pgConfig(this.url, this.ca));
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }
}

/** Sorted, distinct ids as [first, last] runs of consecutive ids. */
export function idRanges(ids: number[]): [number, number][] {
  const sorted = [...new Set(ids)].sort((x, y) => x - y);
  const ranges: [number, number][] = [];
  for (const id of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && id === last[1] + 1) last[1] = id;
    else ranges.push([id, id]);
  }
  return ranges;
}

export class Writer {
  acknowledged = 0;
  lastAckAt = 0;
  errors: string[] = [];
  stopped = false;
  done: Promise<void> = Promise.resolve();

  /** Stops the writer and waits for its last transaction. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** Waits until the writer has had an acknowledgement after time T (ms since epoch). */
  async ackedAfter(t: number, timeoutMs: number): Promise<number> {
    return waitFor("a write acknowledged after the fault", async () => this.lastAckAt > t, timeoutMs, 50);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
