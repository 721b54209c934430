/**
 * The README's table "Where this differs from the audit's seed values" stays true: every row's
 * pg-ha value is what the prod stack renders, and every row is checked.
 */
import * as fs from "fs";
import * as path from "path";
import { ConfigError, parseClusterConfig, type ClusterSpec } from "../../config";
import { renderPgHbaConf, renderPostgresqlConf } from "../../config-templates/render";
import { primaryNode, replicaNodes } from "../../topology";
import { stackConfig } from "./harness";
import { effectiveSetting as effective } from "./postgresql-conf";

const README = fs.readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");

/** Each table row: the seed value's name (its first cell, unquoted when all code) and the pg-ha cell's code. */
function deviationRows(): { key: string; project: string }[] {
  const section = README.split(/^## Where this differs from the audit's seed values$/m)[1]?.split(/^## /m)[0];
  if (section === undefined) throw new Error("README has no section \"Where this differs from the audit's seed values\"");
  const rows = section.split("\n").filter((line) => line.startsWith("| ") && !line.startsWith("| Seed value"));
  return rows.map((row) => {
    const cells = row.split(" | ");
    const name = cells[0].replace(/^\| /, "");
    return { key: /^`([^`]+)`$/.exec(name)?.[1] ?? name, project: /`([^`]+)`/.exec(cells[2])?.[1] ?? cells[2] };
  });
}

const prod = parseClusterConfig(stackConfig("prod"));
const primaryConf = renderPostgresqlConf(prod, primaryNode(prod));
const replicaConfs = replicaNodes(prod).map((r) => renderPostgresqlConf(prod, r));
const hba = renderPgHbaConf(prod).split("\n").map((l) => l.trim().split(/\s+/).join(" "));

/** How the prod stack renders each row's value. */
const RENDERED: Record<string, (spec: ClusterSpec) => string> = {
  work_mem: () => effective(primaryConf, "work_mem")!,
  wal_keep_size: () => effective(primaryConf, "wal_keep_size")!,
  // One node size in the spec, so one memory limit and CPU count for every PostgreSQL container.
  "Replica size": (spec) => `${spec.node.memoryMb} MB, ${spec.node.cpus} CPUs on every node`,
  "Networks in `pg_hba.conf`": () => {
    const networks = new Set(hba.filter((l) => /^host(ssl)? /.test(l)).map((l) => l.split(" ")[3]).filter((n) => n !== "all"));
    return [...networks].join(", ");
  },
  "Replication login": () => hba.find((l) => l.startsWith("hostssl replication replicator "))!,
  "Replication slots": () => replicaConfs.map((c) => effective(c, "primary_slot_name")).join(", "),
};

describe("README: where this differs from the audit's seed values", () => {
  const rows = deviationRows();

  test("lists at least work_mem, wal_keep_size and the replica's size, and every row is checked", () => {
    expect(rows.map((r) => r.key)).toEqual(expect.arrayContaining(["work_mem", "wal_keep_size", "Replica size"]));
    expect(rows.map((r) => r.key).sort()).toEqual(Object.keys(RENDERED).sort());
  });

  test.each(deviationRows().map((r) => [r.key, r.project]))("%s: the prod stack renders %s", (key, project) => {
    expect(RENDERED[key](prod)).toBe(project);
  });

  test("every node is sized and tuned alike: the replicas' tuning is the primary's", () => {
    const tuningOf = (conf: string) => conf.split("# TUNING")[1].split("# WRITE-AHEAD LOG")[0];
    for (const conf of replicaConfs) expect(tuningOf(conf)).toBe(tuningOf(primaryConf));
  });

  test("the seed's work_mem does not fit the prod node: the memory check refuses it", () => {
    let problems: string[] = [];
    try {
      parseClusterConfig({ ...stackConfig("prod"), "pg-ha:postgresParameters": JSON.stringify({ work_mem: "20MB" }) });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems = e.problems;
    }
    expect(problems).toEqual([
      "pg-ha:nodeMemoryMb = 8192 cannot hold shared_buffers (2GB) plus 300 connections x (work_mem 20MB from pg-ha:postgresParameters + 2MB): needs at least 8648; raise pg-ha:nodeMemoryMb or lower pg-ha:maxConnections or the values pg-ha:postgresParameters sets",
    ]);
  });

  test("the seed's wal_keep_size can be set back, and is the value the servers read", () => {
    const spec = parseClusterConfig({ ...stackConfig("prod"), "pg-ha:postgresParameters": JSON.stringify({ wal_keep_size: "2GB" }) });
    expect(effective(renderPostgresqlConf(spec, primaryNode(spec)), "wal_keep_size")).toBe("2GB");
  });
});
