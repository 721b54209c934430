/** The container both PostgreSQL node components build: same image, scripts, limits and checks. */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../spec";
import { renderPgHbaConf, renderPostgresqlConf, script } from "../config-templates/render";
import { clusterLabels, cpusString, healthcheck, LOG_OPTIONS, REAPING_INIT, type Upload, upload } from "./container-defaults";
import type { SecretMount } from "./secret-files";
import type { KeyPair } from "./tls";
import { dataLayout, PATHS, POSTGRES_PORT, type PostgresNode } from "../topology";

export interface PostgresNodeArgs {
  spec: ClusterSpec;
  node: PostgresNode;
  image: pulumi.Input<string>;
  networkName: pulumi.Input<string>;
  dataVolume: pulumi.Input<string>;
  walArchiveVolume?: pulumi.Input<string>;
  caCertPem: pulumi.Input<string>;
  serverKeyPair: KeyPair;
}

/** Time a stopping server gets to finish a fast shutdown (SIGINT) before it is killed. */
export const POSTGRES_STOP_GRACE_SECONDS = 60;
/** initdb or a clone of a large primary may take a while before the first healthy check. */
export const POSTGRES_WAIT_SECONDS = 600;

/** The node's TLS key plus the secrets only its role needs: written apart from its configs (secret-files.ts). */
export function postgresSecretUploads(args: PostgresNodeArgs, extra: Upload[]): Upload[] {
  return [upload(PATHS.serverKeyUpload, args.serverKeyPair.privateKeyPem, "0600"), ...extra];
}

/** Container arguments for a PostgreSQL node; `extraUploads` carries what only one role needs. */
export function postgresContainerArgs(args: PostgresNodeArgs, extraUploads: Upload[], secrets: SecretMount): docker.ContainerArgs {
  const { spec, node } = args;
  const layout = dataLayout(spec.postgres.major);
  const published = node.role === "primary" && spec.publish.directPort !== undefined;
  return {
    name: node.name,
    hostname: node.name,
    image: args.image,
    entrypoints: [`${PATHS.scriptsDir}/postgres-start.sh`],
    command: [],
    envs: [`PGDATA=${layout.pgdata}`, `PGHA_ROLE=${node.role}`],
    uploads: [
      upload(`${PATHS.scriptsDir}/common.sh`, script("common.sh")),
      upload(`${PATHS.scriptsDir}/postgres-start.sh`, script("postgres-start.sh"), "0755"),
      upload(`${PATHS.scriptsDir}/postgres-health.sh`, script("postgres-health.sh"), "0755"),
      upload(PATHS.postgresqlConf, renderPostgresqlConf(spec, node)),
      upload(PATHS.pgHbaConf, renderPgHbaConf(spec)),
      upload(PATHS.caCert, args.caCertPem),
      upload(PATHS.serverCert, args.serverKeyPair.certPem),
      ...extraUploads,
    ],
    volumes: [
      { volumeName: args.dataVolume, containerPath: layout.mountPath },
      ...(args.walArchiveVolume
        ? [{ volumeName: args.walArchiveVolume, containerPath: PATHS.walArchive, readOnly: node.role === "replica" }]
        : []),
      secrets.volume,
    ],
    networksAdvanced: [{ name: args.networkName, aliases: [node.name] }],
    ports: published ? [{ internal: POSTGRES_PORT, external: spec.publish.directPort, ip: spec.publish.address }] : [],
    healthcheck: healthcheck(`${PATHS.scriptsDir}/postgres-health.sh`, POSTGRES_WAIT_SECONDS),
    wait: true,
    waitTimeout: POSTGRES_WAIT_SECONDS,
    restart: "unless-stopped",
    stopSignal: "SIGINT",
    destroyGraceSeconds: POSTGRES_STOP_GRACE_SECONDS,
    memory: spec.node.memoryMb,
    // No swap beyond the limit; unset, Docker reports twice the memory and every up plans an update.
    memorySwap: spec.node.memoryMb,
    cpus: cpusString(spec.node.cpus),
    // Parallel query uses POSIX shared memory; Docker's default /dev/shm is only 64 MB.
    shmSize: Math.max(128, Math.floor(spec.node.memoryMb / 4)),
    labels: [...clusterLabels(spec.clusterName, node.role, node.name), secrets.label],
    ...REAPING_INIT,
    ...LOG_OPTIONS,
  };
}

/** Two servers must never share a data volume, so the old container goes before the new one starts. */
export function postgresContainerOptions(parent: pulumi.Resource, dependsOn: pulumi.Resource[] = []): pulumi.CustomResourceOptions {
  return { parent, deleteBeforeReplace: true, dependsOn };
}
