/**
 * Secrets drill: no generated password appears in plaintext anywhere but where it must be. The
 * drill deploys the Patroni topology (nodes, etcd, router, PgBouncer and the secret writers),
 * takes each password's actual value from what the executor generated and searches every
 * container's `docker inspect`, every file the program uploads (as uploaded and as found in the
 * running containers), the processes' command lines and environments, every container's log,
 * etcd's contents, the REST API's public answers and the outputs. The role passwords are nowhere
 * (the servers and PgBouncer get SCRAM verifiers); Patroni's REST API password is only in the
 * root-only secret files of the nodes (and the postgres-only copy Patroni reads) and, as the
 * Authorization header HAProxy's checks send, in the router's root-only credentials file. The
 * backup repository's passphrase is only in the repository host's root-only secret file and the
 * postgres-only copy pgBackRest reads, and in the secret output backupCipherPass.
 */
import * as https from "https";
import * as tls from "tls";
import { DRILLS, deployDrill, deployedResources, hostPsql, logsOf, passwordOf, run } from "./support/drill";
import { type DeployedCluster, docker, PATRONI_CONFIG_DIR, removeCluster, report } from "./support/cluster";

jest.setTimeout(120_000);

const shape = DRILLS.secrets;
/** A Patroni node may take up to 600 s to report healthy (PATRONI_WAIT_SECONDS) on a loaded machine. */
const DEPLOY_TIMEOUT_MS = 900_000;

/** Which outputs hold passwords (secret) and which do not (README, "Outputs"). */
const SECRET_OUTPUTS = ["directUrl", "pooledUrl", "readOnlyUrl", "hostDirectUrl", "hostPooledUrl", "hostReadOnlyUrl", "databaseUrls", "adminUrls", "backupCipherPass"];
const PLAIN_OUTPUTS = ["caCertPem", "networkName", "nodes", "backupRepository"];

/** The only files that may hold the REST API's password: Patroni's and HAProxy's secret files. */
const REST_SECRET_UPLOADS = { patroni: "/etc/pg-ha/secrets/patroni-secrets.yml", router: "/etc/pg-ha/secrets/haproxy-credentials.cfg" };
/** The copy patroni-start.sh makes for Patroni (which runs as postgres) in its configuration directory. */
const REST_SECRET_COPY = `${PATRONI_CONFIG_DIR}/20-secrets.yml`;
/** The repository's passphrase: the host's root-only upload, and the postgres-only include pgBackRest reads. */
const CIPHER_UPLOAD = "/etc/pg-ha/secrets/pgbackrest-cipher.conf";
const CIPHER_COPY = "/run/pg-ha/pgbackrest.d/cipher.conf";

/** Roles whose servers reload a rewritten live configuration (components/live-config.ts). */
const LIVE_ROLES = ["postgres", "router", "pgbouncer"];

let cluster: DeployedCluster;
/** Role -> generated password, as the executor generated it; "patroni-rest" is the REST API's, "backup-cipher" the repository's passphrase. */
let passwords: Record<string, string>;
/** Every container of the cluster, running or not (the secret writers are created, never started). */
let containers: string[];
/** The running ones, by role. */
let running: { name: string; role: string }[];

