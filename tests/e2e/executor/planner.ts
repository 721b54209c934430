// Plans a deployment like the Pulumi engine: each registration is compared with the stack's
// checkpoint (what the provider stored after its last create or update) and becomes a step:
// same, create, update or replace; what the program no longer declares is deleted at the end.
// In an `up` the steps are applied to the engine as they are planned, in the engine's order.
import * as fs from "fs";
import * as path from "path";
import { effectOf, PROVIDER_RULES, type Effect } from "./provider-rules";
import { deleteContainer, readBack, updateContainer } from "./container";
import { docker, statusOf } from "./engine";
import type { HandlerResult, Inputs } from "./types";

export type Op = "same" | "create" | "update" | "replace" | "delete";

/** What the engine keeps of a resource (the local backend's checkpoint holds the same). */
export interface StateEntry {
    urn: string;
    type: string;
    name: string;
    id: string;
    /** Inputs as the provider stored them (after its read-back), secrets unwrapped. */
    inputs: Inputs;
    /** Top-level input names that hold a secret anywhere (the engine shows those as [secret]). */
    secretInputs: string[];
    outputs: Record<string, unknown>;
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    /** URNs this resource's inputs depend on, by input name. */
    propertyDependencies: Record<string, string[]>;
    /** Set when the create failed after the object existed (a health wait): the next up accepts it. */
    initErrors?: string[];
}

export interface PropertyChange {
    key: string;
    effect: Effect | "renewal";
    old: unknown;
    new: unknown;
    secret: boolean;
}

export interface Step {
    op: Op;
    urn: string;
    type: string;
    name: string;
    changes: PropertyChange[];
    /** Deleted before its replacement is created (delete-before-replace), or after. */
    deleteFirst?: boolean;
    /** Replaced because a resource it depends on is replaced first. */
    dependentOf?: string;
    /** Deleted from the state only: `retainOnDelete` leaves the object on the engine. */
    retained?: boolean;
}

export interface Registration {
    urn: string;
    aliases: string[];
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    propertyDependencies: Record<string, string[]>;
}

export interface PlanOptions {
    preview: boolean;
    /** URNs (or resource names) to replace whatever their diff, like `pulumi up --replace`. */
    replace?: string[];
    /** The clock certificates are checked for renewal against. */
    now?: Date;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Whether a serialized value holds a secret at any depth. */
export function holdsSecret(value: unknown): boolean {
    if (Array.isArray(value)) return value.some(holdsSecret);
    if (value === null || typeof value !== "object") return false;
    const record = value as Record<string, unknown>;
    return record[SECRET_SIG] !== undefined || Object.values(record).some(holdsSecret);
}

/** Canonical JSON: object keys sorted, arrays of objects (the provider's sets) sorted too. */
function canonical(value: unknown): string {
    const norm = (v: unknown): unknown => {
        if (Array.isArray(v)) {
            const items = v.map(norm);
            return items.every((i) => i !== null && typeof i === "object") ? items.map((i) => JSON.stringify(i)).sort().map((s) => JSON.parse(s)) : items;
        }
        if (v === null || typeof v !== "object") return v;
        return Object.fromEntries(Object.keys(v as object).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => [k, norm((v as Record<string, unknown>)[k])]));
    };
    return JSON.stringify(norm(value) ?? null);
}

/** An input the program leaves out and the provider stores as its zero value is no change. */
function isZero(v: unknown): boolean {
    return v === undefined || v === null || v === "" || v === 0 || v === false || (Array.isArray(v) && v.length === 0) ||
        (typeof v === "object" && v !== null && Object.keys(v).length === 0);
}

/** Healthcheck sub-fields the provider defaults ("0s", 0) when the program leaves them out. */
function withDefaults(type: string, inputs: Inputs): Inputs {
    if (type !== "docker:index/container:Container" || !inputs.healthcheck) return inputs;
    const hc = inputs.healthcheck as Record<string, unknown>;
    return { ...inputs, healthcheck: { interval: "0s", timeout: "0s", startPeriod: "0s", startInterval: "0s", retries: 0, ...hc } };
}

/** The provider's diff of stored state against the program's inputs. */
export function diffInputs(type: string, stored: Inputs, next: Inputs, secretKeys: Set<string>): PropertyChange[] {
    const a = withDefaults(type, stored);
    const b = withDefaults(type, next);
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    const changes: PropertyChange[] = [];
    for (const key of keys) {
        if (key.startsWith("__")) continue;
        const rules = PROVIDER_RULES[type];
        if (b[key] === undefined && rules?.computed?.includes(key)) continue;
        const [x, y] = [a[key] ?? rules?.defaults?.[key], b[key] ?? rules?.defaults?.[key]];
        if (canonical(x) === canonical(y) || (isZero(x) && isZero(y))) continue;
        changes.push({ key, effect: effectOf(type, key), old: x, new: y, secret: secretKeys.has(key) });
    }
    return changes;
}

