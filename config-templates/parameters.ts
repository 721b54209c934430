/**
 * PostgreSQL parameters an operator sets over the tuning (pg-ha:postgresParameters): the names each
 * major version knows, read from its own servers into pg-settings/<major>.tsv by
 * scripts/postgres-parameters.sh; the ones the cluster manages itself; and the value forms that are
 * cheap to check here (anything else is left to PostgreSQL). The overrides stay plain data, name ->
 * value, so any renderer can apply them: postgresql.conf now, Patroni's postgresql.parameters later.
 */
import * as fs from "fs";
import * as path from "path";
import type { PostgresMajor } from "../spec";

export interface ParameterInfo {
  name: string;
  type: "bool" | "integer" | "real" | "enum" | "string";
  /** The unit of a number given without one ("8kB", "ms", ...); empty when it has none. */
  unit: string;
  enumValues: string[];
}

export function parameterListFile(major: PostgresMajor): string {
  return path.join(__dirname, "pg-settings", `${major}.tsv`);
}

const catalogs = new Map<PostgresMajor, Map<string, ParameterInfo>>();

/** Lower-cased name -> parameter, for one major version (PostgreSQL's names are case-insensitive). */
export function parameterCatalog(major: PostgresMajor): Map<string, ParameterInfo> {
  let catalog = catalogs.get(major);
  if (catalog === undefined) {
    catalog = new Map();
    for (const line of fs.readFileSync(parameterListFile(major), "utf8").split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const [name, type, unit, values] = line.split("\t");
      catalog.set(name.toLowerCase(), { name, type: type as ParameterInfo["type"], unit, enumValues: values ? values.split(", ") : [] });
    }
    catalogs.set(major, catalog);
  }
  return catalog;
}

/** Parameters the cluster sets itself, and why an override cannot have them. */
const MANAGED: [RegExp, string][] = [
  [/^ssl($|_)/, "TLS with certificates from the cluster's own CA; the lowest version is pg-ha:tlsMinProtocol"],
  [/^(listen_addresses|port|unix_socket_\w+)$/, "each server listens on port 5432 of the cluster network and on its own socket; host ports are pg-ha:publish*Port"],
  [/^(hba_file|ident_file|config_file|data_directory|external_pid_file)$/, "the files are where the cluster puts them; pg_hba.conf admits TLS from pg-ha:networkSubnet only"],
  [/^password_encryption$/, "SCRAM-SHA-256 only, so that PgBouncer can pass each client's SCRAM credentials through"],
  [/^(archive_\w+|restore_command|recovery_end_command)$/, "WAL archiving follows pg-ha:walArchiving"],
  [/^(primary_conninfo|primary_slot_name|hot_standby|wal_level|wal_log_hints|max_wal_senders|max_replication_slots)$/,
    "streaming replication through a slot and the replication certificate per replica, senders and slots sized for pg-ha:replicas"],
  [/^(synchronous_standby_names|synchronous_commit)$/, "synchronous replication follows pg-ha:synchronousMode (a transaction may still SET synchronous_commit)"],
  [/^max_slot_wal_keep_size$/, "it follows pg-ha:maxSlotWalKeepMb"],
  [/^(log_min_duration_statement|auto_explain\.log_min_duration)$/, "the slow-query threshold is pg-ha:slowQueryMs"],
  [/^(shared_preload_libraries|cluster_name|superuser_reserved_connections)$/,
    "the cluster relies on it (pg_stat_statements and auto_explain preloaded, each node named after its container, 3 superuser connections in the pool budget)"],
  [/^(log_destination|logging_collector)$/, "servers log to stderr, where `docker logs` reads them"],
  // The start-up step sets roles' SCRAM verifiers with log_statement off; these would log them anyway.
  [/^(log_min_duration_sample|log_statement_sample_rate|log_transaction_sample_rate|debug_print_\w+)$/,
    "it would write statements with their constants to the server log, the SCRAM verifiers the cluster sets at start among them"],
];

/** Why the cluster manages NAME, or undefined when an operator may set it. */
export function managedReason(name: string): string | undefined {
  return MANAGED.find(([pattern]) => pattern.test(name.toLowerCase()))?.[1];
}

const SIZE_UNITS: Record<string, number> = { B: 1 / 1024, kB: 1, MB: 1024, GB: 1024 ** 2, TB: 1024 ** 3 };
const TIME_UNITS = ["us", "ms", "s", "min", "h", "d"];
const NUMBER = "[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?";

