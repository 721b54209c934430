// What a Patroni-managed cluster's files say: patroni.yml, the etcd member configuration and
// HAProxy's, rendered from the same spec as the rest of the cluster.
import { parse } from "yaml";
import { parseClusterConfig, type ClusterSpec } from "../../config";
import {
  MAXIMUM_LAG_ON_FAILOVER_BYTES, PATRONI_CLUSTER_PARAMETERS, READ_ONLY_MAX_LAG_BYTES, type HaMember,
  parsePostgresqlConf, patroniParameters, renderEtcdConf, renderHaproxyCfg, renderHaproxyCredentials,
  renderPatroniReconcileSql, renderPatroniSecretsYml, renderPatroniYml,
} from "../../config-templates/render-ha";
import { renderPostgresqlConf } from "../../config-templates/render";
import { clusterTuning } from "../../config-templates/tuning";
import { primaryNode } from "../../topology";
import { stackConfig } from "./harness";

const dev = parseClusterConfig(stackConfig("dev"));
const prod = parseClusterConfig(stackConfig("prod"));
const quorum = parseClusterConfig({ ...stackConfig("prod"), "pg-ha:synchronousMode": "quorum" });
const etcd: HaMember[] = [1, 2, 3].map((i) => ({ name: `pgha-etcd-${i}`, address: `10.0.0.2${i}` }));
const nodes: HaMember[] = [1, 2, 3].map((i) => ({ name: `pgha-node-${i}`, address: `10.0.0.1${i}` }));
const patroni = (spec: ClusterSpec, node = nodes[0]) => parse(renderPatroniYml(spec, etcd, node));
const verifiers = (spec: ClusterSpec) =>
  Object.fromEntries(["monitor", ...spec.databases].map((r) => [r, `SCRAM-SHA-256$4096:c2FsdA==$${r}:key`]));

