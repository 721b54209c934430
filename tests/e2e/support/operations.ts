/**
 * The README's operations section as the tests read it: its marked shell blocks, a way to run them
 * exactly as written (bash, psql, jq, and `pulumi stack output` answering from a deployment's
 * outputs), a reader for psql's aligned tables, and what each `ops-check` block must print.
 *
 * Markers, on the line before a ```sh block of the section:
 *   <!-- ops-setup -->                  run before every check (defines the variables)
 *   <!-- ops-check: NAME -->            run by tests/e2e/operations.test.ts, judged by OPS_CHECKS[NAME]
 *   <!-- ops-action: NAME, shown by tests/e2e/FILE.test.ts -->   a repair another drill runs
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type { ClusterSpec } from "../../../config";

export const README_PATH = path.join(__dirname, "..", "..", "..", "README.md");
export const OPERATIONS_HEADING = "## Operations";

export type OpsKind = "setup" | "check" | "action";

export interface OpsBlock {
  kind: OpsKind;
  /** Empty for the setup block. */
  name: string;
  /** What follows the name in the marker (for actions: which test runs it). */
  note: string;
  code: string;
  /** 1-based line of the opening fence in README.md. */
  line: number;
}

export interface ShellFence {
  language: string;
  code: string;
  line: number;
  /** The marker comment on the nearest non-blank line above the fence, if any. */
  marker?: string;
}

/** The lines of the operations section (its heading up to the next `## ` heading), with the first line number. */
export function operationsSection(readme: string): { lines: string[]; firstLine: number } {
  const lines = readme.split("\n");
  const start = lines.indexOf(OPERATIONS_HEADING);
  if (start < 0) throw new Error(`README.md has no "${OPERATIONS_HEADING}" section`);
  const next = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  return { lines: lines.slice(start, next < 0 ? lines.length : next), firstLine: start + 1 };
}

/** Every fenced block of the operations section whose language is a shell. */
export function shellFences(readme: string): ShellFence[] {
  const { lines, firstLine } = operationsSection(readme);
  const fences: ShellFence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const close = lines.findIndex((l, j) => j > i && l.startsWith("```"));
    if (close < 0) throw new Error(`README.md line ${firstLine + i}: unclosed code fence`);
    if (["sh", "bash", "shell"].includes(open[1])) {
      let above = i - 1;
      while (above >= 0 && lines[above].trim() === "") above--;
      const marker = above >= 0 && /^<!--.*-->$/.test(lines[above].trim()) ? lines[above].trim() : undefined;
      fences.push({ language: open[1], code: lines.slice(i + 1, close).join("\n"), line: firstLine + i, marker });
    }
    i = close;
  }
  return fences;
}

const MARKER = /^<!--\s*ops-(setup|check|action)(?::\s*([a-z0-9-]+))?\s*(?:,\s*(.*?))?\s*-->$/;

/** The marked blocks, in README order; a shell block without a valid marker is an error. */
export function opsBlocks(readme: string): OpsBlock[] {
  return shellFences(readme).map((fence) => {
    const m = fence.marker ? MARKER.exec(fence.marker) : null;
    if (!m) {
      throw new Error(`README.md line ${fence.line}: a shell block in "${OPERATIONS_HEADING}" without an ops marker `
        + "(<!-- ops-setup -->, <!-- ops-check: NAME --> or <!-- ops-action: NAME, shown by tests/e2e/FILE.test.ts -->)");
    }
    const kind = m[1] as OpsKind;
    if (kind !== "setup" && !m[2]) throw new Error(`README.md line ${fence.line}: ops-${kind} needs a name`);
    return { kind, name: m[2] ?? "", note: m[3] ?? "", code: fence.code, line: fence.line };
  });
}

