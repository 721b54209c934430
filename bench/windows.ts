/**
 * Measurement windows sized to the machine: how long (`pgbench -T`) a run must last for its
 * clients to connect and then leave the summary the steady 1-s samples it needs. pgbench's window
 * starts before its clients connect, so on a machine where a connection is slow, a fixed window
 * can end before any transaction ran. Pure functions; `steadySamples` in pgbench.ts decides which
 * samples count, and these functions follow its rule.
 */
import type { Connections } from "./pgbench";

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
 * Time until every client of a run has connected, ms. Each pgbench thread opens its clients'
 * connections one after another before the first transaction; with -C there is no such phase
 * (every transaction opens its own connection).
 */
export function expectedConnectMs(o: { clients: number; threads: number; connections: Connections; connectionMs: number }): number {
  if (o.connections === "per-transaction") return 0;
  const perThread = Math.ceil(o.clients / Math.max(1, Math.min(o.threads, o.clients)));
  return perThread * o.connectionMs * CONCURRENT_CONNECT_FACTOR;
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

/** A run's window from the connection cost measured at the start of the bench and, when the same point ran before, its own connect time. */
export function runWindowS(o: {
  clients: number;
  threads: number;
  connections: Connections;
  /** One connection on its own, ms (the connection-cost measurement of this run). */
  connectionMs: number;
  /** Initial connection times of earlier rounds of the same point, ms. */
  observedConnectMs?: number[];
  samples: number;
  minS: number;
  maxS: number;
}): number {
  const expected = expectedConnectMs(o);
  const observed = o.connections === "persistent" ? Math.max(0, ...(o.observedConnectMs ?? [])) * OBSERVED_CONNECT_MARGIN : 0;
  return windowS({ connectMs: Math.max(expected, observed), samples: o.samples, minS: o.minS, maxS: o.maxS });
}
