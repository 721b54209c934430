/**
 * Pure rendering of pgBackRest's files for a Patroni cluster: each node's configuration (WAL to
 * the repository host, its own TLS server for backups), the repository host's, the configuration
 * of a restore (the restore drill, or a new cluster bootstrapped from a repository), and the
 * root-only file that carries the repository's passphrase. Which node is primary is never
 * rendered: pgBackRest asks every node and backs up the one that is.
 */
import * as fs from "fs";
import * as path from "path";
import Mustache from "mustache";
import type { ClusterSpec } from "../spec";
import { backupMember, dataLayout, type HaMember, PATHS, POSTGRES_PORT } from "../topology";

/** pgBackRest's TLS server, on every node and on the repository host. */
export const BACKUP_TLS_PORT = 8432;
/** Zstandard: both test images' pgBackRest builds have it (`pgbackrest help backup compress-type`). */
export const BACKUP_COMPRESS_TYPE = "zst";
/** archive_command's wait for the background push (seconds): bounds a primary's shutdown while the repository host is down. */
export const NODE_ARCHIVE_TIMEOUT_SECONDS = 5;
/** Parallel processes of a backup or restore: the nodes and the repository host have few cores. */
export const BACKUP_PROCESS_MAX = 2;

/** Paths inside the Patroni nodes and the repository host (`<cluster>-backup`), beside topology's PATHS. */
export const BACKUP_PATHS = {
  /** The rendered configuration: the node's on a node, the repository host's on that host. */
  conf: "/etc/pg-ha/pgbackrest.conf",
  /** The restore drill's configuration, on the repository host. */
  drillConf: "/etc/pg-ha/pgbackrest-drill.conf",
  /** pgBackRest's config-include-path: the passphrase file, postgres-only, on the repository host. */
  includeDir: "/run/pg-ha/pgbackrest.d",
  cipherConf: "/run/pg-ha/pgbackrest.d/cipher.conf",
  cipherConfUpload: "/etc/pg-ha/secrets/pgbackrest-cipher.conf",
  /** The repository volume's mount point, and pg-ha's status files in it. */
  repo: "/var/lib/pgbackrest",
  statusDir: "/var/lib/pgbackrest/pg-ha",
  lastDrill: "/var/lib/pgbackrest/pg-ha/last-drill.json",
  lastBackup: "/var/lib/pgbackrest/pg-ha/last-backup.json",
  /** The drill's throwaway data directory: on the repository volume, which has room for a restore. */
  drillData: "/var/lib/pgbackrest/pg-ha/drill-data",
  /** Async archiving's queue and status files on a node; pgBackRest's logs. */
  spool: "/var/spool/pgbackrest",
  log: "/var/log/pgbackrest",
  /** Node -> repository host: the node's client certificate. */
  nodeClientCert: "/etc/pg-ha/tls/backup-node-client.crt",
  nodeClientKeyUpload: "/etc/pg-ha/secrets/backup-node-client.key",
  nodeClientKey: "/run/pg-ha/backup-node-client.key",
  /** Repository host -> nodes: the repository host's client certificate. */
  repoClientCert: "/etc/pg-ha/tls/backup-repo-client.crt",
  repoClientKeyUpload: "/etc/pg-ha/secrets/backup-repo-client.key",
  repoClientKey: "/run/pg-ha/backup-repo-client.key",
  /** The TLS servers' certificate and key: the node's server certificate, or the repository host's own. */
  serverCert: PATHS.serverCert,
  serverKeyUpload: PATHS.serverKeyUpload,
  serverKey: PATHS.serverKey,
  caCert: PATHS.caCert,
  scriptsDir: PATHS.scriptsDir,
  socketDir: PATHS.socketDir,
} as const;

function render(template: string, view: object): string {
  const text = fs.readFileSync(path.join(__dirname, template), "utf8");
  return Mustache.render(text, view, {}, { escape: (value: string) => value });
}

/** The stanza: the cluster's name. */
export function backupStanza(spec: Pick<ClusterSpec, "clusterName">): string {
  return spec.clusterName;
}

/**
 * Common names of the two client certificates (signed by the cluster CA): nodes present `node`
 * to the repository host, the repository host presents `repo` to the nodes. Each TLS server
 * accepts only the other side's name (tls-server-auth).
 */
export function backupClientNames(spec: Pick<ClusterSpec, "clusterName">): { node: string; repo: string } {
  return { node: `${spec.clusterName}-backup-node-client`, repo: `${spec.clusterName}-backup-repo-client` };
}

/**
 * How a node's pgBackRest reaches the repository host, and the repository host the nodes: at the
 * address each advertises, as Patroni does (the members may run on other engines, where container
 * names do not resolve). pgBackRest checks it against the server certificate's names, IP addresses
 * included (2.55 and 2.60), so every certificate must carry its member's address.
 */
function tlsHost(member: HaMember): string {
  return member.address;
}

const pgbackrest = (spec: ClusterSpec) => `pgbackrest --config=${BACKUP_PATHS.conf} --stanza=${backupStanza(spec)}`;

/** A node's archive_command: queues the segment for the asynchronous push to the repository host. */
export function archiveCommand(spec: ClusterSpec): string {
  return `${pgbackrest(spec)} archive-push %p`;
}

/** A node's restore_command (replicas catching up, pg_rewind): WAL from the repository host. */
export function restoreCommand(spec: ClusterSpec): string {
  return `${pgbackrest(spec)} archive-get %f "%p"`;
}

