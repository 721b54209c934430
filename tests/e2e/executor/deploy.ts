// Runs a Pulumi program under mocks whose resources are real Docker objects (see state.ts),
// and reads stack configuration the way `pulumi up` would hand it to the program.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { sleep } from "./engine";
import type { StackReferenceAnswer } from "./stack-reference";
import { loadCheckpoint, Planner, saveCheckpoint, type Registration, type StateEntry, type Step } from "./planner";
import { startSession, type Session } from "./state";
import type { CreatedResource } from "./types";

/** `Output.promise()` is stripped from the SDK's typings but is what rejects when a resource fails. */
interface OutputWithPromise<T> {
    promise(): Promise<T>;
}

export interface DeployOptions {
    /** Path of the program's entry module, e.g. "index.ts" (absolute or relative to the cwd). */
    programPath: string;
    project?: string;
    stack: string;
    /** Config keys as "key" or "<project>:key"; non-strings are converted like `pulumi config set --path`. */
    config?: Record<string, unknown>;
    /** Bound on the whole deployment; default 15 minutes. */
    timeoutMs?: number;
    /**
     * The stack's checkpoint (e.g. .local/<stack>/state.json): plan against it like the engine
     * and write it back. Without it every resource is created, as before.
     */
    statePath?: string;
    /** Plan only: nothing changes on the engine and the checkpoint is not written. */
    preview?: boolean;
    /** URNs or resource names to replace whatever their diff (`pulumi up --replace`). */
    replace?: string[];
    /** The clock certificates are checked for renewal against (default: now). */
    now?: Date;
    /** Outputs of other stacks by name ("org/project/stack"), answering `pulumi.StackReference`. */
    stackReferences?: Record<string, StackReferenceAnswer>;
}

export interface DeployResult {
    /** The plan's steps, in the engine's order (only with `statePath`). */
    steps: Step[];
    /** The state the plan leads to (written to `statePath` unless this was a preview). */
    state: StateEntry[];
    outputs: Record<string, unknown>;
    resources: CreatedResource[];
    elapsedMs: number;
}

/** Pulumi hands every config value to the program as a string; structured values as JSON. */
function configString(value: unknown): string {
    return typeof value === "string" ? value : typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}

function qualifiedConfig(project: string, config: Record<string, unknown>): Record<string, string> {
    return Object.fromEntries(
        Object.entries(config).map(([key, value]) => [key.includes(":") ? key : `${project}:${key}`, configString(value)]),
    );
}

const REPO_ROOT = path.resolve(__dirname, "../../..");

/**
 * Reads `Pulumi.<stack>.yaml` (its `config:` map) as fully qualified string config, then applies
 * `overrides` (same key forms as DeployOptions.config).
 */
export function loadStackConfig(
    stack: string,
    overrides: Record<string, unknown> = {},
    options: { project?: string; projectDir?: string } = {},
): Record<string, string> {
    const project = options.project ?? "pg-ha";
    const file = path.join(options.projectDir ?? REPO_ROOT, `Pulumi.${stack}.yaml`);
    const doc = (parse(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    const config = qualifiedConfig(project, doc.config ?? {});
    for (const [key, value] of Object.entries(config)) {
        if (value.startsWith('{"secure":')) {
            throw new Error(`${file}: ${key} is an encrypted secret, which cannot be decrypted here; override it`);
        }
    }
    return { ...config, ...qualifiedConfig(project, overrides) };
}

const SHARED_SDKS = ["@pulumi/pulumi", "@pulumi/docker", "@pulumi/random", "@pulumi/tls"];

/** Where `request` resolves for a module in `dir`, or undefined when it does not. */
function resolveFrom(dir: string, request: string): string | undefined {
    try {
        return require.resolve(request, { paths: [dir] });
    } catch {
        return undefined;
    }
}

/** Requires the program afresh, so a second deploy in the same process runs it again. */
function loadProgram(programPath: string): Record<string, unknown> {
    const resolved = require.resolve(path.resolve(programPath));
    if (typeof jest !== "undefined") {
        // A fresh registry re-runs the program; the SDKs are handed over as already loaded,
        // since each fresh copy of @pulumi/pulumi would add process listeners and memory.
        for (const sdk of SHARED_SDKS) {
            const loaded = require(sdk);
            jest.doMock(sdk, () => loaded);
            // A program with its own node_modules (examples/*) gets the same copies.
            const own = resolveFrom(path.dirname(resolved), sdk);
            if (own && own !== require.resolve(sdk)) jest.doMock(own, () => loaded);
        }
        let mod: Record<string, unknown> = {};
        jest.isolateModules(() => {
            mod = require(resolved);
        });
        return mod;
    }
    // Outside jest: forget the project's own modules (not node_modules, not the executor's own).
    for (const key of Object.keys(require.cache)) {
        if (key.startsWith(REPO_ROOT) && !key.includes(`${path.sep}node_modules${path.sep}`) && path.dirname(key) !== __dirname) {
            delete require.cache[key];
        }
    }
    return require(resolved);
}

/** The monitor's request as the engine sees it: URN, aliases, options and dependencies. */
interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getProtect(): boolean;
    getRetainondelete(): boolean;
    getDeletebeforereplace(): boolean;
    getAliasesList(): { getUrn(): string; getSpec(): { getName(): string; getType(): string; getParenturn(): string; getNoparent(): boolean } | undefined }[];
    getPropertydependenciesMap(): { forEach(f: (v: { getUrnsList(): string[] }, k: string) => void): void };
}
interface MockMonitor {
    newUrn(parent: string, type: string, name: string): string;
    registerResource(req: RegisterRequest, callback: unknown): unknown;
}

/** Records every registration's options before the mocks see it (they get the inputs only). */
function recordRegistrations(session: Session): void {
    const monitor = (require("@pulumi/pulumi/runtime/settings") as { getMonitor(): MockMonitor }).getMonitor();
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, callback) => {
        const parent = req.getParent();
        const aliases = req.getAliasesList().map((a) => {
            const spec = a.getSpec();
            if (!spec) return a.getUrn();
            return monitor.newUrn(spec.getNoparent() ? "" : spec.getParenturn() || parent, spec.getType() || req.getType(), spec.getName() || req.getName());
        });
        const propertyDependencies: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((v, k) => (propertyDependencies[k] = v.getUrnsList()));
        const reg: Registration = {
            urn: monitor.newUrn(parent, req.getType(), req.getName()),
            aliases,
            protect: req.getProtect(),
            retainOnDelete: req.getRetainondelete(),
            deleteBeforeReplace: req.getDeletebeforereplace(),
            propertyDependencies,
        };
        session.registrations.set(`${req.getType()}::${req.getName()}`, reg);
        return original(req, callback);
    };
}

