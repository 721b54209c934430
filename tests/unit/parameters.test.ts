/**
 * pg-ha:postgresParameters: PostgreSQL parameters an operator sets over the tuning. The refusals
 * and their messages are in tests/fixtures/bad-configs.ts; this shows what an accepted override
 * becomes: plain data in the spec, the last word in every node's postgresql.conf.
 */
import { parseClusterConfig } from "../../config";
import { managedReason, parameterCatalog } from "../../config-templates/parameters";
import { renderPgbouncerIni, renderPostgresqlConf } from "../../config-templates/render";
import { clusterTuning } from "../../config-templates/tuning";
import { primaryNode, replicaNodes } from "../../topology";
import { stackConfig } from "./harness";
import { effectiveSetting } from "./postgresql-conf";

const withParameters = (parameters: Record<string, unknown>, stack: "dev" | "prod" = "dev") =>
  parseClusterConfig({ ...stackConfig(stack), "pg-ha:postgresParameters": JSON.stringify(parameters) });

describe("the committed parameter lists", () => {
  test("hold each major's own parameters, with their units and values", () => {
    const [pg17, pg18] = [parameterCatalog(17), parameterCatalog(18)];
    expect(pg18.get("io_method")).toEqual({ name: "io_method", type: "enum", unit: "", enumValues: ["sync", "worker", "io_uring"] });
    expect(pg17.has("io_method")).toBe(false);
    for (const catalog of [pg17, pg18]) {
      expect(catalog.get("work_mem")).toMatchObject({ type: "integer", unit: "kB" });
      expect(catalog.get("shared_buffers")).toMatchObject({ type: "integer", unit: "8kB" });
      expect(catalog.get("datestyle")).toMatchObject({ name: "DateStyle", type: "string" });
      // The servers that wrote them preload the cluster's libraries, so their parameters are there.
      expect(catalog.has("pg_stat_statements.max")).toBe(true);
      expect(catalog.has("auto_explain.log_format")).toBe(true);
      expect(catalog.size).toBeGreaterThan(350);
    }
  });
});

describe("parameters the cluster manages are refused; tuning and behaviour are open", () => {
  test.each([
    "ssl", "ssl_cert_file", "ssl_min_protocol_version", "listen_addresses", "port", "unix_socket_directories", "hba_file",
    "archive_mode", "archive_command", "restore_command", "primary_conninfo", "primary_slot_name", "synchronous_standby_names",
    "synchronous_commit", "max_wal_senders", "max_replication_slots", "wal_level", "hot_standby", "max_slot_wal_keep_size",
    "password_encryption", "shared_preload_libraries", "log_destination",
    "log_min_duration_sample", "log_transaction_sample_rate", "debug_print_parse",
  ])("%s is managed, with a reason", (name) => {
    expect(managedReason(name)).toEqual(expect.any(String));
    expect(parameterCatalog(18).has(name)).toBe(true);
  });

  test.each(["work_mem", "shared_buffers", "max_connections", "random_page_cost", "wal_keep_size", "log_statement", "autovacuum_naptime", "statement_timeout"])(
    "%s is open", (name) => {
      expect(managedReason(name)).toBeUndefined();
    },
  );
});

describe("an accepted override", () => {
  const overrides = { WORK_MEM: "8MB", jit: true, random_page_cost: 1.5, search_path: '"$user", public', application_name: "it's" };
  const spec = withParameters(overrides);
  const confs = [primaryNode(spec), ...replicaNodes(spec)].map((node) => renderPostgresqlConf(spec, node));

  test("is plain, frozen data in the spec under PostgreSQL's own names, every value a string", () => {
    expect(spec.postgresParameters).toEqual({
      application_name: "it's", jit: "on", random_page_cost: "1.5", search_path: '"$user", public', work_mem: "8MB",
    });
    expect(Object.isFrozen(spec.postgresParameters)).toBe(true);
    expect(JSON.parse(JSON.stringify(spec.postgresParameters))).toEqual(spec.postgresParameters);
  });

  test("is the value every node's postgresql.conf ends with, quoted, after the tuning it replaces", () => {
    for (const conf of confs) {
      const section = conf.split("# SET BY THE OPERATOR (pg-ha:postgresParameters)")[1];
      expect(section.trim().split("\n").slice(2)).toEqual([
        "application_name = 'it''s'",
        "jit = 'on'",
        "random_page_cost = '1.5'",
        `search_path = '"$user", public'`,
        "work_mem = '8MB'",
      ]);
      expect(effectiveSetting(conf, "work_mem")).toBe("8MB");
      expect(effectiveSetting(conf, "random_page_cost")).toBe("1.5");
      expect(effectiveSetting(conf, "application_name")).toBe("it's");
      // The tuning's own line is still there, so the file shows what the override replaced.
      expect(conf).toContain(`work_mem = ${clusterTuning(spec).work_mem}`);
    }
  });

  test("no override, no operator section", () => {
    const plain = parseClusterConfig(stackConfig("dev"));
    expect(plain.postgresParameters).toEqual({});
    expect(renderPostgresqlConf(plain, primaryNode(plain))).not.toContain("SET BY THE OPERATOR");
  });

  test("max_connections set as a parameter is the one the tuning, the pool budget and PgBouncer work with", () => {
    const raised = withParameters({ max_connections: 120 });
    expect(raised.node.maxConnections).toBe(120);
    expect(clusterTuning(raised).max_connections).toBe("120");
    expect(renderPgbouncerIni(raised)).toContain("max_connections = 120.");
    expect(effectiveSetting(renderPostgresqlConf(raised, primaryNode(raised)), "max_connections")).toBe("120");
  });

  test("a value PostgreSQL accepts in several forms is taken in each", () => {
    const spec = withParameters({ work_mem: "1.5MB", maintenance_work_mem: 65536, statement_timeout: "30s", wal_compression: "ZSTD", huge_pages: "off" });
    expect(spec.postgresParameters).toEqual({ huge_pages: "off", maintenance_work_mem: "65536", statement_timeout: "30s", wal_compression: "ZSTD", work_mem: "1.5MB" });
  });
});
