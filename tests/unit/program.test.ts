import * as pulumi from "@pulumi/pulumi";
import { parseClusterConfig } from "../../config";
import { PostgresCluster } from "../../components/cluster";
import { upload } from "../../components/container-defaults";
import { postgresContainerArgs, postgresSecretUploads } from "../../components/postgres-node";
import { primaryNode } from "../../topology";
import { byType, promiseOf, runProgram, settle, stackConfig, unwrapSecrets, type ProgramRun } from "./harness";

const CONTAINER = "docker:index/container:Container";
const VOLUME = "docker:index/volume:Volume";

interface Registration {
  type: string;
  name: string;
  opts: pulumi.CustomResourceOptions;
  parentType?: string;
}

/** Builds the cluster component directly and records every child's resource options. */
async function registrations(stack: "dev" | "prod"): Promise<Registration[]> {
  const seen: Registration[] = [];
  const spec = parseClusterConfig(stackConfig(stack));
  const cluster = new PostgresCluster(spec.clusterName, { spec }, {
    transformations: [(a) => {
      seen.push({ type: a.type, name: a.name, opts: a.opts as pulumi.CustomResourceOptions, parentType: (a.opts.parent as any)?.__pulumiType });
      return undefined;
    }],
  });
  await promiseOf(pulumi.all([cluster.caCertPem, cluster.networkName]));
  await settle();
  return seen;
}

/** The running containers: every container but the created-only writers of secret files. */
function servers<T extends { name: string }>(containers: T[]): T[] {
  return containers.filter((c) => !c.name.endsWith("-secrets"));
}

function containerInputs(run: ProgramRun, name: string): Record<string, any> {
  const container = byType(run, CONTAINER).find((c) => c.name === name);
  if (!container) throw new Error(`no container ${name}`);
  return unwrapSecrets(container.inputs) as Record<string, any>;
}

/** The commands a health script runs that may block, each with its `timeout -s KILL N` bound (undefined: unbounded). */
function clientBounds(script: string): { client: string; seconds?: number }[] {
  const code = script.split("\n").filter((line) => !line.trimStart().startsWith("#")).join("\n");
  return [...code.matchAll(/(?:timeout -s KILL (\d+) )?\b(pg_isready|psql|grep|curl|wget|nc|etcdctl|patronictl|python3|bash|pgbouncer)\b/g)]
    .map(([, seconds, client]) => ({ client, seconds: seconds === undefined ? undefined : Number(seconds) }));
}

/** A healthcheck duration as the component writes it ("5s"). */
function goSeconds(duration: string): number {
  const m = /^(\d+)s$/.exec(duration);
  if (!m) throw new Error(`unexpected healthcheck duration ${duration}`);
  return Number(m[1]);
}

