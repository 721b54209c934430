/**
 * pg-ha: a highly-available PostgreSQL cluster on Docker: Patroni-managed nodes that elect their
 * primary through etcd, HAProxy routing to it, PgBouncer in front.
 * The stack configuration is validated first; nothing is created when it is wrong.
 */
import { loadClusterSpec } from "./config";
import { PostgresCluster } from "./components/cluster";

const spec = loadClusterSpec();
const cluster = new PostgresCluster(spec.clusterName, { spec });
const main = cluster.urls[spec.databases[0]];

/** Inside the cluster network (for microservices attached to `networkName`). */
export const directUrl = main.directUrl;
export const pooledUrl = main.pooledUrl;
export const readOnlyUrl = main.readOnlyUrl;
/** Through published ports on the host; absent when that endpoint is not published. */
export const hostDirectUrl = main.hostDirectUrl;
export const hostPooledUrl = main.hostPooledUrl;
export const hostReadOnlyUrl = main.hostReadOnlyUrl;
/** Every database's URLs, when the stack has more than one. */
export const databaseUrls = cluster.urls;
/** Monitor and PgBouncer console URLs for operators. */
export const adminUrls = cluster.adminUrls;
export const caCertPem = cluster.caCertPem;
export const networkName = cluster.networkName;
export const nodes = cluster.nodes;
/** The backup repository (volume, stanza, secret passphrase), for pg-ha:restoreFrom in another stack; absent without backups. */
export const backupRepository = cluster.backup && { volumeName: cluster.backup.volumeName, stanza: cluster.backup.stanza };
export const backupCipherPass = cluster.backup?.cipherPass;
