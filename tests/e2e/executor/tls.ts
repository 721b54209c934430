// tls:index/* with terraform-provider-tls semantics and real key material: Node's crypto makes
// the keys, @peculiar/x509 (over WebCrypto) the CSRs and certificates, mirroring Go's x509 output.
import * as crypto from "crypto";
import { webcrypto } from "crypto";
import { promisify } from "util";
import "reflect-metadata"; // @peculiar/x509 (through tsyringe) needs it loaded first
import * as x509 from "@peculiar/x509";
import type * as pulumi from "@pulumi/pulumi";
import type * as tlsSdk from "@pulumi/tls";
import type { Handler, HandlerContext, HandlerResult, Inputs } from "./types";

x509.cryptoProvider.set(webcrypto);

type Subject = pulumi.Unwrap<tlsSdk.types.input.SelfSignedCertSubject>;
type PrivateKeyInputs = pulumi.Unwrap<tlsSdk.PrivateKeyArgs>;
type SelfSignedCertInputs = pulumi.Unwrap<tlsSdk.SelfSignedCertArgs>;
type CertRequestInputs = pulumi.Unwrap<tlsSdk.CertRequestArgs>;
type LocallySignedCertInputs = pulumi.Unwrap<tlsSdk.LocallySignedCertArgs>;

const generateKeyPair = promisify(crypto.generateKeyPair);

const CURVES: Record<string, { node: string; web?: string; hash?: string; ssh?: string }> = {
    // WebCrypto has no P-224: such keys can be generated but not used to sign or be certified.
    P224: { node: "P-224" },
    P256: { node: "P-256", web: "P-256", hash: "SHA-256", ssh: "nistp256" },
    P384: { node: "P-384", web: "P-384", hash: "SHA-384", ssh: "nistp384" },
    P521: { node: "P-521", web: "P-521", hash: "SHA-512", ssh: "nistp521" },
};
const CURVE_BY_OPENSSL_NAME: Record<string, string> = {
    secp224r1: "P224",
    prime256v1: "P256",
    secp384r1: "P384",
    secp521r1: "P521",
};

const KEY_USAGES: Record<string, x509.KeyUsageFlags> = {
    digital_signature: x509.KeyUsageFlags.digitalSignature,
    content_commitment: x509.KeyUsageFlags.nonRepudiation,
    key_encipherment: x509.KeyUsageFlags.keyEncipherment,
    data_encipherment: x509.KeyUsageFlags.dataEncipherment,
    key_agreement: x509.KeyUsageFlags.keyAgreement,
    cert_signing: x509.KeyUsageFlags.keyCertSign,
    crl_signing: x509.KeyUsageFlags.cRLSign,
    encipher_only: x509.KeyUsageFlags.encipherOnly,
    decipher_only: x509.KeyUsageFlags.decipherOnly,
};
const EXTENDED_KEY_USAGES: Record<string, string> = {
    any_extended: "2.5.29.37.0",
    server_auth: "1.3.6.1.5.5.7.3.1",
    client_auth: "1.3.6.1.5.5.7.3.2",
    code_signing: "1.3.6.1.5.5.7.3.3",
    email_protection: "1.3.6.1.5.5.7.3.4",
    ipsec_end_system: "1.3.6.1.5.5.7.3.5",
    ipsec_tunnel: "1.3.6.1.5.5.7.3.6",
    ipsec_user: "1.3.6.1.5.5.7.3.7",
    timestamping: "1.3.6.1.5.5.7.3.8",
    ocsp_signing: "1.3.6.1.5.5.7.3.9",
    microsoft_server_gated_crypto: "1.3.6.1.4.1.311.10.3.3",
    netscape_server_gated_crypto: "2.16.840.1.113730.4.1",
    microsoft_commercial_code_signing: "1.3.6.1.4.1.311.2.1.22",
    microsoft_kernel_code_signing: "1.3.6.1.4.1.311.61.1.1",
};

// ---- keys ------------------------------------------------------------------------------------

