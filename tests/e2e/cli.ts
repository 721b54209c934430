/**
 * `npm run e2e:preview -- --stack dev [--config key=value]... [--replace URN]... [--expect-no-changes]`
 * plans a deployment against the stack's checkpoint (.local/<stack>/state.json) and prints it the
 * way `pulumi preview --diff` does; `npm run e2e:up -- --stack dev [...]` applies that plan to the
 * local engine, prints its steps and writes the outputs (secrets revealed) to .local/<stack>/outputs.json;
 * `npm run e2e:down -- --stack dev [--keep-data]` removes everything it made;
 * `npm run e2e:clean` removes every object any executor run left on the engine, volumes included.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { parseClusterConfig } from "../../config";
import { cleanupLeftovers, deploy, loadStackConfig } from "./executor";
import { formatPlan } from "./executor/display";
import { testOverrides, type Major, type Stack, type StackOutputs } from "./support/cluster";

const USAGE =
  "usage: e2e:preview|e2e:up -- --stack dev|prod [--major 17|18] [--config key=value]... [--replace URN]... [--expect-no-changes (preview)]" +
  "  |  e2e:down -- --stack dev|prod [--config key=value]... [--keep-data]  |  e2e:clean";

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

type Command = "preview" | "up" | "down" | "clean";
interface Args { command: Command; stack: Stack; major: Major; keepData: boolean; config: Record<string, string>; replace: string[]; expectNoChanges: boolean }

function parse(argv: string[]): Args {
  const [command, ...rest] = argv;
  const none = { config: {}, replace: [], expectNoChanges: false };
  if (command === "clean") {
    if (rest.length > 0) fail(`clean takes no options (got ${rest.join(" ")})`);
    return { command, stack: "dev", major: 18, keepData: false, ...none };
  }
  if (command !== "up" && command !== "down" && command !== "preview") fail(`unknown command "${command ?? ""}"; accepted: preview, up, down, clean`);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        stack: { type: "string" }, major: { type: "string" }, "keep-data": { type: "boolean" },
        config: { type: "string", multiple: true }, replace: { type: "string", multiple: true }, "expect-no-changes": { type: "boolean" },
      },
      strict: true,
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  const { stack = "", major = "18" } = values;
  if (stack !== "dev" && stack !== "prod") fail(`--stack "${stack}" is not accepted; accepted: dev, prod`);
  if (major !== "17" && major !== "18") fail(`--major "${major}" is not accepted; accepted: 17, 18`);
  if (command === "down" && (values.major !== undefined || values.replace)) fail("--major and --replace apply to preview and up only");
  if (command !== "down" && values["keep-data"]) fail("--keep-data applies to down only");
  if (command !== "preview" && values["expect-no-changes"]) fail("--expect-no-changes applies to preview only");
  const config: Record<string, string> = {};
  for (const pair of values.config ?? []) {
    const m = /^([A-Za-z][\w-]*:)?([A-Za-z][\w]*)=(.*)$/s.exec(pair);
    if (!m) fail(`--config "${pair}" is not accepted; accepted: key=value or pg-ha:key=value`);
    config[`${m[1] ?? "pg-ha:"}${m[2]}`] = m[3];
  }
  return {
    command, stack, major: Number(major) as Major, keepData: values["keep-data"] ?? false,
    config, replace: values.replace ?? [], expectNoChanges: values["expect-no-changes"] ?? false,
  };
}

const mask = (url: string) => url.replace(/:[^:@/]+@/, ":****@");

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args.command === "clean") {
    await cleanupLeftovers();
    console.log("removed every container, network and volume the e2e executor had made");
    return;
  }
  const outDir = path.join(__dirname, "..", "..", ".local", args.stack);
  const statePath = path.join(outDir, "state.json");
  if (args.command === "preview" || args.command === "up") {
    const config = { ...loadStackConfig(args.stack), ...testOverrides(args.stack, args.major), ...args.config };
    const { clusterName } = parseClusterConfig(config); // bad config: refused before anything is planned
    // No checkpoint yet: what an earlier run left of this cluster goes (data volumes are kept and adopted).
    if (args.command === "up" && !fs.existsSync(statePath)) await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${clusterName}`], keepData: true });
    const preview = args.command === "preview";
    const result = await deploy({ programPath: path.join(__dirname, "..", "..", "index.ts"), stack: args.stack, config, statePath, preview, replace: args.replace })
      .catch((e: Error) => {
        process.stderr.write(`error: ${e.message}\n`);
        process.exit(1);
      });
    console.log(formatPlan(result.steps, args.stack, preview));
    if (preview) {
      const changes = result.steps.filter((s) => s.op !== "same").length;
      if (args.expectNoChanges && changes > 0) {
        process.stderr.write(`error: no changes were expected but ${changes} step(s) were planned\n`);
        process.exit(1);
      }
      return;
    }
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, "outputs.json");
    fs.writeFileSync(file, JSON.stringify(result.outputs, null, 2), { mode: 0o600 });
    const o = result.outputs as unknown as StackOutputs;
    console.log(`${args.stack} is up on PostgreSQL ${args.major} in ${(result.elapsedMs / 1000).toFixed(1)} s`);
    for (const node of o.nodes) console.log(`  ${node.role.padEnd(9)} ${node.name}`);
    for (const key of ["hostDirectUrl", "hostPooledUrl", "hostReadOnlyUrl"] as const) {
      if (o[key]) console.log(`  ${key.padEnd(15)} ${mask(o[key]!)}`);
    }
    console.log(`outputs (secrets revealed) in ${path.relative(process.cwd(), file)}`);
  } else {
    const { clusterName } = parseClusterConfig({ ...loadStackConfig(args.stack), ...args.config });
    await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${clusterName}`], keepData: args.keepData });
    fs.rmSync(path.join(outDir, "outputs.json"), { force: true });
    fs.rmSync(statePath, { force: true });
    console.log(`${args.stack} (${clusterName}) removed${args.keepData ? "; data volumes kept" : ""}`);
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
