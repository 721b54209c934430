/**
 * Tuned against stock: the deployed postgresql.conf with its TUNING block, and the same file with
 * that block replaced by PostgreSQL's defaults (only max_connections is kept, so both allow the
 * same clients). Everything else (TLS, pg_hba, WAL and archiving, logging, extensions,
 * autovacuum) stays identical. The swap happens in the same container: copy, restart, wait.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { docker, query, waitFor } from "../tests/e2e/support/cluster";

export const CONF_PATH = "/etc/pg-ha/postgresql.conf";

export interface StockConf {
  conf: string;
  /** The settings the TUNING block set (name -> value), all but max_connections dropped. */
  tuned: Record<string, string>;
  kept: Record<string, string>;
}

/** Replaces the TUNING block of a rendered postgresql.conf by PostgreSQL's defaults. */
export function stockConf(tunedConf: string): StockConf {
  const lines = tunedConf.split("\n");
  const header = lines.findIndex((l) => /^# TUNING\b/.test(l));
  if (header < 0) throw new Error("stockConf: no '# TUNING' section in postgresql.conf");
  // The header is framed by dashed lines; the block runs to the next framed section.
  const start = header + 2;
  let end = start;
  while (end < lines.length && !/^#-{10,}/.test(lines[end])) end++;
  const tuned: Record<string, string> = {};
  for (const line of lines.slice(start, end)) {
    const m = /^\s*([a-z_.]+)\s*=\s*(.*?)\s*(?:#.*)?$/.exec(line);
    if (m) tuned[m[1]] = m[2];
  }
  if (Object.keys(tuned).length === 0) throw new Error("stockConf: the TUNING section sets nothing");
  const kept: Record<string, string> = tuned.max_connections ? { max_connections: tuned.max_connections } : {};
  const replacement = [
    "# pg-ha bench: PostgreSQL's stock settings (the tuning was removed); max_connections kept as deployed.",
    ...Object.entries(kept).map(([k, v]) => `${k} = ${v}`),
    "",
  ];
  const conf = [...lines.slice(0, start), ...replacement, ...lines.slice(end)].join("\n");
  return { conf, tuned, kept };
}

/** Copies CONF into CONTAINER as its postgresql.conf, restarts it and waits until URL answers. */
export async function applyConf(container: string, conf: string, url: string, caPem: string, timeoutMs = 120_000): Promise<number> {
  const file = path.join(os.tmpdir(), `pgha-bench-${container}-${process.pid}.conf`);
  fs.writeFileSync(file, conf, { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  const started = Date.now();
  try {
    await docker("cp", file, `${container}:${CONF_PATH}`);
  } finally {
    fs.rmSync(file, { force: true });
  }
  await docker("restart", "-t", "60", container);
  await waitFor(`${container} answering after restart`, async () => (await query(url, caPem, "SELECT 1 AS ok"))[0].ok === 1, timeoutMs, 200);
  return Date.now() - started;
}

/** The values the running server uses for NAMES. */
export async function currentSettings(url: string, caPem: string, names: string[]): Promise<Record<string, string>> {
  const rows = await query<{ name: string; setting: string }>(url, caPem, "SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name", [names]);
  return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
}
