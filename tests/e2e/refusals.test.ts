/**
 * Security drills: what the cluster refuses, on the Patroni topology. Every refusal is tried on
 * each endpoint it applies to (the router's read-write port, published and in the network, which
 * is where directUrl leads; its read-only port; the leader and a replica directly; PgBouncer)
 * with the exact message the client gets, next to a control connection that differs only in the
 * refused property and succeeds. Then the new services: Patroni's REST API refuses changes without
 * its credentials, etcd refuses clients without a certificate of the cluster's CA, and the
 * router's read-only port refuses writes. The leader is the one at deploy time.
 */
import { spawn } from "child_process";
import * as http from "http";
import * as https from "https";
import * as tls from "tls";
import { DRILLS, ClientContainer, conninfo, containerIp, deployDrill, deployedResources, hostPsql, passwordOf, psqlAsPostgres, run, type PsqlResult } from "./support/drill";
import { type DeployedCluster, docker, patroniMembers, removeCluster, report } from "./support/cluster";

jest.setTimeout(120_000);

const shape = DRILLS.refusals;
/** A Patroni node may take up to 600 s to report healthy (PATRONI_WAIT_SECONDS) on a loaded machine. */
const DEPLOY_TIMEOUT_MS = 900_000;
const ROUTER = `${shape.clusterName}-router`;

interface Endpoint {
  /** What the test names say. */
  label: string;
  kind: "postgres" | "pgbouncer";
  /** Container whose certificate the client sees (HAProxy passes TLS through: the node behind it). */
  server: string;
  /** Where the client runs: the host (psql 15) or the client container on the cluster network (psql 18). */
  from: "host" | "network";
  host: string;
  port: number;
  database: string;
  /** The address PostgreSQL sees the client connect from (the router's, through the router). */
  source: () => string;
}

let cluster: DeployedCluster;
let client: ClientContainer;
let endpoints: Endpoint[];
let appPassword: string;
/** Addresses on the cluster network: the client container's and the router's. */
let clientIp: string;
let routerIp: string;

beforeAll(async () => {
  cluster = await deployDrill(shape);
  client = await ClientContainer.start(cluster, `${shape.clusterName}-client`);
  clientIp = await client.address();
  routerIp = await containerIp(ROUTER, cluster.outputs.networkName);
  appPassword = passwordOf(cluster.outputs.directUrl);
  const [replica] = cluster.replicas;
  const viaRouter = () => routerIp;
  const direct = () => clientIp;
  endpoints = [
    { label: "router read-write via published port", kind: "postgres", server: cluster.primary, from: "host", host: "127.0.0.1", port: shape.ports.direct, database: "app", source: viaRouter },
    { label: "router read-write in network", kind: "postgres", server: cluster.primary, from: "network", host: ROUTER, port: 5000, database: "app", source: viaRouter },
    { label: "router read-only in network", kind: "postgres", server: replica, from: "network", host: ROUTER, port: 5001, database: "app", source: viaRouter },
    { label: "leader in network", kind: "postgres", server: cluster.primary, from: "network", host: cluster.primary, port: 5432, database: "app", source: direct },
    { label: "replica in network", kind: "postgres", server: replica, from: "network", host: replica, port: 5432, database: "app", source: direct },
    { label: "PgBouncer via published port", kind: "pgbouncer", server: cluster.pgbouncer, from: "host", host: "127.0.0.1", port: shape.ports.pooled, database: "app", source: direct },
    { label: "PgBouncer via read-only port", kind: "pgbouncer", server: cluster.pgbouncer, from: "host", host: "127.0.0.1", port: shape.ports.readOnly, database: "app_ro", source: direct },
    { label: "PgBouncer in network", kind: "pgbouncer", server: cluster.pgbouncer, from: "network", host: cluster.pgbouncer, port: 6432, database: "app", source: direct },
  ];
  // directUrl is the router's read-write port; the published direct port is the same listener.
  expect(new URL(cluster.outputs.directUrl)).toMatchObject({ hostname: ROUTER, port: "5000" });
  report(`refusals: cluster ${shape.clusterName} up in ${(cluster.elapsedMs / 1000).toFixed(1)} s; leader ${cluster.primary}; ${endpoints.length} endpoints`);
}, DEPLOY_TIMEOUT_MS);

afterAll(async () => {
  await client?.remove().catch(() => undefined);
  if (cluster) await removeCluster(cluster);
}, DEPLOY_TIMEOUT_MS);

