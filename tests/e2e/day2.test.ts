/**
 * A second `pulumi up` changes only what changed: the executor plans each deploy against the
 * stack's checkpoint like the engine, on the real engine. An unchanged stack plans no step and
 * keeps every container, password, CA and row; a config change previews as the changed lines of
 * the rendered files with no secret shown; a subnet change succeeds; protected data volumes are
 * never deleted or replaced, and a removed replica's volume stays on the engine.
 */
import * as fs from "fs";
import * as path from "path";
import { cleanupLeftovers, deploy, loadStackConfig } from "./executor";
import { formatPlan } from "./executor/display";
import type { Step } from "./executor/planner";
import { docker, query, report, testOverrides, type StackOutputs } from "./support/cluster";

const ROOT = path.join(__dirname, "..", "..");
const STATE_DIR = path.join(ROOT, ".local", "day2");

interface Shape {
  stack: "dev" | "prod";
  clusterName: string;
  config: Record<string, string>;
}

const DEV: Shape = {
  stack: "dev",
  clusterName: "pgha-plan",
  config: {
    "pg-ha:clusterName": "pgha-plan",
    "pg-ha:networkSubnet": "172.30.80.0/24",
    "pg-ha:publishDirectPort": "22432",
    "pg-ha:publishPooledPort": "22433",
    "pg-ha:publishReadOnlyPort": "22434",
  },
};
const PROD: Shape = {
  stack: "prod",
  clusterName: "pgha-plan-prod",
  config: { "pg-ha:clusterName": "pgha-plan-prod", "pg-ha:networkSubnet": "172.30.82.0/24", "pg-ha:publishPooledPort": "22436" },
};

const statePath = (shape: Shape) => path.join(STATE_DIR, shape.clusterName, "state.json");

async function run(shape: Shape, extra: Record<string, string> = {}, options: { preview?: boolean; replace?: string[] } = {}) {
  const config = { ...loadStackConfig(shape.stack), ...testOverrides(shape.stack, 18, "none"), ...shape.config, ...extra };
  const result = await deploy({
    programPath: path.join(ROOT, "index.ts"), stack: `day2-${shape.stack}`, config, statePath: statePath(shape), ...options,
  });
  return { ...result, outputs: result.outputs as unknown as StackOutputs };
}

const changed = (steps: Step[]) => steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.name}`);

async function containerIds(clusterName: string): Promise<Record<string, string>> {
  const lines = await docker("ps", "-a", "--filter", `label=pgha.cluster=${clusterName}`, "--format", "{{.Names}} {{.ID}}");
  return Object.fromEntries(lines.split("\n").filter(Boolean).map((l) => l.split(" ")));
}

async function fresh(shape: Shape): Promise<void> {
  await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${shape.clusterName}`] });
  fs.rmSync(path.dirname(statePath(shape)), { recursive: true, force: true });
}

