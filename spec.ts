/**
 * What a cluster is: the validated, frozen ClusterSpec that config.ts builds from the stack
 * configuration, and the constants every layer above shares. The lowest layer of the program:
 * it imports nothing of the project.
 */

export type PostgresMajor = 17 | 18;
export type Workload = "web" | "oltp" | "dw" | "mixed" | "desktop";
export type Storage = "ssd" | "hdd" | "nvme" | "san";
export type PoolMode = "transaction" | "session" | "statement";
export type SynchronousMode = "off" | "quorum";
export type TlsProtocol = "TLSv1.2" | "TLSv1.3";
/**
 * patroni: symmetric nodes, Patroni elects the primary through etcd and HAProxy routes to it.
 * none: the first version's fixed primary and replicas, without automatic failover.
 */
export type FailoverMode = "patroni" | "none";

/** Where a restore stops replaying WAL: the end of the archive, a point in time, or an LSN. */
export type RestoreTarget = { type: "latest" } | { type: "time"; time: string } | { type: "lsn"; lsn: string };

export interface ClusterSpec {
  clusterName: string;
  /** `build`: the image is built from images/postgres-patroni (failover = patroni, no image set). */
  postgres: { major: PostgresMajor; image: string; build: boolean };
  pgbouncerImage: string;
  pullImages: boolean;
  failover: FailoverMode;
  /** Patroni's store and the router (failover = patroni). Images empty = built from images/ in this repository. */
  ha: { etcdMembers: number; etcdImage: string; haproxyImage: string };
  replicas: number;
  synchronousMode: SynchronousMode;
  node: { memoryMb: number; cpus: number; storage: Storage; workload: Workload; maxConnections: number };
  pool: {
    mode: PoolMode;
    defaultPoolSize: number;
    minPoolSize: number;
    reservePoolSize: number;
    maxClientConn: number;
    maxDbConnections: number;
  };
  /** Host ports; undefined means the endpoint is not published. */
  publish: { address: string; directPort?: number; pooledPort?: number; readOnlyPort?: number };
  tls: { minProtocol: TlsProtocol; validityDays: number; renewBeforeDays: number; extraNames: string[] };
  databases: string[];
  walArchiving: boolean;
  /**
   * pgBackRest (failover = patroni, walArchiving on): schedules in minutes, how many full backups
   * are kept, how often a restore drill proves the newest backup restores (0: never), and how old
   * the newest archived WAL may be (archive_timeout).
   */
  backup: {
    fullIntervalMinutes: number;
    diffIntervalMinutes: number;
    retentionFull: number;
    drillIntervalMinutes: number;
    archiveTimeoutSeconds: number;
  };
  /**
   * Bootstrap this new cluster from another cluster's pgBackRest repository (a Docker volume,
   * mounted read-only, so the source is never changed), recovered to a target. Undefined: a new,
   * empty cluster.
   */
  restore?: {
    repositoryVolume: string;
    /** The source cluster's stanza: its cluster name. */
    stanza: string;
    target: RestoreTarget;
    /** The source repository's passphrase (its stack's backupCipherPass output). Secret: never rendered in plain files. */
    cipherPass: string;
  };
  maxSlotWalKeepMb: number;
  protectData: boolean;
  slowQueryMs: number;
  networkSubnet: string;
  /**
   * PostgreSQL parameters set over the tuning (pg-ha:postgresParameters), under PostgreSQL's own
   * names, already checked. Plain data any renderer applies after the tuning.
   */
  postgresParameters: Readonly<Record<string, string>>;
}

/** PostgreSQL's own reserve for superusers (its default), counted in the connection budget. */
export const SUPERUSER_RESERVED_CONNECTIONS = 3;
/** Suffix of PgBouncer's read-only database entries (`app` -> `app_ro`). */
export const READ_ONLY_SUFFIX = "_ro";