describe.each([["dev", dev], ["prod", prod], ["prod with quorum", quorum]] as const)("patroni.yml for %s", (_, spec) => {
  const doc = patroni(spec);
  const dcs = doc.bootstrap.dcs;

  test("names the cluster and the member, and advertises the member's address", () => {
    expect(doc.scope).toBe(spec.clusterName);
    expect(doc.name).toBe("pgha-node-1");
    expect(doc.restapi.connect_address).toBe("10.0.0.11:8008");
    expect(doc.postgresql.connect_address).toBe("10.0.0.11:5432");
    expect(doc.postgresql.data_dir).toBe(spec.postgres.major === 18 ? "/var/lib/postgresql/18/docker" : "/var/lib/postgresql/data/pgdata");
    expect(doc.postgresql.bin_dir).toBe(`/usr/lib/postgresql/${spec.postgres.major}/bin`);
  });

  test("reaches every etcd member over TLS with a client certificate", () => {
    expect(doc.etcd3).toEqual({
      hosts: ["10.0.0.21:2379", "10.0.0.22:2379", "10.0.0.23:2379"],
      protocol: "https",
      cacert: "/etc/pg-ha/tls/ca.crt",
      cert: "/etc/pg-ha/tls/etcd-client.crt",
      key: "/run/pg-ha/etcd-client.key",
    });
  });

  test("serves its REST API over HTTPS; the password is only in the root-only file", () => {
    expect(doc.restapi).toMatchObject({ certfile: "/etc/pg-ha/tls/server.crt", keyfile: "/run/pg-ha/server.key", cafile: "/etc/pg-ha/tls/ca.crt" });
    expect(doc.restapi.authentication).toBeUndefined();
    const secrets = parse(renderPatroniSecretsYml("s3cr-et_pw"));
    expect(secrets.restapi.authentication).toEqual({ username: "patroni", password: "s3cr-et_pw" });
    expect(secrets.ctl.authentication).toEqual({ username: "patroni", password: "s3cr-et_pw" });
    expect(renderPatroniYml(spec, etcd, nodes[0])).not.toMatch(/^\s*password:/m);
  });

  test("timing meets Patroni's constraints: ttl >= 20, loop_wait >= 1, retry_timeout >= 3, loop_wait + 2 x retry_timeout <= ttl", () => {
    expect(dcs.ttl).toBeGreaterThanOrEqual(20);
    expect(dcs.loop_wait).toBeGreaterThanOrEqual(1);
    expect(dcs.retry_timeout).toBeGreaterThanOrEqual(3);
    expect(dcs.loop_wait + 2 * dcs.retry_timeout).toBeLessThanOrEqual(dcs.ttl);
    // and as fast as those allow: the leader lock at Patroni's minimum
    expect(dcs.ttl).toBe(20);
    expect(dcs.maximum_lag_on_failover).toBe(MAXIMUM_LAG_ON_FAILOVER_BYTES);
    expect(dcs.failsafe_mode).toBe(true);
  });

  test("slots, pg_rewind with wal_log_hints, and synchronous mode from pg-ha:synchronousMode", () => {
    expect(dcs.postgresql.use_slots).toBe(true);
    expect(dcs.postgresql.use_pg_rewind).toBe(true);
    expect(dcs.postgresql.parameters.wal_log_hints).toBe("on");
    if (spec.synchronousMode === "quorum") {
      expect(dcs.synchronous_mode).toBe("quorum");
      expect(dcs.synchronous_node_count).toBe(1);
    } else {
      expect(dcs.synchronous_mode).toBe(false);
    }
  });

  test("replication and pg_rewind authenticate by client certificate; the superuser has no password", () => {
    const auth = doc.postgresql.authentication;
    expect(auth.superuser).toEqual({ username: "postgres" });
    expect(auth.replication).toEqual({
      username: "replicator", sslmode: "verify-full", sslrootcert: "/etc/pg-ha/tls/ca.crt",
      sslcert: "/etc/pg-ha/tls/replication.crt", sslkey: "/run/pg-ha/replication.key",
    });
    expect(auth.rewind).toMatchObject({ username: "rewind", sslmode: "verify-full", sslcert: "/etc/pg-ha/tls/rewind.crt" });
    expect(doc.postgresql.use_unix_socket).toBe(true);
  });

  test("PostgreSQL gets the tuning and the cluster's settings; the members-wide ones through etcd", () => {
    const all = { ...dcs.postgresql.parameters, ...doc.postgresql.parameters };
    for (const [name, value] of Object.entries(clusterTuning(spec))) expect(String(all[name])).toBe(value);
    for (const name of Object.keys(dcs.postgresql.parameters)) expect(PATRONI_CLUSTER_PARAMETERS).toContain(name);
    expect(doc.postgresql.parameters).toMatchObject({
      ssl: "on", ssl_min_protocol_version: "TLSv1.3", password_encryption: "scram-sha-256",
      ssl_key_file: "/run/pg-ha/server.key", shared_preload_libraries: "pg_stat_statements,auto_explain",
      log_line_prefix: "%m [%p] %q%u@%d/%a ",
    });
    // Patroni's own: never set behind its back
    for (const name of ["primary_conninfo", "primary_slot_name", "synchronous_standby_names", "listen_addresses", "port", "hba_file"]) {
      expect(all[name]).toBeUndefined();
    }
  });

  test("pg_hba keeps TLS-only, certificate replication and SCRAM rules, pg_rewind's certificate rule before the password rule", () => {
    const hba: string[] = doc.postgresql.pg_hba;
    expect(hba).toEqual(expect.arrayContaining([
      "local all postgres peer",
      "hostnossl all all all reject",
      `hostssl replication replicator ${spec.networkSubnet} cert`,
      "hostssl all postgres all reject",
    ]));
    const rewind = hba.indexOf(`hostssl postgres rewind ${spec.networkSubnet} cert`);
    expect(rewind).toBeGreaterThan(0);
    expect(rewind).toBeLessThan(hba.indexOf(`hostssl all all ${spec.networkSubnet} scram-sha-256`));
  });
});

test("operator parameters (pg-ha:postgresParameters) reach Patroni, over the tuning", () => {
  const spec = parseClusterConfig({ ...stackConfig("dev"), "pg-ha:postgresParameters": JSON.stringify({ work_mem: "8MB", statement_timeout: "30s" }) });
  expect(patroniParameters(spec).node).toMatchObject({ work_mem: "8MB", statement_timeout: "30s" });
});

