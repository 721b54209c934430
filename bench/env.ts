/** The machine and software a benchmark ran on. */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";

export interface Environment {
  hostname: string;
  cpuModel: string;
  cores: number;
  /** e.g. "KVM" when the machine is a virtual one (lscpu's Hypervisor vendor). */
  hypervisor?: string;
  memoryGiB: number;
  os: string;
  kernel: string;
  node: string;
  engine: { version: string; apiVersion: string; cgroupVersion?: string; storageDriver?: string; os?: string };
  postgres: { image: string; imageId?: string; server?: string };
  pgbouncer: { image: string; imageId?: string; version?: string; tls?: string };
  client: { pgbench?: string; psql?: string; openssl?: string };
  git?: { commit: string; dirty: boolean };
}

function run(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

/** What can be read without a cluster; the server and PgBouncer versions are added by the run. */
export function collectEnvironment(postgresImage: string, pgbouncerImage: string, root: string): Environment {
  const info = JSON.parse(run("docker", ["info", "--format", "{{json .}}"]) ?? "{}") as Record<string, string>;
  const version = JSON.parse(run("docker", ["version", "--format", "{{json .Server}}"]) ?? "{}") as Record<string, string>;
  const status = run("git", ["-C", root, "status", "--porcelain"]);
  const commit = run("git", ["-C", root, "rev-parse", "HEAD"]);
  return {
    hostname: os.hostname(),
    cpuModel: os.cpus()[0]?.model?.trim() ?? "unknown",
    cores: os.cpus().length,
    hypervisor: /^Hypervisor vendor:\s*(.+)$/m.exec(run("lscpu", []) ?? "")?.[1]?.trim(),
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: osName(),
    kernel: os.release(),
    node: process.version,
    engine: {
      version: version.Version ?? info.ServerVersion ?? "unknown",
      apiVersion: version.ApiVersion ?? "unknown",
      cgroupVersion: info.CgroupVersion,
      storageDriver: info.Driver,
      os: info.OperatingSystem,
    },
    postgres: { image: postgresImage, imageId: run("docker", ["image", "inspect", "-f", "{{.Id}}", postgresImage]) },
    pgbouncer: { image: pgbouncerImage, imageId: run("docker", ["image", "inspect", "-f", "{{.Id}}", pgbouncerImage]) },
    client: {
      pgbench: run("pgbench", ["--version"]),
      psql: run("psql", ["--version"]),
      openssl: run("openssl", ["version"]),
    },
    git: commit ? { commit, dirty: (status ?? "") !== "" } : undefined,
  };
}

/** PgBouncer's "process up" log line: its version and TLS library. */
export function parsePgbouncerUp(logs: string): { version?: string; tls?: string } {
  const m = /process up: PgBouncer ([^,\s]+)(?:.*?tls: ([^\n]+))?/.exec(logs);
  return { version: m?.[1], tls: m?.[2]?.trim() };
}
