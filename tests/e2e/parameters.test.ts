/**
 * pg-ha:postgresParameters on real servers: the committed parameter lists are what PostgreSQL 17
 * and 18 themselves report (so they cannot fall behind the images), and a dev cluster deployed
 * with overrides runs with them on every node, as the servers report through the stack's URLs.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { parameterListFile } from "../../config-templates/parameters";
import { deployCluster, type DeployedCluster, type Major, query, removeCluster, report, sqlInContainer } from "./support/cluster";

jest.setTimeout(300_000);

const ROOT = path.join(__dirname, "..", "..");
const execFileAsync = promisify(execFile);

/** The list's rows without its comment lines (and without trailing empty columns, which psql's output trims). */
const rows = (list: string) => list.split("\n").filter((line) => line !== "" && !line.startsWith("#")).map((line) => line.trimEnd());

describe.each([17, 18] as Major[])("PostgreSQL %i's parameter list", (major) => {
  test("is what a live server of the image reports in pg_settings", async () => {
    const started = Date.now();
    const { stdout } = await execFileAsync("bash", [path.join(ROOT, "scripts", "postgres-parameters.sh"), `pgha-test/postgres:${major}`], { timeout: 240_000 });
    const committed = fs.readFileSync(parameterListFile(major), "utf8");
    expect(stdout).toBe(committed);
    report(`parameters: PostgreSQL ${major} reports ${rows(stdout).length} parameters, the same as config-templates/pg-settings/${major}.tsv (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  });
});

describe("a dev cluster with pg-ha:postgresParameters", () => {
  const overrides = { work_mem: "8MB", statement_timeout: "45s", log_statement: "ddl", random_page_cost: "1.5" };
  let cluster: DeployedCluster;

  beforeAll(async () => {
    cluster = await deployCluster("dev", 18, {
      "pg-ha:clusterName": "pgha-params",
      "pg-ha:networkSubnet": "172.30.73.0/24",
      "pg-ha:publishDirectPort": "21452",
      "pg-ha:publishPooledPort": "21453",
      "pg-ha:publishReadOnlyPort": "21454",
      "pg-ha:postgresParameters": JSON.stringify(overrides),
    }, "params-dev-18");
    report(`parameters: dev cluster with ${Object.keys(overrides).length} overrides deployed in ${(cluster.elapsedMs / 1000).toFixed(1)} s`);
  }, 600_000);

  afterAll(async () => {
    if (cluster) await removeCluster(cluster);
  }, 300_000);

  const SETTINGS_SQL = "SELECT name, setting, unit, source FROM pg_settings WHERE name = ANY($1) ORDER BY name";
  const expected = [
    { name: "log_statement", setting: "ddl", unit: null, source: "configuration file" },
    { name: "random_page_cost", setting: "1.5", unit: null, source: "configuration file" },
    { name: "statement_timeout", setting: "45000", unit: "ms", source: "configuration file" },
    { name: "work_mem", setting: "8192", unit: "kB", source: "configuration file" },
  ];

  test("the primary reports each override, through the pooled and the direct URL", async () => {
    for (const url of [cluster.outputs.hostPooledUrl!, cluster.outputs.hostDirectUrl!]) {
      const seen = await query(url, cluster.outputs.caCertPem, SETTINGS_SQL, [Object.keys(overrides)]);
      expect(seen).toEqual(expected);
      const [shown] = await query<{ work_mem: string }>(url, cluster.outputs.caCertPem, "SHOW work_mem");
      expect(shown.work_mem).toBe("8MB");
    }
    report(`parameters: the primary reports ${expected.map((e) => `${e.name}=${e.setting}${e.unit ?? ""}`).join(", ")}`);
  });

  test("the replica reports them too, through the read-only URL", async () => {
    const [recovery] = await query<{ r: boolean }>(cluster.outputs.hostReadOnlyUrl!, cluster.outputs.caCertPem, "SELECT pg_is_in_recovery() AS r");
    expect(recovery.r).toBe(true);
    expect(await query(cluster.outputs.hostReadOnlyUrl!, cluster.outputs.caCertPem, SETTINGS_SQL, [Object.keys(overrides)])).toEqual(expected);
  });

  test("the override replaced the tuning's value: the file sets work_mem twice, the server took the last", async () => {
    expect(await sqlInContainer(cluster.primary, "SELECT count(*) FROM pg_file_settings WHERE name = 'work_mem'")).toBe("2");
    expect(await sqlInContainer(cluster.primary, "SELECT setting FROM pg_file_settings WHERE name = 'work_mem' AND applied")).toBe("8MB");
  });

  test("the deployed server knows exactly the committed parameter list", async () => {
    const live = await sqlInContainer(cluster.primary,
      "SELECT string_agg(concat_ws(E'\\t', name, vartype, coalesce(unit, ''), coalesce(array_to_string(enumvals, ', '), '')), E'\\n' ORDER BY name COLLATE \"C\") FROM pg_settings");
    expect(rows(live)).toEqual(rows(fs.readFileSync(parameterListFile(18), "utf8")));
  });
});
