/**
 * Pulumi mocks for the unit tests: every registered resource is recorded, and the outputs the
 * program reads are computed (secret where the real provider marks them secret).
 */
import * as pulumi from "@pulumi/pulumi";

export const created: pulumi.runtime.MockResourceArgs[] = [];

/** Deterministic stand-ins for provider-computed values. */
function computed(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  switch (args.type) {
    case "random:index/randomPassword:RandomPassword":
      return { result: pulumi.secret(`Pw-${args.name}`.replace(/[^A-Za-z0-9_-]/g, "_")) };
    case "random:index/randomBytes:RandomBytes":
      return { base64: Buffer.alloc(args.inputs.length, args.name.length).toString("base64") };
    case "tls:index/privateKey:PrivateKey":
      return { privateKeyPem: pulumi.secret(`-----BEGIN EC PRIVATE KEY-----\n${args.name}\n-----END EC PRIVATE KEY-----\n`) };
    case "tls:index/selfSignedCert:SelfSignedCert":
    case "tls:index/locallySignedCert:LocallySignedCert":
      return { certPem: `-----BEGIN CERTIFICATE-----\n${args.name}\n-----END CERTIFICATE-----\n` };
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: `-----BEGIN CERTIFICATE REQUEST-----\n${args.name}\n-----END CERTIFICATE REQUEST-----\n` };
    case "docker:index/remoteImage:RemoteImage":
      return { imageId: `sha256:${args.name}` };
    default:
      return {};
  }
}

pulumi.runtime.setMocks(
  {
    newResource: (args) => {
      created.push(args);
      return { id: `${args.name}-id`, state: { ...args.inputs, ...computed(args) } };
    },
    call: (args) => {
      throw new Error(`unexpected provider function call ${args.token}`);
    },
  },
  "pg-ha",
  "test",
  false,
);
