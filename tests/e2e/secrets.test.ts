/**
 * Secrets drill: no generated password appears in plaintext anywhere but in the secret outputs.
 * The drill takes each password's actual value from what the executor generated and searches
 * every container's `docker inspect`, every file the program uploads (as uploaded and as found in
 * the running containers), the processes' command lines, every container's log, and the
 * non-secret outputs.
 */
import { DRILLS, deployDrill, deployedResources, generatedPasswords, hostPsql, logsOf, passwordOf, run } from "./support/drill";
import { type DeployedCluster, docker, removeCluster, report } from "./support/cluster";

jest.setTimeout(120_000);

const shape = DRILLS.secrets;

/** Which outputs hold passwords (secret) and which do not (README, "Outputs"). */
const SECRET_OUTPUTS = ["directUrl", "pooledUrl", "readOnlyUrl", "hostDirectUrl", "hostPooledUrl", "hostReadOnlyUrl", "databaseUrls", "adminUrls"];
const PLAIN_OUTPUTS = ["caCertPem", "networkName", "nodes"];

let cluster: DeployedCluster;
/** Role -> generated password, as the executor generated it. */
let passwords: Record<string, string>;
let containers: string[];

beforeAll(async () => {
  cluster = await deployDrill(shape);
  passwords = generatedPasswords(shape.clusterName);
  containers = cluster.outputs.nodes.map((n) => n.name);
  // Give the logs something to say: every role logs in through every URL, and one attempt fails.
  const o = cluster.outputs;
  for (const url of [o.hostDirectUrl!, o.hostPooledUrl!, o.hostReadOnlyUrl!, o.adminUrls.monitorUrl]) {
    expect((await hostPsql(cluster, url, "SELECT 1")).stdout).toBe("1");
  }
  for (const url of [o.adminUrls.pgbouncerAdminUrl, o.adminUrls.pgbouncerStatsUrl]) {
    expect((await hostPsql(cluster, url, "SHOW VERSION")).status).toBe(0);
  }
  expect((await hostPsql(cluster, o.hostDirectUrl!.replace(`:${passwords.app}@`, `:${passwords.monitor}@`), "SELECT 1")).status).toBe(2);
}, 300_000);

afterAll(async () => {
  if (cluster) await removeCluster(cluster);
}, 300_000);

/** The roles whose password is found in TEXT (the search is for each password's actual value). */
function passwordsIn(text: string): string[] {
  return Object.entries(passwords).filter(([, p]) => text.includes(p) || text.includes(encodeURIComponent(p))).map(([role]) => role);
}

test("the program generates one 32-character password per role, and the secret outputs carry them (control)", () => {
  expect(Object.keys(passwords).sort()).toEqual(["app", "monitor", "pgbouncer_admin", "pgbouncer_stats"]);
  for (const p of Object.values(passwords)) expect(p).toMatch(/^[A-Za-z0-9_-]{32}$/);
  // The search below finds them where they belong: this is what a leak would look like.
  expect(passwordsIn(JSON.stringify(cluster.outputs.adminUrls)).sort()).toEqual(["monitor", "pgbouncer_admin", "pgbouncer_stats"]);
  expect(passwordsIn(cluster.outputs.directUrl)).toEqual(["app"]);
  expect(passwordOf(cluster.outputs.pooledUrl)).toBe(passwords.app);
});

test("no password in `docker inspect` of any container, nor of the network and volumes", async () => {
  const volumes = (await docker("volume", "ls", "-q", "--filter", `label=pgha.cluster=${shape.clusterName}`)).split("\n").filter(Boolean);
  expect(volumes.length).toBe(6); // primary, replica, WAL archive, and each container's secret files
  const inspected = [
    await docker("inspect", ...containers),
    await docker("network", "inspect", cluster.outputs.networkName),
    await docker("volume", "inspect", ...volumes),
  ].join("\n");
  // Env, command, entrypoint, labels, health check and mounts are all in there.
  expect(inspected).toContain("PGHA_ROLE=primary");
  expect(passwordsIn(inspected)).toEqual([]);
  report(`secrets: ${Object.keys(passwords).length} passwords searched in docker inspect of ${containers.length} containers, 1 network, ${volumes.length} volumes: none found`);
});

test("no password in any file the program uploads, nor in any file of pg-ha's in the running containers", async () => {
  const uploads = deployedResources()
    .filter((r) => r.type === "docker:index/container:Container")
    .flatMap((r) => (r.inputs.uploads as { file: string; content?: string }[]).map((u) => ({ container: String(r.outputs.name), ...u })));
  expect(uploads.length).toBeGreaterThanOrEqual(25);
  for (const u of uploads) expect({ file: `${u.container}:${u.file}`, roles: passwordsIn(u.content ?? "") }).toEqual({ file: `${u.container}:${u.file}`, roles: [] });
  // The secret files hold SCRAM verifiers instead: the servers and PgBouncer never get a password.
  const userlist = uploads.find((u) => u.file === "/etc/pg-ha/secrets/userlist.txt")!;
  expect(userlist.content).toMatch(/^"app" "SCRAM-SHA-256\$4096:[^"]+"$/m);

  // What the containers hold at run time: the uploads, the copies the start-up scripts make
  // (keys, userlist), the bootstrap server's log.
  let files = 0;
  for (const container of containers) {
    const listing = await docker("exec", container, "find", "/etc/pg-ha", "/run/pg-ha", "/usr/local/lib/pg-ha", "-type", "f");
    const paths = listing.split("\n").filter(Boolean);
    files += paths.length;
    const contents = await run("docker", ["exec", container, "cat", ...paths]);
    expect(contents.status).toBe(0);
    expect({ container, roles: passwordsIn(contents.stdout) }).toEqual({ container, roles: [] });
  }
  report(`secrets: ${uploads.length} uploaded files and ${files} files in the running containers searched: no password`);
});

test("no password on any process's command line in the containers", async () => {
  for (const container of containers) {
    const processes = await docker("top", container, "-eo", "pid,args");
    expect(processes).toMatch(container.endsWith("pgbouncer") ? /pgbouncer/ : /postgres/);
    expect({ container, roles: passwordsIn(processes) }).toEqual({ container, roles: [] });
  }
});

test("no password in any container's log, after logins with every password and a failed one", async () => {
  let bytes = 0;
  for (const container of containers) {
    const logs = await logsOf(container);
    bytes += logs.length;
    expect({ container, roles: passwordsIn(logs) }).toEqual({ container, roles: [] });
  }
  // The failed login is logged (so the search ran over a log that records authentication)...
  expect(await logsOf(cluster.primary)).toContain('FATAL:  password authentication failed for user "app"');
  report(`secrets: ${bytes} bytes of container logs searched: no password`);
});

test("no password in any non-secret output, and every output is classified", () => {
  expect(Object.keys(cluster.outputs).sort()).toEqual([...SECRET_OUTPUTS, ...PLAIN_OUTPUTS].sort());
  const outputs = cluster.outputs as unknown as Record<string, unknown>;
  for (const key of PLAIN_OUTPUTS) expect({ key, roles: passwordsIn(JSON.stringify(outputs[key])) }).toEqual({ key, roles: [] });
  // Every secret output does carry a password: the classification is not vacuous.
  for (const key of SECRET_OUTPUTS) expect({ key, found: passwordsIn(JSON.stringify(outputs[key])).length > 0 }).toEqual({ key, found: true });
});
