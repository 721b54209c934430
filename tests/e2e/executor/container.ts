// docker:index/container:Container: create and delete with terraform-provider-docker v4.5
// semantics (ContainerCreate on the default bridge → network connect → uploads → start → wait).
import type * as pulumi from "@pulumi/pulumi";
import type * as dockerSdk from "@pulumi/docker";
import type Docker from "dockerode";
import { parseGoDuration } from "./duration";
import { autoName, docker, executorLabels, LABEL, labelMap, logTail, sleep, statusOf } from "./engine";
import type { HandlerContext, HandlerResult, Inputs } from "./types";
import { uploadArchive, validateUploads } from "./uploads";

export type ContainerInputs = pulumi.Unwrap<dockerSdk.ContainerArgs>;

const MB = 1024 * 1024;

/** The provider's inputs as an Engine API ContainerCreate body (on the default bridge). */
function createOptions(name: string, inputs: ContainerInputs, labels: Record<string, string>): Docker.ContainerCreateOptions {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of inputs.ports ?? []) {
        const key = `${p.internal}/${p.protocol ?? "tcp"}`;
        exposed[key] = {};
        // external unset → "" lets the engine pick a free port, like the provider.
        (bindings[key] ??= []).push({ HostIp: p.ip ?? "0.0.0.0", HostPort: p.external ? String(p.external) : "" });
    }
    const binds: string[] = [];
    const anonymous: Record<string, object> = {};
    const volumesFrom: string[] = [];
    for (const v of inputs.volumes ?? []) {
        const ro = v.readOnly ? ":ro" : "";
        if (v.fromContainer) volumesFrom.push(v.fromContainer);
        else if (v.hostPath) binds.push(`${v.hostPath}:${v.containerPath}${ro}`);
        else if (v.volumeName) binds.push(`${v.volumeName}:${v.containerPath}${ro}`);
        else if (v.containerPath) anonymous[v.containerPath] = {};
    }
    const hc = inputs.healthcheck;
    const duration = (d: string | undefined) => (d === undefined ? undefined : parseGoDuration(d));
    return {
        name,
        Image: inputs.image,
        Hostname: inputs.hostname,
        Domainname: inputs.domainname,
        Cmd: inputs.command,
        Entrypoint: inputs.entrypoints,
        Env: inputs.envs,
        Labels: labels,
        User: inputs.user,
        WorkingDir: inputs.workingDir,
        Tty: inputs.tty ?? false,
        OpenStdin: inputs.stdinOpen ?? false,
        StopSignal: inputs.stopSignal,
        StopTimeout: inputs.stopTimeout,
        ExposedPorts: exposed,
        Volumes: anonymous,
        Healthcheck: hc && {
            Test: hc.tests,
            Interval: duration(hc.interval),
            Timeout: duration(hc.timeout),
            StartPeriod: duration(hc.startPeriod),
            StartInterval: duration(hc.startInterval),
            Retries: hc.retries,
        },
        HostConfig: {
            PortBindings: bindings,
            PublishAllPorts: inputs.publishAllPorts ?? false,
            Binds: binds,
            VolumesFrom: volumesFrom,
            Mounts: (inputs.mounts ?? []).map(mountSettings),
            Tmpfs: inputs.tmpfs,
            Memory: inputs.memory ? inputs.memory * MB : undefined,
            // -1 (unlimited) passes through; positive values are MB.
            MemorySwap: inputs.memorySwap && inputs.memorySwap > 0 ? inputs.memorySwap * MB : inputs.memorySwap,
            MemoryReservation: inputs.memoryReservation ? inputs.memoryReservation * MB : undefined,
            NanoCpus: inputs.cpus ? Math.round(parseFloat(inputs.cpus) * 1e9) : undefined,
            CpuShares: inputs.cpuShares,
            CpusetCpus: inputs.cpuSet,
            ShmSize: inputs.shmSize ? inputs.shmSize * MB : undefined,
            RestartPolicy: { Name: inputs.restart ?? "no", MaximumRetryCount: inputs.maxRetryCount ?? 0 },
            Ulimits: (inputs.ulimits ?? []).map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
            CapAdd: inputs.capabilities?.adds,
            CapDrop: inputs.capabilities?.drops,
            LogConfig: inputs.logDriver ? { Type: inputs.logDriver, Config: inputs.logOpts ?? {} } : undefined,
            Init: inputs.init ?? false,
            ReadonlyRootfs: inputs.readOnly ?? false,
            Sysctls: inputs.sysctls,
            Privileged: inputs.privileged ?? false,
            NetworkMode: inputs.networkMode,
            ExtraHosts: (inputs.hosts ?? []).map((h) => `${h.host}:${h.ip}`),
            Dns: inputs.dns,
            DnsOptions: inputs.dnsOpts,
            DnsSearch: inputs.dnsSearches,
            SecurityOpt: inputs.securityOpts,
            GroupAdd: inputs.groupAdds,
            PidMode: inputs.pidMode,
            IpcMode: inputs.ipcMode,
            UsernsMode: inputs.usernsMode,
            AutoRemove: inputs.rm ?? false,
            Runtime: inputs.runtime,
        },
    };
}

