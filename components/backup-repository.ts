/**
 * pgBackRest's repository host: the cluster's backups and WAL archive on a volume of their own,
 * encrypted with a passphrase only this container reads. It takes backups of whichever node is
 * primary on the schedule of the stack config, expires old ones, and proves the newest restores
 * (the restore drill). Nodes reach it, and it reaches them, over pgBackRest's TLS server with
 * client certificates of the cluster CA.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { ClusterSpec } from "../spec";
import {
  BACKUP_PATHS, backupScheduleEnv, backupScript, renderCipherConf, renderDrillPgbackrestConf, renderRepoPgbackrestConf,
} from "../config-templates/render-backup";
import { script } from "../config-templates/render";
import { backupVolumeName, type HaMember } from "../topology";
import { clusterLabels, healthcheck, LOG_OPTIONS, REAPING_INIT, SLOW_CHECK_SECONDS, upload } from "./container-defaults";
import { secretFiles } from "./secret-files";
import type { KeyPair } from "./tls";

export interface BackupRepositoryArgs {
  spec: ClusterSpec;
  member: HaMember;
  /** Every node pgBackRest may back up; it finds the primary among them. */
  nodes: HaMember[];
  /** The nodes' PostgreSQL image: pgBackRest must be the same version on both sides. */
  image: pulumi.Input<string>;
  networkName: pulumi.Input<string>;
  caCertPem: pulumi.Input<string>;
  serverKeyPair: KeyPair;
  /** The certificate this host presents to the nodes' TLS servers. */
  repoClient: KeyPair;
  provider?: docker.Provider;
}

/** A restore drill runs a throwaway PostgreSQL beside pgBackRest: it needs more than a small service. */
const BACKUP_HOST_MEMORY_MB = 1024;
/** The scheduler stops between steps; a backup in flight is left for pgBackRest's next run to resume or discard. */
const BACKUP_STOP_GRACE_SECONDS = 30;

export class BackupRepository extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly volumeName: pulumi.Output<string>;
  /** The repository's passphrase (secret): a restore from this repository into another stack needs it. */
  readonly cipherPass: pulumi.Output<string>;

  constructor(name: string, args: BackupRepositoryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:backup:BackupRepository", name, {}, { ...opts, ...(args.provider ? { providers: [args.provider] } : {}) });
    const { spec, member } = args;
    const labels = clusterLabels(spec.clusterName, "backup", member.name);
    // The only copy of the backups: kept when the container or the stack goes, like a node's data.
    const volume = new docker.Volume(backupVolumeName(spec), {
      name: backupVolumeName(spec),
      labels: [{ label: "pgha.cluster", value: spec.clusterName }, { label: "pgha.purpose", value: "backup-repository" }],
    }, { parent: this, retainOnDelete: true, protect: spec.protectData });
    this.volumeName = volume.name;
    // Changing it would make every existing backup unreadable: it is created once and never rotated by a `pulumi up`.
    const cipher = new random.RandomPassword(`${name}-cipher-pass`, { length: 64, special: false }, {
      parent: this, additionalSecretOutputs: ["result"],
    });
    this.cipherPass = pulumi.secret(cipher.result);
    const secrets = secretFiles(this, {
      owner: member.name,
      image: args.image,
      files: [
        upload(BACKUP_PATHS.serverKeyUpload, args.serverKeyPair.privateKeyPem, "0600"),
        upload(BACKUP_PATHS.repoClientKeyUpload, args.repoClient.privateKeyPem, "0600"),
        upload(BACKUP_PATHS.cipherConfUpload, pulumi.secret(cipher.result.apply(renderCipherConf)), "0600"),
      ],
      labels,
    });
    this.container = new docker.Container(member.name, {
      name: member.name,
      hostname: member.name,
      image: args.image,
      entrypoints: [`${BACKUP_PATHS.scriptsDir}/backup-start.sh`],
      command: [],
      envs: backupScheduleEnv(spec),
      uploads: [
        upload(`${BACKUP_PATHS.scriptsDir}/common.sh`, script("common.sh")),
        upload(`${BACKUP_PATHS.scriptsDir}/backup-start.sh`, backupScript("backup-start.sh"), "0755"),
        upload(`${BACKUP_PATHS.scriptsDir}/backup-scheduler.py`, backupScript("backup-scheduler.py"), "0755"),
        upload(`${BACKUP_PATHS.scriptsDir}/restore-drill.sh`, backupScript("restore-drill.sh"), "0755"),
        upload(`${BACKUP_PATHS.scriptsDir}/backup-health.sh`, backupScript("backup-health.sh"), "0755"),
        upload(BACKUP_PATHS.conf, renderRepoPgbackrestConf(spec, args.nodes)),
        upload(BACKUP_PATHS.drillConf, renderDrillPgbackrestConf(spec)),
        upload(BACKUP_PATHS.caCert, args.caCertPem),
        upload(BACKUP_PATHS.serverCert, args.serverKeyPair.certPem),
        upload(BACKUP_PATHS.repoClientCert, args.repoClient.certPem),
      ],
      volumes: [{ volumeName: volume.name, containerPath: BACKUP_PATHS.repo }, secrets.volume],
      networksAdvanced: [{ name: args.networkName, aliases: [member.name], ipv4Address: member.address }],
      healthcheck: healthcheck(`${BACKUP_PATHS.scriptsDir}/backup-health.sh`, 60, SLOW_CHECK_SECONDS),
      wait: true,
      waitTimeout: 120,
      restart: "unless-stopped",
      stopSignal: "SIGTERM",
      destroyGraceSeconds: BACKUP_STOP_GRACE_SECONDS,
      memory: BACKUP_HOST_MEMORY_MB,
      memorySwap: BACKUP_HOST_MEMORY_MB,
      shmSize: 256,
      labels: [...labels, secrets.label],
      ...REAPING_INIT,
      ...LOG_OPTIONS,
    }, { parent: this, deleteBeforeReplace: true });
    this.registerOutputs({ name: member.name, volumeName: this.volumeName });
  }
}