/** The provider's algorithm name for a Node key. */
function keyAlgorithm(key: crypto.KeyObject): "RSA" | "ECDSA" | "ED25519" {
    switch (key.asymmetricKeyType) {
        case "rsa":
            return "RSA";
        case "ec":
            return "ECDSA";
        case "ed25519":
            return "ED25519";
        default:
            throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
    }
}

function curveOf(key: crypto.KeyObject): string {
    return CURVE_BY_OPENSSL_NAME[key.asymmetricKeyDetails?.namedCurve ?? ""] ?? "unknown";
}

/** The subjectPublicKey BIT STRING contents of a DER SubjectPublicKeyInfo. */
function spkiKeyBits(spki: Buffer): Buffer {
    // Reads a DER header at `at`: returns where the contents start and how long they are.
    const header = (at: number) => {
        const first = spki[at + 1];
        if (first < 0x80) return { start: at + 2, length: first };
        const count = first & 0x7f;
        return { start: at + 2 + count, length: spki.readUIntBE(at + 2, count) };
    };
    const outer = header(0);
    const algorithm = header(outer.start);
    const bitString = header(algorithm.start + algorithm.length);
    return spki.subarray(bitString.start + 1, bitString.start + bitString.length); // skip "unused bits"
}

/** SSH wire-format public key blob, or undefined where OpenSSH has no format (P-224). */
function sshPublicKeyBlob(pub: crypto.KeyObject): { type: string; blob: Buffer } | undefined {
    const str = (b: Buffer | string) => {
        const data = Buffer.isBuffer(b) ? b : Buffer.from(b);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(data.length);
        return Buffer.concat([len, data]);
    };
    const mpint = (b: Buffer) => str(b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
    const bits = spkiKeyBits(pub.export({ type: "spki", format: "der" }));
    switch (keyAlgorithm(pub)) {
        case "RSA": {
            const jwk = pub.export({ format: "jwk" });
            const e = Buffer.from(jwk.e ?? "", "base64url");
            const n = Buffer.from(jwk.n ?? "", "base64url");
            return { type: "ssh-rsa", blob: Buffer.concat([str("ssh-rsa"), mpint(e), mpint(n)]) };
        }
        case "ED25519":
            return { type: "ssh-ed25519", blob: Buffer.concat([str("ssh-ed25519"), str(bits)]) };
        case "ECDSA": {
            const ssh = CURVES[curveOf(pub)]?.ssh;
            if (!ssh) return undefined;
            const type = `ecdsa-sha2-${ssh}`;
            return { type, blob: Buffer.concat([str(type), str(ssh), str(bits)]) };
        }
    }
}

async function createPrivateKey(_ctx: HandlerContext, _name: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as PrivateKeyInputs;
    const rsaBits = inputs.rsaBits ?? 2048;
    const ecdsaCurve = inputs.ecdsaCurve ?? "P224";
    let pair: crypto.KeyPairKeyObjectResult;
    switch (inputs.algorithm) {
        case "RSA":
            pair = await generateKeyPair("rsa", { modulusLength: rsaBits });
            break;
        case "ECDSA":
            if (!CURVES[ecdsaCurve]) throw new Error(`invalid ecdsaCurve "${ecdsaCurve}" (P224, P256, P384 or P521)`);
            pair = await generateKeyPair("ec", { namedCurve: CURVES[ecdsaCurve].node });
            break;
        case "ED25519":
            pair = await generateKeyPair("ed25519");
            break;
        default:
            throw new Error(`invalid algorithm "${inputs.algorithm}" (RSA, ECDSA or ED25519)`);
    }
    const { privateKey, publicKey } = pair;
    // Go's provider: PKCS#1 for RSA, SEC1 for ECDSA, PKCS#8 for ED25519.
    const legacyType = { RSA: "pkcs1", ECDSA: "sec1", ED25519: "pkcs8" } as const;
    const privateKeyPem = privateKey.export({ type: legacyType[inputs.algorithm], format: "pem" }) as string;
    const ssh = sshPublicKeyBlob(publicKey);
    const spki = publicKey.export({ type: "spki", format: "der" });
    return {
        id: crypto.createHash("sha1").update(spki).digest("hex"),
        outputs: {
            algorithm: inputs.algorithm,
            rsaBits,
            ecdsaCurve,
            privateKeyPem,
            privateKeyPemPkcs8: privateKey.export({ type: "pkcs8", format: "pem" }),
            publicKeyPem: publicKey.export({ type: "spki", format: "pem" }),
            publicKeyOpenssh: ssh ? `${ssh.type} ${ssh.blob.toString("base64")}\n` : "",
            publicKeyFingerprintMd5: ssh ? crypto.createHash("md5").update(ssh.blob).digest("hex").replace(/(..)(?!$)/g, "$1:") : "",
            publicKeyFingerprintSha256: ssh
                ? `SHA256:${crypto.createHash("sha256").update(ssh.blob).digest("base64").replace(/=+$/, "")}`
                : "",
        },
    };
}

// ---- signing ---------------------------------------------------------------------------------

interface WebSigner {
    keys: webcrypto.CryptoKeyPair;
    signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
    algorithm: "RSA" | "ECDSA" | "ED25519";
}

/** A PEM private key (PKCS#1, SEC1 or PKCS#8) as a WebCrypto key pair with Go's signature choice. */
async function webSigner(privateKeyPem: string): Promise<WebSigner> {
    const key = crypto.createPrivateKey(privateKeyPem);
    const algorithm = keyAlgorithm(key);
    let importAlgorithm: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams | webcrypto.Algorithm;
    let signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
    if (algorithm === "RSA") {
        importAlgorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
        signingAlgorithm = importAlgorithm;
    } else if (algorithm === "ECDSA") {
        const curve = CURVES[curveOf(key)];
        if (!curve?.web) throw new Error(`ECDSA ${curveOf(key)} keys cannot sign here (WebCrypto supports P256, P384, P521)`);
        importAlgorithm = { name: "ECDSA", namedCurve: curve.web };
        signingAlgorithm = { name: "ECDSA", hash: curve.hash as string };
    } else {
        importAlgorithm = { name: "Ed25519" };
        signingAlgorithm = importAlgorithm;
    }
    const { subtle } = webcrypto;
    const pkcs8 = key.export({ type: "pkcs8", format: "der" });
    const spki = crypto.createPublicKey(key).export({ type: "spki", format: "der" });
    const privateKey = await subtle.importKey("pkcs8", pkcs8, importAlgorithm, true, ["sign"]);
    const publicKey = await subtle.importKey("spki", spki, importAlgorithm, true, ["verify"]);
    return { keys: { privateKey, publicKey }, signingAlgorithm, algorithm };
}

/** Go's pkix.Name order: C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER. */
function subjectName(subject: Subject | undefined): x509.JsonName {
    if (!subject) return [];
    const rdns: [string, string | string[] | undefined][] = [
        ["C", subject.country],
        ["ST", subject.province],
        ["L", subject.locality],
        ["2.5.4.9", subject.streetAddresses],
        ["2.5.4.17", subject.postalCode],
        ["O", subject.organization],
        ["OU", subject.organizationalUnit],
        ["CN", subject.commonName],
        ["2.5.4.5", subject.serialNumber],
    ];
    return rdns
        .filter(([, v]) => v !== undefined && v !== "" && !(Array.isArray(v) && v.length === 0))
        .map(([k, v]) => ({ [k]: Array.isArray(v) ? v : [v as string] }));
}

function sanExtension(dnsNames?: string[], ipAddresses?: string[], uris?: string[]): x509.Extension[] {
    const names: x509.JsonGeneralName[] = [
        ...(dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
        ...(ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
        ...(uris ?? []).map((value) => ({ type: "url" as const, value })),
    ];
    return names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, false)] : [];
}

/** RFC 5280 method 1 key id as Go computes it: SHA-1 of the subjectPublicKey bits. */
function subjectKeyId(publicKey: x509.PublicKey): string {
    const spki = Buffer.from(publicKey.rawData);
    let bits = spkiKeyBits(spki);
    // Go hashes asn1.Marshal(ed25519.PublicKey), i.e. the key wrapped in an OCTET STRING.
    if (keyAlgorithm(crypto.createPublicKey({ key: spki, format: "der", type: "spki" })) === "ED25519") {
        bits = Buffer.concat([Buffer.from([0x04, bits.length]), bits]);
    }
    return crypto.createHash("sha1").update(bits).digest("hex");
}

interface CertificateSpec {
    subject: x509.JsonName | x509.Name;
    publicKey: x509.PublicKey;
    sans: x509.Extension[];
    validityPeriodHours: number;
    allowedUses: string[];
    isCaCertificate: boolean;
    maxPathLength?: number;
    setSubjectKeyId: boolean;
    setAuthorityKeyId: boolean;
    earlyRenewalHours: number;
}

/** Go's createCertificate (terraform-provider-tls common_cert.go) for a template and a parent. */
async function issue(spec: CertificateSpec, signer: WebSigner, issuer?: x509.X509Certificate): Promise<HandlerResult> {
    if (spec.isCaCertificate && Array.isArray(spec.subject) && spec.subject.length === 0) {
        throw new Error("Invalid Certificate Subject: must contain at least one Distinguished Name when creating a CA");
    }
    let usageFlags = 0;
    const extendedUsages: string[] = [];
    for (const use of spec.allowedUses) {
        if (KEY_USAGES[use] !== undefined) usageFlags |= KEY_USAGES[use];
        else if (EXTENDED_KEY_USAGES[use]) extendedUsages.push(EXTENDED_KEY_USAGES[use]);
        else throw new Error(`invalid allowedUses value "${use}"`);
    }
    const ownKeyId = spec.isCaCertificate || spec.setSubjectKeyId ? subjectKeyId(spec.publicKey) : undefined;
    // Go copies the parent's SubjectKeyId into AuthorityKeyId whenever issuer ≠ subject.
    const issuerKeyId = issuer
        ? issuer.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
        : spec.setAuthorityKeyId
          ? ownKeyId
          : undefined;
    if (spec.setAuthorityKeyId && !issuerKeyId) {
        throw new Error("Invalid Certificate Authority: could not determine Authority Key Identifier");
    }
    const extensions: x509.Extension[] = [
        // Go always sets BasicConstraintsValid; pathLen only when > 0.
        new x509.BasicConstraintsExtension(
            spec.isCaCertificate,
            spec.isCaCertificate && (spec.maxPathLength ?? 0) > 0 ? spec.maxPathLength : undefined,
            true,
        ),
        ...(usageFlags ? [new x509.KeyUsagesExtension(usageFlags, true)] : []),
        ...(extendedUsages.length ? [new x509.ExtendedKeyUsageExtension(extendedUsages, false)] : []),
        ...(ownKeyId ? [new x509.SubjectKeyIdentifierExtension(ownKeyId)] : []),
        ...(issuerKeyId ? [new x509.AuthorityKeyIdentifierExtension(issuerKeyId)] : []),
        ...spec.sans,
    ];
    const serial = crypto.randomBytes(16);
    serial[0] &= 0x7f; // a positive INTEGER below 2^127
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
    const notAfter = new Date(notBefore.getTime() + spec.validityPeriodHours * 3600_000);
    const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial.toString("hex"),
        subject: spec.subject,
        issuer: issuer ? issuer.subjectName : spec.subject,
        notBefore,
        notAfter,
        publicKey: spec.publicKey,
        signingKey: signer.keys.privateKey,
        signingAlgorithm: signer.signingAlgorithm,
        extensions,
    });
    return {
        id: BigInt(`0x${serial.toString("hex")}`).toString(),
        outputs: {
            certPem: `${cert.toString("pem")}\n`,
            validityStartTime: notBefore.toISOString().replace(".000Z", "Z"),
            validityEndTime: notAfter.toISOString().replace(".000Z", "Z"),
            readyForRenewal: false,
            earlyRenewalHours: spec.earlyRenewalHours,
            isCaCertificate: spec.isCaCertificate,
            setSubjectKeyId: spec.setSubjectKeyId,
        },
    };
}

