/**
 * The e2e executor's planner: the provider rules it plans with cover every field the program
 * uses, and each engine rule it reproduces gives the step the engine would.
 */
import { PROVIDER_RULES } from "../e2e/executor/provider-rules";
import { diffInputs, Planner, type Registration, type StateEntry } from "../e2e/executor/planner";
import { goDurationString, nanoCpusString } from "../e2e/executor/container";
import { byType, runProgram, stackConfig } from "./harness";

const CONTAINER = "docker:index/container:Container";
const NETWORK = "docker:index/network:Network";
const VOLUME = "docker:index/volume:Volume";

describe("the provider table", () => {
  test("names the provider release and the source file of every rule", () => {
    for (const [type, rules] of Object.entries(PROVIDER_RULES)) {
      expect({ type, source: rules.source }).toEqual({ type, source: expect.stringMatching(/v\d+.*\.go/) });
    }
  });

  test.each([["dev", {}], ["prod", {}], ["dev", { "pg-ha:replicas": "0", "pg-ha:pullImages": "false" }]] as const)(
    "covers every container, network and volume input the %s program uses %j",
    async (stack, overrides) => {
      const run = await runProgram({ ...stackConfig(stack), ...overrides });
      for (const type of [CONTAINER, NETWORK, VOLUME]) {
        const used = new Set(byType(run, type).flatMap((r) => Object.keys(r.inputs)));
        expect(used.size).toBeGreaterThan(0);
        const uncovered = [...used].filter((field) => PROVIDER_RULES[type].fields[field] === undefined);
        expect({ type, uncovered }).toEqual({ type, uncovered: [] });
      }
    },
  );
});

describe("what the provider reads back", () => {
  test("CPUs as nanoInt64ToDecimalString and durations as Go's Duration.String", () => {
    expect([1e9, 4e9, 1.5e9, 2.25e9].map(nanoCpusString)).toEqual(["1.0", "4.0", "1.5", "2.25"]);
    expect([2e9, 5e9, 90e9, 600e9, 3600e9, 0, 5e8].map(goDurationString)).toEqual(["2s", "5s", "1m30s", "10m0s", "1h0m0s", "0s", "500ms"]);
  });

  test("cpus \"1\" against the stored \"1.0\" replaces; the read-back spelling plans nothing", () => {
    expect(diffInputs(CONTAINER, { cpus: "1.0" }, { cpus: "1" }, new Set()).map((c) => [c.key, c.effect])).toEqual([["cpus", "replace"]]);
    expect(diffInputs(CONTAINER, { cpus: "1.0" }, { cpus: "1.0" }, new Set())).toEqual([]);
  });

  test("a healthcheck of \"600s\" against the stored \"10m0s\" plans an update that changes nothing on the engine", () => {
    const stored = { healthcheck: { tests: ["CMD", "x"], interval: "2s", timeout: "5s", startPeriod: "10m0s", startInterval: "0s", retries: 5 } };
    const sent = { healthcheck: { tests: ["CMD", "x"], interval: "2s", timeout: "5s", startPeriod: "600s", retries: 5 } };
    expect(diffInputs(CONTAINER, stored, sent, new Set()).map((c) => [c.key, c.effect])).toEqual([["healthcheck", "state"]]);
    expect(diffInputs(CONTAINER, stored, { healthcheck: { ...sent.healthcheck, startPeriod: "10m0s" } }, new Set())).toEqual([]);
  });

  test("memorySwap left out against Docker's twice-the-memory plans an update on every up", () => {
    expect(diffInputs(CONTAINER, { memory: 1024, memorySwap: 2048 }, { memory: 1024 }, new Set()).map((c) => [c.key, c.effect])).toEqual([["memorySwap", "update"]]);
  });

  test("a Computed field left out keeps its stored value; a schema default counts as sent", () => {
    expect(diffInputs(CONTAINER, { shmSize: 64, restart: "no" }, {}, new Set())).toEqual([]);
  });

  test("memory updates in place; uploads, labels and networks replace", () => {
    const changes = diffInputs(CONTAINER, { memory: 1024, uploads: [{ file: "/a", content: "1" }] }, { memory: 2048, uploads: [{ file: "/a", content: "2" }] }, new Set());
    expect(changes.map((c) => [c.key, c.effect])).toEqual([["memory", "update"], ["uploads", "replace"]]);
  });
});

// ---- the engine's rules, planned in preview (nothing touches an engine) -----------------------

const urn = (type: string, name: string) => `urn:pulumi:dev::pg-ha::${type}::${name}`;

function entry(type: string, name: string, inputs: Record<string, unknown>, extra: Partial<StateEntry> = {}): StateEntry {
  return {
    urn: urn(type, name), type, name, id: `${name}-id`, inputs, secretInputs: [], outputs: { ...inputs },
    protect: false, retainOnDelete: false, deleteBeforeReplace: false, propertyDependencies: {}, ...extra,
  };
}

function reg(type: string, name: string, extra: Partial<Registration> = {}): Registration {
  return { urn: urn(type, name), aliases: [], protect: false, retainOnDelete: false, deleteBeforeReplace: false, propertyDependencies: {}, ...extra };
}

const create = async () => ({ id: "new-id", outputs: {} });

