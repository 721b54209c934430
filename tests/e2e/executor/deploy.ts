// Runs a Pulumi program under mocks whose resources are real Docker objects (see state.ts),
// and reads stack configuration the way `pulumi up` would hand it to the program.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { sleep } from "./engine";
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
}

export interface DeployResult {
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

/** Requires the program afresh, so a second deploy in the same process runs it again. */
function loadProgram(programPath: string): Record<string, unknown> {
    const resolved = require.resolve(path.resolve(programPath));
    if (typeof jest !== "undefined") {
        // A fresh registry re-runs the program; the SDKs are handed over as already loaded,
        // since each fresh copy of @pulumi/pulumi would add process listeners and memory.
        for (const sdk of SHARED_SDKS) {
            const loaded = require(sdk);
            jest.doMock(sdk, () => loaded);
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
    const session = startSession({ project, stack: options.stack });
    // Errors the program raises outside its exports (a throwing apply, an invoke) surface only
    // as unhandled rejections.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const failure = () => session.errors[0] ?? unhandled[0];
    try {
        await pulumi.runtime.setMocks(session.mocks(), project, options.stack, false);
        pulumi.runtime.setAllConfig(qualifiedConfig(project, options.config ?? {}));
        const program = loadProgram(options.programPath);
        const exported = pulumi.output(program) as unknown as OutputWithPromise<Record<string, unknown>>;
        const outputs = await until(exported.promise(), failure, deadline, "the stack outputs");
        // disconnect() drains every registration still in flight, exported or not.
        await until(pulumi.runtime.disconnect(), failure, deadline, "resource registrations");
        await settle(session, deadline);
        if (failure()) throw failure();
        return { outputs, resources: [...session.resources], elapsedMs: Date.now() - started };
    } catch (err) {
        // Let creations already running finish, as the engine does, so nothing appears later.
        await settle(session, deadline).catch(() => undefined);
        throw session.errors[0] ?? err;
    } finally {
        process.off("unhandledRejection", onUnhandled);
    }
}