/** Awaits `work`, but gives up as soon as a resource has failed or the deadline has passed. */
async function until<T>(work: Promise<T>, failure: () => unknown, deadline: number, what: string): Promise<T> {
    let outcome: { value: T } | { error: unknown } | undefined;
    work.then(
        (value) => (outcome = { value }),
        (error) => (outcome = { error }),
    );
    while (!outcome) {
        const failed = failure();
        if (failed) throw failed;
        if (Date.now() > deadline) throw new Error(`deploy timed out waiting for ${what}`);
        await sleep(50);
    }
    if ("error" in outcome) throw outcome.error;
    return outcome.value;
}

/** Waits until no newResource call has been running for 200 ms (bounded by the deadline). */
async function settle(session: Session, deadline: number): Promise<void> {
    let quietSince = Date.now();
    while (Date.now() - quietSince < 200) {
        if (Date.now() > deadline) throw new Error(`deploy timed out: ${session.pending.size} resource(s) still being created`);
        if (session.pending.size > 0) quietSince = Date.now();
        await sleep(50);
    }
}

/**
 * Deploys `programPath` as stack `stack`: every resource it declares is created on the local Docker
 * engine. Resolves with the stack outputs (secrets revealed) once every resource is created;
 * rejects with the first resource error (naming the resource) after in-flight creations finish.
 */
export async function deploy(options: DeployOptions): Promise<DeployResult> {
    const started = Date.now();
    const project = options.project ?? "pg-ha";
    const deadline = started + (options.timeoutMs ?? 15 * 60_000);
    const session = startSession({ project, stack: options.stack }, options.stackReferences);
    // Errors the program raises outside its exports (a throwing apply, an invoke) surface only
    // as unhandled rejections.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const failure = () => session.errors[0] ?? unhandled[0];
    try {
        await pulumi.runtime.setMocks(session.mocks(), project, options.stack, options.preview ?? false);
        if (options.statePath) {
            session.planner = new Planner(loadCheckpoint(options.statePath), { preview: options.preview ?? false, replace: options.replace, now: options.now });
            session.preview = options.preview ?? false;
            recordRegistrations(session);
        }
        pulumi.runtime.setAllConfig(qualifiedConfig(project, options.config ?? {}));
        const program = loadProgram(options.programPath);
        const exported = pulumi.output(program) as unknown as OutputWithPromise<Record<string, unknown>>;
        const outputs = await until(exported.promise(), failure, deadline, "the stack outputs");
        // disconnect() drains every registration still in flight, exported or not.
        await until(pulumi.runtime.disconnect(), failure, deadline, "resource registrations");
        await settle(session, deadline);
        if (failure()) throw failure();
        const state = await finishPlan(session, options, false);
        return { steps: session.planner?.steps ?? [], state, outputs, resources: [...session.resources], elapsedMs: Date.now() - started };
    } catch (err) {
        // Let creations already running finish, as the engine does, so nothing appears later.
        await settle(session, deadline).catch(() => undefined);
        await finishPlan(session, options, true).catch(() => undefined);
        throw session.errors[0] ?? err;
    } finally {
        process.off("unhandledRejection", onUnhandled);
    }
}

/** Deletes what the program no longer declares and writes the checkpoint (not in a preview). */
async function finishPlan(session: Session, options: DeployOptions, failed: boolean): Promise<StateEntry[]> {
    if (!session.planner || !options.statePath) return [];
    const state = await session.planner.finish(failed);
    if (!options.preview) saveCheckpoint(options.statePath, state);
    return state;
}
