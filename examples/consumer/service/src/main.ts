/**
 * notes: a small HTTP service on the cluster network. It writes through PgBouncer (pooledUrl)
 * and reads back through the read-only endpoint (readOnlyUrl), spread over the replicas, with
 * every server verified against the cluster CA. The URLs and the CA are files the deployment
 * uploads (../../index.ts), so no password is in the image, the command or the environment.
 */
import * as fs from "fs";
import * as http from "http";
import { Pool } from "pg";

const PORT = 8080;

const caFile = "/run/secrets/pg-ca.pem";
const pooledUrl = fs.readFileSync("/run/secrets/pooled-url", "utf8").trim();
const readOnlyUrl = fs.readFileSync("/run/secrets/read-only-url", "utf8").trim();

// The URLs end in ?sslmode=verify-full, and pg lets the URL's sslmode replace any `ssl` option:
// the CA goes into the URL as well, as sslrootcert (pg reads the file).
const writer = new Pool({ connectionString: `${pooledUrl}&sslrootcert=${caFile}`, connectionTimeoutMillis: 3000 });
const reader = new Pool({ connectionString: `${readOnlyUrl}&sslrootcert=${caFile}`, connectionTimeoutMillis: 3000 });

// A pooled connection that breaks while idle is dropped by the pool; without a listener the
// error would end the process.
for (const pool of [writer, reader]) pool.on("error", (err) => console.error(`notes: idle connection lost: ${err.message}`));

async function createSchema(): Promise<void> {
  await writer.query(
    "CREATE TABLE IF NOT EXISTS notes (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
  );
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

async function readBody(req: http.IncomingMessage, limit = 16 * 1024): Promise<string> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > limit) throw new Error(`request body over ${limit} bytes`);
  }
  return body;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const noteId = /^\/notes\/(\d+)$/.exec(req.url ?? "")?.[1];
  if (req.method === "GET" && req.url === "/healthz") {
    // Healthy when both endpoints answer; the health check gives up after 3 s.
    await Promise.all([writer.query("SELECT 1"), reader.query("SELECT 1")]);
    return send(res, 200, { status: "ok" });
  }
  if (req.method === "POST" && req.url === "/notes") {
    const { rows } = await writer.query("INSERT INTO notes (body) VALUES ($1) RETURNING id", [await readBody(req)]);
    return send(res, 201, { id: rows[0].id });
  }
  if (req.method === "GET" && noteId) {
    // Replicas replay asynchronously: a note written a moment ago may not be there yet (404).
    const { rows } = await reader.query("SELECT id, body, pg_is_in_recovery() AS \"fromReplica\" FROM notes WHERE id = $1", [noteId]);
    return rows.length > 0 ? send(res, 200, rows[0]) : send(res, 404, { error: `no note ${noteId}` });
  }
  send(res, 404, { error: "GET /healthz, POST /notes, GET /notes/<id>" });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: Error) => {
    console.error(`notes: ${req.method} ${req.url}: ${err.message}`);
    send(res, 503, { error: err.message });
  });
});

createSchema().then(
  () => server.listen(PORT, () => console.log(`notes: listening on ${PORT}`)),
  (err: Error) => {
    // Nothing works without the database: exit, and let the restart policy try again.
    console.error(`notes: cannot start: ${err.message}`);
    process.exit(1);
  },
);

process.on("SIGTERM", () => {
  server.close();
  Promise.all([writer.end(), reader.end()]).finally(() => process.exit(0));
});
