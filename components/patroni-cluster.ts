/**
 * The self-managing part of an HA cluster: the etcd store, one Patroni node per member and the
 * HAProxy router. Patroni elects the primary through the store and fails over by itself; the
 * router follows Patroni's REST health. No member is configured as the primary, so after any
 * number of failovers the same inputs describe the same containers and `pulumi up` plans nothing.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { ClusterSpec } from "../spec";
import type { Verifiers } from "../config-templates/render";
import { type HaMember } from "../topology";
import { BackupRepository } from "./backup-repository";
import { EtcdMember } from "./etcd";
import { PatroniNode } from "./patroni-node";
import { Router } from "./router";
import type { KeyPair } from "./tls";

export interface PatroniClusterArgs {
  spec: ClusterSpec;
  nodes: HaMember[];
  etcd: HaMember[];
  router: HaMember;
  images: { postgres: pulumi.Input<string>; etcd: pulumi.Input<string>; haproxy: pulumi.Input<string> };
  networkName: pulumi.Input<string>;
  caCertPem: pulumi.Input<string>;
  /** Server certificates by member name (etcd's also serve as its peer and client certificates). */
  servers: Record<string, KeyPair>;
  replicationClient: KeyPair;
  rewindClient: KeyPair;
  etcdClient: KeyPair;
  verifiers: pulumi.Input<Verifiers>;
  /** pgBackRest's repository host and the certificates both sides present; unset: no backups. */
  backup?: { member: HaMember; server: KeyPair; nodeClient: KeyPair; repoClient: KeyPair };
}

export class PatroniCluster extends pulumi.ComponentResource {
  readonly router: Router;
  readonly nodes: PatroniNode[];
  readonly backup?: BackupRepository;
  /** The REST API's password (secret): switchover, restart and configuration need it. */
  readonly restPassword: pulumi.Output<string>;

  constructor(name: string, args: PatroniClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:ha:PatroniCluster", name, {}, opts);
    const { spec } = args;
    const parent = { parent: this };
    const restPassword = new random.RandomPassword(`${name}-patroni-rest-password`, {
      length: 32, special: true, overrideSpecial: "-_", minLower: 2, minUpper: 2, minNumeric: 2,
    }, { ...parent, additionalSecretOutputs: ["result"] });
    this.restPassword = pulumi.secret(restPassword.result);

    const etcdMembers = args.etcd.map((member) => new EtcdMember(member.name, {
      spec, members: args.etcd, member, image: args.images.etcd, networkName: args.networkName, ipv4Address: member.address,
      caCertPem: args.caCertPem, keyPair: args.servers[member.name],
    }, parent));

    // Each node after the one before it: a change that replaces nodes (an image, a resize, a
    // password) then replaces them one at a time, the next only once the one before is healthy
    // again (primary, or a streaming replica), so two are never down at once. A first deploy
    // loses little: a new replica waits for the primary to clone from anyway.
    this.nodes = [];
    for (const node of args.nodes) {
      const previous = this.nodes[this.nodes.length - 1];
      this.nodes.push(new PatroniNode(node.name, {
        spec, node, etcd: args.etcd, image: args.images.postgres, networkName: args.networkName, ipv4Address: node.address,
        caCertPem: args.caCertPem, serverKeyPair: args.servers[node.name], replicationClient: args.replicationClient,
        rewindClient: args.rewindClient, etcdClient: args.etcdClient, restPassword: this.restPassword,
        verifiers: args.verifiers, protectData: spec.protectData,
        backup: args.backup ? { nodeClient: args.backup.nodeClient } : undefined,
      }, { ...parent, dependsOn: previous ? [...etcdMembers, previous] : etcdMembers }));
    }

    if (args.backup) {
      this.backup = new BackupRepository(args.backup.member.name, {
        spec, member: args.backup.member, nodes: args.nodes, image: args.images.postgres, networkName: args.networkName,
        caCertPem: args.caCertPem, serverKeyPair: args.backup.server, repoClient: args.backup.repoClient,
      // Created beside the nodes, not after them: a new replica already asks it for WAL, and its
      // scheduler creates the stanza once a primary answers.
      }, parent);
    }

    this.router = new Router(args.router.name, {
      spec, name: args.router.name, nodes: args.nodes, image: args.images.haproxy, networkName: args.networkName,
      ipv4Address: args.router.address, caCertPem: args.caCertPem, restPassword: this.restPassword,
      publish: { address: spec.publish.address, readWritePort: spec.publish.directPort },
    }, { ...parent, dependsOn: this.nodes });
    this.registerOutputs({});
  }
}