// ---- resources -------------------------------------------------------------------------------

async function createSelfSignedCert(_ctx: HandlerContext, _name: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as SelfSignedCertInputs;
    const signer = await webSigner(inputs.privateKeyPem as string);
    const result = await issue(
        {
            subject: subjectName(inputs.subject),
            publicKey: await x509.PublicKey.create(signer.keys.publicKey),
            sans: sanExtension(inputs.dnsNames, inputs.ipAddresses, inputs.uris),
            validityPeriodHours: inputs.validityPeriodHours,
            allowedUses: inputs.allowedUses,
            isCaCertificate: inputs.isCaCertificate ?? false,
            maxPathLength: inputs.maxPathLength,
            setSubjectKeyId: inputs.setSubjectKeyId ?? false,
            setAuthorityKeyId: inputs.setAuthorityKeyId ?? false,
            earlyRenewalHours: inputs.earlyRenewalHours ?? 0,
        },
        signer,
    );
    result.outputs.keyAlgorithm = signer.algorithm;
    return result;
}

async function createCertRequest(_ctx: HandlerContext, _name: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as CertRequestInputs;
    const signer = await webSigner(inputs.privateKeyPem as string);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: subjectName(inputs.subject),
        keys: signer.keys,
        signingAlgorithm: signer.signingAlgorithm,
        extensions: sanExtension(inputs.dnsNames, inputs.ipAddresses, inputs.uris),
    });
    const certRequestPem = `${csr.toString("pem")}\n`;
    return {
        id: crypto.createHash("sha1").update(certRequestPem).digest("hex"),
        outputs: { certRequestPem, keyAlgorithm: signer.algorithm },
    };
}