/** psql against ENDPOINT as the application role, with PARAMS replacing or adding keywords. */
function connect(ep: Endpoint, params: Record<string, string | number | undefined>, sql = "SELECT current_user"): Promise<PsqlResult> {
  const connection = conninfo({
    host: ep.host, port: ep.port, dbname: ep.database, user: "app", password: appPassword, sslmode: "verify-full", ...params,
  });
  return ep.from === "host" ? hostPsql(cluster, connection, sql) : client.psql(connection, sql);
}

function expectRefused(result: PsqlResult, message: string): void {
  expect(result.stdout).toBe("");
  expect(result.stderr).toContain(message);
  expect(result.status).toBe(2); // psql: the connection failed
}

function expectAccepted(result: PsqlResult, stdout: string): void {
  expect(result).toEqual({ status: 0, stdout, stderr: "" });
}

/** The exact pg_hba.conf refusal of an ordinary session. */
function hbaRejects(address: string, user: string, database: string, encryption: "no encryption" | "SSL encryption"): string {
  return `FATAL:  pg_hba.conf rejects connection for host "${address}", user "${user}", database "${database}", ${encryption}`;
}

// test.each needs its table when the file is collected; the endpoints exist only after beforeAll.
// The tables below are therefore labels, resolved to endpoints inside each test.
const ROUTER_EPS = ["router read-write via published port", "router read-write in network", "router read-only in network"];
const NODES = ["leader in network", "replica in network"];
const PGBOUNCER = ["PgBouncer via published port", "PgBouncer via read-only port", "PgBouncer in network"];
const ALL = [...ROUTER_EPS, ...NODES, ...PGBOUNCER];
const IN_NETWORK = ["router read-write in network", "router read-only in network", ...NODES, "PgBouncer in network"];
const endpoint = (label: string) => {
  const ep = endpoints.find((e) => e.label === label);
  if (!ep) throw new Error(`no endpoint "${label}"`);
  return ep;
};

test("each endpoint reaches the server it should: the router's read-write port the leader, its read-only port a replica", async () => {
  const leaderIp = await containerIp(cluster.primary, cluster.outputs.networkName);
  const replicaIp = await containerIp(cluster.replicas[0], cluster.outputs.networkName);
  const sql = "SELECT inet_server_addr(), pg_is_in_recovery(), inet_client_addr()";
  for (const label of ["router read-write via published port", "router read-write in network"]) {
    expectAccepted(await connect(endpoint(label), {}, sql), `${leaderIp}|f|${routerIp}`);
  }
  expectAccepted(await connect(endpoint("router read-only in network"), {}, sql), `${replicaIp}|t|${routerIp}`);
  expectAccepted(await connect(endpoint("leader in network"), {}, sql), `${leaderIp}|f|${clientIp}`);
  expectAccepted(await connect(endpoint("replica in network"), {}, sql), `${replicaIp}|t|${clientIp}`);
});

