/**
 * SCRAM-SHA-256 verifiers in PostgreSQL's stored form (RFC 5802 / RFC 7677), computed with
 * Node's crypto so that servers and PgBouncer only ever receive verifiers, never passwords.
 * The salt is an input, so a given password and salt always give the same verifier.
 */
import { createHash, createHmac, pbkdf2Sync } from "crypto";

/** PostgreSQL's default scram_iterations. */
export const SCRAM_ITERATIONS = 4096;

export interface ScramKeys {
  storedKey: Buffer;
  serverKey: Buffer;
}

export function scramKeys(password: string, salt: Buffer, iterations = SCRAM_ITERATIONS): ScramKeys {
  // PostgreSQL SASLprep-normalises passwords; printable ASCII is left unchanged by SASLprep,
  // so restricting to it keeps our verifier byte-identical to the server's own.
  if (!/^[\x21-\x7e]+$/.test(password)) {
    throw new Error("scramVerifier: password must be non-empty printable ASCII without spaces");
  }
  if (salt.length < 16) throw new Error("scramVerifier: salt must be at least 16 bytes");
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  return {
    storedKey: createHash("sha256").update(clientKey).digest(),
    serverKey: createHmac("sha256", salted).update("Server Key").digest(),
  };
}

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as in pg_authid.rolpassword. */
export function scramVerifier(password: string, saltBase64: string, iterations = SCRAM_ITERATIONS): string {
  const salt = Buffer.from(saltBase64, "base64");
  const { storedKey, serverKey } = scramKeys(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}
