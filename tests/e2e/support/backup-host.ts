/**
 * What the backup fault drills do on a pgBackRest repository host and on the primary, as an
 * operator would: pgBackRest as postgres (the container's environment names the config and the
 * stanza), the restore drill on demand, the repository's status files, and the primary's archiver.
 */
import { type DeployedCluster, docker, patroniMembers, sqlInContainer, waitFor } from "./cluster";
import { run } from "./drill";

export interface BackupInfo {
  label: string;
  type: string;
  error?: boolean;
  timestamp: { start: number; stop: number };
  archive: { start: string; stop: string };
  info: { size: number; repository: { delta: number; size: number } };
}

export interface CommandResult {
  code: number;
  out: string;
}

export class BackupHost {
  constructor(readonly name: string) {}

  static of(cluster: DeployedCluster): BackupHost {
    return new BackupHost(cluster.outputs.nodes.find((n) => n.role === "backup")!.name);
  }

  /** pgBackRest on the repository host as postgres; never throws on a non-zero exit. */
  async pgbackrest(args: string[], timeoutMs = 900_000): Promise<CommandResult> {
    const r = await run("docker", ["exec", "-u", "postgres", this.name, "pgbackrest", ...args], { timeoutMs });
    return { code: r.status, out: [r.stdout, r.stderr].filter(Boolean).join("\n") };
  }

  /** The stanza's entry of `pgbackrest info` (its status and its backups). */
  async info(): Promise<{ status: { code: number; message: string }; backup: BackupInfo[] }> {
    const { code, out } = await this.pgbackrest(["--output=json", "info"], 300_000);
    if (code !== 0) throw new Error(`pgbackrest info failed (${code}): ${out}`);
    return JSON.parse(out)[0];
  }

  async backups(): Promise<BackupInfo[]> {
    return (await this.info()).backup ?? [];
  }

  /** A shell command inside the repository host as postgres (who owns the repository). */
  async sh(command: string, timeoutMs = 120_000): Promise<CommandResult> {
    const r = await run("docker", ["exec", "-u", "postgres", this.name, "sh", "-c", command], { timeoutMs });
    return { code: r.status, out: [r.stdout, r.stderr].filter(Boolean).join("\n") };
  }

  async statusFile(name: "last-drill.json" | "last-backup.json"): Promise<Record<string, any> | undefined> {
    const { out } = await this.sh(`cat /var/lib/pgbackrest/pg-ha/${name} 2>/dev/null || true`);
    return out ? JSON.parse(out) : undefined;
  }

  /** The restore drill run on demand, as the scheduler runs it: exit code, output, result file. */
  async restoreDrill(): Promise<{ code: number; output: string; result: Record<string, any> }> {
    const r = await run("docker", ["exec", this.name, "/usr/local/lib/pg-ha/restore-drill.sh"], { timeoutMs: 1_200_000 });
    return { code: r.status, output: `${r.stdout}\n${r.stderr}`.trim(), result: (await this.statusFile("last-drill.json"))! };
  }

  /** Waits for the scheduler's first full backup after the deploy; returns it. */
  async firstFullBackup(timeoutMs = 900_000): Promise<BackupInfo> {
    await waitFor("the scheduler's first full backup", async () => (await this.backups()).some((b) => b.type === "full")
      && (await this.statusFile("last-backup.json"))?.result === "passed", timeoutMs, 3000);
    return (await this.backups()).find((b) => b.type === "full")!;
  }

  async health(): Promise<string> {
    return docker("inspect", "-f", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", this.name);
  }
}

/** The running leader's name, asked of Patroni. */
export async function leaderOf(cluster: DeployedCluster): Promise<string> {
  let leader = "";
  await waitFor("a running leader", async () => {
    leader = (await patroniMembers(cluster.members)).find((m) => m.role === "leader" && m.state === "running")?.name ?? "";
    return leader !== "";
  }, 180_000, 1000);
  return leader;
}

export interface Archiver {
  archived: number;
  lastArchived: string;
  failed: number;
  lastFailed: string;
}

/** pg_stat_archiver on NODE. */
export async function archiverOf(node: string): Promise<Archiver> {
  const [archived, lastArchived, failed, lastFailed] = (await sqlInContainer(node,
    "SELECT archived_count, coalesce(last_archived_wal, ''), failed_count, coalesce(last_failed_wal, '') FROM pg_stat_archiver")).split("|");
  return { archived: Number(archived), lastArchived, failed: Number(failed), lastFailed };
}

/** Ends the current WAL segment on the primary; returns its name (the segment the archiver must push next). */
export async function switchWal(primary: string): Promise<string> {
  return sqlInContainer(primary, "SELECT pg_walfile_name(pg_switch_wal())");
}

/**
 * True when the archiver has pushed SEGMENT (names of one timeline sort by position). A backup
 * history file (<segment>.<offset>.backup) is archived before its own segment is complete: it
 * shows only that the segments before it are.
 */
export function archivedThrough(archiver: Archiver, segment: string): boolean {
  const last = archiver.lastArchived;
  return last.length === segment.length ? last >= segment : last.slice(0, segment.length) > segment;
}

/** Waits until the primary's archiver has pushed SEGMENT. */
export async function waitArchived(primary: string, segment: string, timeoutMs: number): Promise<number> {
  return waitFor(`${segment} archived`, async () => archivedThrough(await archiverOf(primary), segment), timeoutMs, 500);
}
