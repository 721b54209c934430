/**
 * pgbench: the arguments of one bounded run, running it, and parsing what it prints
 * (PostgreSQL 15+ pgbench: summary on stdout, progress and errors on stderr).
 */
import { spawn } from "child_process";
import { median } from "./stats";

export type Script = "select-only" | "tpcb-like";
export type Connections = "persistent" | "per-transaction";

export interface PgbenchOptions {
  url: string;
  caFile: string;
  script: Script;
  clients: number;
  threads: number;
  durationS: number;
  /** -C: a new connection (TLS handshake, SCRAM) for every transaction. */
  connections: Connections;
  /** -M; simple by default (works through transaction pooling without prepared-statement tracking). */
  protocol?: "simple" | "extended" | "prepared";
  /** Hard bound on the process; default: duration + 60 s + 20 ms per client. */
  timeoutMs?: number;
}

export interface ProgressSample {
  /** Seconds since the start of the run, at the end of the interval. */
  t: number;
  tps: number;
  latencyMs: number;
  failed: number;
}

export interface PgbenchSummary {
  transactions?: number;
  failed?: number;
  /** "client N aborted" lines: clients that gave up (connection refused, error in a command). */
  abortedClients: number;
  tps?: number;
  /** What pgbench says its tps excludes or includes. */
  tpsBasis?: string;
  latencyAvgMs?: number;
  latencyStddevMs?: number;
  initialConnectionMs?: number;
  averageConnectionMs?: number;
  progress: ProgressSample[];
  /** Median of the 1-second progress samples once every client is connected (see steadySamples). */
  steadyTps?: number;
  /** Distinct error messages (numbers folded to N), each with how often it appeared; at most 10. */
  errors: { message: string; count: number }[];
  errorLines: number;
  /** The pgbench process's own CPU time in seconds (from the shell's `times`), when known. */
  clientCpuS?: { user: number; system: number };
  serverVersion?: string;
}

export interface PgbenchResult extends PgbenchSummary {
  /** The arguments without the URL (it holds the password). */
  args: string[];
  clients: number;
  script: Script;
  connections: Connections;
  durationS: number;
  exitCode: number | null;
  timedOut: boolean;
  wallMs: number;
}

/** pgbench's arguments for OPTIONS, the URL last. */
export function pgbenchArgs(o: PgbenchOptions): string[] {
  const args = ["-n", "-c", String(o.clients), "-j", String(Math.max(1, Math.min(o.threads, o.clients))), "-T", String(o.durationS), "-P", "1", "-M", o.protocol ?? "simple"];
  if (o.script === "select-only") args.push("-S");
  if (o.connections === "per-transaction") args.push("-C");
  return [...args, o.url];
}

const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));

/** Folds the variable parts of an error line so that equal causes count together. */
export function foldError(line: string): string {
  return line
    .replace(/^pgbench: (error|fatal|warning): /, "")
    .replace(/\bclient \d+\b/g, "client N")
    .replace(/\bcommand \d+\b/g, "command N")
    .replace(/\bscript \d+\b/g, "script N")
    .replace(/port \d+/g, "port N")
    .replace(/\d+(\.\d+)? ?ms\b/g, "N ms")
    .trim();
}

/**
 * Parses pgbench's stdout and stderr. Progress lines look like
 * `progress: 2.0 s, 7512.9 tps, lat 1.316 ms stddev 2.088, 0 failed`.
 */
