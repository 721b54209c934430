/**
 * `npm run e2e:up -- --stack dev` brings a stack up on the local engine through the executor and
 * writes its outputs (secrets revealed) to .local/<stack>/outputs.json;
 * `npm run e2e:down -- --stack dev [--keep-data]` removes everything it made;
 * `npm run e2e:clean` removes every object any executor run left on the engine, volumes included.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { parseClusterConfig } from "../../config";
import { cleanupLeftovers, loadStackConfig } from "./executor";
import { deployCluster, type Major, type Stack } from "./support/cluster";

const USAGE = "usage: e2e:up -- --stack dev|prod [--major 17|18]  |  e2e:down -- --stack dev|prod [--keep-data]  |  e2e:clean";

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function parse(argv: string[]): { command: "up" | "down" | "clean"; stack: Stack; major: Major; keepData: boolean } {
  const [command, ...rest] = argv;
  if (command === "clean") {
    if (rest.length > 0) fail(`clean takes no options (got ${rest.join(" ")})`);
    return { command, stack: "dev", major: 18, keepData: false };
  }
  if (command !== "up" && command !== "down") fail(`unknown command "${command ?? ""}"; accepted: up, down, clean`);
  let values;
  try {
    ({ values } = parseArgs({ args: rest, options: { stack: { type: "string" }, major: { type: "string" }, "keep-data": { type: "boolean" } }, strict: true }));
  } catch (e) {
    fail((e as Error).message);
  }
  const { stack = "", major = "18" } = values;
  if (stack !== "dev" && stack !== "prod") fail(`--stack "${stack}" is not accepted; accepted: dev, prod`);
  if (major !== "17" && major !== "18") fail(`--major "${major}" is not accepted; accepted: 17, 18`);
  if (command === "down" && values.major !== undefined) fail("--major applies to up only");
  if (command === "up" && values["keep-data"]) fail("--keep-data applies to down only");
  return { command, stack, major: Number(major) as Major, keepData: values["keep-data"] ?? false };
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
  if (args.command === "up") {
    // Volumes kept by `e2e:down --keep-data` are adopted: the data comes back.
    const cluster = await deployCluster(args.stack, args.major, {}, `${args.stack}-${args.major}`, false);
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, "outputs.json");
    fs.writeFileSync(file, JSON.stringify(cluster.outputs, null, 2), { mode: 0o600 });
    const o = cluster.outputs;
    console.log(`${args.stack} is up on PostgreSQL ${args.major} in ${(cluster.elapsedMs / 1000).toFixed(1)} s`);
    for (const node of o.nodes) console.log(`  ${node.role.padEnd(9)} ${node.name}`);
    for (const key of ["hostDirectUrl", "hostPooledUrl", "hostReadOnlyUrl"] as const) {
      if (o[key]) console.log(`  ${key.padEnd(15)} ${mask(o[key]!)}`);
    }
    console.log(`outputs (secrets revealed) in ${path.relative(process.cwd(), file)}`);
  } else {
    const { clusterName } = parseClusterConfig(loadStackConfig(args.stack));
    await cleanupLeftovers(undefined, { labels: [`pgha.cluster=${clusterName}`], keepData: args.keepData });
    fs.rmSync(path.join(outDir, "outputs.json"), { force: true });
    console.log(`${args.stack} (${clusterName}) removed${args.keepData ? "; data volumes kept" : ""}`);
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
