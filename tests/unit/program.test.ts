import * as pulumi from "@pulumi/pulumi";
import { parseClusterConfig } from "../../config";
import { PostgresCluster } from "../../components/cluster";
import { upload } from "../../components/container-defaults";
import { postgresContainerArgs, postgresSecretUploads } from "../../components/postgres-node";
import { primaryNode } from "../../topology";
import { parse } from "yaml";
import { byType, fixedPrimaryConfig, promiseOf, runProgram, settle, stackConfig, unwrapSecrets, type ProgramRun, type RawConfig } from "./harness";

const CONTAINER = "docker:index/container:Container";
const VOLUME = "docker:index/volume:Volume";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

interface Registration {
  type: string;
  name: string;
  opts: pulumi.CustomResourceOptions;
  parentType?: string;
  parentName?: string;
}

/** Builds the cluster component directly and records every child's resource options. */
async function registrations(config: RawConfig): Promise<Registration[]> {
  const seen: Registration[] = [];
  const spec = parseClusterConfig(config);
  const cluster = new PostgresCluster(spec.clusterName, { spec }, {
    transformations: [(a) => {
      const parent = a.opts.parent as any;
      seen.push({ type: a.type, name: a.name, opts: a.opts as pulumi.CustomResourceOptions, parentType: parent?.__pulumiType, parentName: parent?.__name });
      return undefined;
    }],
  });
  await promiseOf(pulumi.all([cluster.caCertPem, cluster.networkName]));
  await settle();
  return seen;
}

/** What a registration's dependsOn names: each resource's type and name. */
function dependencies(r: Registration): { type: string; name: string }[] {
  return ((r.opts.dependsOn ?? []) as pulumi.Resource[]).map((d: any) => ({ type: d.__pulumiType, name: d.__name }));
}

/** The running containers: every container but the created-only writers of secret files. */
/** Servers only: not the created-only writers of their secrets (`-secrets`) and live configuration (`-config`). */
function servers<T extends { name: string }>(containers: T[]): T[] {
  return containers.filter((c) => !c.name.endsWith("-secrets") && !c.name.endsWith("-config"));
}

/**
 * A file a server reads from its live configuration (pgbouncer.ini, patroni.yml, haproxy.cfg, the
 * certificates), by its usual path: the writer `<server>-config` uploads it under /etc/pg-ha/live.
 */
function liveFile(run: ProgramRun, server: string, file: string): string | undefined {
  return containerInputs(run, `${server}-config`).uploads.find((u: any) => u.file === file.replace("/etc/pg-ha/", "/etc/pg-ha/live/"))?.content;
}

function containerInputs(run: ProgramRun, name: string): Record<string, any> {
  const container = byType(run, CONTAINER).find((c) => c.name === name);
  if (!container) throw new Error(`no container ${name}`);
  return unwrapSecrets(container.inputs) as Record<string, any>;
}

/** The commands a health script runs that may block, each with its `timeout -s KILL N` bound (undefined: unbounded). */
function clientBounds(script: string): { client: string; seconds?: number }[] {
  const code = script.split("\n").filter((line) => !line.trimStart().startsWith("#")).join("\n");
  // A name followed by "/", "." or "-" is a path or a file (/var/lib/pgbackrest/, pgbackrest.conf), not a client.
  return [...code.matchAll(/(?:timeout -s KILL (\d+) )?\b(pg_isready|psql|grep|curl|wget|nc|etcdctl|patronictl|python3|bash|pgbouncer|pgbackrest)\b(?![/.-])/g)]
    .map(([, seconds, client]) => ({ client, seconds: seconds === undefined ? undefined : Number(seconds) }));
}

/** A healthcheck duration as the component writes it ("5s"). */
function goSeconds(duration: string): number {
  const m = /^(\d+)s$/.exec(duration);
  if (!m) throw new Error(`unexpected healthcheck duration ${duration}`);
  return Number(m[1]);
}

/** An IPv4 address as a number, to place it within a subnet. */
function ipNumber(ip: string): number {
  return ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

/** Seconds of a Go duration as the provider reads it back ("10m0s", "30s"). */
function durationSeconds(duration: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$/.exec(duration);
  if (!m) throw new Error(`unexpected duration ${duration}`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3]);
}

type Role = "etcd" | "patroni" | "backup" | "router" | "pgbouncer";

