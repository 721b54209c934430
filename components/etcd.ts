/**
 * One etcd member: Patroni's store of the leader lock and the cluster's state. A cluster has one
 * member (dev) or three (prod, tolerating the loss of one). Each member is its own component with
 * its own Docker provider and advertised address, so members can run on separate hosts.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec } from "../spec";
import { ETCD_CLIENT_PORT, HA_PATHS, haScript, type HaMember, renderEtcdConf } from "../config-templates/render-ha";
import { PATHS } from "../topology";
import { clusterLabels, healthcheck, SLOW_CHECK_SECONDS, SMALL_SERVICE, upload } from "./container-defaults";
import { secretFiles } from "./secret-files";
import type { KeyPair } from "./tls";

export interface EtcdMemberArgs {
  spec: ClusterSpec;
  /** Every member of the store, this one included, as the others reach them. */
  members: HaMember[];
  member: HaMember;
  image: pulumi.Input<string>;
  networkName: pulumi.Input<string>;
  /** Fixed address on that network (when `member.address` is an IP of it). */
  ipv4Address?: string;
  caCertPem: pulumi.Input<string>;
  /** Server and peer certificate of this member (server and client use, SANs: name and address). */
  keyPair: KeyPair;
  /** The engine the member runs on; the default provider when unset. */
  provider?: docker.Provider;
}

/** A new member waits for its peers before it answers: the whole store starts within this. */
export const ETCD_WAIT_SECONDS = 180;

export class EtcdMember extends pulumi.ComponentResource {
  readonly container: docker.Container;
  readonly clientUrl: string;

  constructor(name: string, args: EtcdMemberArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:ha:EtcdMember", name, {}, { ...opts, ...(args.provider ? { providers: [args.provider] } : {}) });
    const { spec, member } = args;
    const labels = clusterLabels(spec.clusterName, "etcd", member.name);
    // The store's data outlives the container; a replaced member finds its membership again.
    const volume = new docker.Volume(`${member.name}-data`, { name: `${member.name}-data`, labels }, { parent: this, retainOnDelete: true });
    const secrets = secretFiles(this, {
      owner: member.name,
      image: args.image,
      files: [upload(HA_PATHS.etcdKey, args.keyPair.privateKeyPem, "0600")],
      labels,
    });
    this.container = new docker.Container(member.name, {
      name: member.name,
      hostname: member.name,
      image: args.image,
      entrypoints: ["etcd"],
      command: ["--config-file", HA_PATHS.etcdConf],
      uploads: [
        upload(HA_PATHS.etcdConf, renderEtcdConf(spec, args.members, member)),
        upload(PATHS.caCert, args.caCertPem),
        upload(HA_PATHS.etcdCert, args.keyPair.certPem),
        upload(`${PATHS.scriptsDir}/etcd-health.sh`, haScript("etcd-health.sh"), "0755"),
      ],
      volumes: [{ volumeName: volume.name, containerPath: HA_PATHS.etcdData }, secrets.volume],
      networksAdvanced: [{ name: args.networkName, aliases: [member.name], ipv4Address: args.ipv4Address }],
      healthcheck: healthcheck(`${PATHS.scriptsDir}/etcd-health.sh`, ETCD_WAIT_SECONDS, SLOW_CHECK_SECONDS),
      wait: true,
      waitTimeout: ETCD_WAIT_SECONDS,
      labels: [...labels, secrets.label],
      ...SMALL_SERVICE,
    }, { parent: this, deleteBeforeReplace: true });
    this.clientUrl = `https://${member.address}:${ETCD_CLIENT_PORT}`;
    this.registerOutputs({ name: member.name });
  }
}
