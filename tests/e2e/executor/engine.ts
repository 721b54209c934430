// The Docker engine as the executor sees it: one client, the labels that mark what the
// executor created (so teardown can find it again from any process), and small helpers.
import * as crypto from "crypto";
import Docker from "dockerode";

export const docker = new Docker(); // DOCKER_HOST or /var/run/docker.sock

/** Labels put on every container, network and volume the executor creates. */
export const LABEL = {
    marker: "pgha.e2e",
    stack: "pgha.e2e.stack",
    resource: "pgha.e2e.resource",
    /** Creation sequence, so teardown can go in reverse creation order. */
    seq: "pgha.e2e.seq",
    destroyGraceSeconds: "pgha.e2e.destroy-grace-seconds",
    removeVolumes: "pgha.e2e.remove-volumes",
} as const;

let seqCounter = 0;

/** The labels the executor adds to an object it creates for `resourceName` in `stack`. */
export function executorLabels(stack: string, resourceName: string): Record<string, string> {
    // Millisecond clock plus a counter: increasing across runs and within one.
    const seq = Date.now() * 1000 + (seqCounter++ % 1000);
    return {
        [LABEL.marker]: "true",
        [LABEL.stack]: stack,
        [LABEL.resource]: resourceName,
        [LABEL.seq]: String(seq),
    };
}

/** `[{label, value}]` as the provider takes labels, to Docker's map. */
export function labelMap(labels: { label: string; value: string }[] | undefined): Record<string, string> {
    return Object.fromEntries((labels ?? []).map((l) => [l.label, l.value]));
}

/** The label filter selecting executor objects, optionally of one stack. */
export function labelFilter(stack?: string): string[] {
    return stack === undefined ? [`${LABEL.marker}=true`] : [`${LABEL.marker}=true`, `${LABEL.stack}=${stack}`];
}

/** Pulumi auto-naming: the resource name plus a random suffix, used when `name` is not given. */
export function autoName(resourceName: string): string {
    return `${resourceName}-${crypto.randomBytes(4).toString("hex").slice(0, 7)}`;
}

/** The HTTP status of a dockerode error, if any. */
export function statusOf(err: unknown): number | undefined {
    return typeof err === "object" && err !== null && "statusCode" in err
        ? (err as { statusCode?: number }).statusCode
        : undefined;
}

/** The last `lines` lines of a container's stdout+stderr, demultiplexed. */
export async function logTail(containerId: string, lines = 30): Promise<string> {
    try {
        const container = docker.getContainer(containerId);
        const info = await container.inspect();
        const raw = (await container.logs({ stdout: true, stderr: true, tail: lines, follow: false })) as Buffer;
        return info.Config.Tty ? raw.toString("utf8") : demuxLogs(raw);
    } catch (err) {
        return `(logs unavailable: ${(err as Error).message})`;
    }
}

/** Strips Docker's 8-byte stream frame headers from a non-TTY log buffer. */
function demuxLogs(buf: Buffer): string {
    const parts: Buffer[] = [];
    let offset = 0;
    while (offset + 8 <= buf.length) {
        const size = buf.readUInt32BE(offset + 4);
        parts.push(buf.subarray(offset + 8, offset + 8 + size));
        offset += 8 + size;
    }
    return Buffer.concat(parts).toString("utf8");
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
