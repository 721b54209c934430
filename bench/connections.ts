/**
 * What one connection costs on this machine, measured in the same run as the ratios it explains:
 * `pgbench -C -c 1` opens one connection after another, each running `SELECT 1`, and reports the
 * average connection time. Four paths, from the machine's own floor to the pooled path:
 *
 * - stock-socket: a stock PostgreSQL (initdb defaults, same image and CPU limit as a cluster node)
 *   over its Unix socket, no TLS, trust: what starting a backend costs on this machine;
 * - primary-socket: the cluster's primary over its Unix socket (peer, no TLS): the same with the
 *   project's postgresql.conf;
 * - direct-tls: the primary's published port with the stack's URL (TLS 1.3, verify-full, SCRAM);
 * - pooled-tls: PgBouncer's published port, the same way (the server connection is already open).
 */
import { spawn } from "child_process";
import { parsePgbench } from "./pgbench";

export type ConnectionPath = "stock-socket" | "primary-socket" | "direct-tls" | "pooled-tls";

export interface ConnectionCost {
  path: ConnectionPath;
  /** Connections opened, one after another. */
  connections: number;
  /** pgbench's average connection time, ms. */
  averageMs?: number;
  /** Connections (each with its SELECT 1) per second, as pgbench counts them. */
  perSecond?: number;
  exitCode: number | null;
  timedOut: boolean;
  wallMs: number;
  /** The first error pgbench printed, if any. */
  error?: string;
}

export const PATH_TITLES: Record<ConnectionPath, string> = {
  "stock-socket": "stock PostgreSQL, Unix socket, no TLS (trust)",
  "primary-socket": "cluster primary, Unix socket, no TLS (peer)",
  "direct-tls": "cluster primary, published port, TLS 1.3 + SCRAM",
  "pooled-tls": "PgBouncer, published port, TLS 1.3 + SCRAM",
};

/** pgbench's arguments for CONNECTIONS connections in a row, the script read from stdin. */
export function connectionCostArgs(connections: number): string[] {
  return ["-n", "-C", "-c", "1", "-j", "1", "-t", String(connections), "-M", "simple", "-f", "/dev/stdin"];
}

/**
 * The command that runs pgbench with ARGS and `SELECT 1` on a pipe as its stdin, through `sh`
 * (Node gives a child a socket as stdin, which /dev/stdin cannot open), after PREFIX
 * (e.g. `docker exec -u postgres <container>`).
 */
export function connectionCostCommand(prefix: string[], args: string[]): string[] {
  return [...prefix, "sh", "-c", 'printf "SELECT 1;\\n" | pgbench "$@"', "sh", ...args];
}

/** The figures of one measurement from pgbench's output. */
export function parseConnectionCost(path: ConnectionPath, connections: number, stdout: string, stderr: string, exitCode: number | null, timedOut: boolean, wallMs: number): ConnectionCost {
  const r = parsePgbench(stdout, stderr);
  const processed = r.transactions ?? 0;
  const error = r.errors[0]?.message ?? (timedOut ? `stopped at its time bound after ${wallMs} ms` : exitCode !== 0 ? stderr.trim().split("\n").slice(-1)[0] || `exit code ${exitCode}` : undefined);
  return {
    path, connections, exitCode, timedOut, wallMs, error,
    averageMs: processed === connections && exitCode === 0 ? r.averageConnectionMs : undefined,
    perSecond: processed === connections && exitCode === 0 ? r.tps : undefined,
  };
}

/** Runs COMMAND (see connectionCostCommand), bounded by TIMEOUT_MS. */
export function measureConnectionCost(path: ConnectionPath, connections: number, command: string[], env: Record<string, string>, timeoutMs: number): Promise<ConnectionCost> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => (stderr += `\n${e.message}`));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(parseConnectionCost(path, connections, stdout, stderr, code, timedOut, Date.now() - started));
    });
  });
}

/** The connection cost of PATH from a list, ms. */
export function costOf(costs: ConnectionCost[] | undefined, path: ConnectionPath): number | undefined {
  return costs?.find((c) => c.path === path)?.averageMs;
}
