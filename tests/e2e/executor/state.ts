// The mocks object and what one deployment has done: the resources created (in creation
// order), the newResource calls still running, and the errors they raised.
import type * as pulumi from "@pulumi/pulumi";
import { dockerHandlers } from "./docker";
import { imageHandlers } from "./image";
import { randomHandlers } from "./random";
import { readStackReference, STACK_REFERENCE_TYPE, type StackReferenceAnswer } from "./stack-reference";
import { tlsHandlers } from "./tls";
import type { Planner, Registration } from "./planner";
import type { CreatedResource, Handler, HandlerContext, Inputs } from "./types";

/** The runtime's marker for a secret value in serialized properties. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

const handlers: Record<string, Handler> = { ...dockerHandlers, ...imageHandlers, ...tlsHandlers, ...randomHandlers };

/** Replaces every `{<sig>: <secret>, value}` wrapper, at any depth, by its value. */
export function unwrapSecrets(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (value === null || typeof value !== "object") return value;
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIG] === SECRET_VALUE) return unwrapSecrets(record.value);
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v)]));
}

export class Session {
    readonly resources: CreatedResource[] = [];
    readonly pending = new Set<Promise<unknown>>();
    readonly errors: Error[] = [];
    /** Set when the deployment plans against a checkpoint (and, in a preview, changes nothing). */
    planner?: Planner;
    preview = false;
    /** Each registration's options and dependencies, by "<type>::<name>", as the monitor received them. */
    readonly registrations = new Map<string, Registration>();

    constructor(
        readonly ctx: HandlerContext,
        /** Outputs of other stacks, by stack name, answering the program's StackReferences. */
        readonly stackReferences: Record<string, StackReferenceAnswer> = {},
    ) {}

    /** The mocks passed to `pulumi.runtime.setMocks`: every custom resource becomes a real object. */
    mocks(): pulumi.runtime.Mocks {
        return {
            newResource: (args) =>
                args.type === STACK_REFERENCE_TYPE ? this.readStackReference(args) : this.track(this.newResource(args)),
            call: (args) => {
                throw new Error(`the e2e executor implements no provider functions (invoke "${args.token}")`);
            },
        };
    }

    private track<T>(promise: Promise<T>): Promise<T> {
        this.pending.add(promise);
        const settled = () => this.pending.delete(promise);
        promise.then(settled, settled);
        return promise;
    }

    /**
     * A reference to a stack whose outputs were not given is an error; the read never completes,
     * so nothing that depends on it runs (the engine stops there too).
     */
    private readStackReference(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
        try {
            return Promise.resolve(readStackReference(this.stackReferences, args));
        } catch (err) {
            this.errors.push(new Error(`${args.type} "${args.name}": ${(err as Error).message}`, { cause: err }));
            return new Promise(() => undefined);
        }
    }

    private async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string | undefined; state: Record<string, unknown> }> {
        const inputs = unwrapSecrets(args.inputs) as Inputs;
        // Components (and explicit providers, whose settings are ignored: every resource goes to
        // the local engine) have nothing to create.
        if (args.custom === false) return { id: undefined, state: inputs };
        if (args.type.startsWith("pulumi:providers:")) return { id: `${args.name}-provider`, state: inputs };
        // Like the engine, start nothing new once a resource has failed.
        if (this.errors.length > 0) return { id: undefined, state: {} };
        try {
            if (args.id) throw new Error(`reading or importing existing resources (id "${args.id}") is not supported`);
            const handler = handlers[args.type];
            if (!handler) throw new Error(`no e2e executor handler for resource type "${args.type}"`);
            const reg = this.registrations.get(`${args.type}::${args.name}`);
            const create = () => (this.preview ? previewCreate(handler, this.ctx, args.type, args.name, inputs) : handler(this.ctx, args.name, inputs));
            const { id, outputs } = this.planner && reg
                ? await this.planner.register(reg, args.type, args.name, args.inputs as Inputs, inputs, create).catch((err: Error & { partialId?: string }) => {
                      if (err.partialId) this.planner!.recordPartial(reg, args.type, args.name, err.partialId, inputs, err.message);
                      throw err;
                  })
                : await handler(this.ctx, args.name, inputs);
            this.resources.push({ type: args.type, name: args.name, id, inputs, outputs });
            return { id, state: { ...inputs, ...outputs } };
        } catch (err) {
            // Reported by deploy(), not by failing the registration: a failed registration makes
            // the runtime reject every dependent Output, dozens of unhandled rejections (which
            // jest turns into test failures) for one error.
            this.errors.push(new Error(`${args.type} "${args.name}": ${(err as Error).message}`, { cause: err }));
            return { id: undefined, state: {} };
        }
    }
}

/** A preview creates nothing on the engine: tls and random values are computed, Docker objects are placeholders. */
async function previewCreate(handler: Handler, ctx: HandlerContext, type: string, name: string, inputs: Inputs): Promise<{ id: string; outputs: Record<string, unknown> }> {
    if (!type.startsWith("docker:")) return handler(ctx, name, inputs);
    return { id: "(known after apply)", outputs: { ...inputs, name: inputs.name ?? name } };
}

let current: Session | undefined;

export function startSession(ctx: HandlerContext, stackReferences?: Record<string, StackReferenceAnswer>): Session {
    current = new Session(ctx, stackReferences);
    return current;
}

/** The session of the last deploy(); teardown and replacement act on it. */
export function currentSession(): Session {
    if (!current) throw new Error("no deployment in this process: call deploy() first");
    return current;
}
