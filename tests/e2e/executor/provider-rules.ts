// What a change to each input does, per resource type, as the providers decide it. One table, so
// a reader can check every rule against the source it was read from.
//
//   replace  the field is ForceNew / RequiresReplace: a change replaces the resource
//   update   updated in place, applied to the engine (docker update for a container)
//   state    a diff that plans an update, but the provider's Update applies nothing to the engine
//
// Fields the table does not name are not allowed in the program (see tests/unit/provider-rules.test.ts).

export type Effect = "replace" | "update" | "state";

export interface TypeRules {
    /** Provider release the rules were read from, and the file. */
    source: string;
    /** The provider itself deletes before it replaces (no program option needed). */
    deleteBeforeReplace?: boolean;
    fields: Record<string, Effect>;
    /** Optional+Computed: left out by the program, the stored value stands (no diff). */
    computed?: string[];
    /** Schema defaults: a field the program leaves out is compared as this value. */
    defaults?: Record<string, unknown>;
}

const TFP = "kreuzwerker/terraform-provider-docker v4.5.0 (bridged by @pulumi/docker 5.2)";

const CONTAINER_FORCE_NEW = [
    "name", "image", "hostname", "domainname", "command", "entrypoints", "user", "dns", "dnsOpts", "dnsSearches",
    "publishAllPorts", "workingDir", "capabilities", "securityOpts", "runtime", "platform", "stopSignal", "stopTimeout",
    "mounts", "volumes", "ports", "hosts", "ulimits", "envs", "privileged", "devices", "labels", "shmSize", "logDriver",
    "logOpts", "networkMode", "networksAdvanced", "pidMode", "usernsMode", "uploads", "sysctls", "ipcMode", "groupAdds",
    "tty", "stdinOpen", "storageOpts", "gpus", "cpus", "cgroupnsMode", "cgroupParent", "readOnly", "deviceRequests",
];
// resourceDockerContainerUpdate: ContainerUpdate for exactly these (restart policy and resources).
const CONTAINER_UPDATE = [
    "restart", "maxRetryCount", "cpuShares", "memory", "memoryReservation", "cpuSet", "memorySwap",
    "deviceReadBps", "deviceReadIops", "deviceWriteBps", "deviceWriteIops",
];
// Neither ForceNew nor in the update list: the plan shows an update, the container keeps its
// settings (healthcheck, init and tmpfs included: an edit never reaches a running container).
const CONTAINER_STATE_ONLY = [
    "rm", "start", "wait", "waitTimeout", "attach", "logs", "mustRun", "removeVolumes", "destroyGraceSeconds",
    "healthcheck", "init", "tmpfs", "containerReadRefreshTimeoutMilliseconds", "cpuPeriod", "cpuQuota",
];

const fields = (effect: Effect, names: string[]) => Object.fromEntries(names.map((n) => [n, effect]));

export const PROVIDER_RULES: Record<string, TypeRules> = {
    "docker:index/container:Container": {
        source: `${TFP}: internal/provider/resource_docker_container.go (schema), resource_docker_container_funcs.go (Update, Read); pulumi/pulumi-docker provider/resources.go sets DeleteBeforeReplace`,
        deleteBeforeReplace: true,
        fields: { ...fields("replace", CONTAINER_FORCE_NEW), ...fields("update", CONTAINER_UPDATE), ...fields("state", CONTAINER_STATE_ONLY) },
        computed: [
            "hostname", "command", "entrypoints", "securityOpts", "runtime", "platform", "stopSignal", "stopTimeout", "envs",
            "labels", "shmSize", "logDriver", "ipcMode", "healthcheck", "init",
        ],
        defaults: {
            restart: "no", start: true, wait: false, waitTimeout: 60, mustRun: true, removeVolumes: true, rm: false,
            readOnly: false, tty: false, stdinOpen: false, attach: false, logs: false, memoryReservation: 0,
        },
    },
    "docker:index/network:Network": {
        source: `${TFP}: internal/provider/resource_docker_network.go (every field ForceNew)`,
        fields: fields("replace", ["name", "labels", "driver", "options", "internal", "attachable", "ingress", "ipamDriver", "ipamOptions", "ipamConfigs", "ipv6", "checkDuplicate"]),
    },
    "docker:index/volume:Volume": {
        source: `${TFP}: internal/provider/resource_docker_volume.go (every field ForceNew)`,
        fields: fields("replace", ["name", "labels", "driver", "driverOpts"]),
    },
    "docker:index/remoteImage:RemoteImage": {
        source: `${TFP}: internal/provider/resource_docker_image.go (name, build, platform, triggers, pull_triggers ForceNew)`,
        fields: { ...fields("replace", ["name", "build", "platform", "triggers", "pullTriggers"]), ...fields("state", ["keepLocally", "forceRemove"]) },
    },
    "random:index/randomPassword:RandomPassword": {
        source: "hashicorp/terraform-provider-random v3: internal/provider/resource_password.go (every argument RequiresReplace)",
        fields: fields("replace", ["length", "special", "upper", "lower", "numeric", "number", "minUpper", "minLower", "minNumeric", "minSpecial", "overrideSpecial", "keepers"]),
    },
    "random:index/randomBytes:RandomBytes": {
        source: "hashicorp/terraform-provider-random v3: internal/provider/resource_bytes.go (length, keepers RequiresReplace)",
        fields: fields("replace", ["length", "keepers"]),
    },
    "tls:index/privateKey:PrivateKey": {
        source: "hashicorp/terraform-provider-tls v4: internal/provider/resource_private_key.go (every argument RequiresReplace)",
        fields: fields("replace", ["algorithm", "rsaBits", "ecdsaCurve"]),
    },
    "tls:index/selfSignedCert:SelfSignedCert": {
        source: "hashicorp/terraform-provider-tls v4: internal/provider/resource_self_signed_cert.go, common_cert.go (RequiresReplace; ready_for_renewal inside early_renewal_hours)",
        fields: fields("replace", ["privateKeyPem", "subject", "dnsNames", "ipAddresses", "uris", "validityPeriodHours", "earlyRenewalHours", "allowedUses", "isCaCertificate", "maxPathLength", "setSubjectKeyId", "setAuthorityKeyId"]),
    },
    "tls:index/certRequest:CertRequest": {
        source: "hashicorp/terraform-provider-tls v4: internal/provider/resource_cert_request.go (every argument RequiresReplace)",
        fields: fields("replace", ["privateKeyPem", "subject", "dnsNames", "ipAddresses", "uris"]),
    },
    "tls:index/locallySignedCert:LocallySignedCert": {
        source: "hashicorp/terraform-provider-tls v4: internal/provider/resource_locally_signed_cert.go, common_cert.go (RequiresReplace; ready_for_renewal inside early_renewal_hours)",
        fields: fields("replace", ["certRequestPem", "caPrivateKeyPem", "caCertPem", "validityPeriodHours", "earlyRenewalHours", "allowedUses", "isCaCertificate", "maxPathLength", "setSubjectKeyId"]),
    },
};

/** The effect of changing `field` of a `type`; an unknown field is treated as replacing. */
export function effectOf(type: string, field: string): Effect {
    return PROVIDER_RULES[type]?.fields[field] ?? "replace";
}
