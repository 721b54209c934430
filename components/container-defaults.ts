/** What every container of the cluster shares: labels, health-check timing, log rotation. */
import type * as docker from "@pulumi/docker";

export function clusterLabels(clusterName: string, role: string, node: string): docker.types.input.ContainerLabel[] {
  return [
    { label: "pgha.cluster", value: clusterName },
    { label: "pgha.role", value: role },
    { label: "pgha.node", value: node },
  ];
}

/**
 * Whole seconds as Go's time.Duration.String() spells them ("2s", "1m30s", "10m0s"): the provider
 * stores what Docker reports in that form, so any other spelling is a diff on every `pulumi up`.
 */
export function goDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}

/**
 * A health check running SCRIPT; `interval` is explicit because 0 means the daemon's 30 s. Each
 * check is a process started in the container (an exec through runc); a check that starts a Go
 * client costs a tenth of a CPU second, so those run less often (SLOW_CHECK_SECONDS).
 */
export function healthcheck(script: string, startPeriodSeconds: number, intervalSeconds = 2): docker.types.input.ContainerHealthcheck {
  return { tests: ["CMD", script], interval: goDuration(intervalSeconds), timeout: goDuration(5), startPeriod: goDuration(startPeriodSeconds), retries: 5 };
}

/**
 * Interval of the checks that start a heavy client (etcdctl). Docker's health only tells `pulumi up` when a container is ready and shows an
 * operator its state; failover never waits for it (Patroni and HAProxy check on their own).
 */
export const SLOW_CHECK_SECONDS = 5;

/** CPUs as the provider reads them back (nanoInt64ToDecimalString): 1 -> "1.0", 4 -> "4.0"; "1" would replace the container on every `pulumi up`. */
export function cpusString(cpus: number): string {
  return Number.isInteger(cpus) ? cpus.toFixed(1) : String(cpus);
}

/**
 * Docker's init (`--init`, tini) as PID 1, never the server: a process orphaned inside the
 * container (a health-check client Docker gave up on) is re-parented to PID 1, and a postmaster
 * takes the exit of a child it did not start for a crashed backend and restarts every server
 * process. tini reaps such orphans and passes stop signals on to the server.
 */
export const REAPING_INIT = { init: true };

/** Bounded json-file logs, so a chatty server cannot fill the host's disk. */
export const LOG_OPTIONS = { logDriver: "json-file", logOpts: { "max-size": "50m", "max-file": "3" } };

/**
 * What the cluster's small services (etcd, HAProxy) share: restarted by policy, 10 s to stop,
 * 256 MB with no swap (memorySwap as Docker reads it back), an init as PID 1 and bounded logs.
 */
export const SMALL_SERVICE = {
  restart: "unless-stopped",
  destroyGraceSeconds: 10,
  memory: 256,
  memorySwap: 256,
  ...REAPING_INIT,
  ...LOG_OPTIONS,
};

export type Upload = docker.types.input.ContainerUpload;

/** A readable text upload; secrets get mode 0600 and stay root-only until the start-up script copies them. */
export function upload(file: string, content: docker.types.input.ContainerUpload["content"], permissions = "0644"): Upload {
  return { file, content, permissions };
}
