/**
 * The README's consumer section shows the example's own code: each TypeScript block there is
 * found verbatim in examples/consumer (the program or the service), so the two cannot drift.
 * tests/e2e/consumer.test.ts runs that code against a live cluster.
 */
import * as fs from "fs";
import * as path from "path";

const ROOT = path.join(__dirname, "..", "..");
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const SOURCES = ["examples/consumer/index.ts", "examples/consumer/service/src/main.ts"];

/** The README's lines from HEADING up to the next `## ` heading. */
function section(readme: string, heading: string): string {
  const lines = readme.split("\n");
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`README.md has no "${heading}" section`);
  const next = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  return lines.slice(start, next < 0 ? undefined : next).join("\n");
}

const consumerSection = section(read("README.md"), "## Connecting a service");
const tsBlocks = [...consumerSection.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);

test("the section shows the StackReference, the service's container and its pg pools", () => {
  expect(tsBlocks).toHaveLength(3);
  expect(tsBlocks[0]).toMatch(/new pulumi\.StackReference\(config\.require\("clusterStack"\)\)/);
  for (const output of ["pooledUrl", "readOnlyUrl", "caCertPem", "networkName"]) expect(tsBlocks[0]).toContain(`requireOutput("${output}")`);
  expect(tsBlocks[1]).toMatch(/new docker\.Container/);
  expect(tsBlocks[1]).toContain("init: true");
  expect(tsBlocks[2]).toContain("&sslrootcert=${caFile}");
});

test.each(tsBlocks.map((block, i) => [i, block]))("block %i is the example's code, verbatim", (_i, block) => {
  const foundIn = SOURCES.filter((file) => read(file).includes(block as string));
  expect(foundIn).toHaveLength(1);
});

test("the example's stack references the dev stack, and its Dockerfile pins the node image the section names", () => {
  expect(read("examples/consumer/Pulumi.dev.yaml")).toContain("pg-ha-consumer:clusterStack: organization/pg-ha/dev");
  const from = /^ARG NODE_IMAGE=(\S+)$/m.exec(read("examples/consumer/service/Dockerfile"))?.[1];
  expect(from).toMatch(/^node:24\.19\.0-trixie-slim@sha256:[0-9a-f]{64}$/);
  expect(consumerSection).toContain("`node:24.19.0-trixie-slim` pinned by digest");
});