export function parsePgbench(stdout: string, stderr: string): PgbenchSummary {
  const m = (re: RegExp) => re.exec(stdout) ?? undefined;
  const tpsLine = m(/^tps = ([\d.]+)(?: \(([^)]*)\))?/m);
  const progress: ProgressSample[] = [];
  const errorCounts = new Map<string, number>();
  let errorLines = 0;
  let abortedClients = 0;
  let clientCpuS: PgbenchSummary["clientCpuS"];
  const lines = stderr.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const p = /^progress: ([\d.]+) s, ([\d.]+) tps, lat ([\d.]+|NaN) ms(?: stddev [\d.NaN]+)?(?:, (\d+) failed)?/.exec(line);
    if (p) {
      progress.push({ t: Number(p[1]), tps: Number(p[2]), latencyMs: Number(p[3]), failed: Number(p[4] ?? 0) });
      continue;
    }
    if (line === "@@times") {
      // `times` prints the shell's own times, then its children's: "0m5.320000s 0m0.890000s".
      const child = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec((lines[i + 2] ?? "").trim());
      if (child) clientCpuS = { user: Number(child[1]) * 60 + Number(child[2]), system: Number(child[3]) * 60 + Number(child[4]) };
      i += 2;
      continue;
    }
    if (/\bclient \d+ aborted\b/.test(line)) abortedClients++;
    if (/^pgbench: (error|fatal)|\baborted\b|FATAL:|ERROR:/.test(line)) {
      errorLines++;
      const folded = foldError(line);
      errorCounts.set(folded, (errorCounts.get(folded) ?? 0) + 1);
    }
  }
  const initialConnectionMs = num(m(/^initial connection time = ([\d.]+) ms/m)?.[1]);
  return {
    transactions: num(m(/^number of transactions actually processed: (\d+)/m)?.[1]),
    failed: num(m(/^number of failed transactions: (\d+)/m)?.[1]),
    abortedClients,
    tps: num(tpsLine?.[1]),
    tpsBasis: tpsLine?.[2],
    latencyAvgMs: num(m(/^latency average = ([\d.]+) ms/m)?.[1]),
    latencyStddevMs: num(m(/^latency stddev = ([\d.]+) ms/m)?.[1]),
    initialConnectionMs,
    averageConnectionMs: num(m(/^average connection time = ([\d.]+) ms/m)?.[1]),
    progress,
    steadyTps: median(steadySamples(progress, initialConnectionMs).map((s) => s.tps)),
    errors: [...errorCounts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([message, count]) => ({ message, count })),
    errorLines,
    clientCpuS,
    serverVersion: m(/^pgbench \(.*\bserver (\d+(?:\.\d+)*)/m)?.[1],
  };
}

/**
 * The progress samples that measure the steady state: the first interval (start-up) and every
 * interval that began before all clients had connected are left out. A run whose clients spent
 * the whole window connecting has none (windows.ts sizes the window so that it has enough).
 */
export function steadySamples(progress: ProgressSample[], initialConnectionMs?: number): ProgressSample[] {
  const connectedAt = (initialConnectionMs ?? 0) / 1000;
  return progress.filter((s, i) => i > 0 && s.t - 1 >= connectedAt);
}

/**
 * Runs pgbench bounded in time (SIGINT at the bound, SIGKILL 5 s later) with the CA for
 * verify-full, through `sh` so that its CPU time can be read and the open-file limit suffices.
 */
export function runPgbench(o: PgbenchOptions): Promise<PgbenchResult> {
  const args = pgbenchArgs(o);
  const timeoutMs = o.timeoutMs ?? o.durationS * 1000 + 60_000 + 20 * o.clients;
  const wrapper =
    'n=$(ulimit -n); if [ "$n" != unlimited ] && [ "$n" -lt 4096 ]; then ulimit -n 4096 2>/dev/null; fi; ' +
    'pgbench "$@"; rc=$?; echo "@@times" >&2; times >&2; exit $rc';
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn("sh", ["-c", wrapper, "sh", ...args], {
      env: { ...process.env, PGSSLROOTCERT: o.caFile, PGCONNECT_TIMEOUT: "30", PGAPPNAME: "pgha-bench" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const soft = setTimeout(() => {
      timedOut = true;
      child.kill("SIGINT");
    }, timeoutMs);
    const hard = setTimeout(() => child.kill("SIGKILL"), timeoutMs + 5_000);
    child.on("close", (code) => {
      clearTimeout(soft);
      clearTimeout(hard);
      const summary = parsePgbench(stdout, stderr);
      resolve({
        ...summary,
        args: args.slice(0, -1),
        clients: o.clients,
        script: o.script,
        connections: o.connections,
        durationS: o.durationS,
        exitCode: code,
        timedOut,
        wallMs: Date.now() - started,
      });
    });
  });
}

/** `pgbench -i`: creates the tables at SCALE (client-side generation, then primary keys). */
export function initPgbench(url: string, caFile: string, scale: number, timeoutMs = 180_000): Promise<{ exitCode: number | null; wallMs: number; output: string }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn("pgbench", ["-i", "-s", String(scale), "-q", url], {
      env: { ...process.env, PGSSLROOTCERT: caFile, PGCONNECT_TIMEOUT: "30" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, wallMs: Date.now() - started, output: output.trim().split("\n").slice(-3).join("\n") });
    });
  });
}