test("unchanged inputs are the same step, and keep the stored id and outputs (passwords, certificates)", async () => {
  const old = entry("random:index/randomPassword:RandomPassword", "pw", { length: 32 }, { outputs: { length: 32, result: "kept" } });
  const planner = new Planner([old], { preview: true });
  const result = await planner.register(reg(old.type, "pw"), old.type, "pw", { length: 32 }, { length: 32 }, create);
  expect(result).toEqual({ id: "pw-id", outputs: { length: 32, result: "kept" } });
  expect(planner.steps.map((s) => s.op)).toEqual(["same"]);
});

test("--replace replaces a resource whose inputs did not change", async () => {
  const old = entry("random:index/randomPassword:RandomPassword", "pw", { length: 32 });
  const planner = new Planner([old], { preview: true, replace: [old.urn] });
  await planner.register(reg(old.type, "pw"), old.type, "pw", { length: 32 }, { length: 32 }, create);
  expect(planner.steps.map((s) => [s.op, s.deleteFirst])).toEqual([["replace", false]]);
});

test("a protected resource is never replaced nor deleted: the plan fails", async () => {
  const volume = entry(VOLUME, "data", { name: "data", labels: [] }, { protect: true });
  const replacing = new Planner([volume], { preview: true });
  await expect(replacing.register(reg(VOLUME, "data", { protect: true }), VOLUME, "data", {}, { name: "data", labels: [{ label: "x", value: "y" }] }, create))
    .rejects.toThrow(/unable to replace resource .*data"\nas it is currently marked for protection/);
  const deleting = new Planner([volume], { preview: true });
  await expect(deleting.finish(false)).rejects.toThrow(/unable to delete resource .*data"\nas it is currently marked for protection/);
});

test("a retained resource leaves the state without being deleted", async () => {
  const volume = entry(VOLUME, "replica-data", { name: "replica-data" }, { retainOnDelete: true });
  const planner = new Planner([volume], { preview: true });
  expect(await planner.finish(false)).toEqual([]);
  expect(planner.steps.map((s) => [s.op, s.name])).toEqual([["delete", "replica-data"]]);
});

test("delete-before-replace of the network first removes the containers whose inputs depend on it", async () => {
  const network = entry(NETWORK, "net", { name: "net", ipamConfigs: [{ subnet: "172.30.80.0/24" }] }, { deleteBeforeReplace: true });
  const server = entry(CONTAINER, "server", { name: "server", networksAdvanced: [{ name: "net" }] }, { propertyDependencies: { networksAdvanced: [network.urn] } });
  const planner = new Planner([network, server], { preview: true });
  await planner.register(reg(NETWORK, "net", { deleteBeforeReplace: true }), NETWORK, "net", {}, { name: "net", ipamConfigs: [{ subnet: "172.30.81.0/24" }] }, create);
  await planner.register(reg(CONTAINER, "server", { propertyDependencies: { networksAdvanced: [network.urn] } }), CONTAINER, "server", {}, server.inputs, create);
  expect(planner.steps.map((s) => [s.op, s.name, s.deleteFirst, s.dependentOf])).toEqual([
    ["replace", "net", true, undefined],
    ["replace", "server", true, network.urn],
  ]);
});

test("without delete-before-replace the new resource is created first and the old one deleted at the end", async () => {
  const key = entry("tls:index/privateKey:PrivateKey", "key", { algorithm: "RSA" });
  const planner = new Planner([key], { preview: true });
  await planner.register(reg(key.type, "key"), key.type, "key", {}, { algorithm: "ECDSA" }, create);
  expect(planner.steps.map((s) => [s.op, s.deleteFirst])).toEqual([["replace", false]]);
});

test("a resource renamed with an alias to its old name is the same resource", async () => {
  const old = entry(VOLUME, "old-name", { name: "data" });
  const planner = new Planner([old], { preview: true });
  await planner.register(reg(VOLUME, "new-name", { aliases: [old.urn] }), VOLUME, "new-name", {}, { name: "data" }, create);
  expect(await planner.finish(false)).toHaveLength(1);
  expect(planner.steps.map((s) => s.op)).toEqual(["same"]);
});

test("a certificate inside its early-renewal window is replaced; before it, kept", async () => {
  const cert = entry("tls:index/locallySignedCert:LocallySignedCert", "cert", { validityPeriodHours: 8760, earlyRenewalHours: 720 }, {
    outputs: { validityEndTime: "2027-12-01T00:00:00Z" },
  });
  const plan = async (now: string) => {
    const planner = new Planner([cert], { preview: true, now: new Date(now) });
    await planner.register(reg(cert.type, "cert"), cert.type, "cert", {}, cert.inputs, create);
    return planner.steps.map((s) => [s.op, s.changes.map((c) => c.key)]);
  };
  expect(await plan("2027-10-31T00:00:00Z")).toEqual([["same", []]]);
  expect(await plan("2027-11-02T00:00:00Z")).toEqual([["replace", ["readyForRenewal"]]]);
});

test("a container left unhealthy by a failed first up is accepted by the next: an empty update, no wait", async () => {
  const failed = entry(CONTAINER, "server", { name: "server", wait: true }, { initErrors: ["container failed to be in healthy state"] });
  const planner = new Planner([failed], { preview: true });
  let created = false;
  await planner.register(reg(CONTAINER, "server"), CONTAINER, "server", {}, failed.inputs, async () => ((created = true), { id: "x", outputs: {} }));
  expect(created).toBe(false);
  expect(planner.steps.map((s) => [s.op, s.changes])).toEqual([["update", []]]);
  expect((await planner.finish(false))[0].initErrors).toBeUndefined();
});
