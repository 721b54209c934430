/**
 * Security drills: what the cluster refuses. Every refusal is tried on each endpoint it applies
 * to (the primary, the replica, PgBouncer; through the published loopback ports and from inside
 * the cluster network) with the exact message the client gets, next to a control connection that
 * differs only in the refused property and succeeds.
 */
import { DRILLS, ClientContainer, conninfo, containerIp, deployDrill, gatewayOf, hostPsql, passwordOf, psqlAsPostgres, type PsqlResult } from "./support/drill";
import { type DeployedCluster, docker, removeCluster, report } from "./support/cluster";

jest.setTimeout(120_000);

const shape = DRILLS.refusals;

interface Endpoint {
  /** What the test names say. */
  label: string;
  kind: "postgres" | "pgbouncer";
  /** Container behind the endpoint: its name is the certificate's common name. */
  server: string;
  /** Where the client runs: the host (psql 15) or the client container on the cluster network (psql 18). */
  from: "host" | "network";
  host: string;
  port: number;
  database: string;
}

let cluster: DeployedCluster;
let client: ClientContainer;
let endpoints: Endpoint[];
let appPassword: string;
/** The address each client shows to the servers: the network's gateway for published ports. */
const sourceAddress: Record<Endpoint["from"], string> = { host: "", network: "" };

beforeAll(async () => {
  cluster = await deployDrill(shape);
  client = await ClientContainer.start(cluster, `${shape.clusterName}-client`);
  sourceAddress.host = await gatewayOf(cluster.primary, cluster.outputs.networkName);
  sourceAddress.network = await client.address();
  appPassword = passwordOf(cluster.outputs.directUrl);
  const [replica] = cluster.replicas;
  endpoints = [
    { label: "primary via published port", kind: "postgres", server: cluster.primary, from: "host", host: "127.0.0.1", port: shape.ports.direct, database: "app" },
    { label: "primary in network", kind: "postgres", server: cluster.primary, from: "network", host: cluster.primary, port: 5432, database: "app" },
    { label: "replica in network", kind: "postgres", server: replica, from: "network", host: replica, port: 5432, database: "app" },
    { label: "PgBouncer via published port", kind: "pgbouncer", server: cluster.pgbouncer, from: "host", host: "127.0.0.1", port: shape.ports.pooled, database: "app" },
    { label: "PgBouncer via read-only port", kind: "pgbouncer", server: cluster.pgbouncer, from: "host", host: "127.0.0.1", port: shape.ports.readOnly, database: "app_ro" },
    { label: "PgBouncer in network", kind: "pgbouncer", server: cluster.pgbouncer, from: "network", host: cluster.pgbouncer, port: 6432, database: "app" },
  ];
  report(`refusals: cluster ${shape.clusterName} up in ${(cluster.elapsedMs / 1000).toFixed(1)} s; ${endpoints.length} endpoints`);
}, 300_000);

afterAll(async () => {
  if (cluster) await removeCluster(cluster);
}, 300_000);

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
const ALL = ["primary via published port", "primary in network", "replica in network", "PgBouncer via published port", "PgBouncer via read-only port", "PgBouncer in network"];
const IN_NETWORK = ["primary in network", "replica in network", "PgBouncer in network"];
const PGBOUNCER = ["PgBouncer via published port", "PgBouncer via read-only port", "PgBouncer in network"];
const endpoint = (label: string) => {
  const ep = endpoints.find((e) => e.label === label);
  if (!ep) throw new Error(`no endpoint "${label}"`);
  return ep;
};

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
    expectRefused(result, ep.kind === "postgres" ? hbaRejects(sourceAddress[ep.from], "app", "app", "no encryption") : "FATAL:  SSL required");
  });

  test.each(ALL)("%s: a client limited to TLS 1.2 is refused", async (label) => {
    const result = await connect(endpoint(label), { ssl_max_protocol_version: "TLSv1.2" });
    expectRefused(result, "SSL error: tlsv1 alert protocol version");
  });
});

