/**
 * `deploy()` in a process of its own, as `pulumi up` runs beside the clients it must not disturb.
 * Run in the test's own process, the program's evaluation keeps Node's event loop busy for
 * seconds, and a writer in that process would report that as a gap in the cluster's service.
 *
 *   ts-node --transpile-only tests/e2e/support/deploy-process.ts <options.json> <result.json>
 *
 * options.json holds DeployOptions (`now` as an ISO string); result.json gets steps and outputs.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { deploy, type DeployOptions } from "../executor";
import type { Step } from "../executor/planner";
import { run } from "./drill";

export interface DeployProcessResult {
  steps: Step[];
  outputs: Record<string, unknown>;
}

/** Runs OPTIONS in a child process and returns its plan's steps and the stack's outputs. */
export async function deployInProcess(options: DeployOptions, timeoutMs = 1_200_000): Promise<DeployProcessResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgha-deploy-"));
  try {
    const input = path.join(dir, "options.json");
    const output = path.join(dir, "result.json");
    fs.writeFileSync(input, JSON.stringify({ ...options, now: options.now?.toISOString() }));
    const r = await run("npx", ["ts-node", "--transpile-only", __filename, input, output], { timeoutMs });
    if (r.status !== 0) throw new Error(`deploy of ${options.stack} failed (exit ${r.status}): ${r.stderr.split("\n").slice(-15).join("\n")}`);
    return JSON.parse(fs.readFileSync(output, "utf8")) as DeployProcessResult;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(input: string, output: string): Promise<void> {
  const raw = JSON.parse(fs.readFileSync(input, "utf8")) as DeployOptions & { now?: string };
  const result = await deploy({ ...raw, now: raw.now ? new Date(raw.now) : undefined });
  fs.writeFileSync(output, JSON.stringify({ steps: result.steps, outputs: result.outputs }));
}

if (require.main === module) {
  const [input, output] = process.argv.slice(2);
  main(input, output).then(() => process.exit(0), (e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
