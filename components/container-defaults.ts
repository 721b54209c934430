/** What every container of the cluster shares: labels, health-check timing, log rotation. */
import type * as docker from "@pulumi/docker";

export function clusterLabels(clusterName: string, role: string, node: string): docker.types.input.ContainerLabel[] {
  return [
    { label: "pgha.cluster", value: clusterName },
    { label: "pgha.role", value: role },
    { label: "pgha.node", value: node },
  ];
}

/** A health check running SCRIPT; `interval` is explicit because 0 means the daemon's 30 s. */
export function healthcheck(script: string, startPeriodSeconds: number): docker.types.input.ContainerHealthcheck {
  return { tests: ["CMD", script], interval: "2s", timeout: "5s", startPeriod: `${startPeriodSeconds}s`, retries: 5 };
}

/** Bounded json-file logs, so a chatty server cannot fill the host's disk. */
export const LOG_OPTIONS = { logDriver: "json-file", logOpts: { "max-size": "50m", "max-file": "3" } };

export type Upload = docker.types.input.ContainerUpload;

/** A readable text upload; secrets get mode 0600 and stay root-only until the start-up script copies them. */
export function upload(file: string, content: docker.types.input.ContainerUpload["content"], permissions = "0644"): Upload {
  return { file, content, permissions };
}
