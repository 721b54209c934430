/**
 * A real consumer: examples/consumer, a second Pulumi program, reads the dev stack's outputs
 * through a StackReference, builds the notes service and runs it on the cluster network. The
 * service writes through pooledUrl and reads back through readOnlyUrl; a copy given another CA
 * is refused. The connection forms the README shows are tried here from the host as well.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Client } from "pg";
import { parse as parseConnectionString } from "pg-connection-string";
import { cleanupLeftovers, deploy, destroy, loadStackConfig } from "./executor";
import {
  deployCluster, docker, psql, query, removeCluster, report, sqlInContainer, waitFor, withClient, type DeployedCluster,
} from "./support/cluster";

jest.setTimeout(900_000);

const ROOT = path.join(__dirname, "..", "..");
const EXAMPLE = path.join(ROOT, "examples", "consumer");
const NODE_IMAGE = "pgha-test/node:latest";
const CLUSTER_CONFIG = {
  "pg-ha:clusterName": "pgha-consumer",
  "pg-ha:networkSubnet": "172.30.71.0/24",
  "pg-ha:publishDirectPort": "21432",
  "pg-ha:publishPooledPort": "21433",
  "pg-ha:publishReadOnlyPort": "21434",
};
const SERVICE = "pgha-consumer-notes";
const WRONG_CA_SERVICE = "pgha-consumer-notes-wrong-ca";
/** The outputs the cluster's stack state marks secret (its unit tests check which). */
const SECRET_OUTPUTS = ["directUrl", "pooledUrl", "readOnlyUrl", "hostDirectUrl", "hostPooledUrl", "hostReadOnlyUrl", "databaseUrls", "adminUrls"];

/** examples/consumer's dev stack, its StackReference answered with the cluster's OUTPUTS. */
async function deployConsumer(stack: string, serviceName: string, outputs: object) {
  const config = loadStackConfig("dev", { serviceName, nodeImage: NODE_IMAGE }, { project: "pg-ha-consumer", projectDir: EXAMPLE });
  await cleanupLeftovers(stack);
  return deploy({
    programPath: path.join(EXAMPLE, "index.ts"),
    project: "pg-ha-consumer",
    stack,
    config,
    stackReferences: { [config["pg-ha-consumer:clusterStack"]]: { outputs: { ...outputs }, secretOutputNames: SECRET_OUTPUTS } },
  });
}

/** What `npm run build` in examples/consumer does, with this repository's TypeScript. */
function buildService(): void {
  const service = path.join(EXAMPLE, "service");
  if (!fs.existsSync(path.join(service, "node_modules", "pg"))) {
    execFileSync("npm", ["ci", "--prefix", service, "--omit=dev", "--no-audit", "--no-fund"], { stdio: "inherit", timeout: 300_000 });
  }
  execFileSync("npx", ["tsc", "-p", service], { cwd: ROOT, stdio: "inherit", timeout: 300_000 });
}

/** Both log streams of a container. */
function logsOf(container: string): string {
  const r = spawnSync("docker", ["logs", container], { encoding: "utf8", timeout: 30_000 });
  return `${r.stdout}${r.stderr}`;
}

/** A CA nobody used: a copy of the service that trusts it must refuse the cluster's servers. */
function anotherCa(): string {
  return execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null",
    "-subj", "/CN=another-ca", "-days", "1",
  ], { encoding: "utf8" });
}

let cluster: DeployedCluster;
let base: string; // the service's HTTP address on the cluster network

async function call(method: "GET" | "POST", route: string, body?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${route}`, { method, body, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, json: await res.json() };
}

beforeAll(async () => {
  if (spawnSync("docker", ["image", "inspect", NODE_IMAGE], { stdio: "ignore" }).status !== 0) {
    throw new Error(`${NODE_IMAGE} is missing: bash tests/images/build.sh node`);
  }
  buildService();
  cluster = await deployCluster("dev", 18, CLUSTER_CONFIG, "consumer-cluster");
  const { elapsedMs } = await deployConsumer("consumer-notes", SERVICE, cluster.outputs);
  const ip = await docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${cluster.outputs.networkName}").IPAddress}}`, SERVICE);
  base = `http://${ip}:8080`;
  report(`consumer: cluster up in ${(cluster.elapsedMs / 1000).toFixed(1)} s, notes built and healthy in ${(elapsedMs / 1000).toFixed(1)} s at ${base}`);
});