/** pgbackrest.conf of one node. */
export function renderNodePgbackrestConf(spec: ClusterSpec, node: HaMember): string {
  return render("pgbackrest-node.conf.tmpl", {
    clusterName: spec.clusterName,
    nodeName: node.name,
    stanza: backupStanza(spec),
    repoHost: tlsHost(backupMember(spec)),
    tlsPort: BACKUP_TLS_PORT,
    caCert: BACKUP_PATHS.caCert,
    clientCert: BACKUP_PATHS.nodeClientCert,
    clientKey: BACKUP_PATHS.nodeClientKey,
    spoolPath: BACKUP_PATHS.spool,
    archiveTimeoutSeconds: NODE_ARCHIVE_TIMEOUT_SECONDS,
    logPath: BACKUP_PATHS.log,
    compressType: BACKUP_COMPRESS_TYPE,
    serverCert: BACKUP_PATHS.serverCert,
    serverKey: BACKUP_PATHS.serverKey,
    repoClientName: backupClientNames(spec).repo,
    pgdata: dataLayout(spec.postgres.major).pgdata,
    port: POSTGRES_PORT,
    socketDir: BACKUP_PATHS.socketDir,
  });
}

/** pgbackrest.conf of the repository host: every node as a pgN-host, whichever leads. */
export function renderRepoPgbackrestConf(spec: ClusterSpec, nodes: HaMember[]): string {
  if (nodes.length === 0) throw new Error("the repository host needs at least one node to back up");
  const pgdata = dataLayout(spec.postgres.major).pgdata;
  return render("pgbackrest-repo.conf.tmpl", {
    clusterName: spec.clusterName,
    stanza: backupStanza(spec),
    repoPath: BACKUP_PATHS.repo,
    includeDir: BACKUP_PATHS.includeDir,
    retentionFull: spec.backup.retentionFull,
    compressType: BACKUP_COMPRESS_TYPE,
    processMax: BACKUP_PROCESS_MAX,
    tlsPort: BACKUP_TLS_PORT,
    caCert: BACKUP_PATHS.caCert,
    serverCert: BACKUP_PATHS.serverCert,
    serverKey: BACKUP_PATHS.serverKey,
    nodeClientName: backupClientNames(spec).node,
    nodes: nodes.map((node, i) => ({
      index: i + 1,
      name: node.name,
      host: tlsHost(node),
      clientCert: BACKUP_PATHS.repoClientCert,
      clientKey: BACKUP_PATHS.repoClientKey,
      pgdata,
      port: POSTGRES_PORT,
      socketDir: BACKUP_PATHS.socketDir,
    })),
  });
}

/**
 * A restore's configuration: the repository read from a local path (the repository host's own
 * volume, or another cluster's mounted read-only), restored into `pgPath`. The restore drill's
 * and a new cluster's bootstrap from a backup.
 */
export function renderRestorePgbackrestConf(args: { stanza: string; repoPath: string; pgPath: string; purpose: string }): string {
  return render("pgbackrest-restore.conf.tmpl", { ...args, processMax: BACKUP_PROCESS_MAX });
}

/** The restore drill's configuration on the repository host. */
export function renderDrillPgbackrestConf(spec: ClusterSpec): string {
  return renderRestorePgbackrestConf({
    stanza: backupStanza(spec), repoPath: BACKUP_PATHS.repo, pgPath: BACKUP_PATHS.drillData,
    purpose: "the restore drill, into a throwaway directory",
  });
}

/** The passphrase's include file (secret: upload it root-only to BACKUP_PATHS.cipherConfUpload). */
export function renderCipherConf(cipherPass: string): string {
  // One line of an ini file: a line break would end the value and start another setting.
  if (cipherPass === "" || /[\r\n]/.test(cipherPass) || cipherPass.trim() !== cipherPass) {
    throw new Error("the repository passphrase must be non-empty, one line, without surrounding spaces");
  }
  return render("pgbackrest-cipher.conf.tmpl", { cipherPass });
}

/**
 * The repository host's environment: where pgBackRest finds its configuration and passphrase,
 * the stanza (so `docker exec -u postgres <cluster>-backup pgbackrest info` needs no option), and
 * the scheduler's intervals in minutes (0: no restore drill). No secret is among them.
 */
export function backupScheduleEnv(spec: ClusterSpec): string[] {
  return [
    `PGBACKREST_CONFIG=${BACKUP_PATHS.conf}`,
    `PGBACKREST_CONFIG_INCLUDE_PATH=${BACKUP_PATHS.includeDir}`,
    `PGBACKREST_STANZA=${backupStanza(spec)}`,
    `BACKUP_FULL_INTERVAL_MINUTES=${spec.backup.fullIntervalMinutes}`,
    `BACKUP_DIFF_INTERVAL_MINUTES=${spec.backup.diffIntervalMinutes}`,
    `RESTORE_DRILL_INTERVAL_MINUTES=${spec.backup.drillIntervalMinutes}`,
  ];
}

export type BackupScript = "backup-start.sh" | "backup-scheduler.py" | "restore-drill.sh" | "backup-health.sh";

/** The repository host's scripts, uploaded unchanged to BACKUP_PATHS.scriptsDir. */
export function backupScript(name: BackupScript): string {
  return fs.readFileSync(path.join(__dirname, name), "utf8");
}
