import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { ConfigError, parseClusterConfig, SETTINGS } from "../../config";
import { created } from "./setup/mocks";
import { badConfigs } from "../fixtures/bad-configs";
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
    // With Patroni (the default) the official image gets Patroni added by images/postgres-patroni.
    expect(spec.postgres).toEqual({ major: 18, image: "pg-ha/postgres-patroni:18", build: true });
    expect(spec.failover).toBe("patroni");
    expect(spec.ha).toEqual({ etcdMembers: 3, etcdImage: "", haproxyImage: "haproxy:3.0.11" });
    expect(parseClusterConfig({ "pg-ha:failover": "none" }).postgres).toEqual({ major: 18, image: "postgres:18-trixie", build: false });
    expect(spec.synchronousMode).toBe("off");
    expect(spec.tls).toEqual({ minProtocol: "TLSv1.3", validityDays: 365, renewBeforeDays: 30, extraNames: [] });
  });

  test("keys of other namespaces (providers) are left alone", () => {
    expect(problemsOf({ "docker:host": "unix:///var/run/docker.sock" })).toEqual([]);
  });
});

describe("bad configurations are refused with a message naming the setting and what is accepted", () => {
  test.each(badConfigs)("%s", (_, overrides, expected) => {
    expect(problemsOf({ ...stackConfig("dev"), ...overrides })).toEqual(expected);
  });

  test("the program creates no resource when the configuration is bad", async () => {
    created.length = 0;
    await expect(runProgram({ ...stackConfig("dev"), "pg-ha:replicas": "9" })).rejects.toThrow(
      'Invalid stack configuration:\n  - pg-ha:replicas = "9" is not accepted; expected an integer from 0 to 5',
    );
    expect(created).toEqual([]);
  });
});
