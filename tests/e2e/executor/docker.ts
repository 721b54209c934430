// docker:index/{network,volume,remoteImage}:* with @pulumi/docker 5.2 (terraform-provider-docker
// v4.5) create semantics; containers live in container.ts.
import type * as pulumi from "@pulumi/pulumi";
import type * as dockerSdk from "@pulumi/docker";
import { createContainer } from "./container";
import { autoName, docker, executorLabels, labelMap, statusOf } from "./engine";
import type { Handler, HandlerContext, HandlerResult, Inputs } from "./types";

type NetworkInputs = pulumi.Unwrap<dockerSdk.NetworkArgs>;
type VolumeInputs = pulumi.Unwrap<dockerSdk.VolumeArgs>;
type RemoteImageInputs = pulumi.Unwrap<dockerSdk.RemoteImageArgs>;

async function createNetwork(ctx: HandlerContext, resourceName: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as NetworkInputs;
    const name = inputs.name ?? autoName(resourceName);
    const ipamConfigs = inputs.ipamConfigs ?? [];
    const network = await docker.createNetwork({
        Name: name,
        // The provider no longer sends CheckDuplicate; engines since API 1.44 reject duplicate
        // names anyway. This 20.10 engine would silently create a second network, so ask for the check.
        CheckDuplicate: true,
        Driver: inputs.driver ?? "bridge",
        Internal: inputs.internal ?? false,
        Attachable: inputs.attachable ?? false,
        Ingress: inputs.ingress ?? false,
        EnableIPv6: inputs.ipv6 ?? false,
        Options: inputs.options ?? {},
        IPAM: {
            Driver: inputs.ipamDriver ?? "default",
            Options: inputs.ipamOptions ?? {},
            Config: ipamConfigs.map((c) => ({
                Subnet: c.subnet,
                IPRange: c.ipRange,
                Gateway: c.gateway,
                AuxiliaryAddresses: c.auxAddress,
            })),
        },
        Labels: { ...labelMap(inputs.labels), ...executorLabels(ctx.stack, resourceName) },
    });
    const info = await network.inspect();
    return {
        id: info.Id,
        outputs: {
            name,
            driver: info.Driver,
            internal: info.Internal,
            attachable: info.Attachable,
            ingress: info.Ingress,
            ipv6: info.EnableIPv6,
            options: info.Options ?? {},
            ipamDriver: info.IPAM?.Driver ?? "default",
            ipamConfigs: (info.IPAM?.Config ?? []).map((c) => ({
                subnet: c.Subnet,
                gateway: c.Gateway,
                ipRange: c.IPRange,
            })),
            scope: info.Scope,
        },
    };
}

async function createVolume(ctx: HandlerContext, resourceName: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as VolumeInputs;
    const name = inputs.name ?? autoName(resourceName);
    // A volume kept from an earlier run (destroy with keepData, or retainOnDelete in a real
    // stack) is adopted as is: re-deploying must find the data that was meant to survive.
    const exists = await docker
        .getVolume(name)
        .inspect()
        .then(() => true)
        .catch((err: unknown) => {
            if (statusOf(err) === 404) return false;
            throw err;
        });
    if (!exists) {
        await docker.createVolume({
            Name: name,
            Driver: inputs.driver ?? "local",
            DriverOpts: inputs.driverOpts ?? {},
            Labels: { ...labelMap(inputs.labels), ...executorLabels(ctx.stack, resourceName) },
        });
    }
    const info = await docker.getVolume(name).inspect();
    return {
        id: name,
        outputs: { name, driver: info.Driver, driverOpts: inputs.driverOpts ?? {}, mountpoint: info.Mountpoint },
    };
}

/** Images are never pulled here (no registry is reachable): the image must already be local. */
async function createRemoteImage(_ctx: HandlerContext, _name: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as RemoteImageInputs;
    const info = await docker
        .getImage(inputs.name)
        .inspect()
        .catch((err: unknown) => {
            if (statusOf(err) !== 404) throw err;
            throw new Error(
                `image "${inputs.name}" is not on the local Docker engine and ` +
                    `cannot be pulled here (no registry is reachable). Build it first: bash tests/images/build.sh`,
            );
        });
    const imageId = info.Id;
    return {
        // The provider's id is "<image id><name>".
        id: `${imageId}${inputs.name}`,
        outputs: { name: inputs.name, imageId, repoDigest: info.RepoDigests?.[0] ?? imageId },
    };
}

export const dockerHandlers: Record<string, Handler> = {
    "docker:index/network:Network": createNetwork,
    "docker:index/volume:Volume": createVolume,
    "docker:index/remoteImage:RemoteImage": createRemoteImage,
    "docker:index/container:Container": createContainer,
};