beforeAll(async () => {
  cluster = await deployDrill(shape);
  const prefix = `${shape.clusterName}-secrets-`;
  const generated = deployedResources().filter((r) => r.type === "random:index/randomPassword:RandomPassword");
  passwords = Object.fromEntries(generated.map((r) => [
    r.name.startsWith(prefix) ? r.name.slice(prefix.length, -"-password".length)
      : r.name.endsWith("-patroni-rest-password") ? "patroni-rest" : r.name.endsWith("-backup-cipher-pass") ? "backup-cipher" : r.name,
    String(r.outputs.result),
  ]));
  containers = (await docker("ps", "-a", "--format", "{{.Names}}", "--filter", `label=pgha.cluster=${shape.clusterName}`)).split("\n").filter(Boolean).sort();
  running = cluster.outputs.nodes.map((n) => ({ name: n.name, role: n.role }));
  // Give the logs something to say: every role logs in through every URL, and one attempt fails.
  const o = cluster.outputs;
  for (const url of [o.hostDirectUrl!, o.hostPooledUrl!, o.hostReadOnlyUrl!, o.adminUrls.monitorUrl]) {
    expect((await hostPsql(cluster, url, "SELECT 1")).stdout).toBe("1");
  }
  for (const url of [o.adminUrls.pgbouncerAdminUrl, o.adminUrls.pgbouncerStatsUrl]) {
    expect((await hostPsql(cluster, url, "SHOW VERSION")).status).toBe(0);
  }
  expect((await hostPsql(cluster, o.hostDirectUrl!.replace(`:${passwords.app}@`, `:${passwords.monitor}@`), "SELECT 1")).status).toBe(2);
  // Patroni's operator path uses the REST password: patronictl reads it from the secret file.
  expect((await docker("exec", "-u", "postgres", cluster.primary, "patronictl", "-c", PATRONI_CONFIG_DIR, "list")).length).toBeGreaterThan(0);
}, DEPLOY_TIMEOUT_MS);

afterAll(async () => {
  if (cluster) await removeCluster(cluster);
}, DEPLOY_TIMEOUT_MS);

/** The ways a password could be written down: as is, URL-encoded, or in an HTTP Basic header. */
function forms(role: string, password: string): string[] {
  const found = [password, encodeURIComponent(password)];
  if (role === "patroni-rest") found.push(Buffer.from(`patroni:${password}`).toString("base64"));
  return found;
}

/** The roles whose password is found in TEXT (the search is for each password's actual value). */
function passwordsIn(text: string): string[] {
  return Object.entries(passwords).filter(([role, p]) => forms(role, p).some((f) => text.includes(f))).map(([role]) => role);
}

/** Every file under pg-ha's directories in a running container, as path -> content (one `docker exec`). */
async function filesOf(container: string): Promise<Map<string, string>> {
  const marker = "\u0001pg-ha-file\u0001";
  const script = `for f in $(find /etc/pg-ha /run/pg-ha /usr/local/lib/pg-ha -type f 2>/dev/null | sort); do printf '${marker}%s\\n' "$f"; cat "$f"; done`;
  const listing = await run("docker", ["exec", container, "sh", "-c", script]);
  expect({ container, status: listing.status, stderr: listing.stderr }).toEqual({ container, status: 0, stderr: "" });
  const files = new Map<string, string>();
  for (const chunk of listing.stdout.split(marker).slice(1)) {
    const newline = chunk.indexOf("\n");
    files.set(newline < 0 ? chunk : chunk.slice(0, newline), newline < 0 ? "" : chunk.slice(newline + 1));
  }
  return files;
}

test("the program generates one 32-character password per role and one for Patroni's REST API, a 64-character repository passphrase, and the secret outputs carry them (control)", () => {
  expect(Object.keys(passwords).sort()).toEqual(["app", "backup-cipher", "monitor", "patroni-rest", "pgbouncer_admin", "pgbouncer_stats"]);
  for (const [role, p] of Object.entries(passwords)) expect(p).toMatch(role === "backup-cipher" ? /^[A-Za-z0-9]{64}$/ : /^[A-Za-z0-9_-]{32}$/);
  expect(passwordsIn(String(cluster.outputs.backupCipherPass))).toEqual(["backup-cipher"]);
  // The search below finds them where they belong: this is what a leak would look like.
  expect(passwordsIn(JSON.stringify(cluster.outputs.adminUrls)).sort()).toEqual(["monitor", "pgbouncer_admin", "pgbouncer_stats"]);
  expect(passwordsIn(cluster.outputs.directUrl)).toEqual(["app"]);
  expect(passwordOf(cluster.outputs.pooledUrl)).toBe(passwords.app);
});