type Mount = NonNullable<ContainerInputs["mounts"]>[number];

function mountSettings(m: Mount): Docker.MountSettings {
    const volume = m.volumeOptions;
    return {
        Target: m.target,
        Type: m.type as Docker.MountType,
        Source: m.source ?? "",
        ReadOnly: m.readOnly ?? false,
        BindOptions: m.bindOptions?.propagation ? { Propagation: m.bindOptions.propagation as Docker.MountPropagation } : undefined,
        VolumeOptions: volume && {
            NoCopy: volume.noCopy ?? false,
            Labels: labelMap(volume.labels),
            // The Engine treats an empty driver name as the default driver.
            DriverConfig: { Name: volume.driverName ?? "", Options: volume.driverOptions ?? {} },
        },
        TmpfsOptions: m.tmpfsOptions && { SizeBytes: m.tmpfsOptions.sizeBytes ?? 0, Mode: m.tmpfsOptions.mode ?? 0 },
    };
}

/** Polls State.Health.Status every second until "healthy", bounded by `timeoutSeconds`. */
async function waitHealthy(container: Docker.Container, timeoutSeconds: number): Promise<void> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
        const state = (await container.inspect()).State;
        if (!state.Health) {
            throw new Error("wait is set but the container has no healthcheck");
        }
        if (state.Health.Status === "healthy") return;
        // The provider would keep polling until the timeout; an exited container cannot turn healthy.
        if ((state.Status === "exited" || state.Status === "dead") && !state.Restarting) {
            throw new Error(
                `container exited with code ${state.ExitCode} while waiting to be healthy\n` +
                    `--- last logs ---\n${await logTail(container.id)}`,
            );
        }
        if (Date.now() >= deadline) {
            const lastCheck = state.Health.Log?.at(-1)?.Output?.trim() ?? "(no health check has run)";
            throw new Error(
                `container failed to be in healthy state after ${timeoutSeconds}s ` +
                    `(status ${state.Health.Status})\n--- last health check output ---\n${lastCheck}\n` +
                    `--- last logs ---\n${await logTail(container.id)}`,
            );
        }
        await sleep(1000);
    }
}

