/** The shape of bench/results/<id>.json: every measurement of one run, and its environment. */
import type { ConnectionCost } from "./connections";
import type { DeployRun } from "./deploytime";
import type { Environment } from "./env";
import type { LagResult } from "./lag";
import type { Connections, PgbenchResult, Script } from "./pgbench";
import type { CpuUse, MemorySummary } from "./usage";

export type Target = "direct" | "pooled";

export interface ClusterUsed {
  cluster: string;
  /** The committed stack whose configuration it starts from. */
  shape: "dev" | "prod";
  /** The executor's deployment label(s). */
  deployments: string[];
  /** Everything changed against Pulumi.<shape>.yaml, besides the local test images. */
  overrides: Record<string, string>;
  /** What the nodes got: from the parsed configuration. */
  nodeMemoryMb: number;
  nodeCpus: number;
  maxConnections: number;
  replicas: number;
  pool: { mode: string; defaultPoolSize: number; reservePoolSize: number; maxDbConnections: number; maxClientConn: number };
  purpose: string;
}

export interface GridPoint {
  script: Script;
  connections: Connections;
  clients: number;
  target: Target;
  /** One run per round; rounds alternate the order of direct and pooled. */
  rounds: { run: PgbenchResult; cpu?: CpuUse }[];
}

export interface PoolPeak {
  /** Highest cl_active + cl_waiting seen on the app pool (PgBouncer's SHOW POOLS), sampled each second. */
  maxClients: number;
  maxWaiting: number;
  maxServers: number;
  samples: number;
}

export interface TuningRun {
  config: "tuned" | "stock";
  rep: number;
  restartMs: number;
  script: Script;
  run: PgbenchResult;
}

export interface BenchSettings {
  postgresMajor: number;
  scale: number;
  threads: number;
  gridClients: number[];
  /** The shortest grid window (-T); each run's own is sized from the connection cost (windows.ts), at most gridMaxDurationS. */
  gridDurationS: number;
  gridMaxDurationS: number;
  gridRounds: number;
  thousandClients: number;
  thousandDurationS: number;
  thousandMaxDurationS: number;
  thousandScripts: Script[];
  lagClients: number;
  lagDurationS: number;
  lagIntervalMs: number;
  tuningClients: number;
  tuningDurationS: number;
  tuningMaxDurationS: number;
  /** Steady 1-s samples (after every client connected) each run must leave; a run with fewer is a failed measurement. */
  minSteadySamples: number;
  /** Connections per path in the connection-cost measurement. */
  costConnections: number;
  tuningReps: number;
  deployReps: number;
  budgetS: number;
  clusters: Record<string, ClusterUsed>;
}

export interface BenchResults {
  schema: 1;
  id: string;
  startedAt: string;
  finishedAt: string;
  totalSeconds: number;
  environment: Environment;
  settings: BenchSettings;
  deploy: { runs: DeployRun[] };
  /** What one connection costs on this machine, by path (connections.ts). */
  connectionCost?: ConnectionCost[];
  grid: { initMs?: number; points: GridPoint[] };
  thousand: { runs: { run: PgbenchResult; cpu?: CpuUse; pools?: PoolPeak }[] };
  lag?: {
    load: PgbenchResult;
    cpu?: CpuUse;
    initMs?: number;
    lag: LagResult;
    samplerError?: string;
    /** The nice value the sampling psql and its server process ran at; undefined: not changed. */
    samplerNice?: number;
  };
  tuning?: { container: string; dataMb?: number; settings: { tuned: Record<string, string>; stock: Record<string, string> }; runs: TuningRun[] };
  /** Backup and restore with pgBackRest (bench/backup.ts). */
  backup?: BackupResult;
  memory: MemorySummary[];
  /** Phases that failed or were skipped, with the reason; the report names them. */
  failures: { phase: string; error: string }[];
  /** Derived figures (medians, ratios, verdicts) as the report shows them; written for convenience, recomputed when rendering. */
  derived?: unknown;
  /** Deviations from the plan that still leave every figure measured (e.g. fewer rounds to stay within the budget). */
  notes?: string[];
}