/** Shell variables a block reads (upper-case names only; loop variables are lower-case). */
export function variablesRead(code: string): string[] {
  return [...new Set([...code.matchAll(/\$\{?([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]))];
}

/** Shell variables a block assigns at the start of a line (`NAME=` or `export NAME=`). */
export function variablesSet(code: string): string[] {
  return [...new Set([...code.matchAll(/^(?:export\s+)?([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]))];
}

// ---------------------------------------------------------------------------------------------
// Running blocks as an operator would
// ---------------------------------------------------------------------------------------------

/** Outputs the README's Outputs table lists as not secret; every other output is. */
export const PLAIN_OUTPUTS = ["caCertPem", "networkName", "nodes"];

/**
 * Writes DIR/pulumi: `pulumi stack output [--show-secrets] [--json] NAME` answered from OUTPUTS as
 * the CLI prints them (a string as is, anything else as JSON, a secret as "[secret]" without
 * --show-secrets). Any other command fails, so a block cannot depend on more of the CLI unseen.
 */
export function writePulumiStackOutput(dir: string, outputs: Record<string, unknown>): string {
  fs.mkdirSync(dir, { recursive: true });
  const outputsFile = path.join(dir, "outputs.json");
  fs.writeFileSync(outputsFile, JSON.stringify(outputs), { mode: 0o600 });
  const program = `#!/usr/bin/env node
const outputs = JSON.parse(require("fs").readFileSync(${JSON.stringify(outputsFile)}, "utf8"));
const plain = ${JSON.stringify(PLAIN_OUTPUTS)};
const [command, sub, ...rest] = process.argv.slice(2);
const fail = (message) => { process.stderr.write("error: " + message + "\\n"); process.exit(1); };
if (command !== "stack" || sub !== "output") fail("only \`pulumi stack output\` is available here");
const flags = rest.filter((a) => a.startsWith("-"));
const names = rest.filter((a) => !a.startsWith("-"));
const unknown = flags.filter((f) => f !== "--show-secrets" && f !== "--json");
if (unknown.length) fail("unknown flag " + unknown[0]);
if (names.length !== 1) fail("name exactly one output");
if (!(names[0] in outputs)) fail("current stack does not have output property '" + names[0] + "'");
let value = outputs[names[0]];
if (!plain.includes(names[0]) && !flags.includes("--show-secrets")) value = "[secret]";
const text = typeof value === "string" && !flags.includes("--json") ? value : JSON.stringify(value, null, 2);
process.stdout.write(text.endsWith("\\n") ? text : text + "\\n");
`;
  const file = path.join(dir, "pulumi");
  fs.writeFileSync(file, program, { mode: 0o700 });
  return file;
}

export interface ShellRun {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs SCRIPT in bash with -e -u -o pipefail in CWD, with BIN_DIR first on PATH. Nothing of the
 * caller's libpq environment (PG*) leaks in: the script must set what it needs itself. Only a
 * connect timeout is set, generous for a loaded machine, so an unreachable server fails the block.
 */
export function runOperatorShell(script: string, cwd: string, binDir: string, timeoutMs = 150_000): ShellRun {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PG")));
  const r = spawnSync("bash", ["-euo", "pipefail", "-c", script], {
    cwd,
    env: { ...env, PATH: `${binDir}:${process.env.PATH}`, PSQLRC: "/dev/null", PGCONNECT_TIMEOUT: "60" },
    encoding: "utf8",
    timeout: timeoutMs,
  });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

// ---------------------------------------------------------------------------------------------
// psql's aligned output
// ---------------------------------------------------------------------------------------------

export interface PsqlTable {
  columns: string[];
  rows: Record<string, string>[];
}

/**
 * Every table in psql's default (aligned) output, in order. Columns are cut at the '+' of the
 * separator line, so a value may hold '|'. The row count psql prints must match what was read.
 */
export function psqlTables(stdout: string): PsqlTable[] {
  const lines = stdout.split("\n");
  const tables: PsqlTable[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!/^-+(\+-+)*$/.test(lines[i])) continue;
    const bounds: [number, number][] = [];
    let start = 0;
    for (const part of lines[i].split("+")) {
      bounds.push([start, start + part.length]);
      start += part.length + 1;
    }
    const cells = (line: string) => bounds.map(([a, b], k) => (k === bounds.length - 1 ? line.slice(a) : line.slice(a, b)).trim());
    const columns = cells(lines[i - 1]);
    const rows: Record<string, string>[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\(\d+ rows?\)$/.test(lines[j]); j++) {
      rows.push(Object.fromEntries(cells(lines[j]).map((v, k) => [columns[k], v])));
    }
    const footer = /^\((\d+) rows?\)$/.exec(lines[j] ?? "");
    if (!footer) throw new Error(`psql output: table "${columns.join(" | ")}" has no row count:\n${stdout}`);
    if (Number(footer[1]) !== rows.length) throw new Error(`psql output: read ${rows.length} rows, psql says ${footer[1]}:\n${stdout}`);
    tables.push({ columns, rows });
    i = j;
  }
  return tables;
}

// ---------------------------------------------------------------------------------------------
// What each ops-check must print
// ---------------------------------------------------------------------------------------------

export interface OpsContext {
  spec: ClusterSpec;
  /** Slot (and application) name of each replica. */
  replicaSlots: string[];
  /**
   * A statement the test ran in each application database before the checks, slow enough to be
   * among the slowest there: WORD is in its text, it takes at least MIN_MS.
   */
  probe: { word: string; minMs: number };
}

export interface OpsCheck {
  /** What the check shows, in a sentence (the e2e test prints it with the figures). */
  shows: string;
  /** Asserts on the block's output; returns the figures to report. */
  verify(run: ShellRun, ctx: OpsContext): string;
}

function tablesOf(run: ShellRun, count: number): PsqlTable[] {
  const tables = psqlTables(run.stdout);
  expect(tables).toHaveLength(count);
  return tables;
}

function withColumns(table: PsqlTable, columns: string[]): PsqlTable {
  expect(table.columns).toEqual(expect.arrayContaining(columns));
  return table;
}

const rowsWhere = (table: PsqlTable, match: Record<string, string>) =>
  table.rows.filter((r) => Object.entries(match).every(([k, v]) => r[k] === v));

/** The subnet's first three octets, e.g. "172.30.72." for a /24. */
const subnetPrefix = (spec: ClusterSpec) => spec.networkSubnet.split(".").slice(0, 3).join(".") + ".";

export const OPS_CHECKS: Record<string, OpsCheck> = {
  replication: {
    shows: "every replica streams from the primary, asynchronously, with its replay lag",
    verify(run, { spec, replicaSlots }) {
      const [table] = tablesOf(run, 1);
      withColumns(table, ["application_name", "client_addr", "state", "sync_state", "lag_bytes", "lag", "replay_lag"]);
      expect(table.rows.map((r) => r.application_name)).toEqual(replicaSlots);
      for (const row of table.rows) {
        expect(row.state).toBe("streaming");
        expect(row.sync_state).toBe(spec.synchronousMode === "quorum" ? "quorum" : "async");
        expect(row.client_addr.startsWith(subnetPrefix(spec))).toBe(true);
        expect(row.lag_bytes).toMatch(/^\d+$/);
        expect(row.lag).toMatch(/^\d+ (bytes|kB|MB|GB)$/);
      }
      return table.rows.map((r) => `${r.application_name} ${r.state} ${r.sync_state} from ${r.client_addr}, lag ${r.lag_bytes} bytes`).join("; ");
    },
  },

  "replication-slots": {
    shows: "one active slot per replica, its WAL reserved",
    verify(run, { replicaSlots }) {
      const [table] = tablesOf(run, 1);
      withColumns(table, ["slot_name", "active", "wal_status", "retained_wal"]);
      expect(table.rows.map((r) => r.slot_name)).toEqual(replicaSlots);
      for (const row of table.rows) {
        expect(row.active).toBe("t");
        expect(row.wal_status).toBe("reserved");
        expect(row.retained_wal).toMatch(/^\d+ (bytes|kB|MB|GB)$/);
      }
      return table.rows.map((r) => `${r.slot_name} active, ${r.wal_status}, retains ${r.retained_wal}`).join("; ");
    },
  },

  "pgbouncer-pools": {
    shows: "PgBouncer's pools for each database and its read-only entry, in the configured pool mode, with the clients the test holds",
    verify(run, { spec }) {
      const [table] = tablesOf(run, 1);
      withColumns(table, ["database", "user", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "maxwait", "pool_mode"]);
      const figures: string[] = [];
      for (const database of spec.databases) {
        for (const entry of [database, `${database}_ro`]) {
          const [pool] = rowsWhere(table, { database: entry, user: database });
          expect(pool).toBeDefined();
          expect(pool.pool_mode).toBe(spec.pool.mode);
          // The test holds one client open on each entry of each database.
          expect(Number(pool.cl_active)).toBeGreaterThanOrEqual(1);
          expect(pool.cl_waiting).toBe("0");
          figures.push(`${entry}/${database} ${pool.pool_mode}: cl_active ${pool.cl_active}, cl_waiting ${pool.cl_waiting}, sv_active ${pool.sv_active}, sv_idle ${pool.sv_idle}`);
        }
      }
      return figures.join("; ");
    },
  },

  tls: {
    shows: "ssl on with TLS 1.3 as the minimum, and TLSv1.3 on every TCP connection: clients, PgBouncer's server connections, WAL senders",
    verify(run, { spec, replicaSlots }) {
      const [settings, connections] = tablesOf(run, 2);
      withColumns(settings, ["name", "setting"]);
      expect(Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]))).toEqual({ ssl: "on", ssl_min_protocol_version: "TLSv1.3" });
      withColumns(connections, ["backend_type", "usename", "datname", "ssl", "version", "cipher"]);
      for (const row of connections.rows) {
        expect(`${row.backend_type} ${row.usename}: ssl ${row.ssl} ${row.version}`).toBe(`${row.backend_type} ${row.usename}: ssl t TLSv1.3`);
      }
      // The monitor itself, the replicas' WAL senders, and the application (direct and through PgBouncer).
      expect(rowsWhere(connections, { backend_type: "walsender", usename: "replicator" })).toHaveLength(replicaSlots.length);
      expect(rowsWhere(connections, { backend_type: "client backend", usename: "monitor" }).length).toBeGreaterThanOrEqual(1);
      for (const database of spec.databases) {
        expect(rowsWhere(connections, { backend_type: "client backend", usename: database, datname: database }).length).toBeGreaterThanOrEqual(1);
      }
      const ciphers = [...new Set(connections.rows.map((r) => r.cipher))].join(", ");
      return `${connections.rows.length} TCP connections, all TLSv1.3 (${ciphers})`;
    },
  },

  "pg-stat-statements": {
    shows: "pg_stat_statements exists in every application database and lists the statements run there",
    verify(run, { spec, probe }) {
      const tables = tablesOf(run, 2 * spec.databases.length);
      const figures: string[] = [];
      spec.databases.forEach((database, i) => {
        const [extension, top] = [tables[2 * i], tables[2 * i + 1]];
        withColumns(extension, ["current_database", "extname", "extversion"]);
        expect(extension.rows).toHaveLength(1);
        expect(extension.rows[0]).toMatchObject({ current_database: database, extname: "pg_stat_statements" });
        withColumns(top, ["calls", "mean_ms", "query"]);
        expect(top.rows.length).toBeGreaterThanOrEqual(1);
        expect(top.rows.length).toBeLessThanOrEqual(5);
        // Slowest first; the probe is among them (only the start-up's CREATE EXTENSION may be slower).
        expect(top.rows.map((r) => Number(r.mean_ms))).toEqual(top.rows.map((r) => Number(r.mean_ms)).sort((a, b) => b - a));
        const probeRow = top.rows.find((r) => r.query.includes(probe.word));
        expect(probeRow).toBeDefined();
        expect(Number(probeRow!.mean_ms)).toBeGreaterThanOrEqual(probe.minMs);
        figures.push(`${database}: pg_stat_statements ${extension.rows[0].extversion}, ${top.rows.length} statements, `
          + top.rows.map((r) => `${r.mean_ms} ms x${r.calls} "${r.query}"`).join(", "));
      });
      return figures.join("; ");
    },
  },

  "connection-use": {
    shows: "client connections on the primary against max_connections, as a percentage",
    verify(run, { spec }) {
      const [table] = tablesOf(run, 1);
      withColumns(table, ["connections", "max_connections", "pct"]);
      expect(table.rows).toHaveLength(1);
      const { connections, max_connections: max, pct } = table.rows[0];
      expect(Number(max)).toBe(spec.node.maxConnections);
      // At least the monitor and the application's direct client the test holds.
      expect(Number(connections)).toBeGreaterThanOrEqual(2);
      expect(Number(pct)).toBeCloseTo(Math.round((1000 * Number(connections)) / Number(max)) / 10, 5);
      return `${connections} of ${max} connections (${pct} %)`;
    },
  },

  "cache-hit-ratio": {
    shows: "the buffer cache hit ratio over every database, a percentage",
    verify(run) {
      const [table] = tablesOf(run, 1);
      withColumns(table, ["cache_hit_ratio"]);
      expect(table.rows).toHaveLength(1);
      const ratio = table.rows[0].cache_hit_ratio;
      expect(ratio).toMatch(/^\d{1,3}\.\d{2}$/);
      expect(Number(ratio)).toBeGreaterThan(0);
      expect(Number(ratio)).toBeLessThanOrEqual(100);
      return `cache hit ratio ${ratio} %`;
    },
  },

  "connections-by-state": {
    shows: "client connections and WAL senders by state: this query active, the idle clients the test holds, one WAL sender per replica",
    verify(run, { replicaSlots }) {
      const [table] = tablesOf(run, 1);
      withColumns(table, ["backend_type", "state", "count"]);
      const count = (backendType: string, state: string) => Number(rowsWhere(table, { backend_type: backendType, state })[0]?.count ?? 0);
      expect(count("client backend", "active")).toBeGreaterThanOrEqual(1);
      expect(count("client backend", "idle")).toBeGreaterThanOrEqual(1);
      const walSenders = rowsWhere(table, { backend_type: "walsender" }).reduce((n, r) => n + Number(r.count), 0);
      expect(walSenders).toBe(replicaSlots.length);
      return table.rows.map((r) => `${r.backend_type} ${r.state || "(none)"} ${r.count}`).join(", ");
    },
  },
};
