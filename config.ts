/**
 * Stack configuration: every `pg-ha:*` key is declared here once, parsed from Pulumi's string
 * form, validated field by field and across fields, and returned as a frozen, typed ClusterSpec.
 * Nothing is created before this succeeds.
 */
import * as net from "net";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { canonicalParameters, parameterProblems, sizeInKb } from "./config-templates/parameters";
import { clusterTuning, parseMemory, walSenders } from "./config-templates/tuning";
import { backupsEnabled, backupVolumeName, HA_MAX_PREFIX } from "./topology";
import {
  type ClusterSpec, type FailoverMode, type PoolMode, type PostgresMajor, READ_ONLY_SUFFIX, type Storage,
  SUPERUSER_RESERVED_CONNECTIONS, type SynchronousMode, type TlsProtocol, type Workload,
} from "./spec";

export type { ClusterSpec, FailoverMode, PoolMode, PostgresMajor, Storage, SynchronousMode, TlsProtocol, Workload } from "./spec";
export { SUPERUSER_RESERVED_CONNECTIONS } from "./spec";

export const PROJECT = "pg-ha";

/** Connections kept free for direct (non-pooled) clients: migrations, admin, monitoring. */
export const DIRECT_CONNECTION_HEADROOM = 20;
/** Memory one idle backend needs besides work_mem (process, catalog caches), for the memory check. */
export const BACKEND_BASELINE_MB = 2;
/** Role names the cluster uses for itself; application databases may not take them. */
export const RESERVED_NAMES = ["postgres", "replicator", "monitor", "pgbouncer", "pgbouncer_admin", "pgbouncer_stats", "template0", "template1"];


// ---------------------------------------------------------------------------------------------
// Settings: one entry per `pg-ha:<key>`. Pulumi.yaml declares the same keys (a test holds them equal).

type PulumiType = "string" | "integer" | "boolean" | "array" | "object";
interface Setting<T> {
  type: PulumiType;
  description: string;
  default: T;
  /** What the error message says is accepted. */
  accepted: string;
  schema: z.ZodType<T>;
}

const integer = (min: number, max: number) => z.number().int().min(min).max(max);
const IMAGE_REF =
  /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,59}$/;
const port = z.number().int().refine((p) => p === 0 || (p >= 1024 && p <= 65535));
const portAccepted = "0 (not published) or a port from 1024 to 65535";

export const DEFAULT_PGBOUNCER_IMAGE =
  "edoburu/pgbouncer:v1.25.2-p0@sha256:7d7a27d9e90985cab5cf42256f5c13a3120baa4b055b69df37beb272b89b2340";

/** The router's image: the official HAProxy 3.0 LTS. */
export const DEFAULT_HAPROXY_IMAGE = "haproxy:3.0.11";

