/**
 * One PostgreSQL node managed by Patroni. Nodes are symmetric: which one is primary is decided at
 * run time by Patroni through the leader lock in etcd, never by this configuration. The node takes
 * its Docker provider and the address it advertises as inputs, so each can run on its own host.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../spec";
import {
  HA_PATHS, haScript, type HaMember, renderPatroniReconcileSql, renderPatroniSecretsYml, renderPatroniYml,
} from "../config-templates/render-ha";
import { script, type Verifiers } from "../config-templates/render";
import { BACKUP_PATHS, renderCipherConf, renderNodePgbackrestConf, renderRestorePgbackrestConf } from "../config-templates/render-backup";
import { dataLayout, PATHS } from "../topology";
import { clusterLabels, cpusString, healthcheck, LOG_OPTIONS, REAPING_INIT, upload } from "./container-defaults";
import { liveConfig, livePath } from "./live-config";
import { secretFiles } from "./secret-files";
import type { KeyPair } from "./tls";

export interface PatroniNodeArgs {
  spec: ClusterSpec;
  node: HaMember;
  /** The etcd members Patroni connects to. */
  etcd: HaMember[];
  image: pulumi.Input<string>;
  networkName: pulumi.Input<string>;
  /** Fixed address on that network (when `node.address` is an IP of it). */
  ipv4Address?: string;
  caCertPem: pulumi.Input<string>;
  /** Server certificate for PostgreSQL and the REST API (SANs: name, address, loopback). */
  serverKeyPair: KeyPair;
  replicationClient: KeyPair;
  rewindClient: KeyPair;
  etcdClient: KeyPair;
  /** Password of the REST API's changing endpoints (secret). */
  restPassword: pulumi.Input<string>;
  /** SCRAM verifiers of the login roles (secret), created once by the first primary. */
  verifiers: pulumi.Input<Verifiers>;
  /** The engine the node runs on; the default provider when unset. */
  provider?: docker.Provider;
  /** Refuse any plan that deletes or replaces the data volume. */
  protectData?: boolean;
  /**
   * pgBackRest (when backups are on): the node pushes WAL to the repository host and runs a TLS
   * server for that host's backups; `nodeClient` is the certificate it presents to the host.
   */
  backup?: { nodeClient: KeyPair };
}

/** Where a node finds the repository of pg-ha:restoreFrom, its configuration and its passphrase. */
const RESTORE_SOURCE = {
  repo: "/var/lib/pg-ha/restore-source",
  conf: "/etc/pg-ha/pgbackrest-restore.conf",
  cipherConfUpload: "/etc/pg-ha/secrets/restore-source-cipher.conf",
} as const;

/** A clone of a large primary may take a while before the node first reports healthy. */
export const PATRONI_WAIT_SECONDS = 600;
/** Patroni stops PostgreSQL (fast shutdown) and releases the leader lock within this. */
export const PATRONI_STOP_GRACE_SECONDS = 60;

