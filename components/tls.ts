import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

export interface ServerIdentity {
  /** Resource-name suffix and certificate common name. */
  host: string;
  dnsNames: string[];
  ipAddresses: string[];
  /** Also a client certificate: etcd members authenticate to each other with the same pair. */
  clientAuth?: boolean;
}

export interface ClusterTlsArgs {
  clusterName: string;
  servers: ServerIdentity[];
  /** Common name of the replication client certificate: the role it authenticates as. */
  replicationRole: string;
  /** Further client certificates, one per common name (e.g. pg_rewind's role, etcd's clients). */
  clientRoles?: string[];
  validityDays: number;
  renewBeforeDays: number;
}

export interface KeyPair {
  certPem: pulumi.Output<string>;
  /** Secret. */
  privateKeyPem: pulumi.Output<string>;
}

/** The CA lives ten years; rotating it means re-issuing every certificate at once. */
const CA_VALIDITY_HOURS = 10 * 365 * 24;

/**
 * A private CA, a server certificate per PostgreSQL node and for PgBouncer (SANs: every name a
 * client uses), and the replication role's client certificate. ECDSA P-256 throughout.
 */
export class ClusterTls extends pulumi.ComponentResource {
  readonly caCertPem: pulumi.Output<string>;
  readonly servers: Record<string, KeyPair> = {};
  readonly replicationClient: KeyPair;
  readonly clients: Record<string, KeyPair> = {};

  private readonly caKey: tls.PrivateKey;
  private readonly caCert: tls.SelfSignedCert;

  constructor(name: string, private readonly args: ClusterTlsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:tls:ClusterTls", name, {}, opts);
    this.caKey = this.privateKey(`${name}-ca`);
    this.caCert = new tls.SelfSignedCert(`${name}-ca`, {
      privateKeyPem: this.caKey.privateKeyPem,
      subject: { commonName: `${args.clusterName} CA`, organization: "pg-ha" },
      isCaCertificate: true,
      validityPeriodHours: CA_VALIDITY_HOURS,
      allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
      setSubjectKeyId: true,
    }, { parent: this });
    this.caCertPem = this.caCert.certPem;

    for (const server of args.servers) {
      const usages = server.clientAuth ? ["server_auth", "client_auth"] : ["server_auth"];
      this.servers[server.host] = this.issue(`${name}-${server.host}`, server.host, usages, server);
    }
    this.replicationClient = this.issue(`${name}-replication-client`, args.replicationRole, ["client_auth"]);
    for (const role of args.clientRoles ?? []) {
      this.clients[role] = this.issue(`${name}-${role}-client`, role, ["client_auth"]);
    }
    this.registerOutputs({ caCertPem: this.caCertPem });
  }

  private privateKey(name: string): tls.PrivateKey {
    return new tls.PrivateKey(name, { algorithm: "ECDSA", ecdsaCurve: "P256" }, {
      parent: this,
      additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"],
    });
  }

  private issue(name: string, commonName: string, usages: string[], sans?: ServerIdentity): KeyPair {
    const key = this.privateKey(name);
    const request = new tls.CertRequest(name, {
      privateKeyPem: key.privateKeyPem,
      subject: { commonName, organization: "pg-ha" },
      dnsNames: sans?.dnsNames,
      ipAddresses: sans?.ipAddresses,
    }, { parent: this });
    const cert = new tls.LocallySignedCert(name, {
      certRequestPem: request.certRequestPem,
      caPrivateKeyPem: this.caKey.privateKeyPem,
      caCertPem: this.caCert.certPem,
      validityPeriodHours: this.args.validityDays * 24,
      earlyRenewalHours: this.args.renewBeforeDays * 24,
      allowedUses: ["digital_signature", "key_encipherment", ...usages],
      setSubjectKeyId: true,
    }, { parent: this });
    return { certPem: cert.certPem, privateKeyPem: pulumi.secret(key.privateKeyPem) };
  }
}
