import { createHash, createHmac } from "crypto";
import { scramKeys, scramVerifier } from "../../config-templates/scram";

// RFC 7677 section 3: user "user", password "pencil", one full SCRAM-SHA-256 exchange.
const rfc = {
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  authMessage:
    "n=user,r=rOprNGfwEbeRWgbNEkqO," +
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  clientProof: "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverSignature: "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

describe("SCRAM-SHA-256 verifier", () => {
  const { storedKey, serverKey } = scramKeys("pencil", Buffer.from(rfc.salt, "base64"));

  test("ServerKey reproduces the RFC 7677 server signature", () => {
    const signature = createHmac("sha256", serverKey).update(rfc.authMessage).digest("base64");
    expect(signature).toBe(rfc.serverSignature);
  });

  test("StoredKey verifies the RFC 7677 client proof as a server would", () => {
    const clientSignature = createHmac("sha256", storedKey).update(rfc.authMessage).digest();
    const proof = Buffer.from(rfc.clientProof, "base64");
    const clientKey = Buffer.from(proof.map((b, i) => b ^ clientSignature[i]));
    expect(createHash("sha256").update(clientKey).digest().equals(storedKey)).toBe(true);
  });

  test("is rendered in pg_authid's format and is deterministic", () => {
    const verifier = scramVerifier("pencil", rfc.salt);
    expect(verifier).toBe(
      `SCRAM-SHA-256$4096:${rfc.salt}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`,
    );
    expect(scramVerifier("pencil", rfc.salt)).toBe(verifier);
    expect(scramVerifier("pencil2", rfc.salt)).not.toBe(verifier);
  });

  test("refuses passwords SASLprep would change and short salts", () => {
    expect(() => scramVerifier("pass word", rfc.salt)).toThrow("printable ASCII");
    expect(() => scramVerifier("pässword", rfc.salt)).toThrow("printable ASCII");
    expect(() => scramVerifier("pencil", "c2hvcnQ=")).toThrow("at least 16 bytes");
  });
});