export const SETTINGS = {
  clusterName: {
    type: "string", default: "pgha",
    description: "Prefix of every container, volume and network name; also the DNS names inside the cluster network.",
    accepted: "lowercase letters, digits and '-', starting with a letter, at most 30 characters",
    schema: z.string().regex(/^[a-z][a-z0-9-]{0,29}$/),
  },
  postgresMajor: {
    type: "integer", default: 18,
    description: "PostgreSQL major version.", accepted: "17 or 18",
    schema: z.union([z.literal(17), z.literal(18)]),
  },
  postgresImage: {
    type: "string", default: "",
    description: "PostgreSQL image; empty means the official postgres:<major>-trixie, with Patroni and pgBackRest added by images/postgres-patroni when pg-ha:failover is patroni.",
    accepted: "an image reference such as postgres:18-trixie, or empty",
    schema: z.string().refine((s) => s === "" || IMAGE_REF.test(s)),
  },
  pgbouncerImage: {
    type: "string", default: DEFAULT_PGBOUNCER_IMAGE,
    description: "PgBouncer image, pinned by digest.",
    accepted: "an image reference such as edoburu/pgbouncer:v1.25.2-p0",
    schema: z.string().regex(IMAGE_REF),
  },
  failover: {
    type: "string", default: "patroni",
    description: "patroni: Patroni and etcd elect the primary and fail over by themselves, HAProxy routes to it. none: a fixed primary and replicas without automatic failover (the first version's layout).",
    accepted: "patroni or none", schema: z.enum(["patroni", "none"]),
  },
  etcdMembers: {
    type: "integer", default: 3,
    description: "Members of the etcd store Patroni keeps the leader lock in: 1 (no store fault tolerance) or 3 or 5 (survives 1 or 2 lost).",
    accepted: "1, 3 or 5", schema: z.union([z.literal(1), z.literal(3), z.literal(5)]),
  },
  etcdImage: {
    type: "string", default: "",
    description: "etcd image; empty builds images/etcd (etcd 3.5 from Debian: the official image has no shell for the health check).",
    accepted: "an image reference, or empty",
    schema: z.string().refine((s) => s === "" || IMAGE_REF.test(s)),
  },
  haproxyImage: {
    type: "string", default: DEFAULT_HAPROXY_IMAGE,
    description: "HAProxy image of the router.",
    accepted: "an image reference such as haproxy:3.0.11",
    schema: z.string().regex(IMAGE_REF),
  },
  pullImages: {
    type: "boolean", default: true,
    description: "Pull images from their registry; false uses images already present on the engine.",
    accepted: "true or false", schema: z.boolean(),
  },
  replicas: {
    type: "integer", default: 1,
    description: "Number of streaming hot-standby replicas (0 for a single node).",
    accepted: "an integer from 0 to 5", schema: integer(0, 5),
  },
  synchronousMode: {
    type: "string", default: "off",
    description: "off: asynchronous replication. quorum: every commit waits for ANY 1 replica (needs 2 replicas).",
    accepted: "off or quorum", schema: z.enum(["off", "quorum"]),
  },
  nodeMemoryMb: {
    type: "integer", default: 1024,
    description: "Memory limit of each PostgreSQL container in MB; also the tuning input.",
    accepted: "an integer from 256 to 1048576", schema: integer(256, 1048576),
  },
  nodeCpus: {
    type: "integer", default: 1,
    description: "CPU limit of each PostgreSQL container; also the tuning input.",
    accepted: "an integer from 1 to 256", schema: integer(1, 256),
  },
  storageType: {
    type: "string", default: "ssd",
    description: "Storage behind the data volumes (tunes random_page_cost and effective_io_concurrency).",
    accepted: "ssd, hdd, nvme or san", schema: z.enum(["ssd", "hdd", "nvme", "san"]),
  },
  workload: {
    type: "string", default: "web",
    description: "Workload profile for tuning (PGTune's types).",
    accepted: "web, oltp, dw, mixed or desktop", schema: z.enum(["web", "oltp", "dw", "mixed", "desktop"]),
  },
  maxConnections: {
    type: "integer", default: 0,
    description: "max_connections; 0 derives it from the PgBouncer budget, WAL senders and a direct-client headroom.",
    accepted: "0 (derive) or an integer from 20 to 10000",
    schema: z.number().int().refine((n) => n === 0 || (n >= 20 && n <= 10000)),
  },
  poolMode: {
    type: "string", default: "transaction",
    description: "PgBouncer pool_mode.", accepted: "transaction, session or statement",
    schema: z.enum(["transaction", "session", "statement"]),
  },
  defaultPoolSize: {
    type: "integer", default: 20,
    description: "PgBouncer default_pool_size (server connections per user and database).",
    accepted: "an integer from 1 to 10000", schema: integer(1, 10000),
  },
  minPoolSize: {
    type: "integer", default: 0,
    description: "PgBouncer min_pool_size.", accepted: "an integer from 0 to 10000", schema: integer(0, 10000),
  },
  reservePoolSize: {
    type: "integer", default: 5,
    description: "PgBouncer reserve_pool_size.", accepted: "an integer from 0 to 10000", schema: integer(0, 10000),
  },
  maxClientConn: {
    type: "integer", default: 200,
    description: "PgBouncer max_client_conn.", accepted: "an integer from 1 to 100000", schema: integer(1, 100000),
  },
  maxDbConnections: {
    type: "integer", default: 25,
    description: "PgBouncer max_db_connections (server connections per database).",
    accepted: "an integer from 1 to 10000", schema: integer(1, 10000),
  },
  publishAddress: {
    type: "string", default: "127.0.0.1",
    description: "Host address the published ports bind to.",
    accepted: "an IPv4 or IPv6 address", schema: z.string().refine((s) => net.isIP(s) !== 0),
  },
  publishDirectPort: {
    type: "integer", default: 0,
    description: "Host port of the direct endpoint (the router's read-write port, or the fixed primary); 0 = not published.",
    accepted: portAccepted, schema: port,
  },
  publishPooledPort: {
    type: "integer", default: 6432,
    description: "Host port of PgBouncer (pooled endpoint); 0 = not published.",
    accepted: portAccepted, schema: port,
  },
  publishReadOnlyPort: {
    type: "integer", default: 0,
    description: "Second host port of PgBouncer for the read-only endpoint; 0 = not published.",
    accepted: portAccepted, schema: port,
  },
  tlsMinProtocol: {
    type: "string", default: "TLSv1.3",
    description: "Lowest TLS version servers and PgBouncer accept.",
    accepted: "TLSv1.2 or TLSv1.3", schema: z.enum(["TLSv1.2", "TLSv1.3"]),
  },
  tlsValidityDays: {
    type: "integer", default: 365,
    description: "Validity of server and client certificates in days.",
    accepted: "an integer from 2 to 825", schema: integer(2, 825),
  },
  tlsRenewBeforeDays: {
    type: "integer", default: 30,
    description: "A `pulumi up` this many days before expiry or later issues new certificates.",
    accepted: "an integer from 1 to 365, below pg-ha:tlsValidityDays", schema: integer(1, 365),
  },
  tlsExtraNames: {
    type: "array", default: [] as string[],
    description: "Extra DNS names or IP addresses for the certificates' SANs (for clients outside the cluster network).",
    accepted: "a list of DNS names or IP addresses",
    // All-digit names look like IPv4 addresses to every client; only real addresses pass as such.
    schema: z.array(z.string().refine((s) => net.isIP(s) !== 0 || (DNS_NAME.test(s) && !/^[0-9.]+$/.test(s)))).max(20),
  },
  databases: {
    type: "array", default: ["app"],
    description: "Application databases; each gets an owner role of the same name.",
    accepted: "1 to 10 distinct lowercase identifiers, none of " + RESERVED_NAMES.join(", "),
    schema: z
      .array(z.string().regex(IDENTIFIER).refine((s) => !RESERVED_NAMES.includes(s)))
      .min(1).max(10)
      .refine((a) => new Set(a).size === a.length),
  },
  walArchiving: {
    type: "boolean", default: true,
    description: "Archive WAL segments to the cluster's WAL archive volume.",
    accepted: "true or false", schema: z.boolean(),
  },
  backupFullIntervalMinutes: {
    type: "integer", default: 10080,
    description: "A full pgBackRest backup is taken when the newest full one is this old (minutes; 10080 = weekly).",
    accepted: "an integer from 10 to 525600", schema: integer(10, 525600),
  },
  backupDiffIntervalMinutes: {
    type: "integer", default: 1440,
    description: "A differential backup is taken when the newest backup is this old (minutes; 1440 = daily).",
    accepted: "an integer from 5 to 525600, below pg-ha:backupFullIntervalMinutes", schema: integer(5, 525600),
  },
  backupRetentionFull: {
    type: "integer", default: 2,
    description: "Full backups kept; expiry removes older ones, their differentials and the WAL only they needed.",
    accepted: "an integer from 1 to 50", schema: integer(1, 50),
  },
  restoreDrillIntervalMinutes: {
    type: "integer", default: 1440,
    description: "The newest backup is restored into a throwaway server and checked when the last drill is this old (minutes); 0 never.",
    accepted: "0 or an integer from 10 to 525600", schema: z.number().int().refine((m) => m === 0 || (m >= 10 && m <= 525600)),
  },
  archiveTimeoutSeconds: {
    type: "integer", default: 60,
    description: "archive_timeout: the newest archived WAL is at most this old (seconds), which bounds what a restore from the backups alone may lose.",
    accepted: "an integer from 30 to 3600", schema: integer(30, 3600),
  },
  restoreFrom: {
    type: "object", default: {} as RestoreFrom,
    description: "Bootstrap a new cluster from a backup repository (another cluster's <name>-backup-repo volume, mounted read-only) to a target: {repositoryVolume, stanza, targetTime? | targetLsn?}; neither target means the end of the archive. Needs pg-ha:restoreCipherPass.",
    accepted: "an object {repositoryVolume: volume name, stanza: the source cluster's name, targetTime?: an ISO 8601 time with its zone, targetLsn?: an LSN such as 0/3000028}, at most one target",
    // {} (the default): a new, empty cluster.
    schema: z.object({
      repositoryVolume: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/).optional(),
      stanza: z.string().regex(/^[a-z][a-z0-9-]{0,29}$/).optional(),
      targetTime: z.string().regex(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}(?::?\d{2})?)$/).refine((t) => !Number.isNaN(Date.parse(t.replace(" ", "T")))).optional(),
      targetLsn: z.string().regex(/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/).optional(),
    }).strict()
      .refine((r) => r.targetTime === undefined || r.targetLsn === undefined)
      .refine((r) => Object.keys(r).length === 0 || (r.repositoryVolume !== undefined && r.stanza !== undefined)),
  },
  restoreCipherPass: {
    type: "string", default: "",
    description: "Secret: the passphrase of the repository pg-ha:restoreFrom reads (the source stack's backupCipherPass output).",
    accepted: "the source stack's backupCipherPass (set with --secret), only with pg-ha:restoreFrom",
    schema: z.string().max(1024),
  },
  maxSlotWalKeepMb: {
    type: "integer", default: 4096,
    description: "max_slot_wal_keep_size in MB: WAL a replication slot may hold back before it is invalidated.",
    accepted: "an integer from 64 to 1048576", schema: integer(64, 1048576),
  },
  protectData: {
    type: "boolean", default: false,
    description: "Protect data and WAL volumes: Pulumi refuses to delete them.",
    accepted: "true or false", schema: z.boolean(),
  },
  slowQueryMs: {
    type: "integer", default: 1000,
    description: "log_min_duration_statement and auto_explain threshold in ms.",
    accepted: "an integer from 1 to 3600000", schema: integer(1, 3600000),
  },
  networkSubnet: {
    type: "string", default: "172.30.10.0/24",
    description: "IPv4 subnet of the cluster's bridge network; pg_hba.conf admits only this subnet.",
    accepted: "an IPv4 network in CIDR form with a prefix from /16 to /28, such as 172.30.10.0/24",
    schema: z.string().refine(isSubnet),
  },
  postgresParameters: {
    type: "object", default: {} as Record<string, string>,
    description: "PostgreSQL parameters set over the tuning, name -> value (e.g. work_mem: 32MB); parameters the cluster manages itself are refused.",
    accepted: "a map of PostgreSQL parameter names to values (strings, numbers or booleans)",
    schema: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .transform((m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v === "boolean" ? (v ? "on" : "off") : String(v)]))),
  },
} satisfies Record<string, Setting<unknown>>;

