/** Connection strings microservices consume: always TLS with full certificate verification. */
import type { ClusterSpec } from "../spec";
import {
  MONITOR_ROLE, PGBOUNCER_ADMIN, PGBOUNCER_PORT, PGBOUNCER_STATS, READ_ONLY_SUFFIX,
  pgbouncerName, serverEndpoints,
} from "../topology";

export interface Endpoint {
  host: string;
  port: number;
}

export interface ConnectionEndpoints {
  direct: Endpoint;
  pooled: Endpoint;
  readOnly: Endpoint;
  hostDirect?: Endpoint;
  hostPooled?: Endpoint;
  hostReadOnly?: Endpoint;
}

/** Where each endpoint is reached: inside the cluster network, and through published host ports. */
export function connectionEndpoints(spec: ClusterSpec): ConnectionEndpoints {
  const pooler = pgbouncerName(spec);
  const { address, directPort, pooledPort, readOnlyPort } = spec.publish;
  // A wildcard bind is reached through loopback, which every certificate names.
  const hostAddress = address === "0.0.0.0" || address === "::" ? "127.0.0.1" : address;
  const onHost = (port: number | undefined) => (port === undefined ? undefined : { host: hostAddress, port });
  return {
    // The primary itself, or with Patroni the router's read-write port, which always leads to it.
    direct: serverEndpoints(spec).readWrite,
    pooled: { host: pooler, port: PGBOUNCER_PORT },
    readOnly: { host: pooler, port: PGBOUNCER_PORT },
    hostDirect: onHost(directPort),
    hostPooled: onHost(pooledPort),
    hostReadOnly: onHost(readOnlyPort),
  };
}

/** `postgresql://user:password@host:port/db?sslmode=verify-full`; the CA comes with the caCertPem output. */
export function connectionUrl(endpoint: Endpoint, user: string, password: string, database: string): string {
  const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
  return `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${endpoint.port}/${encodeURIComponent(database)}?sslmode=verify-full`;
}

export type UrlName = "directUrl" | "pooledUrl" | "readOnlyUrl" | "hostDirectUrl" | "hostPooledUrl" | "hostReadOnlyUrl";

/** Every URL for one database and its owner role; host URLs only for published endpoints. */
export function databaseUrls(spec: ClusterSpec, database: string, password: string): Partial<Record<UrlName, string>> {
  const e = connectionEndpoints(spec);
  const readOnlyDb = `${database}${READ_ONLY_SUFFIX}`;
  const urls: Partial<Record<UrlName, string>> = {
    directUrl: connectionUrl(e.direct, database, password, database),
    pooledUrl: connectionUrl(e.pooled, database, password, database),
    readOnlyUrl: connectionUrl(e.readOnly, database, password, readOnlyDb),
  };
  if (e.hostDirect) urls.hostDirectUrl = connectionUrl(e.hostDirect, database, password, database);
  if (e.hostPooled) urls.hostPooledUrl = connectionUrl(e.hostPooled, database, password, database);
  if (e.hostReadOnly) urls.hostReadOnlyUrl = connectionUrl(e.hostReadOnly, database, password, readOnlyDb);
  return urls;
}

/**
 * Operator URLs: the monitor on the primary, PgBouncer's admin and stats consoles. The superuser
 * has none: it works over the containers' local socket only (`docker exec -u postgres … psql`).
 */
export function adminUrls(spec: ClusterSpec, passwords: Record<string, string>): Record<string, string> {
  const e = connectionEndpoints(spec);
  const direct = e.hostDirect ?? e.direct;
  const pooled = e.hostPooled ?? e.pooled;
  return {
    monitorUrl: connectionUrl(direct, MONITOR_ROLE, passwords[MONITOR_ROLE], "postgres"),
    pgbouncerAdminUrl: connectionUrl(pooled, PGBOUNCER_ADMIN, passwords[PGBOUNCER_ADMIN], "pgbouncer"),
    pgbouncerStatsUrl: connectionUrl(pooled, PGBOUNCER_STATS, passwords[PGBOUNCER_STATS], "pgbouncer"),
  };
}
