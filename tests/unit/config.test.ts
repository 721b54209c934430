import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { ConfigError, parseClusterConfig, SETTINGS } from "../../config";
import { created } from "./setup/mocks";
import { runProgram, stackConfig } from "./harness";

const ROOT = path.join(__dirname, "..", "..");

/** The exact problem list a config produces. */
function problemsOf(raw: Record<string, string>): string[] {
  try {
    parseClusterConfig(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe("Pulumi.yaml declares exactly the settings config.ts reads", () => {
  const declared = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")).config as Record<string, Record<string, unknown>>;

  test("same keys", () => {
    expect(Object.keys(declared).sort()).toEqual(Object.keys(SETTINGS).map((k) => `pg-ha:${k}`).sort());
  });

  test.each(Object.entries(SETTINGS))("pg-ha:%s has the same type, default and description", (key, setting) => {
    const d = declared[`pg-ha:${key}`];
    expect(d.type).toBe(setting.type);
    expect(d.default).toEqual(setting.default);
    expect(d.description).toBe(setting.description);
  });
});

describe("committed stack files", () => {
  test("dev: one replica, every endpoint on loopback, derived max_connections, unprotected data", () => {
    const spec = parseClusterConfig(stackConfig("dev"));
    expect(spec.replicas).toBe(1);
    expect(spec.publish).toEqual({ address: "127.0.0.1", directPort: 15432, pooledPort: 16432, readOnlyPort: 16433 });
    // 1 database x (25 + 5) + 3 reserved + 10 senders + 20 headroom = 68, rounded up to 70.
    expect(spec.node.maxConnections).toBe(70);
    expect(spec.protectData).toBe(false);
    expect(Object.isFrozen(spec.node)).toBe(true);
  });

  test("prod: the audit's seed values, two replicas, only the pooler published, protected data", () => {
    const spec = parseClusterConfig(stackConfig("prod"));
    expect(spec.replicas).toBe(2);
    expect(spec.node).toEqual({ memoryMb: 8192, cpus: 4, storage: "ssd", workload: "web", maxConnections: 300 });
    expect(spec.pool).toEqual({
      mode: "transaction", defaultPoolSize: 30, minPoolSize: 10, reservePoolSize: 10, maxClientConn: 800, maxDbConnections: 250,
    });
    expect(spec.publish).toEqual({ address: "127.0.0.1", directPort: undefined, pooledPort: 6432, readOnlyPort: undefined });
    expect(spec.protectData).toBe(true);
  });

  test("no settings at all gives the declared defaults", () => {
    const spec = parseClusterConfig({});
    expect(spec.postgres).toEqual({ major: 18, image: "postgres:18-trixie" });
    expect(spec.synchronousMode).toBe("off");
    expect(spec.tls).toEqual({ minProtocol: "TLSv1.3", validityDays: 365, renewBeforeDays: 30, extraNames: [] });
  });

  test("keys of other namespaces (providers) are left alone", () => {
    expect(problemsOf({ "docker:host": "unix:///var/run/docker.sock" })).toEqual([]);
  });
});

// Each bad configuration and the exact problem it reports. Settings not named keep dev's values.
const dev = stackConfig("dev");
const badConfigs: [string, Record<string, string>, string[]][] = [
  ["unknown key", { "pg-ha:replica": "2" }, [
    `pg-ha:replica is not a setting of this program; accepted keys: ${Object.keys(SETTINGS).map((k) => `pg-ha:${k}`).join(", ")}`,
  ]],
  ["replicas not a number", { "pg-ha:replicas": "two" }, ['pg-ha:replicas = "two" is not accepted; expected an integer from 0 to 5']],
  ["replicas too many", { "pg-ha:replicas": "6" }, ['pg-ha:replicas = "6" is not accepted; expected an integer from 0 to 5']],
  ["replicas negative", { "pg-ha:replicas": "-1" }, ['pg-ha:replicas = "-1" is not accepted; expected an integer from 0 to 5']],
  ["replicas fractional", { "pg-ha:replicas": "1.5" }, ['pg-ha:replicas = "1.5" is not accepted; expected an integer from 0 to 5']],
  ["unsupported major", { "pg-ha:postgresMajor": "16" }, ['pg-ha:postgresMajor = "16" is not accepted; expected 17 or 18']],
  ["cluster name with capitals", { "pg-ha:clusterName": "PGHA" }, [
    `pg-ha:clusterName = "PGHA" is not accepted; expected lowercase letters, digits and '-', starting with a letter, at most 30 characters`,
  ]],
  ["image reference with spaces", { "pg-ha:postgresImage": "postgres 18" }, [
    'pg-ha:postgresImage = "postgres 18" is not accepted; expected an image reference such as postgres:18-trixie, or empty',
  ]],
  ["pgbouncer image with a bad digest", { "pg-ha:pgbouncerImage": "edoburu/pgbouncer@sha256:123" }, [
    'pg-ha:pgbouncerImage = "edoburu/pgbouncer@sha256:123" is not accepted; expected an image reference such as edoburu/pgbouncer:v1.25.2-p0',
  ]],
  ["image tag for another major", { "pg-ha:postgresImage": "postgres:17-trixie" }, [
    'pg-ha:postgresImage = "postgres:17-trixie" is tagged for PostgreSQL 17 but pg-ha:postgresMajor is 18',
  ]],
  ["pullImages not a boolean", { "pg-ha:pullImages": "yes" }, ['pg-ha:pullImages = "yes" is not accepted; expected true or false']],
  ["unknown synchronous mode", { "pg-ha:synchronousMode": "FIRST 1" }, ['pg-ha:synchronousMode = "FIRST 1" is not accepted; expected off or quorum']],
  ["quorum with one replica", { "pg-ha:synchronousMode": "quorum" }, [
    'pg-ha:synchronousMode = "quorum" needs pg-ha:replicas >= 2 (got 1): with one replica every outage of it would stop all writes',
  ]],
  ["memory below the floor", { "pg-ha:nodeMemoryMb": "128" }, ['pg-ha:nodeMemoryMb = "128" is not accepted; expected an integer from 256 to 1048576']],
  ["zero CPUs", { "pg-ha:nodeCpus": "0" }, ['pg-ha:nodeCpus = "0" is not accepted; expected an integer from 1 to 256']],
  ["unknown storage", { "pg-ha:storageType": "tape" }, ['pg-ha:storageType = "tape" is not accepted; expected ssd, hdd, nvme or san']],
  ["unknown workload", { "pg-ha:workload": "olap" }, ['pg-ha:workload = "olap" is not accepted; expected web, oltp, dw, mixed or desktop']],
  ["max_connections below 20", { "pg-ha:maxConnections": "10" }, [
    'pg-ha:maxConnections = "10" is not accepted; expected 0 (derive) or an integer from 20 to 10000',
  ]],
  ["max_connections too small for the pooler", { "pg-ha:maxConnections": "40" }, [
    "pg-ha:maxConnections = 40 is too small: 1 database(s) x (pg-ha:maxDbConnections 25 + pg-ha:reservePoolSize 5) + 3 superuser-reserved + 10 WAL senders = 43",
  ]],
  ["unknown pool mode", { "pg-ha:poolMode": "connection" }, ['pg-ha:poolMode = "connection" is not accepted; expected transaction, session or statement']],
  ["min pool above default pool", { "pg-ha:minPoolSize": "21" }, ["pg-ha:minPoolSize = 21 exceeds pg-ha:defaultPoolSize = 20"]],
  ["default pool above max_db_connections", { "pg-ha:defaultPoolSize": "30" }, ["pg-ha:defaultPoolSize = 30 exceeds pg-ha:maxDbConnections = 25"]],
  ["max_db_connections above max_client_conn", { "pg-ha:maxClientConn": "20", "pg-ha:defaultPoolSize": "10" }, [
    "pg-ha:maxDbConnections = 25 exceeds pg-ha:maxClientConn = 20: server connections beyond the client limit can never be used",
  ]],
  ["publish address not an IP", { "pg-ha:publishAddress": "localhost" }, ['pg-ha:publishAddress = "localhost" is not accepted; expected an IPv4 or IPv6 address']],
  ["privileged port", { "pg-ha:publishPooledPort": "80" }, [
    'pg-ha:publishPooledPort = "80" is not accepted; expected 0 (not published) or a port from 1024 to 65535',
  ]],
  ["duplicate ports", { "pg-ha:publishReadOnlyPort": "16432" }, [
    "pg-ha:publishReadOnlyPort = 16432 is already used by pg-ha:publishPooledPort; published ports must be distinct",
  ]],
  ["TLS 1.1", { "pg-ha:tlsMinProtocol": "TLSv1.1" }, ['pg-ha:tlsMinProtocol = "TLSv1.1" is not accepted; expected TLSv1.2 or TLSv1.3']],
  ["renewal window as long as the validity", { "pg-ha:tlsValidityDays": "30", "pg-ha:tlsRenewBeforeDays": "30" }, [
    "pg-ha:tlsRenewBeforeDays = 30 must be below pg-ha:tlsValidityDays = 30",
  ]],
  ["extra TLS name with an underscore", { "pg-ha:tlsExtraNames": '["db_host"]' }, [
    'pg-ha:tlsExtraNames = "[\\"db_host\\"]" is not accepted; expected a list of DNS names or IP addresses',
  ]],
  ["databases not a list", { "pg-ha:databases": "app" }, [
    'pg-ha:databases = "app" is not accepted; expected 1 to 10 distinct lowercase identifiers, none of postgres, replicator, monitor, pgbouncer, pgbouncer_admin, pgbouncer_stats, template0, template1',
  ]],
  ["reserved database name", { "pg-ha:databases": '["postgres"]' }, [
    'pg-ha:databases = "[\\"postgres\\"]" is not accepted; expected 1 to 10 distinct lowercase identifiers, none of postgres, replicator, monitor, pgbouncer, pgbouncer_admin, pgbouncer_stats, template0, template1',
  ]],
  ["duplicate databases", { "pg-ha:databases": '["app","app"]' }, [
    'pg-ha:databases = "[\\"app\\",\\"app\\"]" is not accepted; expected 1 to 10 distinct lowercase identifiers, none of postgres, replicator, monitor, pgbouncer, pgbouncer_admin, pgbouncer_stats, template0, template1',
  ]],
  ["no database", { "pg-ha:databases": "[]" }, [
    'pg-ha:databases = "[]" is not accepted; expected 1 to 10 distinct lowercase identifiers, none of postgres, replicator, monitor, pgbouncer, pgbouncer_admin, pgbouncer_stats, template0, template1',
  ]],
  ["slow-query threshold zero", { "pg-ha:slowQueryMs": "0" }, ['pg-ha:slowQueryMs = "0" is not accepted; expected an integer from 1 to 3600000']],
  ["subnet not aligned", { "pg-ha:networkSubnet": "172.30.10.5/24" }, [
    'pg-ha:networkSubnet = "172.30.10.5/24" is not accepted; expected an IPv4 network in CIDR form with a prefix from /16 to /28, such as 172.30.10.0/24',
  ]],
  ["subnet too large", { "pg-ha:networkSubnet": "10.0.0.0/8" }, [
    'pg-ha:networkSubnet = "10.0.0.0/8" is not accepted; expected an IPv4 network in CIDR form with a prefix from /16 to /28, such as 172.30.10.0/24',
  ]],
  ["slot WAL limit below a segment budget", { "pg-ha:maxSlotWalKeepMb": "16" }, [
    'pg-ha:maxSlotWalKeepMb = "16" is not accepted; expected an integer from 64 to 1048576',
  ]],
  ["memory cannot hold the buffers and connections", { "pg-ha:nodeMemoryMb": "512", "pg-ha:maxConnections": "300" }, [
    "pg-ha:nodeMemoryMb = 512 cannot hold shared_buffers (128MB) plus 300 connections x (work_mem 4MB + 2MB): needs at least 1928; raise pg-ha:nodeMemoryMb or lower pg-ha:maxConnections",
  ]],
  ["several problems at once are all reported", { "pg-ha:replicas": "9", "pg-ha:workload": "batch" }, [
    'pg-ha:replicas = "9" is not accepted; expected an integer from 0 to 5',
    'pg-ha:workload = "batch" is not accepted; expected web, oltp, dw, mixed or desktop',
  ]],
];

describe("bad configurations are refused with a message naming the setting and what is accepted", () => {
  test.each(badConfigs)("%s", (_, overrides, expected) => {
    expect(problemsOf({ ...dev, ...overrides })).toEqual(expected);
  });

  test("the program creates no resource when the configuration is bad", async () => {
    created.length = 0;
    await expect(runProgram({ ...dev, "pg-ha:replicas": "9" })).rejects.toThrow(
      'Invalid stack configuration:\n  - pg-ha:replicas = "9" is not accepted; expected an integer from 0 to 5',
    );
    expect(created).toEqual([]);
  });
});