test("parameters are read back exactly as postgresql.conf says them", () => {
  const conf = parsePostgresqlConf(renderPostgresqlConf(prod, primaryNode(prod)));
  const { cluster, node } = patroniParameters(prod);
  for (const [name, value] of Object.entries({ ...cluster, ...node })) expect(conf.get(name)).toBe(value);
  expect(parsePostgresqlConf("a = 'it''s'  # note\nb = 5 # x\n")).toEqual(new Map([["a", "it's"], ["b", "5"]]));
});

test("post_bootstrap creates roles and databases but no slots (Patroni keeps its own)", () => {
  const sql = renderPatroniReconcileSql(prod, verifiers(prod));
  expect(sql).toContain("ALTER ROLE app WITH LOGIN");
  expect(sql).not.toMatch(/'replica_\d+'/);
  expect(parse(renderPatroniYml(prod, etcd, nodes[0])).bootstrap.post_bootstrap).toBe("/usr/local/lib/pg-ha/patroni-post-bootstrap.sh");
});

describe("etcd member configuration", () => {
  const doc = parse(renderEtcdConf(prod, etcd, etcd[1]));

  test("forms one store from every member, over HTTPS", () => {
    expect(doc.name).toBe("pgha-etcd-2");
    expect(doc["initial-cluster"]).toBe("pgha-etcd-1=https://10.0.0.21:2380,pgha-etcd-2=https://10.0.0.22:2380,pgha-etcd-3=https://10.0.0.23:2380");
    expect(doc["advertise-client-urls"]).toBe("https://10.0.0.22:2379");
    expect(doc["initial-advertise-peer-urls"]).toBe("https://10.0.0.22:2380");
  });

  test("peers and clients must present certificates of the cluster's CA", () => {
    for (const section of ["client-transport-security", "peer-transport-security"]) {
      expect(doc[section]).toEqual({
        "cert-file": "/etc/pg-ha/tls/etcd.crt", "key-file": "/etc/pg-ha/secrets/etcd.key",
        "trusted-ca-file": "/etc/pg-ha/tls/ca.crt", "client-cert-auth": true,
      });
    }
    expect(doc["tls-min-version"]).toBe("TLS1.3");
  });
});

describe("haproxy.cfg", () => {
  const cfg = renderHaproxyCfg(prod, nodes);
  const section = (name: string) => cfg.split(/\n(?=\S)/).find((s) => s.startsWith(`listen ${name}`))!;

  test("read-write goes to the member answering 200 on /primary", () => {
    const rw = section("read-write");
    expect(rw).toMatch(/http-check send meth GET uri \/primary hdr Authorization %\[var\(proc\.patroni_rest_authorization\)\]/);
    expect(rw).toContain("http-check expect status 200");
    for (const n of nodes) expect(rw).toContain(`server ${n.name} ${n.address}:5432 check port 8008 check-sni ${n.name} verifyhost ${n.name}`);
  });

  test("read-only goes to streaming replicas within the lag bound, the primary as backup", () => {
    const ro = section("read-only");
    expect(ro).toContain(`uri /replica?lag=${READ_ONLY_MAX_LAG_BYTES}&replication_state=streaming`);
    for (const n of nodes) expect(ro).toContain(`server ${n.name}-primary ${n.address}:5432 backup track read-write/${n.name}`);
  });

  test("checks are HTTPS with the certificate verified, fast, and cut a demoted member's sessions", () => {
    expect(cfg).toMatch(/default-server inter 1s fastinter 500ms downinter 500ms fall 3 rise 1 on-marked-down shutdown-sessions check-ssl verify required ca-file \/etc\/pg-ha\/tls\/ca.crt/);
    // A check that timed out on a healthy but loaded primary would cut every session on it.
    expect(cfg).toMatch(/^    timeout check 4s$/m);
  });

  test("the REST credentials are in the root-only file only", () => {
    const credentials = renderHaproxyCredentials("pw-1");
    // A variable, never an environment variable: /proc/<pid>/environ would show it.
    expect(credentials).toContain(`set-var proc.patroni_rest_authorization str("Basic ${Buffer.from("patroni:pw-1").toString("base64")}")`);
    expect(credentials).not.toMatch(/setenv|presetenv/);
    expect(cfg).not.toContain(Buffer.from("patroni:pw-1").toString("base64"));
  });
});
