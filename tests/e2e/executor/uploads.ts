// Container `uploads` as terraform-provider-docker v4.5 writes them: one tar entry per upload,
// owned by root unless owner/group say otherwise, put into the created container at "/".
import * as fs from "fs";
import * as tar from "tar-stream";
import type * as dockerOut from "@pulumi/docker/types/output";

type Upload = dockerOut.ContainerUpload;

const PERMISSIONS = /^0[0-7]{3}$/;

/** Checks every upload like the provider's schema does at plan time, before anything is created. */
export function validateUploads(uploads: Upload[]): void {
    uploads.forEach((u, i) => {
        const where = `uploads[${i}] (${u.file})`;
        if (u.permissions !== undefined && !PERMISSIONS.test(u.permissions)) {
            throw new Error(
                `invalid value for ${where}.permissions: "${u.permissions}" must be an octal file mode ` +
                    `matching ^0[0-7]{3}$, e.g. "0640"`,
            );
        }
        const sources = [u.content, u.contentBase64, u.source].filter((v) => v !== undefined && v !== "");
        if (sources.length !== 1) {
            throw new Error(`${where}: exactly one of 'content', 'contentBase64' or 'source' must be set`);
        }
        for (const field of ["owner", "group"] as const) {
            const value = u[field];
            if (value !== undefined && !/^\d+$/.test(value)) {
                throw new Error(`${where}.${field}: only numeric ids are supported here, got "${value}"`);
            }
        }
    });
}

/** Mode: `permissions` wins, else 0744 if executable, else 0644. */
function uploadMode(u: Upload): number {
    if (u.permissions !== undefined) return parseInt(u.permissions, 8);
    return u.executable ? 0o744 : 0o644;
}

function uploadContent(u: Upload): Buffer {
    if (u.content) return Buffer.from(u.content, "utf8");
    if (u.contentBase64) return Buffer.from(u.contentBase64, "base64");
    return fs.readFileSync(u.source as string);
}

/**
 * One tar archive holding one regular-file entry. No directory entries: the engine creates
 * missing parents itself, 0755 and root-owned, exactly as for the provider's archive; an
 * explicit directory entry would instead re-own and re-mode a directory that already exists.
 */
export async function uploadArchive(u: Upload): Promise<Buffer> {
    const pack = tar.pack();
    const content = uploadContent(u);
    pack.entry(
        {
            name: u.file,
            type: "file",
            mode: uploadMode(u),
            uid: Number(u.owner ?? 0),
            gid: Number(u.group ?? 0),
            size: content.length,
            mtime: new Date(),
        },
        content,
    );
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}