/** Inside its early-renewal window a certificate reads `readyForRenewal` and is replaced. */
function readyForRenewal(entry: StateEntry, now: Date): boolean {
    const end = entry.outputs.validityEndTime;
    const hours = Number(entry.inputs.earlyRenewalHours ?? 0);
    if (typeof end !== "string") return false;
    return now.getTime() >= Date.parse(end) - hours * 3600_000;
}

export function loadCheckpoint(file: string): StateEntry[] {
    if (!fs.existsSync(file)) return [];
    return (JSON.parse(fs.readFileSync(file, "utf8")) as { resources: StateEntry[] }).resources;
}

export function saveCheckpoint(file: string, resources: StateEntry[]): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // Secrets are in here in the clear (the real backend encrypts them): owner-only.
    fs.writeFileSync(file, JSON.stringify({ version: 1, resources }, null, 2), { mode: 0o600 });
}

export class Planner {
    readonly steps: Step[] = [];
    /** The new state, in registration (dependency) order. */
    private readonly next: StateEntry[] = [];
    private readonly claimed = new Set<string>();
    /** Old resources already deleted ahead of their replacement (dependents of a delete-before-replace). */
    private readonly deletedEarly = new Map<string, string>();
    /** Old objects a create-before-delete replacement leaves for the end. */
    private readonly replacedLater: StateEntry[] = [];

    constructor(
        private readonly old: StateEntry[],
        private readonly options: PlanOptions,
    ) {}

    private findOld(reg: Registration): StateEntry | undefined {
        for (const urn of [reg.urn, ...reg.aliases]) {
            const entry = this.old.find((e) => e.urn === urn);
            if (entry && !this.claimed.has(entry.urn)) return entry;
        }
        return undefined;
    }

    private forcedReplace(reg: Registration, name: string): boolean {
        return (this.options.replace ?? []).some((r) => r === reg.urn || r === name);
    }

    /** Stored resources whose inputs depend on `urn` through a field that replaces them, transitively. */
    private dependentsToReplace(urn: string): StateEntry[] {
        const found: StateEntry[] = [];
        const visit = (target: string) => {
            for (const e of this.old) {
                if (found.includes(e) || this.claimed.has(e.urn)) continue;
                const viaReplacing = Object.entries(e.propertyDependencies).some(
                    ([key, urns]) => urns.includes(target) && effectOf(e.type, key) === "replace",
                );
                if (viaReplacing) {
                    found.push(e);
                    visit(e.urn);
                }
            }
        };
        visit(urn);
        return found;
    }

    private async deleteObject(entry: StateEntry): Promise<void> {
        if (this.options.preview || entry.retainOnDelete) return;
        switch (entry.type) {
            case "docker:index/container:Container":
                await deleteContainer(entry.id, Number(entry.inputs.destroyGraceSeconds ?? 0), entry.inputs.removeVolumes !== false);
                return;
            case "docker:index/network:Network":
                await docker.getNetwork(entry.id).remove().catch((err: unknown) => {
                    if (statusOf(err) !== 404) throw err;
                });
                return;
            case "docker:index/volume:Volume":
                await docker.getVolume(entry.id).remove().catch((err: unknown) => {
                    if (statusOf(err) !== 404) throw err;
                });
                return;
            default: // images are kept (keepLocally); tls and random live in the state only
        }
    }

    private protectedError(entry: StateEntry, what: "replace" | "delete"): Error {
        return new Error(
            `unable to ${what} resource "${entry.urn}"\nas it is currently marked for protection. To unprotect the resource, ` +
                `remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\`, or use the command:\n` +
                `\`pulumi state unprotect '${entry.urn}'\``,
        );
    }