describe.each([
  ["dev", 1, ["pgha-dev-primary", "pgha-dev-replica-1", "pgha-dev-pgbouncer"]],
  ["prod", 2, ["pgha-prod-primary", "pgha-prod-replica-1", "pgha-prod-replica-2", "pgha-prod-pgbouncer"]],
] as const)("the %s stack", (stack, replicas, containers) => {
  let run: ProgramRun;
  let regs: Registration[];
  beforeAll(async () => {
    run = await runProgram(stackConfig(stack));
    regs = await registrations(stack);
  });

  test("creates one container per node plus PgBouncer, a network, and a data volume per node plus the WAL archive", () => {
    expect(servers(byType(run, CONTAINER)).map((c) => c.name)).toEqual([...containers]);
    expect(byType(run, CONTAINER).map((c) => c.name).filter((n) => n.endsWith("-secrets")).sort()).toEqual(containers.map((c) => `${c}-secrets`).sort());
    expect(byType(run, "docker:index/network:Network")).toHaveLength(1);
    expect(byType(run, VOLUME).map((v) => v.inputs.name).sort()).toEqual(
      [...containers.filter((c) => !c.endsWith("pgbouncer")).map((c) => `${c}-data`), `pgha-${stack}-wal-archive`,
        ...containers.map((c) => `${c}-secrets`)].sort(),
    );
    expect(byType(run, "random:index/randomPassword:RandomPassword")).toHaveLength(4);
    expect(byType(run, "tls:index/locallySignedCert:LocallySignedCert")).toHaveLength(replicas + 3);
  });

  test("every resource has a component parent; each kind of component exists once per node", () => {
    const components = regs.filter((r) => r.type.startsWith("pg-ha:")).map((r) => r.type);
    expect(components.filter((t) => t === "pg-ha:postgres:PostgresReplica")).toHaveLength(replicas);
    for (const t of ["pg-ha:index:PostgresCluster", "pg-ha:secrets:ClusterSecrets", "pg-ha:tls:ClusterTls",
      "pg-ha:volumes:ClusterVolumes", "pg-ha:postgres:PostgresPrimary", "pg-ha:pgbouncer:PgBouncer"]) {
      expect(components.filter((c) => c === t)).toHaveLength(1);
    }
    for (const r of regs.filter((r) => !r.type.startsWith("pg-ha:index"))) expect(r.parentType).toMatch(/^pg-ha:/);
    expect(regs.find((r) => r.type === CONTAINER && r.name.endsWith("primary"))!.parentType).toBe("pg-ha:postgres:PostgresPrimary");
    expect(regs.find((r) => r.type === VOLUME)!.parentType).toBe("pg-ha:volumes:ClusterVolumes");
  });

  test("containers are deleted before they are replaced (fixed names, ports, one server per volume)", () => {
    const containerRegs = regs.filter((r) => r.type === CONTAINER);
    expect(containerRegs).toHaveLength(2 * containers.length);
    for (const r of containerRegs) expect(r.opts.deleteBeforeReplace).toBe(true);
  });

  test(`data volumes are retained; the primary's and the WAL archive are ${stack === "prod" ? "" : "not "}protected`, () => {
    const volumes = regs.filter((r) => r.type === VOLUME && !r.name.endsWith("-secrets"));
    expect(volumes).toHaveLength(replicas + 2);
    for (const r of volumes) {
      expect({ name: r.name, retainOnDelete: r.opts.retainOnDelete }).toEqual({ name: r.name, retainOnDelete: true });
      const holdsTheOnlyCopy = r.name.endsWith("-primary-data") || r.name.endsWith("-wal-archive");
      expect({ name: r.name, protect: r.opts.protect }).toEqual({ name: r.name, protect: stack === "prod" && holdsTheOnlyCopy });
    }
  });

  test("the network is deleted before it is replaced: its fixed name cannot exist twice", () => {
    expect(regs.find((r) => r.type === "docker:index/network:Network")!.opts.deleteBeforeReplace).toBe(true);
  });

  test("limits and health-check durations are sent as the provider reads them back, so a second up plans nothing", () => {
    for (const name of containers) {
      const c = containerInputs(run, name);
      expect(c.healthcheck.startPeriod).toMatch(/^(\d+h)?(\d+m)?\d+s$/);
      expect(c.memorySwap).toBe(c.memory);
      if (c.cpus !== undefined) expect(c.cpus).toMatch(/^\d+\.\d+$/);
    }
    expect(containerInputs(run, containers[0]).healthcheck.startPeriod).toBe("10m0s");
  });


  test("replicas start after the primary is healthy; PgBouncer after every server", () => {
    const deps = (name: string) => ((regs.find((r) => r.type === CONTAINER && r.name === name)!.opts.dependsOn ?? []) as pulumi.Resource[]).length;
    for (const c of containers.filter((c) => c.includes("replica"))) expect(deps(c)).toBe(1);
    expect(deps(`pgha-${stack}-pgbouncer`)).toBe(replicas + 1);
  });

  test("every container has a health check, waits for it, and stops gracefully", () => {
    for (const name of containers) {
      const c = containerInputs(run, name);
      expect(c.healthcheck.tests[0]).toBe("CMD");
      expect(c.healthcheck.interval).toBe("2s");
      expect(c.wait).toBe(true);
      expect(c.waitTimeout).toBeGreaterThanOrEqual(60);
      expect(c.destroyGraceSeconds).toBeGreaterThanOrEqual(30);
      expect(c.stopSignal).toBe("SIGINT");
      expect(c.restart).toBe("unless-stopped");
      expect(c.labels).toContainEqual({ label: "pgha.cluster", value: `pgha-${stack}` });
    }
  });

  test("every container runs under Docker's init, which reaps orphans, so no server is PID 1", () => {
    const all = byType(run, CONTAINER);
    expect(servers(all).map((c) => c.name)).toEqual([...containers]);
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
      for (const b of bounds) expect({ client: b.client, boundSeconds: b.seconds }).toEqual({ client: b.client, boundSeconds: expect.any(Number) });
      const total = bounds.reduce((sum, b) => sum + (b.seconds ?? Infinity), 0);
      // A second left for Docker to start the check (docker exec) on a loaded machine.
      expect(total).toBeLessThanOrEqual(goSeconds(c.healthcheck.timeout) - 1);
    }
  });

  test("PostgreSQL nodes get their memory and CPU limits, and the data volume at the official path", () => {
    const c = containerInputs(run, containers[0]);
    expect(c.memory).toBe(stack === "prod" ? 8192 : 1024);
    expect(c.cpus).toBe(stack === "prod" ? "4.0" : "1.0");
    expect(c.volumes).toContainEqual({ volumeName: `${containers[0]}-data`, containerPath: "/var/lib/postgresql" });
    expect(c.envs).toEqual(["PGDATA=/var/lib/postgresql/18/docker", "PGHA_ROLE=primary"]);
  });

  test("the replica mounts the WAL archive read-only", () => {
    const c = containerInputs(run, containers[1]);
    expect(c.volumes).toContainEqual({ volumeName: `pgha-${stack}-wal-archive`, containerPath: "/var/lib/pg-ha/wal-archive", readOnly: true });
  });

  test("published ports bind to loopback only", () => {
    const ports = containers.flatMap((name) => containerInputs(run, name).ports ?? []);
    expect(ports.length).toBeGreaterThan(0);
    for (const p of ports) expect(p.ip).toBe("127.0.0.1");
    const external = ports.map((p: any) => p.external).sort();
    expect(external).toEqual(stack === "dev" ? [15432, 16432, 16433] : [6432]);
  });

  test("outputs: every connection string is secret and verify-full; host URLs only for published endpoints", () => {
    const urls = ["directUrl", "pooledUrl", "readOnlyUrl", "hostDirectUrl", "hostPooledUrl", "hostReadOnlyUrl"];
    for (const u of urls) {
      const value = run.outputs[u] as string | undefined;
      if (value === undefined) continue;
      expect(run.secret[u]).toBe(true);
      expect(value).toMatch(/^postgresql:\/\/app:.+@.+\?sslmode=verify-full$/);
    }
    expect(run.outputs.readOnlyUrl).toMatch(new RegExp(`@pgha-${stack}-pgbouncer:6432/app_ro\\?`));
    expect(run.outputs.directUrl).toMatch(new RegExp(`@pgha-${stack}-primary:5432/app\\?`));
    if (stack === "prod") {
      expect(run.outputs.hostDirectUrl).toBeUndefined();
      expect(run.outputs.hostReadOnlyUrl).toBeUndefined();
      expect(run.outputs.hostPooledUrl).toMatch(/@127\.0\.0\.1:6432\/app\?/);
    } else {
      expect(run.outputs.hostReadOnlyUrl).toMatch(/@127\.0\.0\.1:16433\/app_ro\?/);
    }
    expect(run.secret.adminUrls).toBe(true);
    const admin = run.outputs.adminUrls as Record<string, string>;
    expect(Object.keys(admin)).toEqual(["monitorUrl", "pgbouncerAdminUrl", "pgbouncerStatsUrl"]);
    expect(admin.pgbouncerAdminUrl).toMatch(new RegExp(`^postgresql://pgbouncer_admin:.+@${stack === "prod" ? "127.0.0.1:6432" : "127.0.0.1:16432"}/pgbouncer\\?sslmode=verify-full$`));
    expect(admin.monitorUrl).toMatch(new RegExp(`^postgresql://monitor:.+@${stack === "prod" ? "pgha-prod-primary:5432" : "127.0.0.1:15432"}/postgres\\?`));
    expect(run.outputs.caCertPem).toMatch(/BEGIN CERTIFICATE/);
    expect(run.outputs.networkName).toBe(`pgha-${stack}-net`);
    expect(run.outputs.nodes).toEqual(containers.map((name) => ({
      name, role: name.endsWith("primary") ? "primary" : name.endsWith("pgbouncer") ? "pgbouncer" : "replica",
    })));
  });

  test("no plaintext password in any container input; secret uploads are root-only", () => {
    const passwords = byType(run, "random:index/randomPassword:RandomPassword").map((p) => `Pw-${p.name}`);
    expect(passwords).toHaveLength(4);
    for (const name of containers) {
      const c = containerInputs(run, name);
      const text = JSON.stringify(c);
      for (const password of passwords) expect(text).not.toContain(password);
      for (const u of c.uploads) {
        if (u.file.includes("/secrets/")) expect(u.permissions).toBe("0600");
        else expect(u.content).not.toMatch(/PRIVATE KEY|SCRAM-SHA-256\$/);
      }
    }
  });

  test("secret uploads carry the verifiers and keys; config uploads are plain, readable text", () => {
    const primary = containerInputs(run, containers[0]);
    const writer = containerInputs(run, `${containers[0]}-secrets`);
    expect(writer).toMatchObject({ start: false, mustRun: false, volumes: [{ volumeName: `${containers[0]}-secrets`, containerPath: "/etc/pg-ha/secrets" }] });
    expect(primary.volumes).toContainEqual({ volumeName: `${containers[0]}-secrets`, containerPath: "/etc/pg-ha/secrets", readOnly: true });
    expect(primary.uploads.filter((u: any) => u.file.startsWith("/etc/pg-ha/secrets/"))).toEqual([]);
    const reconcile = writer.uploads.find((u: any) => u.file === "/etc/pg-ha/secrets/reconcile.sql");
    expect(reconcile.content).toMatch(/ALTER ROLE app WITH LOGIN .* PASSWORD 'SCRAM-SHA-256\$4096:/);
    const conf = primary.uploads.find((u: any) => u.file === "/etc/pg-ha/postgresql.conf");
    expect(conf.content).toContain("ssl_min_protocol_version = 'TLSv1.3'");
    expect(conf.contentBase64).toBeUndefined();
  });
});

