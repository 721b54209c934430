/**
 * The README's operations section stays runnable: every shell block there is marked, every
 * `ops-check` block has an expectation that tests/e2e/operations.test.ts applies to what it prints
 * against a live cluster (and every expectation a block), and each repair names the drill that runs it.
 */
import * as fs from "fs";
import * as path from "path";
import {
  OPS_CHECKS, README_PATH, opsBlocks, psqlTables, shellFences, variablesRead, variablesSet,
} from "../e2e/support/operations";

const ROOT = path.join(__dirname, "..", "..");
const readme = fs.readFileSync(README_PATH, "utf8");
const blocks = opsBlocks(readme);
const checks = blocks.filter((b) => b.kind === "check");

test("every shell block of the operations section carries an ops marker", () => {
  const fences = shellFences(readme);
  expect(fences.length).toBeGreaterThan(0);
  expect(blocks).toHaveLength(fences.length);
});

test("there is one setup block and the check names are distinct", () => {
  expect(blocks.filter((b) => b.kind === "setup")).toHaveLength(1);
  const names = blocks.filter((b) => b.kind !== "setup").map((b) => b.name);
  expect(new Set(names).size).toBe(names.length);
});

test("every ops-check block has an expectation in the e2e test, and every expectation a block", () => {
  expect(checks.map((b) => b.name).sort()).toEqual(Object.keys(OPS_CHECKS).sort());
});

test("the audit's checks are all documented: replication, slots, pools, TLS, pg_stat_statements, connection use, cache hit ratio, states", () => {
  const code = (name: string) => checks.find((b) => b.name === name)?.code ?? "";
  expect(code("replication")).toMatch(/FROM pg_stat_replication/);
  expect(code("replication")).toMatch(/replay_lsn/);
  expect(code("replication-slots")).toMatch(/FROM pg_replication_slots/);
  expect(code("pgbouncer-pools")).toMatch(/SHOW POOLS/);
  expect(code("tls")).toMatch(/pg_stat_ssl/);
  expect(code("pg-stat-statements")).toMatch(/FROM pg_extension WHERE extname = 'pg_stat_statements'/);
  expect(code("pg-stat-statements")).toMatch(/for db in \$DATABASES/);
  expect(code("connection-use")).toMatch(/max_connections/);
  expect(code("cache-hit-ratio")).toMatch(/blks_hit/);
  expect(code("connections-by-state")).toMatch(/GROUP BY/);
});

test("checks use only variables the setup block sets, and never the superuser", () => {
  const setup = blocks.find((b) => b.kind === "setup")!;
  const defined = variablesSet(setup.code);
  for (const check of checks) {
    expect({ check: check.name, undefined: variablesRead(check.code).filter((v) => !defined.includes(v)) }).toEqual({ check: check.name, undefined: [] });
    expect(check.code).not.toMatch(/docker exec|-U postgres|pgbouncerAdminUrl/);
  }
});

test("each repair names the drill that runs its statement", () => {
  for (const action of blocks.filter((b) => b.kind === "action")) {
    const file = /shown by (tests\/e2e\/[\w-]+\.test\.ts)/.exec(action.note)?.[1];
    expect({ action: action.name, file }).toEqual({ action: action.name, file: expect.any(String) });
    const statement = /"(SELECT [^"]+)"/.exec(action.code)?.[1];
    expect(statement).toBeDefined();
    expect(fs.readFileSync(path.join(ROOT, file!), "utf8")).toContain(statement);
  }
});

describe("markers", () => {
  const section = (body: string) => `# x\n\n## Operations\n\n${body}\n## Next\n\n\`\`\`sh\nnot in the section\n\`\`\`\n`;

  test("an unmarked shell block is refused with its line", () => {
    expect(() => opsBlocks(section("<!-- ops-setup -->\n```sh\na=1\n```\n\n```bash\nrm -rf /\n```\n"))).toThrow(/README.md line 10: a shell block .* without an ops marker/);
  });

  test("a marked block is read with its kind, name, note and code; other languages and sections are not shell blocks", () => {
    expect(opsBlocks(section("<!-- ops-check: pools -->\n```sh\npsql \"$URL\" -c \"SHOW POOLS\"\n```\n\n```\n(output)\n```\n"))).toEqual([
      { kind: "check", name: "pools", note: "", code: "psql \"$URL\" -c \"SHOW POOLS\"", line: 6 },
    ]);
  });
});

describe("psql's aligned output", () => {
  const output = [
    "You are now connected to database \"app\" as user \"monitor\".",
    " slot_name | active | query ",
    "-----------+--------+---------",
    " replica_1 | t      | a | b",
    " replica_2 | f      | ",
    "(2 rows)",
    "",
    " n ",
    "---",
    "(0 rows)",
    "",
  ].join("\n");

  test("tables are read in order, cut at the separator's columns", () => {
    expect(psqlTables(output)).toEqual([
      { columns: ["slot_name", "active", "query"], rows: [{ slot_name: "replica_1", active: "t", query: "a | b" }, { slot_name: "replica_2", active: "f", query: "" }] },
      { columns: ["n"], rows: [] },
    ]);
  });

  test("a row count that does not match what was read is an error", () => {
    expect(() => psqlTables(output.replace("(2 rows)", "(3 rows)"))).toThrow(/read 2 rows, psql says 3/);
  });
});
