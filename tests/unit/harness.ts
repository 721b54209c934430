/** Runs the Pulumi program under the mocks with a given stack configuration. */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { created } from "./setup/mocks";

const ROOT = path.join(__dirname, "..", "..");
export type RawConfig = Record<string, string>;

/** A committed stack file's config in Pulumi's string form. */
export function stackConfig(stack: "dev" | "prod"): RawConfig {
  const file = parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8"));
  return Object.fromEntries(
    Object.entries(file.config as Record<string, unknown>).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]),
  );
}

/**
 * A committed stack file's config with the fixed primary and replicas (pg-ha:failover = none):
 * its etcd setting goes, since config.ts refuses etcd settings without Patroni.
 */
export function fixedPrimaryConfig(stack: "dev" | "prod"): RawConfig {
  const { "pg-ha:etcdMembers": _etcdMembers, ...config } = stackConfig(stack);
  return { ...config, "pg-ha:failover": "none" };
}

export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

export interface ProgramRun {
  resources: pulumi.runtime.MockResourceArgs[];
  outputs: Record<string, unknown>;
  /** Export name -> whether Pulumi holds it as a secret. */
  secret: Record<string, boolean>;
}

/** Loads index.ts afresh with CONFIG and waits for its outputs (and so for its resources). */
export async function runProgram(config: RawConfig): Promise<ProgramRun> {
  created.length = 0;
  pulumi.runtime.setAllConfig(config);
  let program: Record<string, unknown> = {};
  jest.isolateModules(() => {
    program = require("../../index");
  });
  const outputs: Record<string, unknown> = {};
  const secret: Record<string, boolean> = {};
  for (const [name, value] of Object.entries(program)) {
    if (pulumi.Output.isInstance(value)) {
      outputs[name] = await promiseOf(value);
      secret[name] = await pulumi.isSecret(value);
    } else if (value && typeof value === "object") {
      outputs[name] = await promiseOf(pulumi.output(value));
      secret[name] = await pulumi.isSecret(pulumi.output(value));
    } else {
      outputs[name] = value;
      secret[name] = false;
    }
  }
  await settle();
  return { resources: [...created], outputs, secret };
}

export function byType(run: ProgramRun, type: string): pulumi.runtime.MockResourceArgs[] {
  return run.resources.filter((r) => r.type === type);
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
/** Inputs as the mock monitor sees them carry secrets wrapped; unwrap them to assert on values. */
export function unwrapSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value && typeof value === "object") {
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIG] !== undefined) return unwrapSecrets(record.value);
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

/** Waits until no resource has registered for a few turns: nothing in Pulumi signals "all done". */
export async function settle(): Promise<void> {
  let stableRounds = 0;
  let last = -1;
  while (stableRounds < 5) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    stableRounds = created.length === last ? stableRounds + 1 : 0;
    last = created.length;
  }
}
