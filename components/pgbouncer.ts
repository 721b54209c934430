import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../spec";
import { renderPgbouncerIni, renderUserlist, script, type Verifiers } from "../config-templates/render";
import { clusterLabels, healthcheck, LOG_OPTIONS, REAPING_INIT, upload } from "./container-defaults";
import { liveConfig, livePath } from "./live-config";
import { secretFiles } from "./secret-files";
import type { KeyPair } from "./tls";
import { PATHS, PGBOUNCER_PORT, pgbouncerName } from "../topology";

export interface PgBouncerArgs {
  spec: ClusterSpec;
  image: pulumi.Input<string>;
  networkName: pulumi.Input<string>;
  caCertPem: pulumi.Input<string>;
  serverKeyPair: KeyPair;
  verifiers: pulumi.Input<Verifiers>;
  /** The servers behind it: PgBouncer starts once they are healthy. */
  servers: pulumi.Resource[];
}

/** PgBouncer's own memory is small; the limit only guards the host. */
const PGBOUNCER_MEMORY_MB = 256;

/** The pooler: `<db>` to the primary, `<db>_ro` over the replicas, TLS on both sides. */
export class PgBouncer extends pulumi.ComponentResource {
  readonly container: docker.Container;

  constructor(name: string, args: PgBouncerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:pgbouncer:PgBouncer", name, {}, opts);
    const { spec } = args;
    const publish = spec.publish;
    const hostPorts = [publish.pooledPort, publish.readOnlyPort].filter((p): p is number => p !== undefined);
    const userlist = pulumi.secret(pulumi.output(args.verifiers).apply((v) => renderUserlist(spec, v)));
    const containerName = pgbouncerName(spec);
    const secrets = secretFiles(this, {
      owner: containerName,
      image: args.image,
      files: [
        upload(PATHS.serverKeyUpload, args.serverKeyPair.privateKeyPem, "0600"),
        upload(PATHS.userlistUpload, userlist, "0600"),
      ],
      labels: clusterLabels(spec.clusterName, "secrets", containerName),
    });
    // pgbouncer.ini and the certificates: a change is applied by RELOAD, no client is dropped.
    const live = liveConfig(this, {
      owner: containerName,
      image: args.image,
      files: [
        upload(livePath(PATHS.pgbouncerIni), renderPgbouncerIni(spec)),
        upload(livePath(PATHS.caCert), args.caCertPem),
        upload(livePath(PATHS.serverCert), args.serverKeyPair.certPem),
      ],
      labels: clusterLabels(spec.clusterName, "config", containerName),
    });

    this.container = new docker.Container(name, {
      name: containerName,
      hostname: containerName,
      image: args.image,
      // The image runs as its PgBouncer user; start as root only to hand over the key (see the script).
      user: "root",
      entrypoints: [`${PATHS.scriptsDir}/pgbouncer-start.sh`],
      command: [],
      uploads: [
        upload(`${PATHS.scriptsDir}/common.sh`, script("common.sh")),
        upload(`${PATHS.scriptsDir}/pgbouncer-start.sh`, script("pgbouncer-start.sh"), "0755"),
        upload(`${PATHS.scriptsDir}/pgbouncer-health.sh`, script("pgbouncer-health.sh"), "0755"),
      ],
      volumes: [secrets.volume, live.volume],
      networksAdvanced: [{ name: args.networkName, aliases: [containerName] }],
      // The read-only port reaches the same listener; clients pick <db>_ro as the database.
      ports: hostPorts.map((external) => ({ internal: PGBOUNCER_PORT, external, ip: publish.address })),
      healthcheck: healthcheck(`${PATHS.scriptsDir}/pgbouncer-health.sh`, 30),
      wait: true,
      waitTimeout: 60,
      restart: "unless-stopped",
      // SIGINT is PgBouncer's safe shutdown: running transactions finish first.
      stopSignal: "SIGINT",
      destroyGraceSeconds: 30,
      memory: PGBOUNCER_MEMORY_MB,
      memorySwap: PGBOUNCER_MEMORY_MB,
      labels: [...clusterLabels(spec.clusterName, "pgbouncer", containerName), secrets.label],
      ...REAPING_INIT,
      ...LOG_OPTIONS,
    }, { parent: this, deleteBeforeReplace: true, dependsOn: [...args.servers, live.writer] });
    this.registerOutputs({ containerName: this.container.name });
  }
}