export class PatroniNode extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly dataVolume: docker.Volume;

  constructor(name: string, args: PatroniNodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:ha:PatroniNode", name, {}, { ...opts, ...(args.provider ? { providers: [args.provider] } : {}) });
    const { spec, node } = args;
    const layout = dataLayout(spec.postgres.major);
    const labels = clusterLabels(spec.clusterName, "patroni", node.name);
    // The node's own data: kept when the container or the stack goes (retained), on its own host.
    this.dataVolume = new docker.Volume(`${node.name}-data`, {
      name: `${node.name}-data`,
      labels: [{ label: "pgha.cluster", value: spec.clusterName }, { label: "pgha.purpose", value: "data" }],
    }, { parent: this, retainOnDelete: true, protect: args.protectData ?? false });
    const secrets = secretFiles(this, {
      owner: node.name,
      image: args.image,
      files: [
        upload(PATHS.serverKeyUpload, args.serverKeyPair.privateKeyPem, "0600"),
        upload(PATHS.replicationKeyUpload, args.replicationClient.privateKeyPem, "0600"),
        upload(HA_PATHS.rewindKeyUpload, args.rewindClient.privateKeyPem, "0600"),
        upload(HA_PATHS.etcdClientKeyUpload, args.etcdClient.privateKeyPem, "0600"),
        upload(HA_PATHS.patroniSecretsUpload, pulumi.secret(pulumi.output(args.restPassword).apply(renderPatroniSecretsYml)), "0600"),
        upload(HA_PATHS.reconcileSqlUpload, pulumi.secret(pulumi.output(args.verifiers).apply((v) => renderPatroniReconcileSql(spec, v))), "0600"),
        ...(args.backup ? [upload(BACKUP_PATHS.nodeClientKeyUpload, args.backup.nodeClient.privateKeyPem, "0600")] : []),
        ...(spec.restore ? [upload(RESTORE_SOURCE.cipherConfUpload, pulumi.secret(renderCipherConf(spec.restore.cipherPass)), "0600")] : []),
      ],
      labels,
    });
    // Patroni's configuration and the certificates: a change is applied by reload (and, for a
    // setting PostgreSQL takes only at start, by a rolling restart); the node is not replaced.
    const live = liveConfig(this, {
      owner: node.name,
      image: args.image,
      files: [
        upload(livePath(HA_PATHS.patroniConf), renderPatroniYml(spec, args.etcd, node)),
        upload(livePath(PATHS.caCert), args.caCertPem),
        upload(livePath(PATHS.serverCert), args.serverKeyPair.certPem),
        upload(livePath(PATHS.replicationCert), args.replicationClient.certPem),
        upload(livePath(HA_PATHS.rewindCert), args.rewindClient.certPem),
        upload(livePath(HA_PATHS.etcdClientCert), args.etcdClient.certPem),
        ...(args.backup ? [
          upload(livePath(BACKUP_PATHS.conf), renderNodePgbackrestConf(spec, node)),
          upload(livePath(BACKUP_PATHS.nodeClientCert), args.backup.nodeClient.certPem),
        ] : []),
      ],
      labels: clusterLabels(spec.clusterName, "config", node.name),
    });
    this.container = new docker.Container(node.name, {
      name: node.name,
      hostname: node.name,
      image: args.image,
      entrypoints: [`${PATHS.scriptsDir}/patroni-start.sh`],
      command: [],
      envs: [`PGDATA=${layout.pgdata}`],
      uploads: [
        upload(`${PATHS.scriptsDir}/common.sh`, script("common.sh")),
        upload(`${PATHS.scriptsDir}/patroni-start.sh`, haScript("patroni-start.sh"), "0755"),
        upload(`${PATHS.scriptsDir}/patroni-health.sh`, haScript("patroni-health.sh"), "0755"),
        upload(`${PATHS.scriptsDir}/patroni-post-bootstrap.sh`, haScript("patroni-post-bootstrap.sh"), "0755"),
        upload(`${PATHS.scriptsDir}/patroni-callback.sh`, haScript("patroni-callback.sh"), "0755"),
        upload(`${PATHS.scriptsDir}/patroni-rollout.py`, haScript("patroni-rollout.py"), "0755"),
        ...(spec.restore ? [
          upload(`${PATHS.scriptsDir}/patroni-restore.sh`, haScript("patroni-restore.sh"), "0755"),
          upload(RESTORE_SOURCE.conf, renderRestorePgbackrestConf({
            stanza: spec.restore.stanza, repoPath: RESTORE_SOURCE.repo, pgPath: layout.pgdata,
            purpose: "pg-ha:restoreFrom, the bootstrap of this cluster from another's backup",
          })),
        ] : []),
      ],
      volumes: [
        { volumeName: this.dataVolume.name, containerPath: layout.mountPath },
        // pg-ha:restoreFrom: the source cluster's repository, read-only, so the source stays as it is.
        ...(spec.restore ? [{ volumeName: spec.restore.repositoryVolume, containerPath: RESTORE_SOURCE.repo, readOnly: true }] : []),
        secrets.volume,
        live.volume,
      ],
      networksAdvanced: [{ name: args.networkName, aliases: [node.name], ipv4Address: args.ipv4Address }],
      healthcheck: healthcheck(`${PATHS.scriptsDir}/patroni-health.sh`, PATRONI_WAIT_SECONDS),
      wait: true,
      waitTimeout: PATRONI_WAIT_SECONDS,
      restart: "unless-stopped",
      // Patroni's clean shutdown (SIGTERM): stop PostgreSQL, then release the leader lock at once.
      stopSignal: "SIGTERM",
      destroyGraceSeconds: PATRONI_STOP_GRACE_SECONDS,
      memory: spec.node.memoryMb,
      memorySwap: spec.node.memoryMb,
      cpus: cpusString(spec.node.cpus),
      shmSize: Math.max(128, Math.floor(spec.node.memoryMb / 4)),
      labels: [...labels, secrets.label],
      ...REAPING_INIT,
      ...LOG_OPTIONS,
    }, { parent: this, deleteBeforeReplace: true, dependsOn: [live.writer] });
    this.registerOutputs({ name: node.name });
  }
}
