/**
 * The pull-request workflow that posts `pulumi preview --diff` of each stack: it must preview
 * (never apply) every committed stack, with a diff, against the shared backend, with the
 * passphrase and engine from secrets, after the unit tests passed.
 */
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";

const ROOT = path.join(__dirname, "..", "..");
const workflow = parse(fs.readFileSync(path.join(ROOT, ".github", "workflows", "preview.yml"), "utf8"));
const committedStacks = fs.readdirSync(ROOT)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => s !== undefined)
  .sort();

type Step = { uses?: string; run?: string; with?: Record<string, unknown> };
const steps = (job: string): Step[] => workflow.jobs[job].steps;
const pulumiStep = () => steps("preview").find((s) => s.uses?.startsWith("pulumi/actions@"))!;

test("runs on pull requests and may comment on them", () => {
  expect(Object.keys(workflow.on)).toEqual(["pull_request"]);
  expect(workflow.permissions["pull-requests"]).toBe("write");
  expect(workflow.permissions.contents).toBe("read");
});

test("previews every committed stack, and only previews", () => {
  expect(committedStacks).toEqual(["dev", "prod"]);
  expect([...workflow.jobs.preview.strategy.matrix.stack].sort()).toEqual(committedStacks);
  const step = pulumiStep();
  expect(step.uses).toMatch(/^pulumi\/actions@v\d+$/);
  expect(step.with).toMatchObject({ command: "preview", "stack-name": "${{ matrix.stack }}", diff: true, "comment-on-pr": true });
  const commands = JSON.stringify(workflow);
  expect(commands).not.toMatch(/command:\s*(up|update|destroy)|pulumi (up|destroy)/);
});

test("state, passphrase and engine come from secrets, never from Pulumi Cloud or the file", () => {
  expect(pulumiStep().with!["cloud-url"]).toBe("${{ secrets.PULUMI_BACKEND_URL }}");
  expect(workflow.jobs.preview.env).toEqual({
    PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
    DOCKER_HOST: "${{ secrets.DOCKER_HOST }}",
  });
  expect(JSON.stringify(workflow)).not.toMatch(/PULUMI_ACCESS_TOKEN/);
});

test("installs the locked packages before the preview, and previews only after the unit tests", () => {
  const preview = steps("preview");
  const install = preview.findIndex((s) => s.run === "npm ci --no-audit --no-fund");
  expect(install).toBeGreaterThanOrEqual(0);
  expect(install).toBeLessThan(preview.indexOf(pulumiStep()));
  expect(workflow.jobs.preview.needs).toBe("unit");
  expect(steps("unit").map((s) => s.run).filter(Boolean)).toEqual(["npm ci --no-audit --no-fund", "npm run build", "npm test"]);
});

test("uses a Node version the locked Pulumi SDK supports", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  const minimum = Number(/>=\s*(\d+)/.exec(pkg.engines.node)![1]);
  for (const job of ["unit", "preview"]) {
    const node = steps(job).find((s) => s.uses?.startsWith("actions/setup-node@"))!.with!["node-version"];
    expect(Number(node)).toBeGreaterThanOrEqual(minimum);
  }
});