describe("dev: a second up", () => {
  let first: Awaited<ReturnType<typeof run>>;
  let ca: string;
  beforeAll(async () => {
    await fresh(DEV);
    first = await run(DEV);
    ca = first.outputs.caCertPem;
    await query(first.outputs.hostPooledUrl!, ca, "CREATE TABLE IF NOT EXISTS day2 (id int); INSERT INTO day2 VALUES (1)");
  }, 900_000);
  afterAll(() => fresh(DEV), 300_000);

  test("an unchanged stack previews no step", async () => {
    const preview = await run(DEV, {}, { preview: true });
    expect(changed(preview.steps)).toEqual([]);
    report(`day2: unchanged dev preview: ${preview.steps.length} resources, ${changed(preview.steps).length} steps`);
  }, 600_000);

  test("a second up keeps every container, password, the CA and the rows", async () => {
    const before = await containerIds(DEV.clusterName);
    const second = await run(DEV);
    expect(changed(second.steps)).toEqual([]);
    expect(await containerIds(DEV.clusterName)).toEqual(before);
    expect(second.outputs).toEqual(first.outputs);
    expect(await query(second.outputs.hostPooledUrl!, ca, "SELECT id FROM day2")).toEqual([{ id: 1 }]);
    report(`day2: second dev up in ${(second.elapsedMs / 1000).toFixed(1)} s, ${Object.keys(before).length} containers kept`);
  }, 900_000);

  test("a maxConnections change previews as the changed line of postgresql.conf, with no secret shown", async () => {
    const preview = await run(DEV, { "pg-ha:maxConnections": "80" }, { preview: true });
    // PgBouncer's pool limits follow max_connections: its pgbouncer.ini is live configuration, rewritten and reloaded.
    expect(changed(preview.steps).sort()).toEqual(["replace pgha-plan-pgbouncer-config", "replace pgha-plan-primary", "replace pgha-plan-replica-1"]);
    const text = formatPlan(preview.steps, "dev", true);
    expect(text).toContain("~ [/etc/pg-ha/postgresql.conf].content:");
    expect(text).toContain("- max_connections = 70");
    expect(text).toContain("+ max_connections = 80");
    const secrets = [first.outputs.pooledUrl, ...Object.values(first.outputs.adminUrls)].map((u) => new URL(u).password);
    for (const s of secrets) expect(text).not.toContain(s);
    expect(text).not.toMatch(/PRIVATE KEY|SCRAM-SHA-256\$/);
    // Nothing was applied: the live server still has its old setting.
    expect(await query(first.outputs.hostDirectUrl!, ca, "SHOW max_connections")).toEqual([{ max_connections: "70" }]);
  }, 600_000);

  test("a subnet change succeeds: containers and the old network go first, then come back on the new subnet, rows kept", async () => {
    const moved = await run(DEV, { "pg-ha:networkSubnet": "172.30.81.0/24" });
    const steps = moved.steps.filter((s) => s.op === "replace");
    expect(steps[0]).toMatchObject({ name: "pgha-plan-net", deleteFirst: true });
    expect(steps.map((s) => s.name)).toEqual(expect.arrayContaining(["pgha-plan-primary", "pgha-plan-replica-1", "pgha-plan-pgbouncer"]));
    expect(await docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "pgha-plan-net")).toBe("172.30.81.0/24");
    expect(await query(moved.outputs.hostPooledUrl!, ca, "SELECT id FROM day2")).toEqual([{ id: 1 }]);
    expect(changed((await run(DEV, { "pg-ha:networkSubnet": "172.30.81.0/24" }, { preview: true })).steps)).toEqual([]);
    report(`day2: subnet change applied in ${(moved.elapsedMs / 1000).toFixed(1)} s: ${changed(moved.steps).length} steps`);
  }, 900_000);
});

describe("prod: protected data", () => {
  beforeAll(async () => {
    await fresh(PROD);
    await run(PROD);
  }, 900_000);
  afterAll(() => fresh(PROD), 300_000);

  test("an unchanged prod stack previews no step", async () => {
    expect(changed((await run(PROD, {}, { preview: true })).steps)).toEqual([]);
  }, 600_000);

  test("the primary's data volume can be neither replaced nor deleted: the plan fails before it is touched", async () => {
    const volumeUrn = "urn:pulumi:day2-prod::pg-ha::pg-ha:volumes:ClusterVolumes$docker:index/volume:Volume::pgha-plan-prod-primary-data";
    await expect(run(PROD, {}, { preview: true, replace: [volumeUrn] })).rejects.toThrow(/unable to replace resource .*pgha-plan-prod-primary-data"\nas it is currently marked for protection/);
    // Renaming the cluster would delete every old resource: refused for the protected ones.
    await expect(run(PROD, { "pg-ha:clusterName": "pgha-plan-prod2" }, { preview: true })).rejects.toThrow(/unable to delete resource [\s\S]*marked for protection/);
    expect(await docker("volume", "inspect", "-f", "{{.Name}}", "pgha-plan-prod-primary-data")).toBe("pgha-plan-prod-primary-data");
  }, 600_000);

  test("lowering replicas removes the replica but keeps its data volume on the engine", async () => {
    const down = await run(PROD, { "pg-ha:replicas": "1" });
    expect(changed(down.steps)).toEqual(expect.arrayContaining(["delete pgha-plan-prod-replica-2", "delete pgha-plan-prod-replica-2-data"]));
    expect(Object.keys(await containerIds(PROD.clusterName))).not.toContain("pgha-plan-prod-replica-2");
    expect(await docker("volume", "inspect", "-f", "{{.Name}}", "pgha-plan-prod-replica-2-data")).toBe("pgha-plan-prod-replica-2-data");
  }, 900_000);
});