test("every container of the topology is searched: Patroni nodes, etcd, router, the backup repository host, PgBouncer and each one's secret writer", async () => {
  const byRole = (role: string) => running.filter((n) => n.role === role).map((n) => n.name);
  expect(byRole("postgres")).toEqual(cluster.members);
  expect(byRole("postgres").length).toBe(2);
  expect(byRole("etcd").length).toBe(1);
  expect(byRole("router")).toEqual([`${shape.clusterName}-router`]);
  expect(byRole("pgbouncer")).toEqual([cluster.pgbouncer]);
  expect(byRole("backup")).toEqual([`${shape.clusterName}-backup`]);
  // Each running container has its secret writer, and each that reloads its files (nodes, router,
  // PgBouncer) the writer of its live configuration: created, never started.
  const writers = (n: { name: string; role: string }) => [`${n.name}-secrets`, ...(LIVE_ROLES.includes(n.role) ? [`${n.name}-config`] : [])];
  expect(containers).toEqual(running.flatMap((n) => [n.name, ...writers(n)]).sort());
  for (const n of running) {
    for (const writer of writers(n)) expect(await docker("inspect", "-f", "{{.State.Status}} {{.State.StartedAt}}", writer)).toBe("created 0001-01-01T00:00:00Z");
    expect(await docker("inspect", "-f", "{{.State.Status}}", n.name)).toBe("running");
  }
});

test("no password in `docker inspect` of any container (secret writers included), nor of the network and volumes", async () => {
  const volumes = (await docker("volume", "ls", "-q", "--filter", `label=pgha.cluster=${shape.clusterName}`)).split("\n").filter(Boolean).sort();
  // Each node's and etcd member's data, the backup repository, each running container's secret
  // files, and the live configuration of the nodes, the router and PgBouncer.
  const etcdMembers = running.filter((n) => n.role === "etcd").length;
  const live = running.filter((n) => LIVE_ROLES.includes(n.role)).length;
  expect(volumes.length).toBe(cluster.members.length + etcdMembers + 1 + running.length + live);
  for (const n of running) expect(volumes).toContain(`${n.name}-secrets`);
  const inspected = [
    await docker("inspect", ...containers),
    await docker("network", "inspect", cluster.outputs.networkName),
    await docker("volume", "inspect", ...volumes),
  ].join("\n");
  // Env, command, entrypoint, labels, health check and mounts are all in there.
  expect(inspected).toContain("PGDATA=");
  expect(passwordsIn(inspected)).toEqual([]);
  report(`secrets: ${Object.keys(passwords).length} passwords searched in docker inspect of ${containers.length} containers, 1 network, ${volumes.length} volumes: none found`);
});

test("no role password in any uploaded file; the REST password only in the root-only secret uploads of the nodes and the router, the passphrase only in the repository host's", async () => {
  const uploads = deployedResources()
    .filter((r) => r.type === "docker:index/container:Container")
    .flatMap((r) => (r.inputs.uploads as { file: string; content?: string; permissions?: string }[] | undefined ?? [])
      .map((u) => ({ container: String(r.outputs.name), ...u })));
  expect(uploads.length).toBeGreaterThanOrEqual(40);
  const holding = uploads.map((u) => ({ file: `${u.container}:${u.file}`, roles: passwordsIn(u.content ?? "") })).filter((u) => u.roles.length > 0);
  const restHolders = [
    ...cluster.members.map((node) => `${node}-secrets:${REST_SECRET_UPLOADS.patroni}`),
    `${shape.clusterName}-router-secrets:${REST_SECRET_UPLOADS.router}`,
  ];
  const cipherHolder = `${shape.clusterName}-backup-secrets:${CIPHER_UPLOAD}`;
  expect(holding.sort((x, y) => x.file.localeCompare(y.file))).toEqual([
    ...restHolders.map((file) => ({ file, roles: ["patroni-rest"] })),
    { file: cipherHolder, roles: ["backup-cipher"] },
  ].sort((x, y) => x.file.localeCompare(y.file)));
  // Those uploads go to the never-started writers, root-only.
  for (const file of [...restHolders, cipherHolder]) {
    const u = uploads.find((x) => `${x.container}:${x.file}` === file)!;
    expect({ file, permissions: u.permissions }).toEqual({ file, permissions: "0600" });
  }
  // The secret files hold SCRAM verifiers instead: the servers and PgBouncer never get a role password.
  const userlist = uploads.find((u) => u.file === "/etc/pg-ha/secrets/userlist.txt")!;
  expect(userlist.content).toMatch(/^"app" "SCRAM-SHA-256\$4096:[^"]+"$/m);
  const reconcile = uploads.find((u) => u.container === `${cluster.members[0]}-secrets` && u.file.endsWith("reconcile.sql"))!;
  expect(reconcile.content).toMatch(/SCRAM-SHA-256\$4096:/);
  report(`secrets: ${uploads.length} uploaded files searched: the REST password in exactly ${restHolders.length} root-only secret uploads, the passphrase in 1, no role password anywhere`);
});