test("the pulled image is used when pullImages is on; the name as given when it is off", async () => {
  const pulled = await runProgram(stackConfig("dev"));
  expect(byType(pulled, "docker:index/remoteImage:RemoteImage").map((i) => i.inputs)).toEqual([
    { name: "postgres:18-trixie", keepLocally: true },
    { name: expect.stringMatching(/^edoburu\/pgbouncer:v1\.25\.2-p0@sha256:/), keepLocally: true },
  ]);
  expect(containerInputs(pulled, "pgha-dev-primary").image).toBe("sha256:pgha-dev-postgres-image");

  const local = await runProgram({ ...stackConfig("dev"), "pg-ha:pullImages": "false", "pg-ha:postgresImage": "pgha-test/postgres:18" });
  expect(byType(local, "docker:index/remoteImage:RemoteImage")).toHaveLength(0);
  expect(containerInputs(local, "pgha-dev-primary").image).toBe("pgha-test/postgres:18");
});

test("PostgreSQL 17 mounts the volume where its official image declares it", async () => {
  const run = await runProgram({ ...stackConfig("dev"), "pg-ha:postgresMajor": "17" });
  const c = containerInputs(run, "pgha-dev-primary");
  expect(c.volumes).toContainEqual({ volumeName: "pgha-dev-primary-data", containerPath: "/var/lib/postgresql/data" });
  expect(c.envs).toContain("PGDATA=/var/lib/postgresql/data/pgdata");
});

test("a single-node cluster sends read-only sessions to the primary", async () => {
  const run = await runProgram({ ...stackConfig("dev"), "pg-ha:replicas": "0" });
  expect(servers(byType(run, CONTAINER)).map((c) => c.name)).toEqual(["pgha-dev-primary", "pgha-dev-pgbouncer"]);
  const ini = containerInputs(run, "pgha-dev-pgbouncer").uploads.find((u: any) => u.file === "/etc/pg-ha/pgbouncer.ini").content;
  expect(ini).toContain("app_ro = host=pgha-dev-primary port=5432 dbname=app");
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
