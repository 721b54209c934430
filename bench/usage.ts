/**
 * CPU and memory of the cluster's containers (from their cgroups, as `docker stats` reads them)
 * and of the host (/proc/stat), plus a bounded background sampler of memory under load.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import { promisify } from "util";
import Docker from "dockerode";
import { median } from "./stats";

const execFileAsync = promisify(execFile);

export interface ContainerRef {
  name: string;
  id: string;
  role: string;
}

export interface Usage {
  /** Cumulative CPU time of the container in seconds. */
  cpuS: number;
  /** What `docker stats` shows as MEM USAGE: usage minus inactive page cache. */
  usedBytes: number;
  /** Anonymous memory (process heaps and stacks): cgroup v1 total_rss, v2 anon. */
  rssBytes: number;
  /** Page cache and shared memory (shared_buffers lives here): v1 total_cache, v2 file. */
  cacheBytes: number;
  limitBytes: number;
}

/** The containers of CLUSTER (label pgha.cluster), primary first, then replicas, then PgBouncer. */
export async function clusterContainers(cluster: string): Promise<ContainerRef[]> {
  const { stdout } = await execFileAsync("docker", ["ps", "--no-trunc", "--filter", `label=pgha.cluster=${cluster}`, "--format", '{{.ID}} {{.Names}} {{.Label "pgha.role"}}'], { timeout: 30_000 });
  const order = ["primary", "replica", "pgbouncer"];
  return stdout.trim().split("\n").filter(Boolean).map((l) => {
    const [id, name, role] = l.split(" ");
    return { id, name, role };
  }).sort((a, b) => order.indexOf(a.role) - order.indexOf(b.role) || a.name.localeCompare(b.name));
}

/** Parses a cgroup `memory.stat` ("key value" lines). */
export function parseMemoryStat(text: string): Record<string, number> {
  return Object.fromEntries(text.trim().split("\n").map((l) => l.trim().split(/\s+/)).filter((p) => p.length === 2).map(([k, v]) => [k, Number(v)]));
}

/** Usage from cgroup v1 or v2 memory.stat, the way the docker CLI computes MEM USAGE. */
export function memoryFromStat(usage: number, stat: Record<string, number>, limit: number): Omit<Usage, "cpuS"> {
  if ("total_inactive_file" in stat || "total_rss" in stat) {
    return { usedBytes: usage - (stat.total_inactive_file ?? 0), rssBytes: stat.total_rss ?? 0, cacheBytes: stat.total_cache ?? 0, limitBytes: limit };
  }
  return { usedBytes: usage - (stat.inactive_file ?? 0), rssBytes: stat.anon ?? 0, cacheBytes: (stat.file ?? 0), limitBytes: limit };
}

type Reader = () => Promise<Usage>;
const readers = new Map<string, Reader>();

function readNumber(file: string): number {
  const text = fs.readFileSync(file, "utf8").trim();
  return text === "max" ? Number.POSITIVE_INFINITY : Number(text);
}

/** Finds the container's cgroup files (v1 cgroupfs/systemd, v2); else falls back to the engine API. */
function readerFor(id: string): Reader {
  const cached = readers.get(id);
  if (cached) return cached;
  const v1 = [`docker/${id}`, `system.slice/docker-${id}.scope`].find((p) => fs.existsSync(`/sys/fs/cgroup/memory/${p}/memory.stat`));
  const v2 = [`system.slice/docker-${id}.scope`, `docker/${id}`].find((p) => fs.existsSync(`/sys/fs/cgroup/${p}/memory.stat`) && fs.existsSync(`/sys/fs/cgroup/${p}/cpu.stat`));
  let reader: Reader;
  if (v1) {
    reader = async () => ({
      cpuS: readNumber(`/sys/fs/cgroup/cpuacct/${v1}/cpuacct.usage`) / 1e9,
      ...memoryFromStat(readNumber(`/sys/fs/cgroup/memory/${v1}/memory.usage_in_bytes`), parseMemoryStat(fs.readFileSync(`/sys/fs/cgroup/memory/${v1}/memory.stat`, "utf8")), readNumber(`/sys/fs/cgroup/memory/${v1}/memory.limit_in_bytes`)),
    });
  } else if (v2) {
    reader = async () => {
      const cpu = parseMemoryStat(fs.readFileSync(`/sys/fs/cgroup/${v2}/cpu.stat`, "utf8"));
      return {
        cpuS: cpu.usage_usec / 1e6,
        ...memoryFromStat(readNumber(`/sys/fs/cgroup/${v2}/memory.current`), parseMemoryStat(fs.readFileSync(`/sys/fs/cgroup/${v2}/memory.stat`, "utf8")), readNumber(`/sys/fs/cgroup/${v2}/memory.max`)),
      };
    };
  } else {
    // The engine's stats endpoint: slower (about a second per call), same figures.
    reader = async () => {
      const s = (await new Docker().getContainer(id).stats({ stream: false })) as unknown as {
        cpu_stats: { cpu_usage: { total_usage: number } };
        memory_stats: { usage: number; limit: number; stats?: Record<string, number> };
      };
      return { cpuS: s.cpu_stats.cpu_usage.total_usage / 1e9, ...memoryFromStat(s.memory_stats.usage, s.memory_stats.stats ?? {}, s.memory_stats.limit) };
    };
  }
  readers.set(id, reader);
  return reader;
}