function isSizeUnit(unit: string): boolean {
  return /^\d*(B|kB|MB|GB|TB)$/.test(unit);
}

/** The value forms PostgreSQL accepts for P, as a pattern and as words for an error message. */
function acceptedForm(p: ParameterInfo): { pattern: RegExp; words: string } | undefined {
  switch (p.type) {
    case "bool":
      return { pattern: /^(on|off|true|false|yes|no|1|0)$/i, words: "on or off (or true/false, yes/no, 1/0)" };
    case "enum":
      return { pattern: new RegExp(`^(${p.enumValues.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})$`, "i"), words: `one of ${p.enumValues.join(", ")}` };
    case "integer":
    case "real": {
      const plain = p.type === "integer" ? "an integer" : "a number";
      if (isSizeUnit(p.unit)) {
        return { pattern: new RegExp(`^${NUMBER}\\s*(${Object.keys(SIZE_UNITS).join("|")})?$`), words: `${plain} with an optional unit B, kB, MB, GB or TB (without one: ${p.unit})` };
      }
      if (TIME_UNITS.includes(p.unit)) {
        return { pattern: new RegExp(`^${NUMBER}\\s*(${TIME_UNITS.join("|")})?$`), words: `${plain} with an optional unit ${TIME_UNITS.join(", ")} (without one: ${p.unit})` };
      }
      return { pattern: new RegExp(`^${NUMBER}$`), words: plain };
    }
    default:
      return undefined; // strings: PostgreSQL judges them
  }
}

/**
 * What is wrong with OVERRIDES for MAJOR, one sentence each, to follow the setting's name: unknown
 * names, parameters the cluster manages, values of a wrong form.
 */
export function parameterProblems(major: PostgresMajor, overrides: Readonly<Record<string, string>>): string[] {
  const catalog = parameterCatalog(major);
  const problems: string[] = [];
  for (const [name, value] of Object.entries(overrides)) {
    const info = catalog.get(name.toLowerCase());
    const why = managedReason(name);
    if (info === undefined) {
      problems.push(`has ${name}, which PostgreSQL ${major} does not know; accepted: the parameter names of PostgreSQL ${major} (config-templates/pg-settings/${major}.tsv)`);
    } else if (why !== undefined) {
      problems.push(`sets ${info.name}, which the cluster manages: ${why}`);
    } else if (/[\x00-\x1f\x7f]/.test(value)) {
      problems.push(`sets ${info.name} to a value with a line break or control character; expected a single line`);
    } else {
      const form = acceptedForm(info);
      if (form && !form.pattern.test(value.trim())) problems.push(`sets ${info.name} = ${JSON.stringify(value)}, which is not accepted; expected ${form.words}`);
    }
  }
  return problems;
}

/** The overrides under PostgreSQL's own spelling of each name, in name order. Assumes they passed parameterProblems. */
export function canonicalParameters(major: PostgresMajor, overrides: Readonly<Record<string, string>>): Record<string, string> {
  const catalog = parameterCatalog(major);
  const entries = Object.entries(overrides).map(([name, value]) => [catalog.get(name.toLowerCase())?.name ?? name, value.trim()] as const);
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A size parameter's value ("64MB", "512", "1.5GB") in kB, taking a bare number in the parameter's own unit. */
export function sizeInKb(major: PostgresMajor, name: string, value: string): number {
  const info = parameterCatalog(major).get(name.toLowerCase());
  if (!info || !isSizeUnit(info.unit)) throw new Error(`sizeInKb: ${name} is not a size parameter of PostgreSQL ${major}`);
  const m = new RegExp(`^(${NUMBER})\\s*(${Object.keys(SIZE_UNITS).join("|")})?$`).exec(value.trim());
  if (!m) throw new Error(`sizeInKb: ${name} = "${value}" is not a size`);
  const base = /^(\d*)(.*)$/.exec(info.unit)!;
  const bareUnitKb = Number(base[1] || 1) * SIZE_UNITS[base[2]];
  return Number(m[1]) * (m[2] ? SIZE_UNITS[m[2]] : bareUnitKb);
}

/** A value as a postgresql.conf line takes it: always quoted, so no value can end the line early. */
export function quoteConfValue(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}