/** Reads back what the provider reports after create: name, ports, network data, exit code. */
async function readOutputs(container: Docker.Container, inputs: ContainerInputs): Promise<Record<string, unknown>> {
    const info = await container.inspect();
    const ports = Object.entries(info.NetworkSettings.Ports ?? {}).flatMap(([key, hostBindings]) => {
        const [internal, protocol] = key.split("/");
        return (hostBindings ?? []).map((b) => ({
            internal: Number(internal),
            external: Number(b.HostPort),
            ip: b.HostIp,
            protocol,
        }));
    });
    // The SDK names this output networkDatas (the provider's network_data).
    const networkDatas = Object.entries(info.NetworkSettings.Networks ?? {}).map(([networkName, n]) => ({
        networkName,
        ipAddress: n.IPAddress,
        ipPrefixLength: n.IPPrefixLen,
        gateway: n.Gateway,
        macAddress: n.MacAddress,
        globalIpv6Address: n.GlobalIPv6Address,
        globalIpv6PrefixLength: n.GlobalIPv6PrefixLen,
        ipv6Gateway: n.IPv6Gateway,
    }));
    return {
        name: info.Name.replace(/^\//, ""),
        // Only a running container has published ports to report; else echo what was asked.
        ports: ports.length > 0 ? ports : (inputs.ports ?? []),
        networkDatas,
        exitCode: info.State.Running ? undefined : info.State.ExitCode,
        start: inputs.start ?? true,
        mustRun: inputs.mustRun ?? true,
        removeVolumes: inputs.removeVolumes ?? true,
        restart: inputs.restart ?? "no",
        wait: inputs.wait ?? false,
        waitTimeout: inputs.waitTimeout ?? 60,
    };
}

export async function createContainer(ctx: HandlerContext, resourceName: string, raw: Inputs): Promise<HandlerResult & { stored: Inputs }> {
    const inputs = raw as ContainerInputs;
    const uploads = inputs.uploads ?? [];
    validateUploads(uploads); // plan-time validation in the provider: nothing is created on error
    const name = inputs.name ?? autoName(resourceName);
    const labels = {
        ...labelMap(inputs.labels),
        ...executorLabels(ctx.stack, resourceName),
        // Teardown by label must honour these two without the Pulumi state.
        [LABEL.destroyGraceSeconds]: String(inputs.destroyGraceSeconds ?? 0),
        [LABEL.removeVolumes]: String(inputs.removeVolumes ?? true),
    };
    const container = await docker.createContainer(createOptions(name, inputs, labels));

    const networks = inputs.networksAdvanced ?? [];
    if (networks.length > 0) {
        // The provider creates on the default bridge, then swaps it for the listed networks.
        await docker
            .getNetwork("bridge")
            .disconnect({ Container: container.id, Force: false })
            .catch((err: unknown) => {
                if (!/is not connected to the network bridge/.test(String(err))) throw err;
            });
        for (const n of networks) {
            await docker.getNetwork(n.name).connect({
                Container: container.id,
                EndpointConfig: {
                    Aliases: n.aliases,
                    IPAMConfig: { IPv4Address: n.ipv4Address, IPv6Address: n.ipv6Address },
                },
            });
        }
    }
    for (const upload of uploads) {
        await container.putArchive(await uploadArchive(upload), { path: "/" });
    }
    if (inputs.start ?? true) {
        await container.start();
        if (inputs.wait) {
            // The provider has set the id before it waits: a failed wait leaves a resource behind.
            await waitHealthy(container, inputs.waitTimeout ?? 60).catch((err: Error) => {
                throw Object.assign(err, { partialId: container.id });
            });
        }
    }
    const info = await container.inspect();
    return { id: container.id, outputs: await readOutputs(container, inputs), stored: { ...inputs, ...readBack(info) } };
}

const MB_OF = (bytes: number) => (bytes > 0 ? bytes / MB : bytes);

/** Go's time.Duration.String() for whole nanoseconds: "2s", "1m30s", "10m0s", "500ms", "0s". */
export function goDurationString(ns: number): string {
    if (ns === 0) return "0s";
    if (ns < 1e9) return ns % 1e6 === 0 ? `${ns / 1e6}ms` : ns % 1e3 === 0 ? `${ns / 1e3}µs` : `${ns}ns`;
    const h = Math.floor(ns / 3600e9), m = Math.floor((ns % 3600e9) / 60e9);
    const s = ((ns % 60e9) / 1e9).toString();
    return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}

/** The provider's nanoInt64ToDecimalString (helpers.go): 1e9 -> "1.0", 1.5e9 -> "1.5". */
export function nanoCpusString(nano: number): string {
    if (nano === 0) return "0";
    const whole = Math.floor(nano / 1e9), frac = String(nano % 1e9).padStart(9, "0").replace(/0+$/, "");
    return frac === "" ? `${whole}.0` : `${whole}.${frac}`;
}

/**
 * What resourceDockerContainerRead stores over the inputs (resource_docker_container_funcs.go):
 * the fields whose spelling or value Docker decides, and that a later plan compares against.
 */
export function readBack(info: Docker.ContainerInspectInfo): Record<string, unknown> {
    const host = info.HostConfig as Docker.HostConfig & { NanoCpus?: number; Init?: boolean | null };
    const hc = info.Config.Healthcheck as { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number } | undefined;
    return {
        memory: MB_OF(host.Memory ?? 0),
        memorySwap: MB_OF(host.MemorySwap ?? 0),
        memoryReservation: MB_OF(host.MemoryReservation ?? 0),
        shmSize: MB_OF(host.ShmSize ?? 0),
        ...(host.NanoCpus ? { cpus: nanoCpusString(host.NanoCpus) } : {}),
        init: host.Init ?? false,
        restart: host.RestartPolicy?.Name ?? "no",
        maxRetryCount: host.RestartPolicy?.MaximumRetryCount ?? 0,
        ...(hc?.Test
            ? {
                  healthcheck: {
                      tests: hc.Test,
                      interval: goDurationString(hc.Interval ?? 0),
                      timeout: goDurationString(hc.Timeout ?? 0),
                      startPeriod: goDurationString(hc.StartPeriod ?? 0),
                      startInterval: goDurationString(hc.StartInterval ?? 0),
                      retries: hc.Retries ?? 0,
                  },
              }
            : {}),
    };
}

/** resourceDockerContainerUpdate: ContainerUpdate with the restart policy and resources, nothing else. */
export async function updateContainer(id: string, raw: Inputs): Promise<void> {
    const inputs = raw as ContainerInputs;
    const swap = inputs.memorySwap ?? 0;
    await docker.getContainer(id).update({
        RestartPolicy: { Name: inputs.restart ?? "no", MaximumRetryCount: inputs.maxRetryCount ?? 0 },
        CpuShares: inputs.cpuShares ?? 0,
        Memory: (inputs.memory ?? 0) * MB,
        MemoryReservation: (inputs.memoryReservation ?? 0) * MB,
        CpusetCpus: inputs.cpuSet ?? "",
        ...(swap !== 0 ? { MemorySwap: swap > 0 ? swap * MB : swap } : {}),
    });
}

/** Deletes like the provider: ContainerStop with the grace period (0 if unset), then force-remove. */
export async function deleteContainer(id: string, destroyGraceSeconds: number, removeVolumes: boolean): Promise<void> {
    const container = docker.getContainer(id);
    try {
        await container.stop({ t: destroyGraceSeconds });
    } catch (err) {
        // 304: already stopped; 404: already gone.
        if (statusOf(err) === 404) return;
        if (statusOf(err) !== 304) throw err;
    }
    await container.remove({ v: removeVolumes, force: true }).catch((err: unknown) => {
        if (statusOf(err) !== 404) throw err;
    });
}
