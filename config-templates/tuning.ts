/**
 * Tuning: PGTune's recommendations for the container's limits, then the cluster's own
 * deviations, each with the reason it is printed next to in postgresql.conf.
 */
import type { ClusterSpec } from "../spec";
import { pgtune } from "./pgtune";

export { pgtune } from "./pgtune";
export type { PgtuneInput, PgtuneStorage, PgtuneWorkload } from "./pgtune";

export interface TuningSetting {
  name: string;
  value: string;
  /** Set when the value deviates from PGTune's, or PGTune has no such setting. */
  why?: string;
}

/** WAL senders and slots: one per replica, plus room for clones taken by pg_basebackup (two each). */
export function walSenders(replicas: number): number {
  return Math.max(10, 2 * replicas + 4);
}

type TuningInput = Pick<ClusterSpec, "replicas" | "postgres" | "node">;

/** PGTune's settings for one node, with the cluster's deviations applied in place or appended. */
export function clusterTuningSettings(spec: TuningInput): TuningSetting[] {
  const base = pgtune({
    pgVersion: spec.postgres.major,
    workload: spec.node.workload,
    memoryBytes: spec.node.memoryMb * 1024 * 1024,
    cpus: spec.node.cpus,
    maxConnections: spec.node.maxConnections,
    storage: spec.node.storage,
  });
  const senders = String(walSenders(spec.replicas));
  const deviations: TuningSetting[] = [
    { name: "wal_level", value: "replica", why: "streaming replicas need it (PGTune's desktop profile says minimal)" },
    { name: "max_wal_senders", value: senders, why: "one per replica plus room for pg_basebackup clones" },
    { name: "max_replication_slots", value: senders, why: "one slot per replica, same headroom as the senders" },
  ];
  if (spec.postgres.major >= 18) {
    deviations.push({ name: "io_method", value: "worker", why: "Docker's default seccomp profile blocks io_uring" });
  }

  const settings: TuningSetting[] = Object.entries(base).map(([name, value]) => ({ name, value }));
  for (const deviation of deviations) {
    const existing = settings.find((s) => s.name === deviation.name);
    if (existing === undefined) settings.push(deviation);
    else if (existing.value !== deviation.value) Object.assign(existing, deviation);
  }
  return settings;
}

/** The same settings as a name -> value map. */
export function clusterTuning(spec: TuningInput): Record<string, string> {
  return Object.fromEntries(clusterTuningSettings(spec).map((s) => [s.name, s.value]));
}

/** A PGTune memory value ("2GB", "512MB", "6898kB") in kB. */
export function parseMemory(value: string): number {
  const m = /^(\d+)(kB|MB|GB|TB)$/.exec(value);
  if (!m) throw new Error(`parseMemory: "${value}" is not a memory value such as 512MB`);
  const factor = { kB: 1, MB: 1024, GB: 1024 ** 2, TB: 1024 ** 3 }[m[2] as "kB" | "MB" | "GB" | "TB"];
  return Number(m[1]) * factor;
}