async function createLocallySignedCert(_ctx: HandlerContext, _name: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as LocallySignedCertInputs;
    const csr = new x509.Pkcs10CertificateRequest(inputs.certRequestPem);
    if (!(await csr.verify())) throw new Error("certRequestPem: the CSR signature does not verify");
    const ca = new x509.X509Certificate(inputs.caCertPem);
    const signer = await webSigner(inputs.caPrivateKeyPem as string);
    const caKeyPublic = Buffer.from((await x509.PublicKey.create(signer.keys.publicKey)).rawData);
    if (!caKeyPublic.equals(Buffer.from(ca.publicKey.rawData))) {
        throw new Error("caPrivateKeyPem does not match the public key of caCertPem");
    }
    const san = csr.getExtension("2.5.29.17"); // subjectAltName, copied as Go copies the CSR's names
    const result = await issue(
        {
            subject: csr.subjectName,
            publicKey: csr.publicKey,
            sans: san ? [san] : [],
            validityPeriodHours: inputs.validityPeriodHours,
            allowedUses: inputs.allowedUses,
            isCaCertificate: inputs.isCaCertificate ?? false,
            maxPathLength: inputs.maxPathLength,
            setSubjectKeyId: inputs.setSubjectKeyId ?? false,
            setAuthorityKeyId: false,
            earlyRenewalHours: inputs.earlyRenewalHours ?? 0,
        },
        signer,
        ca,
    );
    result.outputs.caKeyAlgorithm = signer.algorithm;
    return result;
}

export const tlsHandlers: Record<string, Handler> = {
    "tls:index/privateKey:PrivateKey": createPrivateKey,
    "tls:index/selfSignedCert:SelfSignedCert": createSelfSignedCert,
    "tls:index/certRequest:CertRequest": createCertRequest,
    "tls:index/locallySignedCert:LocallySignedCert": createLocallySignedCert,
};