test("in the running containers, the REST password and the passphrase are only in the root-only secret files (and the postgres-only copies Patroni and pgBackRest read); no role password in any file", async () => {
  let files = 0;
  const holding: string[] = [];
  for (const { name, role } of running) {
    const contents = await filesOf(name);
    files += contents.size;
    expect(contents.size).toBeGreaterThan(0);
    for (const [file, text] of contents) {
      const roles = passwordsIn(text);
      if (roles.length === 0) continue;
      expect({ file: `${name}:${file}`, roles }).toEqual({ file: `${name}:${file}`, roles: [role === "backup" ? "backup-cipher" : "patroni-rest"] });
      holding.push(`${name}:${file}`);
    }
    if (role === "router" || role === "postgres" || role === "backup") {
      // The secret volume is mounted read-only; its files belong to root alone.
      const mounts = JSON.parse(await docker("inspect", "-f", "{{json .Mounts}}", name)) as { Destination: string; RW: boolean; Name: string }[];
      expect(mounts.find((m) => m.Destination === "/etc/pg-ha/secrets")).toMatchObject({ Name: `${name}-secrets`, RW: false });
    }
  }
  const expected = [
    ...cluster.members.flatMap((node) => [`${node}:${REST_SECRET_UPLOADS.patroni}`, `${node}:${REST_SECRET_COPY}`]),
    `${shape.clusterName}-router:${REST_SECRET_UPLOADS.router}`,
    `${shape.clusterName}-backup:${CIPHER_UPLOAD}`,
    `${shape.clusterName}-backup:${CIPHER_COPY}`,
  ];
  expect(holding.sort()).toEqual(expected.sort());
  expect(await docker("exec", `${shape.clusterName}-backup`, "stat", "-c", "%n %U:%G %a", CIPHER_UPLOAD, CIPHER_COPY)).toBe(
    [`${CIPHER_UPLOAD} root:root 600`, `${CIPHER_COPY} postgres:postgres 600`].join("\n"));
  for (const node of cluster.members) {
    expect(await docker("exec", node, "stat", "-c", "%n %U:%G %a", REST_SECRET_UPLOADS.patroni, REST_SECRET_COPY)).toBe([
      `${REST_SECRET_UPLOADS.patroni} root:root 600`,
      // Patroni runs as postgres and must read it; nobody else can.
      `${REST_SECRET_COPY} postgres:postgres 600`,
    ].join("\n"));
  }
  const router = `${shape.clusterName}-router`;
  expect(await docker("exec", router, "stat", "-c", "%n %U:%G %a", REST_SECRET_UPLOADS.router)).toBe(`${REST_SECRET_UPLOADS.router} root:root 600`);
  // HAProxy itself runs as its own user: it read the file as root at start and cannot read it now.
  const owners = await docker("exec", router, "sh", "-c", 'for p in /proc/[0-9]*; do echo "$(stat -c %U "$p") $(tr "\\0" " " < "$p/cmdline" 2>/dev/null)"; done; true');
  expect(owners).toMatch(/^haproxy haproxy -W /m);
  const asHaproxy = await run("docker", ["exec", "-u", "haproxy", router, "cat", REST_SECRET_UPLOADS.router]);
  expect(asHaproxy.status).not.toBe(0);
  expect(asHaproxy.stderr).toContain("Permission denied");
  report(`secrets: ${files} files in ${running.length} running containers searched: the REST password and the passphrase in exactly ${holding.length} root-only or postgres-only files, no role password`);
});