interface RestoreFrom { repositoryVolume?: string; stanza?: string; targetTime?: string; targetLsn?: string }

export type SettingKey = keyof typeof SETTINGS;
type Settings = { [K in SettingKey]: (typeof SETTINGS)[K]["default"] };

function isSubnet(s: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(s);
  if (!m || !net.isIPv4(s.split("/")[0])) return false;
  const prefix = Number(m[5]);
  if (prefix < 16 || prefix > 28) return false;
  const address = m.slice(1, 5).reduce((acc, octet) => acc * 256 + Number(octet), 0);
  return address % 2 ** (32 - prefix) === 0;
}

/** Pulumi hands every config value over as a string; turn it back into the declared type. */
function fromConfigString(type: PulumiType, raw: string): unknown {
  switch (type) {
    case "integer":
      return /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
    case "boolean":
      return raw === "true" ? true : raw === "false" ? false : raw;
    case "array":
    case "object":
      try {
        return JSON.parse(raw);
      } catch {
        return raw;
      }
    default:
      return raw;
  }
}

export class ConfigError extends pulumi.RunError {
  constructor(readonly problems: string[]) {
    super(`Invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

/**
 * Parses raw config (`{"pg-ha:replicas": "2", ...}`, as `pulumi.runtime.allConfig()` gives it)
 * into a ClusterSpec, or throws one ConfigError that lists every problem.
 */
export function parseClusterConfig(raw: Record<string, string>): ClusterSpec {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const known = new Set(Object.keys(SETTINGS));

  for (const fullKey of Object.keys(raw).sort()) {
    const [namespace, key] = fullKey.split(":", 2);
    if (namespace !== PROJECT) continue;
    if (!known.has(key)) {
      problems.push(`${fullKey} is not a setting of this program; accepted keys: ${[...known].map((k) => `${PROJECT}:${k}`).join(", ")}`);
    }
  }
  for (const [key, setting] of Object.entries(SETTINGS) as [SettingKey, Setting<unknown>][]) {
    const fullKey = `${PROJECT}:${key}`;
    if (!(fullKey in raw)) {
      values[key] = setting.default;
      continue;
    }
    const parsed = setting.schema.safeParse(fromConfigString(setting.type, raw[fullKey]));
    if (parsed.success) values[key] = parsed.data;
    else problems.push(`${fullKey} = ${JSON.stringify(raw[fullKey])} is not accepted; expected ${setting.accepted}`);
  }
  // Parameter names and value forms depend on the major version, so they are checked once both parsed.
  if (values.postgresParameters !== undefined && values.postgresMajor !== undefined) {
    const parameters = values.postgresParameters as Settings["postgresParameters"];
    problems.push(...parameterProblems(values.postgresMajor as PostgresMajor, parameters).map((p) => `${PROJECT}:postgresParameters ${p}`));
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const spec = buildSpec(values as Settings);
  const crossProblems = crossFieldProblems(spec, values as Settings);
  if (crossProblems.length > 0) throw new ConfigError(crossProblems);
  return deepFreeze(spec);
}

/** Reads the running stack's configuration. */
export function loadClusterSpec(): ClusterSpec {
  return parseClusterConfig(pulumi.runtime.allConfig());
}

/** The pooler's server-connection budget on one PostgreSQL node. */
export function poolerConnectionBudget(spec: Pick<ClusterSpec, "databases" | "pool">): number {
  return spec.databases.length * (spec.pool.maxDbConnections + spec.pool.reservePoolSize);
}

/** Connections a node must allow: pooler budget, superuser reserve and WAL senders. */
export function requiredConnections(spec: Pick<ClusterSpec, "databases" | "pool" | "replicas">): number {
  return poolerConnectionBudget(spec) + SUPERUSER_RESERVED_CONNECTIONS + walSenders(spec.replicas);
}

function buildSpec(s: Settings): ClusterSpec {
  const published = (p: number) => (p === 0 ? undefined : p);
  const partial = {
    databases: s.databases,
    replicas: s.replicas,
    pool: {
      mode: s.poolMode as PoolMode,
      defaultPoolSize: s.defaultPoolSize,
      minPoolSize: s.minPoolSize,
      reservePoolSize: s.reservePoolSize,
      maxClientConn: s.maxClientConn,
      maxDbConnections: s.maxDbConnections,
    },
  };
  const derivedMaxConnections = Math.ceil((requiredConnections(partial) + DIRECT_CONNECTION_HEADROOM) / 10) * 10;
  const postgresParameters = canonicalParameters(s.postgresMajor as PostgresMajor, s.postgresParameters);
  // max_connections set as a parameter is the one every budget and the tuning work with.
  const parameterMaxConnections = postgresParameters.max_connections === undefined ? undefined : Math.round(Number(postgresParameters.max_connections));
  return {
    ...partial,
    clusterName: s.clusterName,
    postgres: {
      major: s.postgresMajor as PostgresMajor,
      image: s.postgresImage !== "" ? s.postgresImage
        : s.failover === "patroni" ? `pg-ha/postgres-patroni:${s.postgresMajor}` : `postgres:${s.postgresMajor}-trixie`,
      build: s.postgresImage === "" && s.failover === "patroni",
    },
    pgbouncerImage: s.pgbouncerImage,
    pullImages: s.pullImages,
    failover: s.failover as FailoverMode,
    ha: { etcdMembers: s.etcdMembers, etcdImage: s.etcdImage, haproxyImage: s.haproxyImage },
    synchronousMode: s.synchronousMode as SynchronousMode,
    node: {
      memoryMb: s.nodeMemoryMb,
      cpus: s.nodeCpus,
      storage: s.storageType as Storage,
      workload: s.workload as Workload,
      maxConnections: parameterMaxConnections ?? (s.maxConnections === 0 ? derivedMaxConnections : s.maxConnections),
    },
    publish: {
      address: s.publishAddress,
      directPort: published(s.publishDirectPort),
      pooledPort: published(s.publishPooledPort),
      readOnlyPort: published(s.publishReadOnlyPort),
    },
    tls: {
      minProtocol: s.tlsMinProtocol as TlsProtocol,
      validityDays: s.tlsValidityDays,
      renewBeforeDays: s.tlsRenewBeforeDays,
      extraNames: s.tlsExtraNames,
    },
    walArchiving: s.walArchiving,
    backup: {
      fullIntervalMinutes: s.backupFullIntervalMinutes,
      diffIntervalMinutes: s.backupDiffIntervalMinutes,
      retentionFull: s.backupRetentionFull,
      drillIntervalMinutes: s.restoreDrillIntervalMinutes,
      archiveTimeoutSeconds: s.archiveTimeoutSeconds,
    },
    ...(s.restoreFrom.repositoryVolume !== undefined && s.restoreFrom.stanza !== undefined ? {
      restore: {
        repositoryVolume: s.restoreFrom.repositoryVolume,
        stanza: s.restoreFrom.stanza,
        target: s.restoreFrom.targetTime !== undefined ? { type: "time" as const, time: s.restoreFrom.targetTime }
          : s.restoreFrom.targetLsn !== undefined ? { type: "lsn" as const, lsn: s.restoreFrom.targetLsn } : { type: "latest" as const },
        cipherPass: s.restoreCipherPass,
      },
    } : {}),
    maxSlotWalKeepMb: s.maxSlotWalKeepMb,
    protectData: s.protectData,
    slowQueryMs: s.slowQueryMs,
    networkSubnet: s.networkSubnet,
    postgresParameters,
  };
}

function crossFieldProblems(spec: ClusterSpec, s: Settings): string[] {
  const problems: string[] = [];
  const key = (k: SettingKey) => `${PROJECT}:${k}`;

  if (spec.synchronousMode === "quorum" && spec.replicas < 2) {
    problems.push(`${key("synchronousMode")} = "quorum" needs ${key("replicas")} >= 2 (got ${spec.replicas}): with one replica every outage of it would stop all writes`);
  }
  const imageTag = /:(\d+)(?:[.-][^/@]*)?(?:@|$)/.exec(spec.postgres.image);
  if (imageTag && Number(imageTag[1]) !== spec.postgres.major && s.postgresImage !== "") {
    problems.push(`${key("postgresImage")} = "${s.postgresImage}" is tagged for PostgreSQL ${imageTag[1]} but ${key("postgresMajor")} is ${spec.postgres.major}`);
  }
  for (const name of spec.databases) {
    const base = name.endsWith(READ_ONLY_SUFFIX) ? name.slice(0, -READ_ONLY_SUFFIX.length) : undefined;
    if (base !== undefined && spec.databases.includes(base)) {
      problems.push(`${key("databases")} has "${name}", the name of PgBouncer's read-only entry for "${base}"; no database may be named like another one plus "${READ_ONLY_SUFFIX}"`);
    }
  }
  const ports: [SettingKey, number | undefined][] = [
    ["publishDirectPort", spec.publish.directPort],
    ["publishPooledPort", spec.publish.pooledPort],
    ["publishReadOnlyPort", spec.publish.readOnlyPort],
  ];
  const seen = new Map<number, SettingKey>();
  for (const [name, p] of ports) {
    if (p === undefined) continue;
    const other = seen.get(p);
    if (other) problems.push(`${key(name)} = ${p} is already used by ${key(other)}; published ports must be distinct`);
    else seen.set(p, name);
  }
  const pool = spec.pool;
  if (pool.minPoolSize > pool.defaultPoolSize) {
    problems.push(`${key("minPoolSize")} = ${pool.minPoolSize} exceeds ${key("defaultPoolSize")} = ${pool.defaultPoolSize}`);
  }
  if (pool.defaultPoolSize > pool.maxDbConnections) {
    problems.push(`${key("defaultPoolSize")} = ${pool.defaultPoolSize} exceeds ${key("maxDbConnections")} = ${pool.maxDbConnections}`);
  }
  if (pool.maxDbConnections > pool.maxClientConn) {
    problems.push(`${key("maxDbConnections")} = ${pool.maxDbConnections} exceeds ${key("maxClientConn")} = ${pool.maxClientConn}: server connections beyond the client limit can never be used`);
  }
  const parameters = spec.postgresParameters;
  const maxConnectionsName = parameters.max_connections === undefined ? key("maxConnections") : `${key("postgresParameters")} max_connections`;
  if (parameters.max_connections !== undefined && s.maxConnections !== 0 && s.maxConnections !== spec.node.maxConnections) {
    problems.push(`${key("postgresParameters")} sets max_connections = ${parameters.max_connections} but ${key("maxConnections")} = ${s.maxConnections}; set only one of them`);
  }
  const required = requiredConnections(spec);
  if (spec.node.maxConnections < required) {
    problems.push(
      `${maxConnectionsName} = ${spec.node.maxConnections} is too small: ${spec.databases.length} database(s) x (${key("maxDbConnections")} ${pool.maxDbConnections} + ${key("reservePoolSize")} ${pool.reservePoolSize}) + ${SUPERUSER_RESERVED_CONNECTIONS} superuser-reserved + ${walSenders(spec.replicas)} WAL senders = ${required}`,
    );
  }
  if (spec.failover === "patroni" && Number(spec.networkSubnet.split("/")[1]) > HA_MAX_PREFIX) {
    problems.push(`${key("networkSubnet")} = "${spec.networkSubnet}" is too small for ${key("failover")} = "patroni": its members take fixed addresses in the lower half and other containers the upper half; use a prefix from /16 to /${HA_MAX_PREFIX}`);
  }
  if (spec.failover === "none" && (s.etcdImage !== "" || s.etcdMembers !== SETTINGS.etcdMembers.default)) {
    problems.push(`${key("etcdMembers")} and ${key("etcdImage")} apply only to ${key("failover")} = "patroni" (got "none")`);
  }
  if (spec.backup.diffIntervalMinutes >= spec.backup.fullIntervalMinutes) {
    problems.push(`${key("backupDiffIntervalMinutes")} = ${spec.backup.diffIntervalMinutes} must be below ${key("backupFullIntervalMinutes")} = ${spec.backup.fullIntervalMinutes}`);
  }
  if (spec.restore) {
    if (!backupsEnabled(spec)) {
      problems.push(`${key("restoreFrom")} needs ${key("failover")} = "patroni" and ${key("walArchiving")} = true (got "${spec.failover}", ${spec.walArchiving}): the restored cluster is bootstrapped by Patroni from pgBackRest`);
    }
    if (spec.restore.repositoryVolume === backupVolumeName(spec)) {
      problems.push(`${key("restoreFrom")}.repositoryVolume = "${spec.restore.repositoryVolume}" is this cluster's own repository; restore into a new cluster (another pg-ha:clusterName), which leaves the source untouched`);
    }
    if (s.restoreCipherPass === "") {
      problems.push(`${key("restoreFrom")} needs ${key("restoreCipherPass")}: the source repository is encrypted (set it with pulumi config set --secret ${key("restoreCipherPass")} <the source stack's backupCipherPass>)`);
    }
  } else if (s.restoreCipherPass !== "") {
    problems.push(`${key("restoreCipherPass")} applies only with ${key("restoreFrom")}, which is not set`);
  }
  if (spec.tls.renewBeforeDays >= spec.tls.validityDays) {
    problems.push(`${key("tlsRenewBeforeDays")} = ${spec.tls.renewBeforeDays} must be below ${key("tlsValidityDays")} = ${spec.tls.validityDays}`);
  }
  if (problems.length === 0) {
    // What the servers will run with: the tuning, unless pg-ha:postgresParameters sets it.
    const tuning = clusterTuning(spec);
    const memory = (name: "shared_buffers" | "work_mem") =>
      parameters[name] === undefined
        ? { kb: parseMemory(tuning[name]), shown: tuning[name] }
        : { kb: sizeInKb(spec.postgres.major, name, parameters[name]), shown: `${parameters[name]} from ${key("postgresParameters")}` };
    const sharedBuffers = memory("shared_buffers");
    const workMem = memory("work_mem");
    const overridden = ["shared_buffers", "work_mem", "max_connections"].some((name) => parameters[name] !== undefined);
    const neededMb = Math.ceil(sharedBuffers.kb / 1024 + spec.node.maxConnections * (workMem.kb / 1024 + BACKEND_BASELINE_MB));
    if (neededMb > spec.node.memoryMb) {
      problems.push(
        `${key("nodeMemoryMb")} = ${spec.node.memoryMb} cannot hold shared_buffers (${sharedBuffers.shown}) plus ${spec.node.maxConnections} connections x (work_mem ${workMem.shown} + ${BACKEND_BASELINE_MB}MB): needs at least ${neededMb}; raise ${key("nodeMemoryMb")} or lower ${key("maxConnections")}${overridden ? ` or the values ${key("postgresParameters")} sets` : ""}`,
      );
    }
  }
  return problems;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}