afterAll(async () => {
  await destroy({ stack: "consumer-notes-wrong-ca" }).catch(() => undefined);
  await destroy({ stack: "consumer-notes" }).catch(() => undefined);
  if (cluster) await removeCluster(cluster);
});

test("the service writes through pooledUrl and reads the note back from a replica through readOnlyUrl", async () => {
  const text = `written at ${new Date().toISOString()}`;
  const created = await call("POST", "/notes", text);
  expect(created.status).toBe(201);
  const id: number = created.json.id;
  expect(await sqlInContainer(cluster.primary, `SELECT body FROM notes WHERE id = ${id}`, "app")).toBe(text);
  const lagMs = await waitFor("the note on a replica", async () => (await call("GET", `/notes/${id}`)).status === 200, 30_000, 200);
  expect((await call("GET", `/notes/${id}`)).json).toEqual({ id, body: text, fromReplica: true });
  // Both pools go through PgBouncer: its console lists the service's clients of app and app_ro.
  const ip = new URL(base).hostname;
  const databases = async () =>
    (await query<{ addr: string; database: string }>(cluster.outputs.adminUrls.pgbouncerAdminUrl, cluster.outputs.caCertPem, "SHOW CLIENTS"))
      .filter((c) => c.addr === ip)
      .map((c) => c.database);
  await waitFor("the service's PgBouncer clients", async () => {
    const seen = await databases();
    return seen.includes("app") && seen.includes("app_ro");
  }, 20_000);
  expect(new Set(await databases())).toEqual(new Set(["app", "app_ro"]));
  report(`consumer: note ${id} written through PgBouncer, read back from a replica after ${lagMs} ms`);
});

test("no password in the image, command, env vars or labels; the URL files are the service user's alone", async () => {
  const passwords = [cluster.outputs.pooledUrl, cluster.outputs.readOnlyUrl].map((u) => parseConnectionString(u).password!);
  const info = JSON.parse(await docker("inspect", SERVICE))[0];
  const image = await docker("image", "inspect", info.Image);
  const history = await docker("history", "--no-trunc", info.Image);
  for (const password of passwords) {
    expect(password.length).toBeGreaterThanOrEqual(32);
    for (const text of [JSON.stringify(info.Config), JSON.stringify(info.Args), JSON.stringify(info.Path), image, history]) {
      expect(text).not.toContain(password);
    }
  }
  expect(await docker("exec", SERVICE, "id", "-u")).toBe("1000");
  expect(await docker("exec", SERVICE, "stat", "-c", "%a %u %g", "/run/secrets/pooled-url", "/run/secrets/read-only-url", "/run/secrets/pg-ca.pem"))
    .toBe("400 1000 1000\n400 1000 1000\n444 0 0");
  const other = spawnSync("docker", ["exec", "-u", "65534", SERVICE, "cat", "/run/secrets/pooled-url"], { encoding: "utf8" });
  expect(other.status).not.toBe(0);
  expect(other.stderr).toMatch(/Permission denied/);
});