test("no password on any process's command line, nor in any process's environment", async () => {
  const expectedProcess: Record<string, RegExp[]> = {
    postgres: [/bin\/patroni /, /bin\/postgres /, /pgbackrest .*server/], etcd: [/etcd/], router: [/haproxy/], pgbouncer: [/pgbouncer/],
    backup: [/backup-scheduler\.py/, /pgbackrest server/],
  };
  let environments = 0;
  for (const { name, role } of running) {
    const processes = await docker("top", name, "-eo", "pid,args");
    for (const expected of expectedProcess[role]) expect({ name, processes }).toEqual({ name, processes: expect.stringMatching(expected) });
    expect({ name, roles: passwordsIn(processes) }).toEqual({ name, roles: [] });
    // The processes' environments, as root and as the service's user: whatever each may read.
    for (const user of ["root", role === "router" ? "haproxy" : role === "etcd" ? "root" : "postgres"]) {
      // A process may end between the glob and the read (its file is then unreadable): skipped, and
      // the loop's status stays that of the shell, not of the last read.
      const env = await run("docker", ["exec", "-u", user, name, "sh", "-c", "for e in /proc/[0-9]*/environ; do if cat \"$e\" 2>/dev/null; then echo; fi; done"]);
      expect(env.status).toBe(0);
      expect(env.stdout).toContain("PATH=");
      environments += env.stdout.split("\n").filter(Boolean).length;
      expect({ name, user, roles: passwordsIn(env.stdout) }).toEqual({ name, user, roles: [] });
    }
  }
  report(`secrets: command lines and ${environments} process environments in ${running.length} containers searched: no password`);
});

test("no password in any container's log, after logins with every password, a failed one and patronictl", async () => {
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

test("no password in etcd's contents, nor in the REST API's answers to anyone", async () => {
  const etcd = running.find((n) => n.role === "etcd")!.name;
  const dump = await docker("exec", etcd, "etcdctl", "--endpoints=https://127.0.0.1:2379", "--cacert=/etc/pg-ha/tls/ca.crt",
    "--cert=/etc/pg-ha/tls/etcd.crt", "--key=/etc/pg-ha/secrets/etcd.key", "get", "--prefix", "/");
  // What Patroni keeps there: the cluster's configuration, leader lock, members.
  expect(dump).toContain(`/pg-ha/${shape.clusterName}/leader`);
  expect(dump).toContain(`/pg-ha/${shape.clusterName}/config`);
  expect(passwordsIn(dump)).toEqual([]);
  // The REST API's read endpoints answer without credentials: nothing secret in them.
  let answers = 0;
  for (const node of cluster.members) {
    const address = await docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${cluster.outputs.networkName}").IPAddress}}`, node);
    for (const path of ["/patroni", "/config", "/cluster", "/history"]) {
      const { status, body } = await restGet(address, node, path);
      expect({ node, path, status }).toEqual({ node, path, status: 200 });
      expect({ node, path, roles: passwordsIn(body) }).toEqual({ node, path, roles: [] });
      answers++;
    }
  }
  report(`secrets: etcd's ${dump.length} bytes and ${answers} REST API answers searched: no password`);
});

test("no password in any non-secret output, the REST password in no output at all, and every output is classified", () => {
  expect(Object.keys(cluster.outputs).sort()).toEqual([...SECRET_OUTPUTS, ...PLAIN_OUTPUTS].sort());
  const outputs = cluster.outputs as unknown as Record<string, unknown>;
  for (const key of PLAIN_OUTPUTS) expect({ key, roles: passwordsIn(JSON.stringify(outputs[key])) }).toEqual({ key, roles: [] });
  // Every secret output does carry a password: the classification is not vacuous.
  for (const key of SECRET_OUTPUTS) expect({ key, found: passwordsIn(JSON.stringify(outputs[key])).length > 0 }).toEqual({ key, found: true });
  expect(passwordsIn(JSON.stringify(outputs))).not.toContain("patroni-rest");
});

/** GET over HTTPS from the host, the certificate verified against the cluster CA for NAME. */
function restGet(address: string, name: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request({ host: address, servername: name, port: 8008, method: "GET", path, ca: cluster.outputs.caCertPem, timeout: 5000,
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert) }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    request.on("error", reject);
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.end();
  });
}