export async function readUsage(c: ContainerRef): Promise<Usage | undefined> {
  try {
    return await readerFor(c.id)();
  } catch {
    return undefined;
  }
}

export async function readAll(cs: ContainerRef[]): Promise<Record<string, Usage | undefined>> {
  const values = await Promise.all(cs.map(readUsage));
  return Object.fromEntries(cs.map((c, i) => [c.name, values[i]]));
}

/** Busy and total CPU time of the host in seconds, from /proc/stat's first line. */
export function hostCpu(): { busyS: number; totalS: number } | undefined {
  try {
    const fields = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const hz = 100;
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = fields[3] + (fields[4] ?? 0);
    return { busyS: (total - idle) / hz, totalS: total / hz };
  } catch {
    return undefined;
  }
}

/** A host process measured alongside the containers (Docker's userland proxy of a published port). */
export interface ProcessRef {
  label: string;
  pid: number;
}

/** The docker-proxy processes forwarding host PORTS (the engine's userland proxy; absent with iptables-only forwarding). */
export function proxyProcesses(ports: number[]): ProcessRef[] {
  const out: ProcessRef[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (!args[0]?.endsWith("docker-proxy")) continue;
      const port = Number(args[args.indexOf("-host-port") + 1]);
      if (ports.includes(port)) out.push({ label: `docker-proxy:${port}`, pid: Number(entry) });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** User + system CPU seconds of a process (from /proc/<pid>/stat, in clock ticks of 1/100 s). */
export function processCpuS(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** CPU cores used over a run: each container's, each measured host process's, and the whole host's. */
export interface CpuUse {
  seconds: number;
  /** Container name -> cores (CPU seconds per wall second). */
  containers: Record<string, number>;
  /** Process label -> cores. */
  processes?: Record<string, number>;
  host?: number;
}

/** Measures CPU use around WORK. */
export async function withCpu<T>(cs: ContainerRef[], work: () => Promise<T>, procs: ProcessRef[] = []): Promise<{ result: T; cpu: CpuUse }> {
  const before = await readAll(cs);
  const procsBefore = procs.map((p) => processCpuS(p.pid));
  const hostBefore = hostCpu();
  const started = Date.now();
  const result = await work();
  const seconds = (Date.now() - started) / 1000;
  const after = await readAll(cs);
  const procsAfter = procs.map((p) => processCpuS(p.pid));
  const hostAfter = hostCpu();
  const containers: Record<string, number> = {};
  for (const c of cs) {
    const a = before[c.name];
    const b = after[c.name];
    if (a && b && seconds > 0) containers[c.name] = (b.cpuS - a.cpuS) / seconds;
  }
  const processes: Record<string, number> = {};
  procs.forEach((p, i) => {
    const a = procsBefore[i];
    const b = procsAfter[i];
    if (a !== undefined && b !== undefined && seconds > 0) processes[p.label] = (b - a) / seconds;
  });
  const host = hostBefore && hostAfter && seconds > 0 ? (hostAfter.busyS - hostBefore.busyS) / seconds : undefined;
  return { result, cpu: { seconds, containers, processes, host } };
}

export interface MemorySample {
  phase: string;
  container: string;
  role: string;
  t: number;
  usedBytes: number;
  rssBytes: number;
  cacheBytes: number;
  limitBytes: number;
}

/** Samples the memory of containers every INTERVAL ms while a phase runs; bounded in count. */
export class MemorySampler {
  readonly samples: MemorySample[] = [];
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(private readonly intervalMs = 1000, private readonly maxSamples = 20_000) {}

  start(phase: string, cs: ContainerRef[]): void {
    this.stop();
    const tick = async () => {
      if (this.busy || this.samples.length >= this.maxSamples) return;
      this.busy = true;
      try {
        const t = Date.now();
        const usage = await readAll(cs);
        for (const c of cs) {
          const u = usage[c.name];
          if (u) this.samples.push({ phase, container: c.name, role: c.role, t, usedBytes: u.usedBytes, rssBytes: u.rssBytes, cacheBytes: u.cacheBytes, limitBytes: u.limitBytes });
        }
      } finally {
        this.busy = false;
      }
    };
    void tick();
    this.timer = setInterval(() => void tick(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export interface MemorySummary {
  phase: string;
  container: string;
  role: string;
  samples: number;
  usedMedianMb: number;
  usedMaxMb: number;
  rssMaxMb: number;
  cacheMaxMb: number;
  limitMb?: number;
}

const MB = 1024 * 1024;

/** Per phase and container: median and maximum of the samples, in MiB. */
export function summarizeMemory(samples: MemorySample[]): MemorySummary[] {
  const groups = new Map<string, MemorySample[]>();
  for (const s of samples) {
    const key = `${s.phase}\u0000${s.container}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  return [...groups.values()].map((g) => ({
    phase: g[0].phase,
    container: g[0].container,
    role: g[0].role,
    samples: g.length,
    usedMedianMb: median(g.map((s) => s.usedBytes))! / MB,
    usedMaxMb: Math.max(...g.map((s) => s.usedBytes)) / MB,
    rssMaxMb: Math.max(...g.map((s) => s.rssBytes)) / MB,
    cacheMaxMb: Math.max(...g.map((s) => s.cacheBytes)) / MB,
    limitMb: Number.isFinite(g[0].limitBytes) && g[0].limitBytes < 2 ** 60 ? g[0].limitBytes / MB : undefined,
  }));
}