/** Reads a results file, bringing files of earlier layouts (one run per grid point) to this one. */
export function upgradeResults(raw: unknown): BenchResults {
  const r = raw as BenchResults & { grid: { points: (GridPoint & { run?: PgbenchResult; cpu?: CpuUse })[] } };
  for (const p of r.grid.points) {
    if (!p.rounds && p.run) {
      p.rounds = [{ run: p.run, cpu: p.cpu }];
      delete p.run;
      delete p.cpu;
    }
  }
  r.settings.gridRounds ??= 1;
  // Files from before runs were judged: one steady sample, and windows as they were.
  r.settings.minSteadySamples ??= 1;
  r.settings.gridMaxDurationS ??= r.settings.gridDurationS;
  r.settings.thousandMaxDurationS ??= r.settings.thousandDurationS;
  r.settings.tuningMaxDurationS ??= r.settings.tuningDurationS;
  r.settings.costConnections ??= 0;
  r.notes ??= [];
  return r;
}

/** One pgBackRest backup as the bench timed it and `pgbackrest info` described it. */
export interface BackupRun {
  type: "full" | "diff";
  label: string;
  /** `docker exec ... pgbackrest backup` as the bench timed it, and pgBackRest's own figure (its "command end" line), ms. */
  wallMs: number;
  commandMs?: number;
  /** From info, bytes: the database, the part this backup copied, the backup set and this backup in the repository (compressed, encrypted). */
  databaseBytes: number;
  deltaBytes: number;
  repositoryBytes: number;
  repositoryDeltaBytes: number;
}

/** One sample of the primary's archiver, taken every second while pgbench writes. */
export interface ArchiveSample {
  atMs: number;
  /** pg_walfile_name(pg_current_wal_lsn()): the segment being written. */
  currentWal: string;
  lastArchivedWal?: string;
  lastArchivedAtMs?: number;
  failedCount: number;
}

/** The repository's size: from `pgbackrest info` (backups only) and from `du` of the volume (backups, WAL archive, status files). */
export interface RepositorySize {
  backups: number;
  fullBackups: number;
  /** Sum of every backup's own size in the repository (info's repository delta). */
  infoBytes: number;
  duBytes: number;
  backupDuBytes: number;
  archiveDuBytes: number;
}

export interface BackupResult {
  cluster: string;
  restoredCluster: string;
  /** pgbench scale of the backed-up data, and the app database's size after pgbench -i, bytes. */
  scale: number;
  dataBytes?: number;
  initMs?: number;
  /** Seconds the phase may take, added to the rest of the run's budget. */
  budgetS: number;
  retentionFull: number;
  archiveTimeoutS: number;
  /** Backups the bench took, in order (the scheduler's first one, of the empty cluster, not among them). */
  backups: BackupRun[];
  /** The pgbench traffic between the first full backup and the differential, sampled for archive lag. */
  load?: PgbenchResult;
  archive: { intervalMs: number; loadStartMs?: number; loadEndMs?: number; samples: ArchiveSample[] };
  repository: { beforeExpiry?: RepositorySize; afterExpiry?: RepositorySize; expireMs?: number };
  /** restore-drill.sh on demand: its last-drill.json. */
  drill?: { result: string; backup?: string; seconds: number; checks: Record<string, string>; error?: string | null };
  /** The new cluster deployed with pg-ha:restoreFrom the repository (to the end of the archive). */
  restore?: {
    /** The backup set restored (the newest) and its database size, bytes. */
    backup: string;
    databaseBytes: number;
    /** From the deploy call until the executor returned, and until the first query on the restored data answered, ms. */
    deployMs: number;
    queryableMs: number;
    /** pgBackRest's restore on the new node ("restore command end" in its log), ms. */
    commandMs?: number;
    /** pgbench_accounts rows on the restored cluster, and how many the source had. */
    rows?: number;
    expectedRows: number;
  };
  notes: string[];
}
