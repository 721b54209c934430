/**
 * Bad-input drill: every invalid stack configuration of tests/fixtures/bad-configs.ts (the table
 * the unit tests use) goes through the e2e executor's deploy(), i.e. the program on a real engine.
 * Each is refused with "Invalid stack configuration:" and exactly its problems, and creates
 * nothing: no resource in the executor's record, no container, network or volume on the engine.
 */
import * as path from "path";
import { cleanupLeftovers, deploy, LABEL, loadStackConfig } from "./executor";
import { docker as engine } from "./executor/engine";
import { badConfigs } from "../fixtures/bad-configs";
import { report, testOverrides } from "./support/cluster";
import { deployedResources } from "./support/drill";

jest.setTimeout(120_000);

const PROGRAM = path.join(__dirname, "..", "..", "index.ts");
const CLUSTER = "pgha-drill-bad";
/**
 * The table's cases change the dev stack's settings (its messages quote dev's values, e.g. its
 * ports); the drill only swaps the images for the local ones and, should a case wrongly pass,
 * keeps what it would create off other suites' names and subnets.
 */
const BASE = { ...loadStackConfig("dev"), ...testOverrides("dev", 18, "none"), "pg-ha:clusterName": CLUSTER, "pg-ha:networkSubnet": "172.30.32.0/24" };

interface EngineObject {
  kind: "container" | "network" | "volume";
  id: string;
  name: string;
  stack: string;
}

/** Every container, network and volume the executor made (label pgha.e2e=true), whoever made it. */
async function engineObjects(): Promise<EngineObject[]> {
  const filters = { label: [`${LABEL.marker}=true`] };
  const [containers, networks, volumes] = await Promise.all([
    engine.listContainers({ all: true, filters }),
    engine.listNetworks({ filters }),
    engine.listVolumes({ filters }),
  ]);
  return [
    ...containers.map((c) => ({ kind: "container" as const, id: c.Id, name: c.Names[0], stack: c.Labels[LABEL.stack] })),
    ...networks.map((n) => ({ kind: "network" as const, id: n.Id, name: n.Name, stack: n.Labels?.[LABEL.stack] ?? "" })),
    ...(volumes.Volumes ?? []).map((v) => ({ kind: "volume" as const, id: v.Name, name: v.Name, stack: v.Labels?.[LABEL.stack] ?? "" })),
  ];
}

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");

/**
 * Deploys CONFIG as its own deployment and returns the error, the executor's record and what
 * appeared on the engine meanwhile. Other suites may create their own objects at the same time, so
 * "new" objects are those that were not there before AND carry this deployment's label.
 */
async function attempt(name: string, config: Record<string, string>) {
  const deployment = `drill-bad-${slug(name)}`;
  const before = new Set((await engineObjects()).map((o) => `${o.kind}:${o.id}`));
  const started = Date.now();
  const error = await deploy({ programPath: PROGRAM, stack: deployment, config, timeoutMs: 120_000 }).then(() => undefined, (e: Error) => e);
  const elapsedMs = Date.now() - started;
  const resources = deployedResources();
  const after = await engineObjects();
  const added = after.filter((o) => !before.has(`${o.kind}:${o.id}`));
  const ours = after.filter((o) => o.stack === deployment);
  return { deployment, error, resources, added, ours, elapsedMs };
}

let totalMs = 0;
let cases = 0;

afterAll(async () => {
  // Nothing should be there; should a case have wrongly created something, it goes.
  await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${CLUSTER}`] });
  report(`bad input: ${cases} invalid configurations refused through deploy() in ${(totalMs / 1000).toFixed(1)} s, none created any resource`);
}, 300_000);

describe("each invalid stack configuration is refused with its exact message and creates nothing", () => {
  test("the table holds at least 30 distinct configurations", () => {
    expect(badConfigs.length).toBeGreaterThanOrEqual(30);
    expect(new Set(badConfigs.map(([name]) => name)).size).toBe(badConfigs.length);
  });

  test.each(badConfigs)("%s", async (name, overrides, problems) => {
    const result = await attempt(name, { ...BASE, ...overrides });
    try {
      expect(result.error).toBeInstanceOf(Error);
      expect(result.error!.message).toBe(`Invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
      expect(result.resources).toEqual([]);
      // Objects that appeared meanwhile belong to other suites; none is this deployment's.
      expect(result.added.filter((o) => o.stack === result.deployment)).toEqual([]);
      expect(result.ours).toEqual([]);
      totalMs += result.elapsedMs;
      cases++;
    } finally {
      if (result.ours.length > 0) await cleanupLeftovers(result.deployment);
    }
  });
});
