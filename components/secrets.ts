import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { scramVerifier } from "../config-templates/scram";

export interface ClusterSecretsArgs {
  /** Every role that logs in with a password (PostgreSQL roles and PgBouncer's own users). */
  roles: string[];
}

/**
 * One generated password per role, and its SCRAM-SHA-256 verifier. The verifier's salt is a
 * generated value of its own, so the verifier only changes when the password (or salt) does.
 */
export class ClusterSecrets extends pulumi.ComponentResource {
  /** Plaintext passwords, secret: only for the connection-string outputs. */
  readonly passwords: Record<string, pulumi.Output<string>> = {};
  /** Role -> verifier, secret: what servers and PgBouncer receive. */
  readonly verifiers: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: ClusterSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("pg-ha:secrets:ClusterSecrets", name, {}, opts);
    const verifiers: Record<string, pulumi.Output<string>> = {};
    for (const role of args.roles) {
      const password = new random.RandomPassword(`${name}-${role}-password`, {
        length: 32,
        // URL-safe specials: connection strings need no escaping and no SASLprep change applies.
        special: true,
        overrideSpecial: "-_",
        minLower: 2,
        minUpper: 2,
        minNumeric: 2,
      }, { parent: this, additionalSecretOutputs: ["result"] });
      const salt = new random.RandomBytes(`${name}-${role}-scram-salt`, { length: 16 }, { parent: this });
      this.passwords[role] = pulumi.secret(password.result);
      verifiers[role] = pulumi.secret(pulumi.all([password.result, salt.base64]).apply(([p, s]) => scramVerifier(p, s)));
    }
    this.verifiers = pulumi.secret(pulumi.all(verifiers));
    this.registerOutputs({ verifiers: this.verifiers });
  }
}