describe.each([
  ["dev", 2, 1, "172.30.10.0/24"],
  ["prod", 3, 3, "172.30.20.0/24"],
] as const)("the %s stack (pg-ha:failover = patroni)", (stack, nodeCount, etcdCount, subnet) => {
  const cluster = `pgha-${stack}`;
  const nodes = Array.from({ length: nodeCount }, (_, i) => `${cluster}-node-${i + 1}`);
  const etcd = Array.from({ length: etcdCount }, (_, i) => `${cluster}-etcd-${i + 1}`);
  const router = `${cluster}-router`;
  const pooler = `${cluster}-pgbouncer`;
  /** pgBackRest's repository host: the cluster's backups and its WAL archive. */
  const backup = `${cluster}-backup`;
  const repository = `${cluster}-backup-repo`;
  const cipherPass = `Pw-${backup}-cipher-pass`;
  const containers = [...etcd, backup, ...nodes, router, pooler];
  /** Servers that reload a rewritten live configuration instead of being replaced. */
  const reloading = [...nodes, router, pooler];
  const roleOf = (name: string): Role =>
    etcd.includes(name) ? "etcd" : nodes.includes(name) ? "patroni" : name === backup ? "backup" : name === router ? "router" : "pgbouncer";
  const base = ipNumber(subnet.split("/")[0]);
  const address = (offset: number) => [24, 16, 8, 0].map((s) => Math.floor((base + offset) / 2 ** s) % 256).join(".");
  const routerAddress = address(30);
  let run: ProgramRun;
  let regs: Registration[];
  beforeAll(async () => {
    run = await runProgram(stackConfig(stack));
    regs = await registrations(stackConfig(stack));
  });

  test("creates the etcd members, the Patroni nodes, the backup repository host, the router and PgBouncer, each with its secrets writer, the nodes, router and PgBouncer with a live configuration writer; a data volume per node and etcd member plus the backup repository, no shared WAL archive", () => {
    expect(servers(byType(run, CONTAINER)).map((c) => c.name)).toEqual(containers);
    expect(byType(run, CONTAINER).map((c) => c.name).filter((n) => n.endsWith("-secrets")).sort()).toEqual(containers.map((c) => `${c}-secrets`).sort());
    expect(byType(run, CONTAINER).map((c) => c.name).filter((n) => n.endsWith("-config")).sort()).toEqual(reloading.map((c) => `${c}-config`).sort());
    expect(byType(run, "docker:index/network:Network")).toHaveLength(1);
    expect(byType(run, VOLUME).map((v) => v.inputs.name).sort()).toEqual(
      [...nodes.map((n) => `${n}-data`), ...etcd.map((m) => `${m}-data`), repository, ...containers.map((c) => `${c}-secrets`), ...reloading.map((c) => `${c}-config`)].sort(),
    );
    // app, monitor and the two PgBouncer consoles, Patroni's REST API, and the repository's passphrase.
    expect(byType(run, "random:index/randomPassword:RandomPassword").map((p) => p.name)).toEqual(expect.arrayContaining([`${backup}-cipher-pass`]));
    expect(byType(run, "random:index/randomPassword:RandomPassword")).toHaveLength(6);
    // Per node and etcd member, the backup host and PgBouncer; the replication, pg_rewind and etcd clients; pgBackRest's two clients.
    expect(byType(run, "tls:index/locallySignedCert:LocallySignedCert")).toHaveLength(nodeCount + etcdCount + 7);
    for (const name of containers) {
      expect({ name, labels: containerInputs(run, name).labels }).toEqual({
        name, labels: expect.arrayContaining([{ label: "pgha.cluster", value: cluster }, { label: "pgha.role", value: roleOf(name) }, { label: "pgha.node", value: name }]),
      });
    }
  });

  test("every resource has a component parent; one PatroniNode per node, one EtcdMember per member, one router, one backup repository", () => {
    const components = regs.filter((r) => r.type.startsWith("pg-ha:")).map((r) => r.type);
    expect(components.filter((t) => t === "pg-ha:ha:PatroniNode")).toHaveLength(nodeCount);
    expect(components.filter((t) => t === "pg-ha:ha:EtcdMember")).toHaveLength(etcdCount);
    for (const t of ["pg-ha:index:PostgresCluster", "pg-ha:secrets:ClusterSecrets", "pg-ha:tls:ClusterTls", "pg-ha:volumes:ClusterVolumes",
      "pg-ha:ha:PatroniCluster", "pg-ha:ha:Router", "pg-ha:backup:BackupRepository", "pg-ha:pgbouncer:PgBouncer"]) {
      expect(components.filter((c) => c === t)).toHaveLength(1);
    }
    expect(components.filter((t) => t.startsWith("pg-ha:postgres:"))).toEqual([]);
    for (const r of regs.filter((r) => !r.type.startsWith("pg-ha:index"))) expect(r.parentType).toMatch(/^pg-ha:/);
    const parentOf = (type: string, name: string) => {
      const r = regs.find((r) => r.type === type && r.name === name);
      return r && { type: r.parentType, name: r.parentName };
    };
    for (const n of nodes) {
      for (const child of [[CONTAINER, n], [CONTAINER, `${n}-secrets`], [VOLUME, `${n}-data`], [VOLUME, `${n}-secrets`]]) {
        expect({ child, parent: parentOf(child[0], child[1]) }).toEqual({ child, parent: { type: "pg-ha:ha:PatroniNode", name: n } });
      }
      expect(parentOf("pg-ha:ha:PatroniNode", n)).toEqual({ type: "pg-ha:ha:PatroniCluster", name: `${cluster}-patroni` });
    }
    for (const m of etcd) {
      for (const child of [[CONTAINER, m], [CONTAINER, `${m}-secrets`], [VOLUME, `${m}-data`]]) {
        expect({ child, parent: parentOf(child[0], child[1]) }).toEqual({ child, parent: { type: "pg-ha:ha:EtcdMember", name: m } });
      }
      expect(parentOf("pg-ha:ha:EtcdMember", m)).toEqual({ type: "pg-ha:ha:PatroniCluster", name: `${cluster}-patroni` });
    }
    expect(parentOf(CONTAINER, router)).toEqual({ type: "pg-ha:ha:Router", name: router });
    expect(parentOf("pg-ha:ha:Router", router)).toEqual({ type: "pg-ha:ha:PatroniCluster", name: `${cluster}-patroni` });
    expect(parentOf(CONTAINER, pooler)).toEqual({ type: "pg-ha:pgbouncer:PgBouncer", name: pooler });
    for (const child of [[CONTAINER, backup], [CONTAINER, `${backup}-secrets`], [VOLUME, repository], [VOLUME, `${backup}-secrets`],
      ["random:index/randomPassword:RandomPassword", `${backup}-cipher-pass`]]) {
      expect({ child, parent: parentOf(child[0], child[1]) }).toEqual({ child, parent: { type: "pg-ha:backup:BackupRepository", name: backup } });
    }
    expect(parentOf("pg-ha:backup:BackupRepository", backup)).toEqual({ type: "pg-ha:ha:PatroniCluster", name: `${cluster}-patroni` });
    // With Patroni the nodes keep their own data volumes and WAL goes to the repository host: ClusterVolumes holds nothing.
    expect(regs.filter((r) => r.parentType === "pg-ha:volumes:ClusterVolumes")).toEqual([]);
  });

  test("containers are deleted before they are replaced (fixed names, addresses, ports, one server per volume)", () => {
    const containerRegs = regs.filter((r) => r.type === CONTAINER);
    expect(containerRegs).toHaveLength(2 * containers.length + reloading.length);
    for (const r of containerRegs) expect({ name: r.name, deleteBeforeReplace: r.opts.deleteBeforeReplace }).toEqual({ name: r.name, deleteBeforeReplace: true });
  });

  test(`data volumes are retained; each node's and the backup repository are ${stack === "prod" ? "" : "not "}protected, the etcd members' never`, () => {
    const volumes = regs.filter((r) => r.type === VOLUME && !r.name.endsWith("-secrets") && !r.name.endsWith("-config"));
    expect(volumes).toHaveLength(nodeCount + etcdCount + 1);
    expect(volumes.map((r) => r.name)).toContain(repository);
    for (const r of volumes) {
      expect({ name: r.name, retainOnDelete: r.opts.retainOnDelete }).toEqual({ name: r.name, retainOnDelete: true });
      // Any node may hold the only current copy after a failover; the repository holds the only backups; etcd's state is rebuilt by Patroni.
      const holdsData = nodes.some((n) => r.name === `${n}-data`) || r.name === repository;
      expect({ name: r.name, protect: r.opts.protect ?? false }).toEqual({ name: r.name, protect: stack === "prod" && holdsData });
    }
  });

  test("the network is deleted before it is replaced; Docker places dynamic containers in the subnet's upper half", () => {
    expect(regs.find((r) => r.type === "docker:index/network:Network")!.opts.deleteBeforeReplace).toBe(true);
    const [network] = byType(run, "docker:index/network:Network");
    expect(network.inputs.ipamConfigs).toEqual([{ subnet, ipRange: `${address(128)}/25` }]);
  });

  test("members take fixed addresses in the lower half of the subnet: nodes from .11, etcd from .21, the backup host .29, the router .30; PgBouncer none", () => {
    const fixed = (name: string) => {
      const networks = containerInputs(run, name).networksAdvanced;
      expect(networks).toHaveLength(1);
      expect(networks[0].aliases).toEqual([name]);
      return networks[0].ipv4Address;
    };
    nodes.forEach((n, i) => expect({ n, ip: fixed(n) }).toEqual({ n, ip: address(11 + i) }));
    etcd.forEach((m, i) => expect({ m, ip: fixed(m) }).toEqual({ m, ip: address(21 + i) }));
    expect(fixed(router)).toBe(routerAddress);
    expect(fixed(backup)).toBe(address(29));
    expect(fixed(pooler)).toBeUndefined();
    const half = 2 ** (32 - Number(subnet.split("/")[1])) / 2;
    const ips = [...nodes, ...etcd, backup, router].map(fixed);
    expect(new Set(ips).size).toBe(ips.length);
    for (const ip of ips) {
      const offset = ipNumber(ip) - base;
      expect({ ip, inLowerHalf: offset >= 1 && offset < half }).toEqual({ ip, inLowerHalf: true });
    }
  });

  test("limits and durations are sent as the provider reads them back, so a second up plans nothing", () => {
    const startPeriods: Record<Role, string> = { patroni: "10m0s", etcd: "3m0s", backup: "1m0s", router: "30s", pgbouncer: "30s" };
    for (const name of containers) {
      const c = containerInputs(run, name);
      expect({ name, startPeriod: c.healthcheck.startPeriod }).toEqual({ name, startPeriod: startPeriods[roleOf(name)] });
      for (const d of [c.healthcheck.interval, c.healthcheck.timeout, c.healthcheck.startPeriod]) expect(d).toMatch(/^(\d+h)?(\d+m)?\d+s$/);
      expect({ name, memorySwap: c.memorySwap }).toEqual({ name, memorySwap: c.memory });
      if (c.cpus !== undefined) expect(c.cpus).toMatch(/^\d+\.\d+$/);
    }
    for (const name of nodes) {
      const c = containerInputs(run, name);
      expect({ name, memory: c.memory, cpus: c.cpus }).toEqual({ name, memory: stack === "prod" ? 8192 : 1024, cpus: stack === "prod" ? "4.0" : "1.0" });
    }
    for (const name of [...etcd, router, pooler]) expect({ name, memory: containerInputs(run, name).memory }).toEqual({ name, memory: 256 });
    // A restore drill runs a throwaway PostgreSQL beside pgBackRest.
    expect(containerInputs(run, backup)).toMatchObject({ memory: 1024, memorySwap: 1024 });
  });

  test("Patroni nodes start once every etcd member is healthy, one after another, the backup host beside them, the router after every node, PgBouncer after the router", () => {
    const reg = (type: string, name: string) => regs.find((r) => r.type === type && r.name === name)!;
    // And each node after the one before it, so a change that replaces nodes replaces one at a time.
    nodes.forEach((n, i) => {
      const after = [...etcd.map((name) => ({ type: "pg-ha:ha:EtcdMember", name })), ...(i > 0 ? [{ type: "pg-ha:ha:PatroniNode", name: nodes[i - 1] }] : [])];
      expect({ n, after: dependencies(reg("pg-ha:ha:PatroniNode", n)) }).toEqual({ n, after });
    });
    expect(dependencies(reg("pg-ha:ha:Router", router))).toEqual(nodes.map((name) => ({ type: "pg-ha:ha:PatroniNode", name })));
    // Beside the nodes, not after them: a new replica already asks it for WAL; its scheduler creates the stanza once a primary answers.
    expect(dependencies(reg("pg-ha:backup:BackupRepository", backup))).toEqual([]);
    expect(dependencies(reg(CONTAINER, backup))).toEqual([]);
    // And every server after the writer of its live configuration, whose files it needs at its first start.
    expect(dependencies(reg(CONTAINER, pooler))).toEqual([{ type: "pg-ha:ha:Router", name: router }, { type: CONTAINER, name: `${pooler}-config` }]);
    for (const name of [...nodes, router]) expect(dependencies(reg(CONTAINER, name))).toEqual([{ type: CONTAINER, name: `${name}-config` }]);
    for (const m of etcd) expect(dependencies(reg("pg-ha:ha:EtcdMember", m))).toEqual([]);
  });

  test("every container has a health check, waits for it within its start period, and stops the way its server shuts down cleanly", () => {
    const stop: Record<Role, { stopSignal?: string; destroyGraceSeconds: number }> = {
      // Patroni stops PostgreSQL and releases the leader lock; HAProxy's soft stop; PgBouncer's safe shutdown.
      patroni: { stopSignal: "SIGTERM", destroyGraceSeconds: 60 },
      etcd: { stopSignal: undefined, destroyGraceSeconds: 10 },
      // The scheduler stops between steps; pgBackRest resumes or discards a backup left in flight.
      backup: { stopSignal: "SIGTERM", destroyGraceSeconds: 30 },
      router: { stopSignal: "SIGUSR1", destroyGraceSeconds: 10 },
      pgbouncer: { stopSignal: "SIGINT", destroyGraceSeconds: 30 },
    };
    // Explicit: unset means the daemon's 30 s. etcd's and the backup host's checks start a heavy client, so they run less often.
    const intervals: Record<Role, string> = { patroni: "2s", etcd: "5s", backup: "5s", router: "2s", pgbouncer: "2s" };
    for (const name of containers) {
      const c = containerInputs(run, name);
      expect(c.healthcheck.tests[0]).toBe("CMD");
      expect({ name, interval: c.healthcheck.interval }).toEqual({ name, interval: intervals[roleOf(name)] });
      expect(c.wait).toBe(true);
      const least = Math.max(60, durationSeconds(c.healthcheck.startPeriod));
      expect({ name, waitsLongEnough: c.waitTimeout >= least }).toEqual({ name, waitsLongEnough: true });
      expect({ name, stopSignal: c.stopSignal, destroyGraceSeconds: c.destroyGraceSeconds }).toEqual({ name, ...stop[roleOf(name)] });
      expect(c.restart).toBe("unless-stopped");
      expect(c.labels).toContainEqual({ label: "pgha.cluster", value: cluster });
    }
  });

  test("every container runs under Docker's init, which reaps orphans, so no server is PID 1", () => {
    const all = byType(run, CONTAINER);
    expect(all).toHaveLength(2 * containers.length + reloading.length);
    for (const c of all) expect(unwrapSecrets(c.inputs)).toMatchObject({ name: c.name, init: true });
  });

  test("each health check bounds every client it runs, together below the healthcheck's timeout", () => {
    for (const name of containers) {
      const c = containerInputs(run, name);
      const [kind, scriptPath] = c.healthcheck.tests;
      expect(kind).toBe("CMD");
      const script: string = c.uploads.find((u: any) => u.file === scriptPath).content;
      const bounds = clientBounds(script);
      expect(bounds.length).toBeGreaterThan(0);
      for (const b of bounds) expect({ name, client: b.client, boundSeconds: b.seconds }).toEqual({ name, client: b.client, boundSeconds: expect.any(Number) });
      const total = bounds.reduce((sum, b) => sum + (b.seconds ?? Infinity), 0);
      // A second left for Docker to start the check (docker exec) on a loaded machine.
      expect({ name, total, withinTimeout: total <= goSeconds(c.healthcheck.timeout) - 1 }).toEqual({ name, total, withinTimeout: true });
    }
  });

  test("Patroni nodes mount their data volume at the official path and their secrets, no shared WAL archive: WAL goes to the repository host", () => {
    for (const name of nodes) {
      const c = containerInputs(run, name);
      expect(c.volumes).toEqual([
        { volumeName: `${name}-data`, containerPath: "/var/lib/postgresql" },
        { volumeName: `${name}-secrets`, containerPath: "/etc/pg-ha/secrets", readOnly: true },
        { volumeName: `${name}-config`, containerPath: "/etc/pg-ha/live", readOnly: true },
      ]);
      // No role in the environment: which node is primary is Patroni's run-time decision.
      expect(c.envs).toEqual(["PGDATA=/var/lib/postgresql/18/docker"]);
    }
  });

  test("published ports bind to loopback only: the router's read-write port and PgBouncer", () => {
    const ports = containers.flatMap((name) => (containerInputs(run, name).ports ?? []).map((p: any) => ({ name, ...p })));
    expect(ports.length).toBeGreaterThan(0);
    for (const p of ports) expect(p.ip).toBe("127.0.0.1");
    expect(ports.map((p: any) => p.external).sort()).toEqual(stack === "dev" ? [15432, 16432, 16433] : [6432]);
    expect(ports.filter((p: any) => p.name !== pooler)).toEqual(stack === "dev" ? [{ name: router, internal: 5000, external: 15432, ip: "127.0.0.1" }] : []);
  });

  test("outputs: every connection string is secret and verify-full; direct connections go through the router; the backup repository, its passphrase secret", () => {
    const urls = ["directUrl", "pooledUrl", "readOnlyUrl", "hostDirectUrl", "hostPooledUrl", "hostReadOnlyUrl"];
    for (const u of urls) {
      const value = run.outputs[u] as string | undefined;
      if (value === undefined) continue;
      expect(run.secret[u]).toBe(true);
      expect(value).toMatch(/^postgresql:\/\/app:.+@.+\?sslmode=verify-full$/);
    }
    expect(run.outputs.readOnlyUrl).toMatch(new RegExp(`@${pooler}:6432/app_ro\\?`));
    expect(run.outputs.directUrl).toMatch(new RegExp(`@${router}:5000/app\\?`));
    if (stack === "prod") {
      expect(run.outputs.hostDirectUrl).toBeUndefined();
      expect(run.outputs.hostReadOnlyUrl).toBeUndefined();
      expect(run.outputs.hostPooledUrl).toMatch(/@127\.0\.0\.1:6432\/app\?/);
    } else {
      expect(run.outputs.hostDirectUrl).toMatch(/@127\.0\.0\.1:15432\/app\?/);
      expect(run.outputs.hostReadOnlyUrl).toMatch(/@127\.0\.0\.1:16433\/app_ro\?/);
    }
    expect(run.secret.adminUrls).toBe(true);
    const admin = run.outputs.adminUrls as Record<string, string>;
    expect(Object.keys(admin)).toEqual(["monitorUrl", "pgbouncerAdminUrl", "pgbouncerStatsUrl"]);
    expect(admin.pgbouncerAdminUrl).toMatch(new RegExp(`^postgresql://pgbouncer_admin:.+@${stack === "prod" ? "127.0.0.1:6432" : "127.0.0.1:16432"}/pgbouncer\\?sslmode=verify-full$`));
    expect(admin.monitorUrl).toMatch(new RegExp(`^postgresql://monitor:.+@${stack === "prod" ? `${router}:5000` : "127.0.0.1:15432"}/postgres\\?sslmode=verify-full$`));
    expect(run.outputs.caCertPem).toMatch(/BEGIN CERTIFICATE/);
    expect(run.outputs.networkName).toBe(`${cluster}-net`);
    expect(run.outputs.nodes).toEqual([
      ...nodes.map((name) => ({ name, role: "postgres" })),
      ...etcd.map((name) => ({ name, role: "etcd" })),
      { name: router, role: "router" },
      { name: backup, role: "backup" },
      { name: pooler, role: "pgbouncer" },
    ]);
    // What another stack's pg-ha:restoreFrom needs: the volume and the stanza (plain), and the passphrase (secret).
    expect(run.outputs.backupRepository).toEqual({ volumeName: repository, stanza: cluster });
    expect(run.secret.backupRepository).toBe(false);
    expect(run.outputs.backupCipherPass).toBe(cipherPass);
    expect(run.secret.backupCipherPass).toBe(true);
  });

  test("no plaintext password in any server's input, no secret in its uploads; secret uploads are root-only", () => {
    const passwords = byType(run, "random:index/randomPassword:RandomPassword").map((p) => `Pw-${p.name}`);
    expect(passwords).toHaveLength(6);
    expect(passwords).toContain(cipherPass);
    for (const name of containers) {
      const raw = byType(run, CONTAINER).find((c) => c.name === name)!.inputs;
      // The mock monitor lifts a nested secret to the whole property: a wrapped `uploads` holds one.
      expect({ name, secretUploads: raw.uploads?.[SECRET_SIG] !== undefined }).toEqual({ name, secretUploads: false });
      const c = containerInputs(run, name);
      const text = JSON.stringify(c);
      for (const password of passwords) expect({ name, holds: text.includes(password) }).toEqual({ name, holds: false });
      for (const u of c.uploads) {
        expect(u.file).not.toMatch(/\/secrets\//);
        expect({ name, file: u.file, content: u.content }).toEqual({ name, file: u.file, content: expect.not.stringMatching(/PRIVATE KEY|SCRAM-SHA-256\$/) });
      }
      const writer = containerInputs(run, `${name}-secrets`);
      expect(writer).toMatchObject({ start: false, mustRun: false });
      expect(writer.uploads.length).toBeGreaterThan(0);
      for (const u of writer.uploads) {
        expect({ name, file: u.file, permissions: u.permissions }).toEqual({ name, file: expect.stringMatching(/^\/etc\/pg-ha\/secrets\/[^/]+$/), permissions: "0600" });
      }
      expect(c.volumes).toContainEqual({ volumeName: `${name}-secrets`, containerPath: "/etc/pg-ha/secrets", readOnly: true });
    }
  });

  test("the repository's passphrase is in no container's inputs but the backup host's secrets writer, root-only", () => {
    for (const c of byType(run, CONTAINER)) {
      const inputs = unwrapSecrets(c.inputs) as Record<string, any>;
      const outsideUploads = JSON.stringify({ ...inputs, uploads: undefined });
      expect({ name: c.name, holds: outsideUploads.includes(cipherPass) }).toEqual({ name: c.name, holds: false });
      const holding = (inputs.uploads ?? []).filter((u: any) => JSON.stringify(u).includes(cipherPass)).map((u: any) => [u.file, u.permissions]);
      expect({ name: c.name, holding }).toEqual({
        name: c.name, holding: c.name === `${backup}-secrets` ? [["/etc/pg-ha/secrets/pgbackrest-cipher.conf", "0600"]] : [],
      });
    }
    const conf = containerInputs(run, `${backup}-secrets`).uploads.find((u: any) => u.file === "/etc/pg-ha/secrets/pgbackrest-cipher.conf");
    expect(conf.content).toMatch(new RegExp(`^\\[global\\]\nrepo1-cipher-pass=${cipherPass}$`, "m"));
  });

  test("a node's secrets writer carries its keys, the REST credentials and the roles' verifiers; its configs are plain text", () => {
    const writer = containerInputs(run, `${nodes[0]}-secrets`);
    expect(writer.uploads.map((u: any) => u.file).sort()).toEqual([
      "/etc/pg-ha/secrets/backup-node-client.key",
      "/etc/pg-ha/secrets/etcd-client.key", "/etc/pg-ha/secrets/patroni-secrets.yml", "/etc/pg-ha/secrets/reconcile.sql",
      "/etc/pg-ha/secrets/replication.key", "/etc/pg-ha/secrets/rewind.key", "/etc/pg-ha/secrets/server.key",
    ]);
    const reconcile = writer.uploads.find((u: any) => u.file === "/etc/pg-ha/secrets/reconcile.sql");
    expect(reconcile.content).toMatch(/ALTER ROLE app WITH LOGIN .* PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(writer.uploads.find((u: any) => u.file === "/etc/pg-ha/secrets/patroni-secrets.yml").content).toContain(`Pw-${cluster}-patroni-patroni-rest-password`);
    const conf = containerInputs(run, `${nodes[0]}-config`).uploads.find((u: any) => u.file === "/etc/pg-ha/live/patroni.yml");
    expect(conf.content).toContain(`name: ${nodes[0]}`);
    expect(conf.content).toMatch(/^\s+ssl_min_protocol_version: ["']?TLSv1\.3["']?$/m);
    expect(conf.contentBase64).toBeUndefined();
  });

  test("every node's certificate names the node and the router, by name and address; etcd's and the backup host's name only the member", () => {
    const request = (host: string) => unwrapSecrets(byType(run, "tls:index/certRequest:CertRequest").find((r) => r.name === `${cluster}-tls-${host}`)!.inputs) as Record<string, any>;
    nodes.forEach((n, i) => {
      const r = request(n);
      expect(r.subject.commonName).toBe(n);
      expect({ n, dnsNames: r.dnsNames }).toEqual({ n, dnsNames: expect.arrayContaining([n, router]) });
      expect({ n, ipAddresses: r.ipAddresses }).toEqual({ n, ipAddresses: expect.arrayContaining([address(11 + i), routerAddress]) });
    });
    etcd.forEach((m, i) => {
      const r = request(m);
      expect({ m, dnsNames: r.dnsNames }).toEqual({ m, dnsNames: expect.arrayContaining([m]) });
      expect(r.dnsNames).not.toContain(router);
      expect({ m, ipAddresses: r.ipAddresses }).toEqual({ m, ipAddresses: expect.arrayContaining([address(21 + i)]) });
      expect(r.ipAddresses).not.toContain(routerAddress);
    });
    // pgBackRest checks the address it connects to against the certificate's names.
    const b = request(backup);
    expect(b.subject.commonName).toBe(backup);
    expect(b.dnsNames).toEqual(expect.arrayContaining([backup]));
    expect(b.dnsNames).not.toContain(router);
    expect(b.ipAddresses).toEqual(expect.arrayContaining([address(29)]));
    expect(b.ipAddresses).not.toContain(routerAddress);
    // Each side's TLS server admits only the other side's client certificate.
    const clients = byType(run, "tls:index/certRequest:CertRequest").map((r) => (unwrapSecrets(r.inputs) as Record<string, any>).subject.commonName);
    expect(clients).toEqual(expect.arrayContaining([`${cluster}-backup-node-client`, `${cluster}-backup-repo-client`]));
  });

  test("nodes archive WAL through pgBackRest to the repository host, every archive_timeout (60 s), and read it back from there", () => {
    const pgbackrest = `pgbackrest --config=/etc/pg-ha/pgbackrest.conf --stanza=${cluster}`;
    for (const name of nodes) {
      const c = containerInputs(run, `${name}-config`);
      const file = (path: string) => c.uploads.find((u: any) => u.file === path.replace("/etc/pg-ha/", "/etc/pg-ha/live/"))?.content as string | undefined;
      const patroni = parse(file("/etc/pg-ha/patroni.yml")!);
      expect({ name, parameters: patroni.postgresql.parameters }).toEqual({
        name, parameters: expect.objectContaining({ archive_mode: "on", archive_timeout: "60s", archive_command: `${pgbackrest} archive-push %p` }),
      });
      expect({ name, restore: patroni.postgresql.recovery_conf }).toEqual({ name, restore: { restore_command: `${pgbackrest} archive-get %f "%p"` } });
      expect(JSON.stringify(patroni)).not.toContain("wal-archive");
      // No restore from another cluster: Patroni initialises the first member with initdb.
      expect(patroni.bootstrap.method).toBeUndefined();
      const conf = file("/etc/pg-ha/pgbackrest.conf")!;
      expect(conf).toEqual(expect.stringContaining(`repo1-host=${address(29)}\nrepo1-host-type=tls\n`));
      expect(conf).toMatch(new RegExp(`^tls-server-auth=${cluster}-backup-repo-client=${cluster}$`, "m"));
      expect(conf).not.toMatch(/cipher-pass/);
      expect(file("/etc/pg-ha/tls/backup-node-client.crt")).toMatch(/BEGIN CERTIFICATE/);
    }
  });

  test("the backup host: the repository volume, root-only secrets, every node to back up, no secret in its environment or its uploads", () => {
    const c = containerInputs(run, backup);
    expect(c.volumes).toEqual([
      { volumeName: repository, containerPath: "/var/lib/pgbackrest" },
      { volumeName: `${backup}-secrets`, containerPath: "/etc/pg-ha/secrets", readOnly: true },
    ]);
    // pgBackRest must be the same version on both sides: the nodes' image.
    expect(c.image).toBe(containerInputs(run, nodes[0]).image);
    expect(c.envs).toEqual([
      "PGBACKREST_CONFIG=/etc/pg-ha/pgbackrest.conf", "PGBACKREST_CONFIG_INCLUDE_PATH=/run/pg-ha/pgbackrest.d", `PGBACKREST_STANZA=${cluster}`,
      "BACKUP_FULL_INTERVAL_MINUTES=10080", "BACKUP_DIFF_INTERVAL_MINUTES=1440", "RESTORE_DRILL_INTERVAL_MINUTES=1440",
    ]);
    const writer = containerInputs(run, `${backup}-secrets`);
    expect(writer.uploads.map((u: any) => u.file).sort()).toEqual([
      "/etc/pg-ha/secrets/backup-repo-client.key", "/etc/pg-ha/secrets/pgbackrest-cipher.conf", "/etc/pg-ha/secrets/server.key",
    ]);
    const conf: string = c.uploads.find((u: any) => u.file === "/etc/pg-ha/pgbackrest.conf").content;
    expect(conf).toContain("repo1-path=/var/lib/pgbackrest\nrepo1-cipher-type=aes-256-cbc\n");
    expect(conf).not.toMatch(/cipher-pass=/);
    expect(conf).toMatch(new RegExp(`^tls-server-auth=${cluster}-backup-node-client=${cluster}$`, "m"));
    // Whichever node leads is backed up: every one is listed, at its fixed address.
    expect([...conf.matchAll(/^pg(\d+)-host=(\S+)$/gm)].map((m) => [Number(m[1]), m[2]])).toEqual(nodes.map((_, i) => [i + 1, address(11 + i)]));
    expect(c.uploads.map((u: any) => u.file)).toEqual(expect.arrayContaining([
      "/usr/local/lib/pg-ha/backup-start.sh", "/usr/local/lib/pg-ha/backup-scheduler.py", "/usr/local/lib/pg-ha/restore-drill.sh",
      "/usr/local/lib/pg-ha/backup-health.sh", "/etc/pg-ha/pgbackrest-drill.conf", "/etc/pg-ha/tls/backup-repo-client.crt",
    ]));
  });
});

describe.each([
  ["dev", 1, ["pgha-dev-primary", "pgha-dev-replica-1", "pgha-dev-pgbouncer"]],
  ["prod", 2, ["pgha-prod-primary", "pgha-prod-replica-1", "pgha-prod-replica-2", "pgha-prod-pgbouncer"]],
] as const)("the %s stack with pg-ha:failover = none", (stack, replicas, containers) => {
  let run: ProgramRun;
  let regs: Registration[];
  beforeAll(async () => {
    run = await runProgram(fixedPrimaryConfig(stack));
    regs = await registrations(fixedPrimaryConfig(stack));
  });

  test("a fixed primary, its replicas and PgBouncer; no etcd, router or fixed address; a data volume per node plus the WAL archive", () => {
    expect(servers(byType(run, CONTAINER)).map((c) => c.name)).toEqual([...containers]);
    expect(byType(run, CONTAINER).map((c) => c.name).filter((n) => n.endsWith("-secrets")).sort()).toEqual(containers.map((c) => `${c}-secrets`).sort());
    expect(byType(run, VOLUME).map((v) => v.inputs.name).sort()).toEqual(
      [...containers.filter((c) => !c.endsWith("pgbouncer")).map((c) => `${c}-data`), `pgha-${stack}-wal-archive`,
        ...containers.map((c) => `${c}-secrets`), `pgha-${stack}-pgbouncer-config`].sort(),
    );
    expect(byType(run, "random:index/randomPassword:RandomPassword")).toHaveLength(4);
    expect(byType(run, "tls:index/locallySignedCert:LocallySignedCert")).toHaveLength(replicas + 3);
    expect(byType(run, "docker:index/network:Network").map((n) => n.inputs.ipamConfigs)).toEqual([[{ subnet: stack === "prod" ? "172.30.20.0/24" : "172.30.10.0/24" }]]);
    for (const name of containers) expect(containerInputs(run, name).networksAdvanced).toEqual([{ name: `pgha-${stack}-net`, aliases: [name] }]);
    const components = regs.filter((r) => r.type.startsWith("pg-ha:")).map((r) => r.type);
    expect(components.filter((t) => t === "pg-ha:postgres:PostgresPrimary")).toHaveLength(1);
    expect(components.filter((t) => t === "pg-ha:postgres:PostgresReplica")).toHaveLength(replicas);
    expect(components.filter((t) => t.startsWith("pg-ha:ha:"))).toEqual([]);
    // Backups are pgBackRest's with Patroni only: here WAL goes to the shared archive volume.
    expect(components.filter((t) => t.startsWith("pg-ha:backup:"))).toEqual([]);
    expect(regs.find((r) => r.type === CONTAINER && r.name.endsWith("primary"))!.parentType).toBe("pg-ha:postgres:PostgresPrimary");
    expect(regs.find((r) => r.type === VOLUME && r.name === `pgha-${stack}-wal-archive`)!.parentType).toBe("pg-ha:volumes:ClusterVolumes");
    expect(run.outputs.backupRepository).toBeUndefined();
    expect(run.outputs.backupCipherPass).toBeUndefined();
  });

  test(`data volumes are retained; the primary's and the WAL archive are ${stack === "prod" ? "" : "not "}protected`, () => {
    const volumes = regs.filter((r) => r.type === VOLUME && !r.name.endsWith("-secrets") && !r.name.endsWith("-config"));
    expect(volumes).toHaveLength(replicas + 2);
    for (const r of volumes) {
      expect({ name: r.name, retainOnDelete: r.opts.retainOnDelete }).toEqual({ name: r.name, retainOnDelete: true });
      const holdsTheOnlyCopy = r.name.endsWith("-primary-data") || r.name.endsWith("-wal-archive");
      expect({ name: r.name, protect: r.opts.protect }).toEqual({ name: r.name, protect: stack === "prod" && holdsTheOnlyCopy });
    }
    for (const r of regs.filter((r) => r.type === CONTAINER)) expect(r.opts.deleteBeforeReplace).toBe(true);
  });

  test("replicas start after the primary is healthy; PgBouncer after every server", () => {
    const reg = (name: string) => regs.find((r) => r.type === CONTAINER && r.name === name)!;
    for (const c of containers.filter((c) => c.includes("replica"))) expect(dependencies(reg(c))).toEqual([{ type: CONTAINER, name: containers[0] }]);
    expect(dependencies(reg(`pgha-${stack}-pgbouncer`))).toEqual([...containers.slice(0, -1), `pgha-${stack}-pgbouncer-config`].map((name) => ({ type: CONTAINER, name })));
  });

  test("the primary carries its role and mounts the WAL archive writable, archiving into it; replicas mount it read-only and read from it", () => {
    const conf = (c: Record<string, any>) => c.uploads.find((u: any) => u.file === "/etc/pg-ha/postgresql.conf").content as string;
    const primary = containerInputs(run, containers[0]);
    expect(primary.envs).toEqual(["PGDATA=/var/lib/postgresql/18/docker", "PGHA_ROLE=primary"]);
    expect(primary.volumes).toContainEqual({ volumeName: `pgha-${stack}-wal-archive`, containerPath: "/var/lib/pg-ha/wal-archive", readOnly: false });
    expect(conf(primary)).toContain("archive_command = 'test ! -f /var/lib/pg-ha/wal-archive/%f && cp %p /var/lib/pg-ha/wal-archive/%f'");
    expect(conf(primary)).toContain("archive_timeout = 60s");
    expect(conf(primary)).not.toContain("pgbackrest");
    for (const name of containers.filter((c) => c.includes("replica"))) {
      const c = containerInputs(run, name);
      expect(c.envs).toEqual(["PGDATA=/var/lib/postgresql/18/docker", "PGHA_ROLE=replica"]);
      expect(c.volumes).toContainEqual({ volumeName: `pgha-${stack}-wal-archive`, containerPath: "/var/lib/pg-ha/wal-archive", readOnly: true });
      expect(conf(c)).toContain("restore_command = 'cp /var/lib/pg-ha/wal-archive/%f %p'");
    }
  });

  test("the primary publishes the direct port; connection strings reach the primary itself", () => {
    const ports = containers.flatMap((name) => (containerInputs(run, name).ports ?? []).map((p: any) => ({ name, ...p })));
    for (const p of ports) expect(p.ip).toBe("127.0.0.1");
    expect(ports.filter((p: any) => !p.name.endsWith("pgbouncer"))).toEqual(
      stack === "dev" ? [{ name: containers[0], internal: 5432, external: 15432, ip: "127.0.0.1" }] : [],
    );
    expect(run.secret.directUrl).toBe(true);
    expect(run.outputs.directUrl).toMatch(new RegExp(`^postgresql://app:.+@pgha-${stack}-primary:5432/app\\?sslmode=verify-full$`));
    const admin = run.outputs.adminUrls as Record<string, string>;
    expect(admin.monitorUrl).toMatch(new RegExp(`^postgresql://monitor:.+@${stack === "prod" ? "pgha-prod-primary:5432" : "127.0.0.1:15432"}/postgres\\?`));
    expect(run.outputs.nodes).toEqual(containers.map((name) => ({
      name, role: name.endsWith("primary") ? "primary" : name.endsWith("pgbouncer") ? "pgbouncer" : "replica",
    })));
    const ini = liveFile(run, `pgha-${stack}-pgbouncer`, "/etc/pg-ha/pgbouncer.ini")!;
    expect(ini).toContain(`app = host=pgha-${stack}-primary port=5432 dbname=app`);
    expect(ini).toContain(`app_ro = host=${containers.filter((c) => c.includes("replica")).join(",")} port=5432 dbname=app`);
  });

  test("the primary's secrets writer carries the verifiers; its configs are plain, readable text", () => {
    const primary = containerInputs(run, containers[0]);
    const writer = containerInputs(run, `${containers[0]}-secrets`);
    expect(writer).toMatchObject({ start: false, mustRun: false, volumes: [{ volumeName: `${containers[0]}-secrets`, containerPath: "/etc/pg-ha/secrets" }] });
    expect(primary.volumes).toContainEqual({ volumeName: `${containers[0]}-secrets`, containerPath: "/etc/pg-ha/secrets", readOnly: true });
    expect(primary.uploads.filter((u: any) => u.file.startsWith("/etc/pg-ha/secrets/"))).toEqual([]);
    for (const u of writer.uploads) expect({ file: u.file, permissions: u.permissions }).toEqual({ file: u.file, permissions: "0600" });
    const reconcile = writer.uploads.find((u: any) => u.file === "/etc/pg-ha/secrets/reconcile.sql");
    expect(reconcile.content).toMatch(/ALTER ROLE app WITH LOGIN .* PASSWORD 'SCRAM-SHA-256\$4096:/);
    const conf = primary.uploads.find((u: any) => u.file === "/etc/pg-ha/postgresql.conf");
    expect(conf.content).toContain("ssl_min_protocol_version = 'TLSv1.3'");
    expect(conf.contentBase64).toBeUndefined();
  });
});

test("the pulled images are used when pullImages is on; images built here are the built ones; names as given when it is off", async () => {
  const pulled = await runProgram(stackConfig("dev"));
  expect(byType(pulled, "docker:index/remoteImage:RemoteImage").map((i) => i.inputs)).toEqual([
    { name: expect.stringMatching(/^edoburu\/pgbouncer:v1\.25\.2-p0@sha256:/), keepLocally: true },
    { name: "haproxy:3.0.11", keepLocally: true },
  ]);
  // The official image gets Patroni added, and etcd is built from Debian's: both on the engine, never pushed.
  expect(byType(pulled, "docker:index/image:Image").map((i) => [i.inputs.imageName, i.inputs.skipPush]).sort()).toEqual([
    ["pg-ha/etcd:3.5", true], ["pg-ha/postgres-patroni:18", true],
  ]);
  expect(containerInputs(pulled, "pgha-dev-node-1").image).toBe("pg-ha/postgres-patroni:18");
  expect(containerInputs(pulled, "pgha-dev-etcd-1").image).toBe("pg-ha/etcd:3.5");
  expect(containerInputs(pulled, "pgha-dev-router").image).toBe("sha256:pgha-dev-haproxy-image");
  expect(containerInputs(pulled, "pgha-dev-pgbouncer").image).toBe("sha256:pgha-dev-pgbouncer-image");

  const local = await runProgram({
    ...stackConfig("dev"), "pg-ha:pullImages": "false", "pg-ha:postgresImage": "pgha-test/postgres:18",
    "pg-ha:etcdImage": "pgha-test/ha-tools:latest", "pg-ha:haproxyImage": "pgha-test/ha-tools:latest",
  });
  expect(byType(local, "docker:index/remoteImage:RemoteImage")).toHaveLength(0);
  expect(byType(local, "docker:index/image:Image")).toHaveLength(0);
  expect(containerInputs(local, "pgha-dev-node-1").image).toBe("pgha-test/postgres:18");
  expect(containerInputs(local, "pgha-dev-etcd-1").image).toBe("pgha-test/ha-tools:latest");
  expect(containerInputs(local, "pgha-dev-router").image).toBe("pgha-test/ha-tools:latest");

  const fixed = await runProgram(fixedPrimaryConfig("dev"));
  expect(byType(fixed, "docker:index/remoteImage:RemoteImage").map((i) => i.inputs)).toEqual([
    { name: "postgres:18-trixie", keepLocally: true },
    { name: expect.stringMatching(/^edoburu\/pgbouncer:v1\.25\.2-p0@sha256:/), keepLocally: true },
  ]);
  expect(byType(fixed, "docker:index/image:Image")).toHaveLength(0);
  expect(containerInputs(fixed, "pgha-dev-primary").image).toBe("sha256:pgha-dev-postgres-image");
});

test("PostgreSQL 17 mounts the volume where its official image declares it", async () => {
  const run = await runProgram({ ...stackConfig("dev"), "pg-ha:postgresMajor": "17" });
  for (const name of ["pgha-dev-node-1", "pgha-dev-node-2"]) {
    const c = containerInputs(run, name);
    expect(c.volumes).toContainEqual({ volumeName: `${name}-data`, containerPath: "/var/lib/postgresql/data" });
    expect(c.envs).toEqual(["PGDATA=/var/lib/postgresql/data/pgdata"]);
  }
  const fixed = containerInputs(await runProgram({ ...fixedPrimaryConfig("dev"), "pg-ha:postgresMajor": "17" }), "pgha-dev-primary");
  expect(fixed.volumes).toContainEqual({ volumeName: "pgha-dev-primary-data", containerPath: "/var/lib/postgresql/data" });
  expect(fixed.envs).toContain("PGDATA=/var/lib/postgresql/data/pgdata");
});

test("a single-node cluster: with Patroni one node behind the router; without, read-only sessions go to the primary", async () => {
  const run = await runProgram({ ...stackConfig("dev"), "pg-ha:replicas": "0" });
  expect(servers(byType(run, CONTAINER)).map((c) => c.name)).toEqual(["pgha-dev-etcd-1", "pgha-dev-backup", "pgha-dev-node-1", "pgha-dev-router", "pgha-dev-pgbouncer"]);
  // The backup host backs up the one node there is.
  const backupConf = containerInputs(run, "pgha-dev-backup").uploads.find((u: any) => u.file === "/etc/pg-ha/pgbackrest.conf").content;
  expect([...backupConf.matchAll(/^pg(\d+)-host=(\S+)$/gm)].map((m: RegExpMatchArray) => m[2])).toEqual(["172.30.10.11"]);
  const ini = liveFile(run, "pgha-dev-pgbouncer", "/etc/pg-ha/pgbouncer.ini")!;
  expect(ini).toContain("app = host=pgha-dev-router port=5000 dbname=app");
  expect(ini).toContain("app_ro = host=pgha-dev-router port=5001 dbname=app");
  const cfg = liveFile(run, "pgha-dev-router", "/etc/pg-ha/haproxy.cfg")!;
  expect([...cfg.matchAll(/^\s+server (\S+) /gm)].map((m: RegExpMatchArray) => m[1])).toEqual(["pgha-dev-node-1", "pgha-dev-node-1", "pgha-dev-node-1-primary"]);

  const fixed = await runProgram({ ...fixedPrimaryConfig("dev"), "pg-ha:replicas": "0" });
  expect(servers(byType(fixed, CONTAINER)).map((c) => c.name)).toEqual(["pgha-dev-primary", "pgha-dev-pgbouncer"]);
  const fixedIni = liveFile(fixed, "pgha-dev-pgbouncer", "/etc/pg-ha/pgbouncer.ini")!;
  expect(fixedIni).toContain("app_ro = host=pgha-dev-primary port=5432 dbname=app");
});

test("with pg-ha:walArchiving = false there is no backup host, repository, passphrase or archiving; the Patroni nodes get no pgBackRest files", async () => {
  const run = await runProgram({ ...stackConfig("dev"), "pg-ha:walArchiving": "false" });
  expect(servers(byType(run, CONTAINER)).map((c) => c.name)).toEqual(["pgha-dev-etcd-1", "pgha-dev-node-1", "pgha-dev-node-2", "pgha-dev-router", "pgha-dev-pgbouncer"]);
  expect(byType(run, VOLUME).map((v) => v.inputs.name).filter((n: string) => !n.endsWith("-secrets") && !n.endsWith("-config")).sort()).toEqual(
    ["pgha-dev-etcd-1-data", "pgha-dev-node-1-data", "pgha-dev-node-2-data"],
  );
  expect(byType(run, "random:index/randomPassword:RandomPassword").map((p) => p.name)).not.toContain("pgha-dev-backup-cipher-pass");
  expect(byType(run, "random:index/randomPassword:RandomPassword")).toHaveLength(5);
  // Two nodes, one etcd member, PgBouncer; replication, pg_rewind and etcd clients: no backup host, no pgBackRest clients.
  expect(byType(run, "tls:index/locallySignedCert:LocallySignedCert")).toHaveLength(7);
  expect(run.outputs.backupRepository).toBeUndefined();
  expect(run.outputs.backupCipherPass).toBeUndefined();
  expect((run.outputs.nodes as { role: string }[]).map((n) => n.role)).not.toContain("backup");
  for (const name of ["pgha-dev-node-1", "pgha-dev-node-2"]) {
    const c = containerInputs(run, name);
    expect(c.volumes.map((v: any) => v.containerPath)).toEqual(["/var/lib/postgresql", "/etc/pg-ha/secrets", "/etc/pg-ha/live"]);
    expect(liveFile(run, name, "/etc/pg-ha/pgbackrest.conf")).toBeUndefined();
    expect(containerInputs(run, `${name}-secrets`).uploads.map((u: any) => u.file)).not.toContain("/etc/pg-ha/secrets/backup-node-client.key");
    const patroni = parse(liveFile(run, name, "/etc/pg-ha/patroni.yml")!);
    expect(patroni.postgresql.parameters.archive_mode).toBe("off");
    expect(patroni.postgresql.parameters.archive_command).toBeUndefined();
    expect(patroni.postgresql.recovery_conf).toBeUndefined();
  }
});

test("pg-ha:restoreFrom: the nodes mount the source repository read-only, Patroni bootstraps with pgbackrest_restore to the target, the source passphrase only in the writers", async () => {
  const sourcePass = "SourceRepoPass-7f3a";
  const run = await runProgram({
    ...stackConfig("dev"),
    "pg-ha:restoreFrom": JSON.stringify({ repositoryVolume: "pgha-prod-backup-repo", stanza: "pgha-prod", targetTime: "2026-01-02T03:04:05+01:00" }),
    "pg-ha:restoreCipherPass": sourcePass,
  });
  // The source volume is mounted, never managed: no Volume resource of this stack, so its destroy cannot remove it.
  expect(byType(run, VOLUME).map((v) => v.inputs.name)).not.toContain("pgha-prod-backup-repo");
  // The restored cluster has backups of its own, in its own repository.
  expect(byType(run, VOLUME).map((v) => v.inputs.name)).toContain("pgha-dev-backup-repo");
  for (const name of ["pgha-dev-node-1", "pgha-dev-node-2"]) {
    const c = containerInputs(run, name);
    expect(c.volumes).toContainEqual({ volumeName: "pgha-prod-backup-repo", containerPath: "/var/lib/pg-ha/restore-source", readOnly: true });
    const file = (path: string) => c.uploads.find((u: any) => u.file === path)?.content as string | undefined;
    const patroni = parse(liveFile(run, name, "/etc/pg-ha/patroni.yml")!);
    expect(patroni.bootstrap.method).toBe("pgbackrest_restore");
    expect(patroni.bootstrap.pgbackrest_restore).toEqual({
      command: "/usr/local/lib/pg-ha/patroni-restore.sh --stanza=pgha-prod --type=time '--target=2026-01-02 02:04:05+00' --target-action=promote",
      no_params: true,
      keep_existing_recovery_conf: true,
    });
    expect(file("/usr/local/lib/pg-ha/patroni-restore.sh")).toContain("restore");
    const restoreConf = file("/etc/pg-ha/pgbackrest-restore.conf")!;
    expect(restoreConf).toContain("repo1-path=/var/lib/pg-ha/restore-source\n");
    expect(restoreConf).toContain("[pgha-prod]\npg1-path=/var/lib/postgresql/18/docker\n");
    expect(restoreConf).not.toContain(sourcePass);
    const writer = containerInputs(run, `${name}-secrets`);
    const cipher = writer.uploads.find((u: any) => u.file === "/etc/pg-ha/secrets/restore-source-cipher.conf");
    expect(cipher).toMatchObject({ permissions: "0600", content: expect.stringContaining(`repo1-cipher-pass=${sourcePass}\n`) });
  }
  for (const c of byType(run, CONTAINER)) {
    const inputs = unwrapSecrets(c.inputs) as Record<string, any>;
    expect({ name: c.name, holds: JSON.stringify({ ...inputs, uploads: undefined }).includes(sourcePass) }).toEqual({ name: c.name, holds: false });
    const holding = (inputs.uploads ?? []).filter((u: any) => JSON.stringify(u).includes(sourcePass)).map((u: any) => u.file);
    const isNodeWriter = /^pgha-dev-node-\d+-secrets$/.test(c.name);
    expect({ name: c.name, holding }).toEqual({ name: c.name, holding: isNodeWriter ? ["/etc/pg-ha/secrets/restore-source-cipher.conf"] : [] });
    // The writer's upload is a secret: the mock monitor lifts it to the whole property.
    if (isNodeWriter) expect((c.inputs.uploads as Record<string, unknown>)[SECRET_SIG]).toBeDefined();
  }
  // The passphrase reaches no output either.
  expect(JSON.stringify(run.outputs)).not.toContain(sourcePass);
});

test("a server's uploads hold no secret, so a config change previews as readable lines; its secrets go to the writer", async () => {
  // The mock monitor lifts nested secrets to the whole property when it deserializes, so look at
  // what the SDK sends the engine instead: serializeProperty is the SDK's own wire encoding. The
  // engine marks a whole array property secret when any element is (annotateSecrets), so one
  // secret upload would hide every config line: the server's uploads must hold none.
  const spec = parseClusterConfig(stackConfig("dev"));
  const keyPair = { certPem: pulumi.output("CERT"), privateKeyPem: pulumi.secret("KEY") };
  const nodeArgs = {
    spec, node: primaryNode(spec), image: "img", networkName: "net", dataVolume: "data",
    caCertPem: "CA", serverKeyPair: keyPair,
  };
  const mount = { volume: { volumeName: "pgha-dev-primary-secrets", containerPath: "/etc/pg-ha/secrets", readOnly: true }, label: { label: "pgha.secrets-writer", value: "ID" } };
  const args = postgresContainerArgs(nodeArgs, [], mount);
  const secretSig = "1b47061264138c4ac30d75fd1eb44270";
  const containsSecret = (v: unknown): boolean =>
    typeof v === "object" && v !== null && (Object.values(v).includes(secretSig) || Object.values(v).some(containsSecret));
  const wire = (await pulumi.runtime.serializeProperty("uploads", args.uploads, new Set())) as Record<string, unknown>[];
  expect(containsSecret(wire)).toBe(false);
  expect(wire.map((u) => u.file)).not.toContain("/etc/pg-ha/secrets/server.key");
  expect(wire.find((u) => u.file === "/etc/pg-ha/postgresql.conf")!.content).toContain("max_connections = 70");
  expect(await pulumi.runtime.serializeProperty("labels", args.labels, new Set())).toContainEqual({ label: "pgha.secrets-writer", value: "ID" });
  const secretUploads = postgresSecretUploads(nodeArgs, [upload("/etc/pg-ha/secrets/reconcile.sql", pulumi.secret("SQL"), "0600")]);
  const secretWire = (await pulumi.runtime.serializeProperty("uploads", secretUploads, new Set())) as Record<string, unknown>[];
  expect(secretWire.map((u) => [u.file, containsSecret(u.content)])).toEqual([["/etc/pg-ha/secrets/server.key", true], ["/etc/pg-ha/secrets/reconcile.sql", true]]);
});