    /**
     * One registration: plans its step and, in an up, applies it. `create` makes the object on the
     * engine (or, in a preview, stands in for it); `readBack` is what the provider stores afterwards.
     */
    async register(
        reg: Registration,
        type: string,
        name: string,
        wireInputs: Inputs,
        inputs: Inputs,
        create: () => Promise<HandlerResult & { stored?: Inputs }>,
    ): Promise<HandlerResult> {
        const secretKeys = new Set(Object.keys(wireInputs).filter((k) => holdsSecret(wireInputs[k])));
        const old = this.findOld(reg);
        if (old) this.claimed.add(old.urn);
        const entry = (result: HandlerResult & { stored?: Inputs }, initErrors?: string[]): StateEntry => ({
            urn: reg.urn, type, name, id: result.id, inputs: result.stored ?? inputs, secretInputs: [...secretKeys],
            outputs: result.outputs, protect: reg.protect, retainOnDelete: reg.retainOnDelete,
            deleteBeforeReplace: reg.deleteBeforeReplace, propertyDependencies: reg.propertyDependencies,
            ...(initErrors ? { initErrors } : {}),
        });
        const record = (e: StateEntry) => {
            this.next.push(e);
            return { id: e.id, outputs: e.outputs };
        };

        if (!old) {
            this.steps.push({ op: "create", urn: reg.urn, type, name, changes: [] });
            return record(entry(await create()));
        }
        const changes = diffInputs(type, old.inputs, inputs, new Set([...secretKeys, ...old.secretInputs]));
        if (readyForRenewal(old, this.options.now ?? new Date())) {
            changes.push({ key: "readyForRenewal", effect: "renewal", old: false, new: true, secret: false });
        }
        const earlyBy = this.deletedEarly.get(old.urn);
        const replace = earlyBy !== undefined || this.forcedReplace(reg, name) || changes.some((c) => c.effect === "replace" || c.effect === "renewal");
        if (!replace) {
            if (changes.length === 0 && !old.initErrors) {
                this.steps.push({ op: "same", urn: reg.urn, type, name, changes });
                return record({ ...old, urn: reg.urn, protect: reg.protect, retainOnDelete: reg.retainOnDelete, deleteBeforeReplace: reg.deleteBeforeReplace, propertyDependencies: reg.propertyDependencies });
            }
            // An update; after a failed create it is empty, and the provider does not wait again.
            this.steps.push({ op: "update", urn: reg.urn, type, name, changes });
            let stored: Inputs = { ...old.inputs, ...Object.fromEntries(changes.map((c) => [c.key, c.new])) };
            if (!this.options.preview && type === "docker:index/container:Container") {
                if (changes.some((c) => c.effect === "update")) await updateContainer(old.id, inputs);
                // The provider reads back after an update: a field its Update never applied
                // (init, healthcheck) returns to what the container has, and diffs again next time.
                stored = { ...stored, ...readBack(await docker.getContainer(old.id).inspect()) };
            }
            return record(entry({ id: old.id, outputs: { ...old.outputs, ...stored }, stored }));
        }

        if (old.protect) throw this.protectedError(old, "replace");
        const deleteFirst = PROVIDER_RULES[type]?.deleteBeforeReplace === true || reg.deleteBeforeReplace;
        this.steps.push({ op: "replace", urn: reg.urn, type, name, changes, deleteFirst, ...(earlyBy ? { dependentOf: earlyBy } : {}) });
        if (earlyBy !== undefined) return record(entry(await create()));
        if (deleteFirst) {
            // What would be replaced because this is goes first, in reverse dependency order.
            const dependents = this.dependentsToReplace(old.urn);
            for (const d of [...dependents].reverse()) {
                if (d.protect) throw this.protectedError(d, "replace");
                await this.deleteObject(d);
                this.deletedEarly.set(d.urn, old.urn);
            }
            await this.deleteObject(old);
            return record(entry(await create()));
        }
        const created = record(entry(await create()));
        this.replacedLater.push(old);
        return created;
    }

    /** A create that failed after the object existed: kept in the state with its error. */
    recordPartial(reg: Registration, type: string, name: string, id: string, inputs: Inputs, error: string): void {
        this.next.push({
            urn: reg.urn, type, name, id, inputs, secretInputs: [], outputs: { ...inputs }, protect: reg.protect,
            retainOnDelete: reg.retainOnDelete, deleteBeforeReplace: reg.deleteBeforeReplace,
            propertyDependencies: reg.propertyDependencies, initErrors: [error],
        });
    }

    /**
     * After the program: old objects of create-before-delete replacements, then everything the
     * program no longer declares, in reverse dependency order. Returns the new state.
     */
    async finish(failed: boolean): Promise<StateEntry[]> {
        const unclaimed = this.old.filter((e) => !this.claimed.has(e.urn));
        if (!failed) {
            for (const e of [...this.replacedLater].reverse()) await this.deleteObject(e);
            for (const e of [...unclaimed].reverse()) {
                if (e.protect) throw this.protectedError(e, "delete");
                this.steps.push({ op: "delete", urn: e.urn, type: e.type, name: e.name, changes: [], ...(e.retainOnDelete ? { retained: true } : {}) });
                if (!this.deletedEarly.has(e.urn)) await this.deleteObject(e);
            }
            return [...this.next];
        }
        // A failed up keeps what it did not get to in the state, as the engine does.
        return [...this.next, ...unclaimed.filter((e) => !this.deletedEarly.has(e.urn))];
    }
}