test("the service runs under docker-init, and each health check ends inside its 10 s timeout", async () => {
  // Docker keeps the last five checks; wait for that many.
  const inspect = async () => JSON.parse(await docker("inspect", SERVICE))[0];
  await waitFor("five health checks", async () => (await inspect()).State.Health.Log.length >= 5, 120_000, 1000);
  const info = await inspect();
  expect(info.HostConfig.Init).toBe(true);
  expect(await docker("exec", SERVICE, "cat", "/proc/1/comm")).toBe("docker-init");
  const checks: { Start: string; End: string; ExitCode: number }[] = info.State.Health.Log;
  const ms = (t: string) => Date.parse(t.replace(/(\.\d{3})\d*/, "$1"));
  const durations = checks.map((c) => ms(c.End) - ms(c.Start));
  expect(checks.length).toBeGreaterThan(0);
  expect(info.Config.Healthcheck.Timeout).toBe(10e9);
  expect({ durations, overran: durations.filter((d) => d >= 10_000) }).toEqual({ durations, overran: [] });
  // Each check ended by itself: passed (0), refused (1) or gave up after 3 s (124 from
  // `timeout`); never -1, Docker's mark for a check it had to kill at the timeout.
  const exitCodes = checks.map((c) => c.ExitCode);
  for (const code of exitCodes) expect([0, 1, 124]).toContain(code);
  expect(info.State.Health.Status).toBe("healthy");
  report(`consumer: ${checks.length} health checks took ${durations.join(", ")} ms, exit codes ${exitCodes.join(", ")} (timeout 10000 ms)`);
});

test("a copy given a different CA is refused: it cannot connect, with a certificate error", async () => {
  const started = Date.now();
  await expect(deployConsumer("consumer-notes-wrong-ca", WRONG_CA_SERVICE, { ...cluster.outputs, caCertPem: anotherCa() }))
    .rejects.toThrow(/docker:index\/container:Container "pgha-consumer-notes-wrong-ca": container failed to be in healthy state.*notes: cannot start: self-signed certificate in certificate chain/s);
  expect(logsOf(WRONG_CA_SERVICE)).toMatch(/^notes: cannot start: self-signed certificate in certificate chain$/m);
  expect(await docker("inspect", "-f", "{{.State.Health.Status}}", WRONG_CA_SERVICE)).not.toBe("healthy");
  report(`consumer: the copy with another CA was refused; deploy failed after ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

describe("the connection forms the README shows, from the host", () => {
  test("node-postgres: ssl: { ca } beside the URL's sslmode is dropped; sslrootcert in the URL works, as do parsed fields with ssl: { ca }", async () => {
    const url = cluster.outputs.hostPooledUrl!;
    const ca = cluster.outputs.caCertPem;
    const dropped = new Client({ connectionString: url, ssl: { ca }, connectionTimeoutMillis: 5000 });
    await expect(dropped.connect()).rejects.toThrow("self-signed certificate in certificate chain");
    await dropped.end().catch(() => undefined);

    const inUrl = new Client({ connectionString: `${url}&sslrootcert=${cluster.caFile}`, connectionTimeoutMillis: 5000 });
    await inUrl.connect();
    try {
      expect((await inUrl.query("SELECT current_user AS u")).rows[0].u).toBe("app");
    } finally {
      await inUrl.end();
    }
    // parse the URL, then ssl: { ca } (tests/e2e/support/cluster.ts pgConfig)
    expect(await withClient(url, ca, async (c) => (await c.query("SELECT current_user AS u")).rows[0].u)).toBe("app");
  });

  test("libpq: the CA from PGSSLROOTCERT or from sslrootcert= in the URL; without it, no connection", () => {
    const url = cluster.outputs.hostPooledUrl!;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "pgha-consumer-home-")); // no ~/.postgresql/root.crt
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, PGCONNECT_TIMEOUT: "5" };
    delete env.PGSSLROOTCERT;
    const run = (target: string, extra: Record<string, string> = {}) =>
      spawnSync("psql", ["-X", "-qAt", "-c", "SELECT current_user", target], { env: { ...env, ...extra }, encoding: "utf8", timeout: 30_000 });
    expect(psql(url, cluster.caFile, "SELECT current_user").stdout).toBe("app");
    expect(run(`${url}&sslrootcert=${cluster.caFile}`).stdout.trim()).toBe("app");
    const without = run(url);
    expect(without.status).not.toBe(0);
    expect(without.stderr).toMatch(/root certificate file ".*" does not exist/);
  });
});
