/**
 * Measurement windows sized to the machine: how long (`pgbench -T`) a run must last for its
 * clients to connect and then leave the summary the steady 1-s samples it needs. pgbench's window
 * starts before its clients connect, so on a machine where a connection is slow, a fixed window
 * can end before any transaction ran. Pure functions; `steadySamples` in pgbench.ts decides which
 * samples count, and these functions follow its rule.
 */
import type { Connections, Script } from "./pgbench";

/**
 * How much longer than one lone connection each connection may take when a run's clients connect
 * all at once: measured alone, a connection does not compete with the others for the 2 cores.
 */
export const CONCURRENT_CONNECT_FACTOR = 2;

/** An earlier round's own connect time varies from round to round: this much is added to it. */
export const OBSERVED_CONNECT_MARGIN = 1.5;

/** pgbench may stop at -T before printing its last progress line: one second more than needed. */
const LAST_SAMPLE_SLACK_S = 1;

/**
 * SQL commands per transaction of pgbench's built-in scripts, one round trip each (-M simple):
 * select-only is one SELECT; TPC-B-like is BEGIN, three UPDATEs, a SELECT, an INSERT and END.
 */
export const ROUND_TRIPS: Record<Script, number> = { "select-only": 1, "tpcb-like": 7 };

/** Time for one pgbench thread to open a connection for each of its clients, one after another, ms. */
export function connectPassMs(o: { clients: number; threads: number; connectionMs: number }): number {
  const perThread = Math.ceil(o.clients / Math.max(1, Math.min(o.threads, o.clients)));
  return perThread * o.connectionMs * CONCURRENT_CONNECT_FACTOR;
}

/**
 * Time until every client of a run has connected, ms. Each pgbench thread opens its clients'
 * connections one after another before the first transaction. With -C there is no such phase
 * and pgbench reports no initial connection time, so steadySamples leaves out only the first
 * sample: perTransactionProgress says when those samples come.
 */
export function expectedConnectMs(o: { clients: number; threads: number; connections: Connections; connectionMs: number }): number {
  if (o.connections === "per-transaction") return 0;
  return connectPassMs(o);
}

/**
 * With -C, when pgbench prints its progress lines, ms: the first at FIRST_MS, then one every
 * EVERY_MS. Thread 0 prints progress only between its passes over its clients, and in a pass it
 * opens a new connection, blocking, for every client whose transaction ended: for all of its
 * clients in the first pass, and after that for about one in ROUND_TRIPS[script] (the others
 * wait for a result in the middle of their transaction). A line comes at most once a second.
 */
export function perTransactionProgress(o: { clients: number; threads: number; connectionMs: number; script: Script }): { firstMs: number; everyMs: number } {
  const pass = connectPassMs(o);
  return { firstMs: Math.max(1000, pass), everyMs: Math.max(1000, pass / ROUND_TRIPS[o.script]) };
}

/**
 * The -T, in whole seconds, of a -C run: steadySamples keeps every progress line but the first,
 * so SAMPLES + 1 lines must come before the window ends, within [minS, maxS].
 */
export function perTransactionWindowS(o: { clients: number; threads: number; connectionMs: number; script: Script; samples: number; minS: number; maxS: number }): number {
  if (o.minS > o.maxS) throw new Error(`perTransactionWindowS: minS (${o.minS}) is above maxS (${o.maxS})`);
  const { firstMs, everyMs } = perTransactionProgress(o);
  // Whole ms first, so that a float error cannot push a whole second over into the next one.
  const lastLineS = Math.round(firstMs + o.samples * everyMs) / 1000;
  const needed = Math.ceil(lastLineS) + LAST_SAMPLE_SLACK_S;
  return Math.min(o.maxS, Math.max(o.minS, needed));
}

/**
 * The first progress second `steadySamples` keeps once all clients connected after CONNECT_MS:
 * never the first (start-up), and only intervals that began after the last connection.
 */
export function firstSteadySecond(connectMs: number): number {
  return Math.max(2, Math.ceil(Math.max(0, connectMs) / 1000) + 1);
}

/** The -T, in whole seconds, that leaves SAMPLES steady samples after CONNECT_MS, within [minS, maxS]. */
export function windowS(o: { connectMs: number; samples: number; minS: number; maxS: number }): number {
  if (o.minS > o.maxS) throw new Error(`windowS: minS (${o.minS}) is above maxS (${o.maxS})`);
  const needed = firstSteadySecond(o.connectMs) + o.samples - 1 + LAST_SAMPLE_SLACK_S;
  return Math.min(o.maxS, Math.max(o.minS, needed));
}

/**
 * A run's window from the connection cost measured at the start of the bench and, for persistent
 * connections when the same point ran before, its own connect time.
 */
export function runWindowS(o: {
  clients: number;
  threads: number;
  connections: Connections;
  /** Needed for -C (see perTransactionProgress); without it a -C run is sized as select-only, the longest. */
  script?: Script;
  /** One connection on its own, ms (the connection-cost measurement of this run). */
  connectionMs: number;
  /** Initial connection times of earlier rounds of the same point, ms. */
  observedConnectMs?: number[];
  samples: number;
  minS: number;
  maxS: number;
}): number {
  if (o.connections === "per-transaction") return perTransactionWindowS({ ...o, script: o.script ?? "select-only" });
  const observed = Math.max(0, ...(o.observedConnectMs ?? [])) * OBSERVED_CONNECT_MARGIN;
  return windowS({ connectMs: Math.max(expectedConnectMs(o), observed), samples: o.samples, minS: o.minS, maxS: o.maxS });
}
