/**
 * HAProxy in front of the Patroni nodes: a read-write port to the member holding the leader lock,
 * a read-only port over streaming replicas within a lag bound (the primary when none is left).
 * It routes by each member's REST health over HTTPS; it elects nothing itself.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../spec";
import { HA_PATHS, haScript, type HaMember, renderHaproxyCfg, renderHaproxyCredentials, ROUTER_PORTS } from "../config-templates/render-ha";
import { script } from "../config-templates/render";
import { PATHS } from "../topology";
import { clusterLabels, healthcheck, SMALL_SERVICE, upload } from "./container-defaults";
import { liveConfig, livePath } from "./live-config";
import { secretFiles } from "./secret-files";

export interface RouterArgs {
  spec: ClusterSpec;
  name: string;
  nodes: HaMember[];
  image: pulumi.Input<string>;
  networkName: pulumi.Input<string>;
  ipv4Address?: string;
  caCertPem: pulumi.Input<string>;
  /** Password of the Patroni REST API (secret): the checks send it. */
  restPassword: pulumi.Input<string>;
  /** Host ports of the read-write and read-only listeners; unset = not published. */
  publish?: { address: string; readWritePort?: number; readOnlyPort?: number };
  provider?: docker.Provider;
}

export class Router extends pulumi.ComponentResource {
  readonly container: docker.Container;

  constructor(name: string, args: RouterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:ha:Router", name, {}, { ...opts, ...(args.provider ? { providers: [args.provider] } : {}) });
    const { spec } = args;
    const labels = clusterLabels(spec.clusterName, "router", args.name);
    const secrets = secretFiles(this, {
      owner: args.name,
      image: args.image,
      files: [upload(HA_PATHS.haproxyCredentials, pulumi.secret(pulumi.output(args.restPassword).apply(renderHaproxyCredentials)), "0600")],
      labels,
    });
    const publish = args.publish;
    const ports: docker.types.input.ContainerPort[] = [];
    if (publish?.readWritePort !== undefined) ports.push({ internal: ROUTER_PORTS.readWrite, external: publish.readWritePort, ip: publish.address });
    if (publish?.readOnlyPort !== undefined) ports.push({ internal: ROUTER_PORTS.readOnly, external: publish.readOnlyPort, ip: publish.address });
    // haproxy.cfg and the CA: a change is applied by a master reload, no session is cut.
    const live = liveConfig(this, {
      owner: args.name,
      image: args.image,
      files: [
        upload(livePath(HA_PATHS.haproxyConf), renderHaproxyCfg(spec, args.nodes)),
        upload(livePath(PATHS.caCert), args.caCertPem),
      ],
      labels: clusterLabels(spec.clusterName, "config", args.name),
    });
    this.container = new docker.Container(args.name, {
      name: args.name,
      hostname: args.name,
      image: args.image,
      // Started as root to read the root-only credentials; HAProxy then drops to its own user.
      user: "0",
      entrypoints: [`${PATHS.scriptsDir}/haproxy-start.sh`],
      command: [],
      uploads: [
        upload(`${PATHS.scriptsDir}/common.sh`, script("common.sh")),
        upload(`${PATHS.scriptsDir}/haproxy-start.sh`, haScript("haproxy-start.sh"), "0755"),
        upload(`${PATHS.scriptsDir}/haproxy-health.sh`, haScript("haproxy-health.sh"), "0755"),
      ],
      volumes: [secrets.volume, live.volume],
      networksAdvanced: [{ name: args.networkName, aliases: [args.name], ipv4Address: args.ipv4Address }],
      ports,
      healthcheck: healthcheck(`${PATHS.scriptsDir}/haproxy-health.sh`, 30),
      wait: true,
      waitTimeout: 60,
      // HAProxy's soft stop: stop listening, let established sessions end.
      stopSignal: "SIGUSR1",
      labels: [...labels, secrets.label],
      ...SMALL_SERVICE,
    }, { parent: this, deleteBeforeReplace: true, dependsOn: [live.writer] });
    this.registerOutputs({ name: args.name });
  }
}