describe("TLS: only TLS 1.3 connections are accepted", () => {
  test.each(ALL)("%s: TLS 1.3 with verify-full is accepted (control)", async (label) => {
    const ep = endpoint(label);
    const result = await connect(ep, {}, "\\conninfo");
    expect(result.status).toBe(0);
    // psql 15 (host) and 18 (network) print \conninfo differently.
    expect(result.stdout).toMatch(ep.from === "host" ? /SSL connection \(protocol: TLSv1\.3,/ : /^SSL Protocol\|TLSv1\.3$/m);
  });

  test.each(ALL)("%s: a connection without TLS is refused", async (label) => {
    const ep = endpoint(label);
    const result = await connect(ep, { sslmode: "disable" });
    expectRefused(result, ep.kind === "postgres" ? hbaRejects(ep.source(), "app", "app", "no encryption") : "FATAL:  SSL required");
  });

  test.each(ALL)("%s: a client limited to TLS 1.2 is refused", async (label) => {
    const result = await connect(endpoint(label), { ssl_max_protocol_version: "TLSv1.2" });
    expectRefused(result, "SSL error: tlsv1 alert protocol version");
  });
});

describe("verify-full: the certificates name exactly what the outputs name", () => {
  test("every URL in the outputs works exactly as given, and so does every PostgreSQL, router and PgBouncer name", async () => {
    const o = cluster.outputs;
    const inNetwork = [o.directUrl, o.pooledUrl, o.readOnlyUrl];
    const onHost = [o.hostDirectUrl!, o.hostPooledUrl!, o.hostReadOnlyUrl!, o.adminUrls.monitorUrl];
    const consoles = [o.adminUrls.pgbouncerAdminUrl, o.adminUrls.pgbouncerStatsUrl];
    for (const url of [...inNetwork, ...onHost, ...consoles]) expect(url).toMatch(/\?sslmode=verify-full$/);
    for (const url of inNetwork) expect((await client.psql(url, "SELECT current_user")).stdout).toBe("app");
    for (const url of onHost) expect((await hostPsql(cluster, url, "SELECT current_user")).stdout).toBe(new URL(url).username);
    for (const url of consoles) {
      const result = await hostPsql(cluster, url, "SHOW VERSION");
      expect(result).toMatchObject({ status: 0, stderr: "" });
      expect(result.stdout).toMatch(/^PgBouncer /);
    }
    // Each node by the name the outputs give it, from inside the network; etcd speaks no PostgreSQL
    // (its name is verified by etcdctl below).
    const ports: Record<string, number> = { postgres: 5432, router: 5000, pgbouncer: 6432 };
    // etcd and the backup repository host speak no PostgreSQL protocol (their TLS is checked by their own clients).
    const checked = o.nodes.filter((n) => n.role !== "etcd" && n.role !== "backup");
    expect(o.nodes.map((n) => n.role).sort()).toEqual(["backup", "etcd", "pgbouncer", "postgres", "postgres", "router"]);
    for (const node of checked) {
      const result = await client.psql(conninfo({ host: node.name, port: ports[node.role], dbname: "app", user: "app", password: appPassword, sslmode: "verify-full" }), "SELECT 1");
      expect({ node: node.name, ...result }).toEqual({ node: node.name, status: 0, stdout: "1", stderr: "" });
    }
    report(`refusals: verify-full accepted for ${inNetwork.length + onHost.length + consoles.length} output URLs and ${checked.length} node names`);
  });

  test.each(ALL)("%s: verify-full fails for a name that is not in the certificate", async (label) => {
    const ep = endpoint(label);
    const address = ep.from === "host" ? "127.0.0.1" : await containerIp(ep.host, cluster.outputs.networkName);
    const result = await connect(ep, { host: "not-in-the-certificate.example", hostaddr: address });
    // PgBouncer's certificate names the container, localhost and 127.0.0.1. A node's names the node,
    // the router, localhost, 127.0.0.1 and the node's and the router's addresses (Patroni's members
    // reach each other by address; clients reach the node through the router).
    const others = ep.kind === "pgbouncer" ? 2 : 5;
    expectRefused(result, `server certificate for "${ep.server}" (and ${others} other names) does not match host name "not-in-the-certificate.example"`);
  });

  test("PgBouncer's address is not in its certificate: clients use the name", async () => {
    const address = await containerIp(cluster.pgbouncer, cluster.outputs.networkName);
    expectRefused(await connect(endpoint("PgBouncer in network"), { host: address }),
      `server certificate for "${cluster.pgbouncer}" (and 2 other names) does not match host name "${address}"`);
  });

  test("a node's certificate is not valid for another node's name or address", async () => {
    const replicaIp = await containerIp(cluster.replicas[0], cluster.outputs.networkName);
    const leaderIp = await containerIp(cluster.primary, cluster.outputs.networkName);
    // The leader's address under the replica's name, and the other way round.
    expectRefused(await connect(endpoint("leader in network"), { host: cluster.replicas[0], hostaddr: leaderIp }),
      `server certificate for "${cluster.primary}" (and 5 other names) does not match host name "${cluster.replicas[0]}"`);
    expectRefused(await connect(endpoint("replica in network"), { host: leaderIp, hostaddr: replicaIp }),
      `server certificate for "${cluster.replicas[0]}" (and 5 other names) does not match host name "${leaderIp}"`);
  });
});

describe("passwords: SCRAM-SHA-256 and nothing weaker", () => {
  test.each(ALL)("%s: a wrong password is refused", async (label) => {
    const ep = endpoint(label);
    const result = await connect(ep, { password: "not-the-password" });
    expectRefused(result, ep.kind === "postgres" ? 'FATAL:  password authentication failed for user "app"' : "FATAL:  SASL authentication failed");
  });

  // require_auth (libpq 16+) makes the client accept only the named method: a client that would
  // send its password in clear or as md5 never gets to, because the server asks for SCRAM only.
  test.each(IN_NETWORK)("%s: a client offering only cleartext or md5 password authentication is refused", async (label) => {
    const ep = endpoint(label);
    expectAccepted(await connect(ep, { require_auth: "scram-sha-256" }), "app");
    for (const method of ["password", "md5"]) {
      expectRefused(await connect(ep, { require_auth: method }), `authentication method requirement "${method}" failed: server requested SASL authentication`);
    }
  });
});

describe("replication: only the replication role, only with its certificate, only replication", () => {
  let replicaIp: string;
  let systemId: string;
  /** The replication role's conninfo as the replica uses it (certificate and key exist only there). */
  const withCertificate = (target: string, extra: Record<string, string | number | undefined>) => conninfo({
    host: target, port: 5432, user: "replicator", dbname: "postgres", sslmode: "verify-full",
    sslrootcert: "/etc/pg-ha/tls/ca.crt", sslcert: "/etc/pg-ha/tls/replication.crt", sslkey: "/run/pg-ha/replication.key", ...extra,
  });
  /** Each target by the address the client connects to and the address PostgreSQL sees. */
  const targets = () => ({
    leader: { host: cluster.primary, port: 5432 },
    replica: { host: cluster.replicas[0], port: 5432 },
    router: { host: ROUTER, port: 5000 },
  });

  beforeAll(async () => {
    replicaIp = await containerIp(cluster.replicas[0], cluster.outputs.networkName);
    systemId = (await docker("exec", "-u", "postgres", cluster.primary, "psql", "-X", "-qAt", "-c", "SELECT system_identifier FROM pg_control_system()")).trim();
  });

  test.each(["leader", "replica", "router"] as const)("%s: the replication role with its certificate can replicate (control) but cannot open an ordinary session", async (which) => {
    const target = targets()[which];
    const seenFrom = which === "router" ? routerIp : replicaIp;
    const replication = await psqlAsPostgres(cluster.replicas[0], withCertificate(target.host, { port: target.port, replication: "true" }), "IDENTIFY_SYSTEM");
    expect(replication.status).toBe(0);
    expect(replication.stdout.split("|")[0]).toBe(systemId);
    for (const extra of [{}, { replication: "database" }]) {
      const ordinary = await psqlAsPostgres(cluster.replicas[0], withCertificate(target.host, { port: target.port, ...extra }), "SELECT 1");
      expectRefused(ordinary, hbaRejects(seenFrom, "replicator", "postgres", "SSL encryption"));
    }
  });

  test("the pg_rewind role with its certificate opens a session on the postgres database only, and cannot replicate", async () => {
    const rewind = (extra: Record<string, string | undefined>) => conninfo({
      host: cluster.primary, port: 5432, user: "rewind", dbname: "postgres", sslmode: "verify-full",
      sslrootcert: "/etc/pg-ha/tls/ca.crt", sslcert: "/etc/pg-ha/tls/rewind.crt", sslkey: "/run/pg-ha/rewind.key", ...extra,
    });
    expectAccepted(await psqlAsPostgres(cluster.replicas[0], rewind({}), "SELECT current_user"), "rewind");
    // Elsewhere the certificate counts for nothing: the role has no password for SCRAM to accept.
    expectRefused(await psqlAsPostgres(cluster.replicas[0], rewind({ dbname: "app", password: "any" }), "SELECT 1"), 'FATAL:  password authentication failed for user "rewind"');
    expectRefused(await psqlAsPostgres(cluster.replicas[0], rewind({ replication: "true" }), "IDENTIFY_SYSTEM"),
      `FATAL:  pg_hba.conf rejects replication connection for host "${replicaIp}", user "rewind", SSL encryption`);
    // Without its certificate the role has no way in: it has no password.
    const noCertificate = await client.psql(conninfo({ host: cluster.primary, user: "rewind", password: "any", dbname: "postgres", sslmode: "verify-full" }), "SELECT 1");
    expectRefused(noCertificate, "FATAL:  connection requires a valid client certificate");
  });

  test("PgBouncer does not know the replication role", async () => {
    const result = await client.psql(conninfo({ host: cluster.pgbouncer, port: 6432, dbname: "app", user: "replicator", password: "any", sslmode: "verify-full" }), "SELECT 1");
    expectRefused(result, "FATAL:  SASL authentication failed");
  });

  test.each(["leader", "replica", "router"] as const)("%s: no role can start physical replication with a password", async (which) => {
    const target = targets()[which];
    const seenFrom = which === "router" ? routerIp : clientIp;
    const passwords: Record<string, string> = {
      monitor: passwordOf(cluster.outputs.adminUrls.monitorUrl),
      app: appPassword,
    };
    for (const [user, password] of Object.entries(passwords)) {
      const result = await client.psql(conninfo({ ...target, user, password, dbname: "postgres", sslmode: "verify-full", replication: "true" }), "IDENTIFY_SYSTEM");
      expectRefused(result, `FATAL:  pg_hba.conf rejects replication connection for host "${seenFrom}", user "${user}", SSL encryption`);
    }
    // The replication role has no password: without its certificate it gets nowhere.
    const noCertificate = await client.psql(conninfo({ ...target, user: "replicator", password: "any", dbname: "postgres", sslmode: "verify-full", replication: "true" }), "IDENTIFY_SYSTEM");
    expectRefused(noCertificate, "FATAL:  connection requires a valid client certificate");
    // A database-bound WAL sender (replication=database) is not matched by pg_hba's "replication"
    // lines; roles without the REPLICATION attribute are refused it by the server.
    for (const user of ["app", "monitor"]) {
      const result = await client.psql(conninfo({ ...target, user, password: passwords[user], dbname: "postgres", sslmode: "verify-full", replication: "database" }), "IDENTIFY_SYSTEM");
      expectRefused(result, "FATAL:  permission denied to start WAL sender");
    }
  });

  // A superuser always holds the replication privilege, and pg_hba.conf cannot tell a
  // database-bound WAL sender (replication=database) from an ordinary session: so the superuser
  // has no password and no TCP login at all; it works over the local socket (peer), as Patroni does.
  test.each(["leader", "replica", "router"] as const)("%s: the superuser gets neither a session nor a WAL sender over TCP", async (which) => {
    const target = targets()[which];
    const seenFrom = which === "router" ? routerIp : clientIp;
    for (const replication of [undefined, "database"]) {
      const result = await client.psql(conninfo({
        ...target, user: "postgres", password: "any", dbname: "postgres", sslmode: "verify-full", replication,
      }), replication ? "IDENTIFY_SYSTEM" : "SELECT 1");
      expectRefused(result, hbaRejects(seenFrom, "postgres", "postgres", "SSL encryption"));
    }
  });
});

describe("network: pg_hba.conf admits only the cluster's subnet", () => {
  const otherNetwork = `${shape.clusterName}-elsewhere`;
  let outsider: ClientContainer;
  let outsiderIp: string;

  beforeAll(async () => {
    await docker("network", "rm", otherNetwork).catch(() => undefined);
    await docker("network", "create", "--subnet", "172.30.31.0/24",
      "--label", "pgha.e2e=true", "--label", `pgha.e2e.stack=${cluster.deployment}`, "--label", `pgha.cluster=${shape.clusterName}`, otherNetwork);
    // The servers get a leg on the other network too, as a mistaken `docker network connect` would do.
    for (const node of [cluster.primary, cluster.replicas[0]]) await docker("network", "connect", otherNetwork, node);
    outsider = await ClientContainer.start(cluster, `${shape.clusterName}-outsider`, otherNetwork);
    outsiderIp = await outsider.address();
  });

  afterAll(async () => {
    await outsider?.remove();
    for (const node of [cluster.primary, cluster.replicas[0]]) await docker("network", "disconnect", otherNetwork, node).catch(() => undefined);
    await docker("network", "rm", otherNetwork).catch(() => undefined);
  });

  test.each(["leader", "replica"])("%s: a client on another Docker network is rejected by pg_hba.conf, even with TLS and the right password", async (which) => {
    const server = which === "leader" ? cluster.primary : cluster.replicas[0];
    const address = await containerIp(server, otherNetwork);
    const result = await outsider.psql(conninfo({ hostaddr: address, host: server, port: 5432, dbname: "app", user: "app", password: appPassword, sslmode: "verify-full" }), "SELECT 1");
    expectRefused(result, hbaRejects(outsiderIp, "app", "app", "SSL encryption"));
  });

  test("replication with the certificate from another network is rejected too", async () => {
    const primaryElsewhere = await containerIp(cluster.primary, otherNetwork);
    const replicaElsewhere = await containerIp(cluster.replicas[0], otherNetwork);
    const result = await psqlAsPostgres(cluster.replicas[0], conninfo({
      hostaddr: primaryElsewhere, host: cluster.primary, port: 5432, user: "replicator", dbname: "postgres", sslmode: "verify-full", replication: "true",
      sslrootcert: "/etc/pg-ha/tls/ca.crt", sslcert: "/etc/pg-ha/tls/replication.crt", sslkey: "/run/pg-ha/replication.key",
    }), "IDENTIFY_SYSTEM");
    expectRefused(result, `FATAL:  pg_hba.conf rejects replication connection for host "${replicaElsewhere}", user "replicator", SSL encryption`);
  });
  // PgBouncer has no pg_hba.conf: it is reached only through the cluster network and the published
  // ports (bound to publishAddress, 127.0.0.1 here), and authenticates every client with SCRAM.
  // The router is on the cluster network only; what arrives through it comes from its address.
});

describe("the router's read-only port: no writes", () => {
  const readOnly = () => endpoint("router read-only in network");
  const readWrite = () => endpoint("router read-write in network");

  test("a write through the read-write port commits (control)", async () => {
    expectAccepted(await connect(readWrite(), {}, "CREATE TABLE refusal_probe (id int); INSERT INTO refusal_probe VALUES (1); SELECT count(*) FROM refusal_probe"), "1");
  });

  test.each([
    ["CREATE TABLE", "CREATE TABLE refusal_probe_ro (id int)", "ERROR:  cannot execute CREATE TABLE in a read-only transaction"],
    ["INSERT", "INSERT INTO refusal_probe VALUES (2)", "ERROR:  cannot execute INSERT in a read-only transaction"],
    ["a read-write transaction", "BEGIN READ WRITE", "ERROR:  cannot set transaction read-write mode during recovery"],
    ["INSERT with default_transaction_read_only off", "SET default_transaction_read_only = off; INSERT INTO refusal_probe VALUES (3)", "ERROR:  cannot execute INSERT in a read-only transaction"],
  ])("%s through the read-only port is refused", async (_what, sql, message) => {
    const result = await connect(readOnly(), {}, sql);
    expect(result).toMatchObject({ status: 1, stdout: "" });
    expect(result.stderr.split("\n")[0]).toBe(message);
  });

  test("a write through PgBouncer's read-only entry is refused too; nothing was written", async () => {
    const result = await connect(endpoint("PgBouncer via read-only port"), {}, "INSERT INTO refusal_probe VALUES (4)");
    expect(result).toMatchObject({ status: 1, stdout: "" });
    expect(result.stderr.split("\n")[0]).toBe("ERROR:  cannot execute INSERT in a read-only transaction");
    expectAccepted(await connect(readWrite(), {}, "SELECT string_agg(id::text, ',') FROM refusal_probe"), "1");
  });
});

describe("Patroni's REST API: HTTPS only, changes only with its credentials", () => {
  interface Answer { status: number; body: string }
  let restPassword: string;
  const addresses: Record<string, string> = {};

  /** A request over HTTPS from the host to NODE, its certificate verified against the CA for NODE's name. */
  function rest(node: string, method: string, path: string, body?: object, auth?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const payload = body ? JSON.stringify(body) : undefined;
      const request = https.request({
        host: addresses[node], servername: node, port: 8008, method, path, ca: cluster.outputs.caCertPem, timeout: 10_000,
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(node, cert),
        headers: { ...(payload ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) } : {}), ...(auth ? { Authorization: `Basic ${Buffer.from(auth).toString("base64")}` } : {}) },
      }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      request.on("error", reject);
      request.on("timeout", () => request.destroy(new Error("timeout")));
      request.end(payload);
    });
  }

  /** The same request in plain HTTP: the error (or answer) the client gets. */
  function plain(node: string, method: string, path: string): Promise<string> {
    return new Promise((resolve) => {
      const request = http.request({ host: addresses[node], port: 8008, method, path, timeout: 10_000 }, (res) => {
        res.resume();
        resolve(`HTTP ${res.statusCode}`);
      });
      request.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      request.on("timeout", () => request.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
      request.end();
    });
  }

  beforeAll(async () => {
    restPassword = String(deployedResources().find((r) => r.name.endsWith("-patroni-rest-password"))!.outputs.result);
    for (const node of cluster.members) addresses[node] = await containerIp(node, cluster.outputs.networkName);
  });

  test("every member answers reads over HTTPS verified against the CA (control); a client trusting another CA gets no answer", async () => {
    for (const node of cluster.members) {
      const answer = await rest(node, "GET", "/patroni");
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ patroni: { scope: shape.clusterName, name: node } });
    }
    const untrusted = await new Promise<string>((resolve) => {
      const request = https.request({ host: addresses[cluster.primary], servername: cluster.primary, port: 8008, path: "/patroni", timeout: 10_000 }, () => resolve("answered"));
      request.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      request.end();
    });
    expect(untrusted).toBe("SELF_SIGNED_CERT_IN_CHAIN");
  });

  test.each([
    ["POST /switchover", "POST", "/switchover", () => ({ leader: cluster.primary, candidate: cluster.replicas[0] })],
    ["PATCH /config", "PATCH", "/config", () => ({ ttl: 30, postgresql: { parameters: { log_connections: "off" } } })],
    ["POST /restart", "POST", "/restart", () => ({})],
    ["POST /reload", "POST", "/reload", () => ({})],
  ])("%s is refused on every member without credentials and with wrong ones", async (_what, method, path, body) => {
    for (const node of cluster.members) {
      for (const auth of [undefined, "patroni:not-the-password", `admin:${restPassword}`, `patroni:${restPassword.slice(0, -1)}`]) {
        const answer = await rest(node, method, path, body(), auth);
        expect({ node, auth: auth?.replace(restPassword, "<password>").replace(restPassword.slice(0, -1), "<password minus one>"), status: answer.status })
          .toEqual({ node, auth: auth?.replace(restPassword, "<password>").replace(restPassword.slice(0, -1), "<password minus one>"), status: 401 });
      }
    }
    // Nothing changed: the same leader, the same configuration.
    const members = await patroniMembers(cluster.primary);
    expect(members.find((m) => m.role === "leader")?.name).toBe(cluster.primary);
    expect(JSON.parse((await rest(cluster.primary, "GET", "/config")).body)).toMatchObject({ ttl: 20 });
  });

  test("with the credentials a changing request gets past authentication (control: a switchover naming a wrong leader is answered 412, nothing changes)", async () => {
    const answer = await rest(cluster.primary, "POST", "/switchover", { leader: cluster.replicas[0], candidate: cluster.primary }, `patroni:${restPassword}`);
    expect(answer.status).toBe(412);
    expect((await patroniMembers(cluster.primary)).find((m) => m.role === "leader")?.name).toBe(cluster.primary);
  });

  test("plain HTTP gets no answer from any member", async () => {
    for (const node of cluster.members) {
      for (const [method, path] of [["GET", "/patroni"], ["POST", "/switchover"]]) {
        expect({ node, method, result: await plain(node, method, path) }).toEqual({ node, method, result: "ECONNRESET" });
      }
    }
  });
});