describe("verify-full: the certificates name exactly what the outputs name", () => {
  test("every URL in the outputs works exactly as given, and so does every node name", async () => {
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
    // Each node by the name the outputs give it, from inside the network (the replica is reachable only there).
    for (const node of o.nodes) {
      const port = node.role === "pgbouncer" ? 6432 : 5432;
      const result = await client.psql(conninfo({ host: node.name, port, dbname: "app", user: "app", password: appPassword, sslmode: "verify-full" }), "SELECT 1");
      expect({ node: node.name, ...result }).toEqual({ node: node.name, status: 0, stdout: "1", stderr: "" });
    }
    report(`refusals: verify-full accepted for ${inNetwork.length + onHost.length + consoles.length} output URLs and ${o.nodes.length} node names`);
  });

  test.each(ALL)("%s: verify-full fails for a name that is not in the certificate", async (label) => {
    const ep = endpoint(label);
    const address = ep.from === "host" ? "127.0.0.1" : await containerIp(ep.server, cluster.outputs.networkName);
    const result = await connect(ep, { host: "not-in-the-certificate.example", hostaddr: address });
    // The certificate names the container, localhost and 127.0.0.1: two names besides its common name.
    expectRefused(result, `server certificate for "${ep.server}" (and 2 other names) does not match host name "not-in-the-certificate.example"`);
    if (ep.from === "network") {
      // Nor is the container's own address in it: clients use the name.
      expectRefused(await connect(ep, { host: address }), `server certificate for "${ep.server}" (and 2 other names) does not match host name "${address}"`);
    }
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
  const withCertificate = (target: string, extra: Record<string, string | undefined>) => conninfo({
    host: target, port: 5432, user: "replicator", dbname: "postgres", sslmode: "verify-full",
    sslrootcert: "/etc/pg-ha/tls/ca.crt", sslcert: "/etc/pg-ha/tls/replication.crt", sslkey: "/run/pg-ha/replication.key", ...extra,
  });

  beforeAll(async () => {
    replicaIp = await containerIp(cluster.replicas[0], cluster.outputs.networkName);
    systemId = (await docker("exec", "-u", "postgres", cluster.primary, "psql", "-X", "-qAt", "-c", "SELECT system_identifier FROM pg_control_system()")).trim();
  });

  test.each(["primary", "replica"])("%s: the replication role with its certificate can replicate (control) but cannot open an ordinary session", async (which) => {
    const target = which === "primary" ? cluster.primary : cluster.replicas[0];
    const replication = await psqlAsPostgres(cluster.replicas[0], withCertificate(target, { replication: "true" }), "IDENTIFY_SYSTEM");
    expect(replication.status).toBe(0);
    expect(replication.stdout.split("|")[0]).toBe(systemId);
    for (const extra of [{}, { replication: "database" }]) {
      const ordinary = await psqlAsPostgres(cluster.replicas[0], withCertificate(target, extra), "SELECT 1");
      expectRefused(ordinary, hbaRejects(replicaIp, "replicator", "postgres", "SSL encryption"));
    }
  });

  test("PgBouncer does not know the replication role", async () => {
    const result = await client.psql(conninfo({ host: cluster.pgbouncer, port: 6432, dbname: "app", user: "replicator", password: "any", sslmode: "verify-full" }), "SELECT 1");
    expectRefused(result, "FATAL:  SASL authentication failed");
  });

  test.each(["primary", "replica"])("%s: no role can start physical replication with a password", async (which) => {
    const target = which === "primary" ? cluster.primary : cluster.replicas[0];
    const passwords: Record<string, string> = {
      monitor: passwordOf(cluster.outputs.adminUrls.monitorUrl),
      app: appPassword,
    };
    for (const [user, password] of Object.entries(passwords)) {
      const result = await client.psql(conninfo({ host: target, user, password, dbname: "postgres", sslmode: "verify-full", replication: "true" }), "IDENTIFY_SYSTEM");
      expectRefused(result, `FATAL:  pg_hba.conf rejects replication connection for host "${sourceAddress.network}", user "${user}", SSL encryption`);
    }
    // The replication role has no password: without its certificate it gets nowhere.
    const noCertificate = await client.psql(conninfo({ host: target, user: "replicator", password: "any", dbname: "postgres", sslmode: "verify-full", replication: "true" }), "IDENTIFY_SYSTEM");
    expectRefused(noCertificate, "FATAL:  connection requires a valid client certificate");
    // A database-bound WAL sender (replication=database) is not matched by pg_hba's "replication"
    // lines; roles without the REPLICATION attribute are refused it by the server.
    for (const user of ["app", "monitor"]) {
      const result = await client.psql(conninfo({ host: target, user, password: passwords[user], dbname: "postgres", sslmode: "verify-full", replication: "database" }), "IDENTIFY_SYSTEM");
      expectRefused(result, "FATAL:  permission denied to start WAL sender");
    }
  });

  // A superuser always holds the replication privilege, and pg_hba.conf cannot tell a
  // database-bound WAL sender (replication=database) from an ordinary session: so the superuser
  // has no password and no TCP login at all; it works over the local socket (peer).
  test.each(["primary", "replica"])("%s: the superuser gets neither a session nor a WAL sender over TCP", async (which) => {
    const target = which === "primary" ? cluster.primary : cluster.replicas[0];
    for (const replication of [undefined, "database"]) {
      const result = await client.psql(conninfo({
        host: target, user: "postgres", password: "any", dbname: "postgres", sslmode: "verify-full", replication,
      }), replication ? "IDENTIFY_SYSTEM" : "SELECT 1");
      expectRefused(result, `FATAL:  pg_hba.conf rejects connection for host "${sourceAddress.network}", user "postgres", database "postgres", SSL encryption`);
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

  test.each(["primary", "replica"])("%s: a client on another Docker network is rejected by pg_hba.conf, even with TLS and the right password", async (which) => {
    const server = which === "primary" ? cluster.primary : cluster.replicas[0];
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
