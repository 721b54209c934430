// Teardown and replacement. Mocks never see deletes or replacements, so these are explicit
// calls; teardown finds objects by label, so it also works for a run that crashed.
import { createContainer, deleteContainer } from "./container";
import { docker, LABEL, labelFilter, statusOf } from "./engine";
import { currentSession } from "./state";
import type { CreatedResource } from "./types";

const bySeqDescending = (a: { Labels?: Record<string, string> }, b: { Labels?: Record<string, string> }) =>
    Number(b.Labels?.[LABEL.seq] ?? 0) - Number(a.Labels?.[LABEL.seq] ?? 0);

/**
 * Removes every executor-created object of `stack` (all stacks if undefined): containers in
 * reverse creation order, each stopped with its recorded destroyGraceSeconds, then networks,
 * then volumes unless `keepData`.
 */
async function removeByLabel(stack: string | undefined, keepData: boolean, labels: string[] = []): Promise<void> {
    const filters = { label: [...labelFilter(stack), ...labels] };
    const containers = (await docker.listContainers({ all: true, filters })).sort(bySeqDescending);
    for (const c of containers) {
        await deleteContainer(c.Id, Number(c.Labels[LABEL.destroyGraceSeconds] ?? 0), c.Labels[LABEL.removeVolumes] !== "false");
    }
    const networks = (await docker.listNetworks({ filters })).sort(bySeqDescending);
    for (const n of networks) {
        await docker.getNetwork(n.Id).remove().catch((err: unknown) => {
            if (statusOf(err) !== 404) throw err;
        });
    }
    if (keepData) return;
    const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
    for (const v of volumes) {
        await docker.getVolume(v.Name).remove().catch((err: unknown) => {
            if (statusOf(err) !== 404) throw err;
        });
    }
}

/** Tears down the last deployment's stack (or `stack`). `keepData` keeps the volumes. */
export async function destroy(options: { stack?: string; keepData?: boolean } = {}): Promise<void> {
    const stack = options.stack ?? currentSession().ctx.stack;
    await removeByLabel(stack, options.keepData ?? false);
}

/**
 * Removes what an earlier, possibly crashed, run left behind; call it before deploy(). `labels`
 * ("key=value") narrow it further, e.g. to one cluster's objects whatever run made them.
 */
export async function cleanupLeftovers(stack?: string, options: { keepData?: boolean; labels?: string[] } = {}): Promise<void> {
    await removeByLabel(stack, options.keepData ?? false, options.labels);
}

/**
 * Replaces a container of the last deployment (by resource name or container name) the way
 * `deleteBeforeReplace: true` does: delete (grace period, removeVolumes), then create again from
 * the recorded inputs, waiting for healthy if `wait` was set. Returns the new record.
 */
export async function replaceContainer(name: string): Promise<CreatedResource> {
    const session = currentSession();
    const index = session.resources.findIndex(
        (r) => r.type === "docker:index/container:Container" && (r.name === name || r.outputs.name === name),
    );
    if (index < 0) throw new Error(`no container named "${name}" in the last deployment`);
    const old = session.resources[index];
    await deleteContainer(old.id, Number(old.inputs.destroyGraceSeconds ?? 0), old.inputs.removeVolumes !== false);
    // The old name is reused so that aliases and DNS stay the same, as with a fixed `name`.
    const { id, outputs } = await createContainer(session.ctx, old.name, { ...old.inputs, name: old.outputs.name }).catch(
        (err: Error) => {
            throw new Error(`replacing container "${old.name}": ${err.message}`, { cause: err });
        },
    );
    const replaced = { ...old, id, outputs };
    session.resources[index] = replaced;
    return replaced;
}