describe("etcd: only clients with a certificate of the cluster's CA", () => {
  const tools = `${shape.clusterName}-etcd-client`;
  let etcd: string;
  let etcdUrl: string;
  /** etcdctl in the tools container with ARGS; never throws. */
  const etcdctl = (...args: string[]) => run("docker", ["exec", tools, "etcdctl", "--dial-timeout=3s", "--command-timeout=5s", ...args]);

  beforeAll(async () => {
    etcd = cluster.outputs.nodes.find((n) => n.role === "etcd")!.name;
    etcdUrl = `https://${await containerIp(etcd, cluster.outputs.networkName)}:2379`;
    // The etcd client image on the cluster network, labelled like every drill container.
    await docker("rm", "-f", tools).catch(() => undefined);
    await docker("run", "-d", "--name", tools, "--network", cluster.outputs.networkName,
      "--label", "pgha.e2e=true", "--label", `pgha.e2e.stack=${cluster.deployment}`, "--label", `pgha.cluster=${shape.clusterName}`,
      "--entrypoint", "sleep", cluster.config["pg-ha:etcdImage"], "900");
    await docker("cp", cluster.caFile, `${tools}:/tmp/ca.crt`);
    // Patroni's client certificate (control), PgBouncer's server certificate (the cluster's CA, but
    // not for client use), and a self-signed one.
    const resources = deployedResources();
    const pem = (suffix: string, type: string, field: string) =>
      String(resources.find((r) => r.type === type && r.name.endsWith(suffix))!.outputs[field]);
    const files: Record<string, string> = {
      "patroni.crt": pem("-tls-patroni-client", "tls:index/locallySignedCert:LocallySignedCert", "certPem"),
      "patroni.key": pem("-tls-patroni-client", "tls:index/privateKey:PrivateKey", "privateKeyPem"),
      "pgbouncer.crt": pem(`-tls-${cluster.pgbouncer}`, "tls:index/locallySignedCert:LocallySignedCert", "certPem"),
      "pgbouncer.key": pem(`-tls-${cluster.pgbouncer}`, "tls:index/privateKey:PrivateKey", "privateKeyPem"),
    };
    // Through stdin: no key on a command line.
    for (const [file, content] of Object.entries(files)) {
      const written = await new Promise<number | null>((resolve) => {
        const child = spawn("docker", ["exec", "-i", tools, "sh", "-c", `umask 077; cat > /tmp/${file}`], { stdio: ["pipe", "ignore", "inherit"] });
        child.on("exit", resolve);
        child.stdin.end(content);
      });
      expect({ file, written }).toEqual({ file, written: 0 });
    }
    const selfSigned = await run("docker", ["exec", tools, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", "/tmp/self.key", "-out", "/tmp/self.crt", "-days", "1", "-subj", "/CN=patroni", "-addext", "extendedKeyUsage=clientAuth"]);
    expect(selfSigned.status).toBe(0);
  });

  afterAll(async () => {
    await docker("rm", "-f", tools).catch(() => undefined);
  });

  test("with Patroni's client certificate, etcd answers over TLS verified against the CA (control)", async () => {
    const result = await etcdctl(`--endpoints=${etcdUrl}`, "--cacert=/tmp/ca.crt", "--cert=/tmp/patroni.crt", "--key=/tmp/patroni.key", "get", "--prefix", "--keys-only", "/pg-ha/");
    expect(result).toMatchObject({ status: 0, stderr: "" });
    expect(result.stdout).toContain(`/pg-ha/${shape.clusterName}/leader`);
    // By name too: the member's certificate names it.
    const byName = await etcdctl(`--endpoints=https://${etcd}:2379`, "--cacert=/tmp/ca.crt", "--cert=/tmp/patroni.crt", "--key=/tmp/patroni.key", "endpoint", "health");
    expect(byName.status).toBe(0);
  });

  test.each([
    ["no client certificate", []],
    ["a self-signed client certificate", ["--cert=/tmp/self.crt", "--key=/tmp/self.key"]],
    ["a certificate of the cluster's CA issued for server use only (PgBouncer's)", ["--cert=/tmp/pgbouncer.crt", "--key=/tmp/pgbouncer.key"]],
  ])("a client with %s is refused", async (_what, cert) => {
    for (const command of [["get", "--prefix", "--keys-only", "/pg-ha/"], ["put", "/pg-ha/intruder", "1"]]) {
      const result = await etcdctl(`--endpoints=${etcdUrl}`, "--cacert=/tmp/ca.crt", ...cert, ...command);
      expect(result.stdout).toBe("");
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/context deadline exceeded|certificate required|bad certificate|unknown certificate authority|unsupported certificate/);
    }
  });

  test("plain HTTP is refused", async () => {
    const result = await etcdctl(`--endpoints=http://${etcd}:2379`, "get", "--prefix", "--keys-only", "/pg-ha/");
    expect(result.stdout).toBe("");
    expect(result.status).not.toBe(0);
    // etcd's own HTTP endpoints (version, health) too: a plain request gets no answer at all.
    const http = await run("docker", ["exec", tools, "bash", "-c", `exec 3<>/dev/tcp/${etcd}/2379; printf 'GET /version HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3`]);
    expect(http.stdout).toBe("");
  });

  test("nothing was written by the refused clients", async () => {
    const result = await etcdctl(`--endpoints=${etcdUrl}`, "--cacert=/tmp/ca.crt", "--cert=/tmp/patroni.crt", "--key=/tmp/patroni.key", "get", "--prefix", "--keys-only", "/pg-ha/intruder");
    expect(result).toEqual({ status: 0, stdout: "", stderr: "" });
  });
});

describe("PgBouncer's admin console", () => {
  test.each(PGBOUNCER)("%s: the console refuses the application role", async (label) => {
    const result = await connect({ ...endpoint(label), database: "pgbouncer" }, {}, "SHOW POOLS");
    expectRefused(result, "FATAL:  not allowed");
  });

  test("the admin user administers (control); the stats user reads statistics but cannot administer", async () => {
    const admin = await hostPsql(cluster, cluster.outputs.adminUrls.pgbouncerAdminUrl, "SHOW POOLS");
    expect(admin.status).toBe(0);
    expect(admin.stdout).toContain("app|app|");
    const stats = cluster.outputs.adminUrls.pgbouncerStatsUrl;
    expect((await hostPsql(cluster, stats, "SHOW STATS")).status).toBe(0);
    const refused = await hostPsql(cluster, stats, "RELOAD");
    expect(refused).toMatchObject({ status: 1, stdout: "" });
    expect(refused.stderr).toBe("ERROR:  admin access needed");
  });
});
