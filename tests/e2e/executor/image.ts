// docker:index/image:Image, built on the local engine and never pushed: `docker build` with the
// classic builder (DOCKER_BUILDKIT=0), which works offline when the FROM image is already local.
import { execFile } from "child_process";
import * as path from "path";
import { promisify } from "util";
import type * as pulumi from "@pulumi/pulumi";
import type * as dockerSdk from "@pulumi/docker";
import { docker, LABEL } from "./engine";
import type { HandlerContext, HandlerResult, Inputs } from "./types";

const execFileAsync = promisify(execFile);

type ImageInputs = pulumi.Unwrap<dockerSdk.ImageArgs>;

export async function buildImage(ctx: HandlerContext, resourceName: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as ImageInputs;
    if (!inputs.skipPush) {
        throw new Error(`pushing ${inputs.imageName} is not possible here (no registry is reachable): set skipPush: true`);
    }
    const context = path.resolve(inputs.build?.context ?? ".");
    const dockerfile = path.resolve(context, inputs.build?.dockerfile ?? "Dockerfile");
    const args = ["build", "-q", "-t", inputs.imageName, "-f", dockerfile];
    // Teardown leaves images in place, as for RemoteImage; the labels tell which ones a test built.
    args.push("--label", `${LABEL.marker}=true`, "--label", `${LABEL.stack}=${ctx.stack}`, "--label", `${LABEL.resource}=${resourceName}`);
    for (const [key, value] of Object.entries(inputs.build?.args ?? {})) args.push("--build-arg", `${key}=${value}`);
    if (inputs.build?.target) args.push("--target", inputs.build.target);
    args.push(context);
    await execFileAsync("docker", args, {
        env: { ...process.env, DOCKER_BUILDKIT: "0" },
        timeout: 10 * 60_000,
        maxBuffer: 16 * 1024 * 1024,
    }).catch((err: { stderr?: string; message: string }) => {
        throw new Error(`docker build of ${inputs.imageName} failed: ${(err.stderr ?? "").trim() || err.message}`);
    });
    const info = await docker.getImage(inputs.imageName).inspect();
    return {
        id: inputs.imageName,
        // The provider reports a local (not pushed) image's id as its repoDigest.
        outputs: { imageName: inputs.imageName, repoDigest: info.Id, context, dockerfile, baseImageName: inputs.imageName },
    };
}

export const imageHandlers = { "docker:index/image:Image": buildImage };
