// What each kind of change costs, as the planner plans it: which resources a `pulumi up` updates
// in place, which it replaces (in the engine's order), which it creates and deletes. The README's
// table is this module's output; `npx ts-node --transpile-only tests/e2e/executor/change-costs.ts [--write]`
// prints it [and rewrites it in the README], and tests/unit/change-costs.test.ts fails when the two differ.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { deploy, loadStackConfig } from "./deploy";
import type { StateEntry, Step } from "./planner";

const ROOT = path.resolve(__dirname, "../../..");
const README = path.join(ROOT, "README.md");
const BEGIN = "<!-- change-costs:begin -->";
const END = "<!-- change-costs:end -->";
const CLUSTER = "pgha-dev";

interface Change {
    what: string;
    config?: Record<string, string>;
    /** Resource names to replace, as `pulumi up --replace <urn>`. */
    replace?: string[];
    /** Days from now the `pulumi up` runs. */
    inDays?: number;
}

const CHANGES: Change[] = [
    { what: "A reloadable PostgreSQL setting (`slowQueryMs` 1000 → 500)", config: { "pg-ha:slowQueryMs": "500" } },
    { what: "A restart-only PostgreSQL setting (`maxConnections` 70 → 80)", config: { "pg-ha:maxConnections": "80" } },
    { what: "Pool sizes (`defaultPoolSize` 20 → 25)", config: { "pg-ha:defaultPoolSize": "25" } },
    { what: "`replicas` 1 → 2", config: { "pg-ha:replicas": "2" } },
    { what: "`replicas` 1 → 0", config: { "pg-ha:replicas": "0" } },
    { what: "Password rotation: `pulumi up --replace` the `app` password", replace: [`${CLUSTER}-secrets-app-password`] },
    { what: "Certificate renewal (a `pulumi up` inside `tlsRenewBeforeDays`)", inDays: 365 - 29 },
    { what: "Image upgrade (`postgresImage`)", config: { "pg-ha:postgresImage": "pg-ha/postgres-patroni:18.2" } },
    { what: "Subnet change (`networkSubnet`)", config: { "pg-ha:networkSubnet": "172.30.11.0/24" } },
];

/** The dev stack as committed, with images named as they are (nothing is pulled in a plan); the PostgreSQL image is one with Patroni. */
function baseConfig(): Record<string, string> {
    return { ...loadStackConfig("dev"), "pg-ha:pullImages": "false", "pg-ha:postgresImage": "pg-ha/postgres-patroni:18", "pg-ha:pgbouncerImage": "edoburu/pgbouncer:latest" };
}

/** A step's resource as the table names it: containers by name, everything else with its kind. */
function short(step: Step): string {
    const name = step.name.replace(`${CLUSTER}-tls-`, "").replace(`${CLUSTER}-`, "");
    return step.type === "docker:index/container:Container" ? name : `${name} ${step.type.split(":").pop()}`;
}
const list = (names: string[]) => (names.length ? names.join(", ") : "–");

/** A container's server: `x` for `x`, its secrets writer `x-secrets` and its live configuration writer `x-config`. */
const serverOf = (step: Step) => short(step).replace(/-(secrets|config)$/, "");
const isNode = (server: string) => /^node-\d+$/.test(server);

/**
 * Whether two containers' replacements are ordered by the program's dependencies: a server after
 * its writers, each node after the one before it, the router after the nodes, PgBouncer after the
 * router and the nodes.
 */
function ordered(a: Step, b: Step): boolean {
    const [x, y] = [serverOf(a), serverOf(b)];
    if (x === y || (isNode(x) && isNode(y))) return true;
    const after = (later: string, earlier: string) =>
        (later === "router" && isNode(earlier)) || (later === "pgbouncer" && (earlier === "router" || isNode(earlier)));
    return after(x, y) || after(y, x);
}

/**
 * Adjacent steps that do not depend on each other (the certificates of different hosts, the
 * containers of unrelated servers) come in the order their inputs resolve, which varies from run
 * to run: the table lists them by name, keeping the engine's order wherever a dependency sets it.
 */
function independentInNameOrder(steps: Step[]): Step[] {
    const out: Step[] = [];
    for (let i = 0; i < steps.length;) {
        let j = i + 1;
        while (j < steps.length && steps[j].type === steps[i].type) j++;
        const run = steps.slice(i, j);
        if (run[0].type !== "docker:index/container:Container") {
            out.push(...run.sort((a, b) => a.name.localeCompare(b.name)));
        } else {
            // By name, but never ahead of an earlier step it is ordered after.
            const left = [...run];
            while (left.length > 0) {
                const ready = left.filter((s, k) => !left.slice(0, k).some((earlier) => ordered(earlier, s)));
                const next = ready.sort((a, b) => a.name.localeCompare(b.name))[0];
                out.push(next);
                left.splice(left.indexOf(next), 1);
            }
        }
        i = j;
    }
    return out;
}

function row(change: Change, steps: Step[]): string {
    const named = (op: Step["op"]) => steps.filter((s) => s.op === op);
    const replaced = independentInNameOrder(named("replace")).map((s) => `${short(s)}${s.deleteFirst ? "" : " (new first)"}`);
    return `| ${change.what} | ${list(named("update").map(short))} | ${replaced.length ? replaced.join(" → ") : "–"} | ${list(named("create").map(short))} | ${list(named("delete").map((s) => `${short(s)}${s.retained ? " (kept on the engine)" : ""}`))} |`;
}

/** Plans each change against a planned first deploy of the dev stack; nothing touches the engine. */
export async function changeCostTable(): Promise<string> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgha-costs-"));
    const statePath = path.join(dir, "state.json");
    const programPath = path.join(ROOT, "index.ts");
    try {
        const first = await deploy({ programPath, stack: "dev", config: baseConfig(), statePath, preview: true });
        fs.writeFileSync(statePath, JSON.stringify({ version: 1, resources: first.state }));
        const urnOf = (name: string) => (first.state.find((e: StateEntry) => e.name === name) ?? { urn: name }).urn;
        const rows: string[] = [];
        for (const change of CHANGES) {
            const { steps } = await deploy({
                programPath, stack: "dev", config: { ...baseConfig(), ...change.config }, statePath, preview: true,
                replace: change.replace?.map(urnOf), now: change.inDays ? new Date(Date.now() + change.inDays * 86_400_000) : undefined,
            });
            rows.push(row(change, steps));
        }
        return [
            "| Change (dev stack) | Updated in place | Replaced, in order (each deleted before its replacement unless marked) | Created | Deleted |",
            "|---|---|---|---|---|",
            ...rows,
        ].join("\n");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** The table as the README holds it now. */
export function readmeTable(): string {
    const text = fs.readFileSync(README, "utf8");
    const [start, end] = [text.indexOf(BEGIN), text.indexOf(END)];
    if (start < 0 || end < 0) throw new Error(`README.md has no ${BEGIN} … ${END} section`);
    return text.slice(start + BEGIN.length, end).trim();
}

if (require.main === module) {
    changeCostTable().then((table) => {
        if (process.argv.includes("--write")) {
            const text = fs.readFileSync(README, "utf8");
            const [start, end] = [text.indexOf(BEGIN), text.indexOf(END)];
            fs.writeFileSync(README, `${text.slice(0, start + BEGIN.length)}\n${table}\n${text.slice(end)}`);
        }
        console.log(table);
        process.exit(0);
    }, (e: unknown) => {
        console.error(e);
        process.exit(1);
    });
}
