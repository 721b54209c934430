/**
 * Cold deploy time: from no object of the cluster on the engine to every container healthy
 * (the executor's `wait`) and every replica streaming (pg_stat_replication and the WAL receiver),
 * with a timeline of each container read from the engine and the servers' own log lines.
 */
import { execFile } from "child_process";
import { cleanupLeftovers } from "../tests/e2e/executor";
import { allStreaming, deployCluster, docker, type DeployedCluster, type Stack, waitFor } from "../tests/e2e/support/cluster";

export interface TimelineEntry {
  container: string;
  role: string;
  /** Milliseconds after the deploy started. */
  createdMs: number;
  startedMs: number;
  /** The log line that says the process serves: primary "ready to accept connections",
   * replica "started streaming WAL", PgBouncer "process up". */
  readyMs?: number;
}

export interface DeployRun {
  shape: Stack;
  rep: number;
  /** From the call to the end of the executor's deploy: every container created and healthy. */
  healthyMs: number;
  /** Until every replica streams (includes healthyMs). */
  streamingMs: number;
  timeline: TimelineEntry[];
}

const READY: Record<string, RegExp> = {
  primary: /database system is ready to accept connections/,
  replica: /started streaming WAL from primary/,
  pgbouncer: /process up/,
};

/** The first (replica, PgBouncer) or last (primary: the real server after the bootstrap one) ready line. */
export function readyTime(role: string, logs: string): number | undefined {
  const re = READY[role];
  if (!re) return undefined;
  const lines = logs.split("\n").filter((l) => re.test(l));
  const line = role === "primary" ? lines[lines.length - 1] : lines[0];
  const ts = line ? /^(\S+)/.exec(line)?.[1] : undefined;
  return ts ? Date.parse(ts) : undefined;
}

async function timelineOf(cluster: DeployedCluster, t0: number): Promise<TimelineEntry[]> {
  const entries: TimelineEntry[] = [];
  for (const node of cluster.outputs.nodes) {
    const [created, started] = (await docker("inspect", "-f", "{{.Created}} {{.State.StartedAt}}", node.name)).split(" ");
    const ready = readyTime(node.role, await containerLogs(node.name));
    entries.push({
      container: node.name,
      role: node.role,
      createdMs: Date.parse(created) - t0,
      startedMs: Date.parse(started) - t0,
      readyMs: ready === undefined ? undefined : ready - t0,
    });
  }
  return entries.sort((a, b) => a.createdMs - b.createdMs);
}

/** The container's stdout and stderr with the engine's timestamps (the servers log to stderr). */
function containerLogs(container: string): Promise<string> {
  return new Promise((resolve) => {
    execFile("docker", ["logs", "--timestamps", container], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 }, (_err, stdout, stderr) =>
      resolve(`${stdout ?? ""}\n${stderr ?? ""}`));
  });
}

/**
 * Deploys SHAPE with OVERRIDES from nothing (the cluster's leftovers are removed first, outside
 * the timing) and measures it. The cluster stays up; the caller removes it.
 */
export async function coldDeploy(shape: Stack, rep: number, overrides: Record<string, string>, deployment: string): Promise<{ run: DeployRun; cluster: DeployedCluster }> {
  await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${overrides["pg-ha:clusterName"]}`] });
  const t0 = Date.now();
  const cluster = await deployCluster(shape, 18, overrides, deployment);
  const healthyMs = Date.now() - t0;
  await waitFor("every replica streaming", () => allStreaming(cluster), 60_000, 100);
  const streamingMs = Date.now() - t0;
  return { run: { shape, rep, healthyMs, streamingMs, timeline: await timelineOf(cluster, t0) }, cluster };
}
