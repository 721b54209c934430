// What pgBackRest's files say: each node's configuration, the repository host's, a restore's, the
// passphrase's include file, and the commands PostgreSQL runs, rendered from the cluster's spec.
import { parseClusterConfig } from "../../config";
import {
  archiveCommand, BACKUP_PATHS, BACKUP_TLS_PORT, backupClientNames, backupScheduleEnv, backupScript, backupStanza,
  renderCipherConf, renderDrillPgbackrestConf, renderNodePgbackrestConf, renderRepoPgbackrestConf,
  renderRestorePgbackrestConf, restoreCommand,
} from "../../config-templates/render-backup";
import { backupMember, dataLayout, type HaMember, patroniNodes } from "../../topology";
import { stackConfig } from "./harness";

const dev = parseClusterConfig(stackConfig("dev"));
const prod = parseClusterConfig(stackConfig("prod"));
const dev17 = parseClusterConfig({ ...stackConfig("dev"), "pg-ha:postgresMajor": "17" });

/** An ini file as section -> option -> value (repeated options would be lost: there must be none). */
function ini(text: string): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = {};
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) { current = section[1]; sections[current] ??= {}; continue; }
    const [key, ...value] = line.split("=");
    if (current === "") throw new Error(`option outside a section: ${line}`);
    if (key in sections[current]) throw new Error(`option given twice: ${key}`);
    sections[current][key] = value.join("=");
  }
  return sections;
}

describe.each([["dev", dev], ["prod", prod], ["dev on 17", dev17]] as const)("pgBackRest for %s", (_, spec) => {
  const nodes: HaMember[] = patroniNodes(spec);
  const stanza = backupStanza(spec);
  const names = backupClientNames(spec);
  const pgdata = dataLayout(spec.postgres.major).pgdata;
  const node = ini(renderNodePgbackrestConf(spec, nodes[0]));
  const repo = ini(renderRepoPgbackrestConf(spec, nodes));

  test("the stanza is the cluster's name; the client certificates' names are the cluster's and distinct", () => {
    expect(stanza).toBe(spec.clusterName);
    expect(names.node).toBe(`${spec.clusterName}-backup-node-client`);
    expect(names.repo).toBe(`${spec.clusterName}-backup-repo-client`);
    expect(names.node).not.toBe(names.repo);
    expect([names.node, names.repo]).not.toContain(backupMember(spec).name);
  });

  test("a node reaches the repository host at its fixed address over TLS with the node client certificate", () => {
    expect(node.global).toMatchObject({
      "repo1-host": backupMember(spec).address,
      "repo1-host-type": "tls",
      "repo1-host-port": String(BACKUP_TLS_PORT),
      "repo1-host-ca-file": BACKUP_PATHS.caCert,
      "repo1-host-cert-file": BACKUP_PATHS.nodeClientCert,
      "repo1-host-key-file": BACKUP_PATHS.nodeClientKey,
    });
    expect(node[stanza]).toEqual({ "pg1-path": pgdata, "pg1-port": "5432", "pg1-socket-path": "/var/run/postgresql" });
  });

  test("a node archives asynchronously through its spool directory, archive_command waiting at most 5 s", () => {
    expect(node.global).toMatchObject({ "archive-async": "y", "spool-path": BACKUP_PATHS.spool, "archive-timeout": "5" });
  });

  test("a node's TLS server uses its server certificate and accepts only the repository host's client", () => {
    expect(node.global).toMatchObject({
      "tls-server-address": "*",
      "tls-server-port": String(BACKUP_TLS_PORT),
      "tls-server-cert-file": "/etc/pg-ha/tls/server.crt",
      "tls-server-key-file": "/run/pg-ha/server.key",
      "tls-server-auth": `${names.repo}=${stanza}`,
    });
  });

  test("the repository host lists every node at its address as a TLS pg host, in order, with the repository client certificate", () => {
    nodes.forEach((n, i) => {
      const k = i + 1;
      expect(repo[stanza]).toMatchObject({
        [`pg${k}-host`]: n.address,
        [`pg${k}-host-type`]: "tls",
        [`pg${k}-host-port`]: String(BACKUP_TLS_PORT),
        [`pg${k}-host-cert-file`]: BACKUP_PATHS.repoClientCert,
        [`pg${k}-host-key-file`]: BACKUP_PATHS.repoClientKey,
        [`pg${k}-path`]: pgdata,
      });
    });
    expect(repo[stanza][`pg${nodes.length + 1}-host`]).toBeUndefined();
  });

  test("the repository is encrypted and keeps the configured number of full backups", () => {
    expect(repo.global).toMatchObject({
      "repo1-path": BACKUP_PATHS.repo,
      "repo1-cipher-type": "aes-256-cbc",
      "repo1-retention-full-type": "count",
      "repo1-retention-full": String(spec.backup.retentionFull),
      "start-fast": "y",
      "compress-type": "zst",
    });
  });

  test("the repository host's TLS server accepts only the nodes' client certificate", () => {
    expect(repo.global["tls-server-auth"]).toBe(`${names.node}=${stanza}`);
    expect(repo.global["tls-server-cert-file"]).toBe(BACKUP_PATHS.serverCert);
  });

  test("no rendered file but the include file holds a passphrase", () => {
    for (const text of [renderNodePgbackrestConf(spec, nodes[0]), renderRepoPgbackrestConf(spec, nodes), renderDrillPgbackrestConf(spec)]) {
      expect(text).not.toMatch(/^\s*repo\d*-cipher-pass\s*=/m);
    }
    expect(backupScheduleEnv(spec).join("\n")).not.toMatch(/cipher-pass|CIPHER_PASS/i);
  });

  test("PostgreSQL archives and fetches WAL with the node's configuration and the stanza", () => {
    expect(archiveCommand(spec)).toBe(`pgbackrest --config=${BACKUP_PATHS.conf} --stanza=${stanza} archive-push %p`);
    expect(restoreCommand(spec)).toBe(`pgbackrest --config=${BACKUP_PATHS.conf} --stanza=${stanza} archive-get %f "%p"`);
  });

  test("the drill restores from the local repository into its throwaway directory, without any host", () => {
    const drill = ini(renderDrillPgbackrestConf(spec));
    expect(drill.global).toMatchObject({ "repo1-path": BACKUP_PATHS.repo, "repo1-cipher-type": "aes-256-cbc" });
    expect(drill[stanza]).toEqual({ "pg1-path": BACKUP_PATHS.drillData });
    expect(renderDrillPgbackrestConf(spec)).not.toMatch(/-host/);
  });

  test("the scheduler's environment: configuration paths, the stanza and the spec's intervals", () => {
    expect(backupScheduleEnv(spec)).toEqual([
      `PGBACKREST_CONFIG=${BACKUP_PATHS.conf}`,
      `PGBACKREST_CONFIG_INCLUDE_PATH=${BACKUP_PATHS.includeDir}`,
      `PGBACKREST_STANZA=${stanza}`,
      `BACKUP_FULL_INTERVAL_MINUTES=${spec.backup.fullIntervalMinutes}`,
      `BACKUP_DIFF_INTERVAL_MINUTES=${spec.backup.diffIntervalMinutes}`,
      `RESTORE_DRILL_INTERVAL_MINUTES=${spec.backup.drillIntervalMinutes}`,
    ]);
  });
});

describe("a restore into a new cluster", () => {
  test("reads another cluster's repository by its stanza into the new node's data directory", () => {
    const conf = ini(renderRestorePgbackrestConf({ stanza: "old", repoPath: "/var/lib/pgbackrest-source", pgPath: "/var/lib/postgresql/18/docker", purpose: "bootstrap" }));
    expect(conf.global["repo1-path"]).toBe("/var/lib/pgbackrest-source");
    expect(conf.old).toEqual({ "pg1-path": "/var/lib/postgresql/18/docker" });
  });
});

describe("the passphrase's include file", () => {
  test("sets the repository's passphrase in [global]", () => {
    expect(ini(renderCipherConf("Zx9-long_passphrase"))).toEqual({ global: { "repo1-cipher-pass": "Zx9-long_passphrase" } });
  });

  test.each([[""], ["two\nlines"], [" padded "], ["cr\rlf"]])("refuses %j", (pass) => {
    expect(() => renderCipherConf(pass)).toThrow(/one line/);
  });
});

describe("the repository host's scripts agree with the rendered paths", () => {
  test("the start script installs the passphrase and the keys where the configuration reads them", () => {
    const start = backupScript("backup-start.sh");
    expect(start).toContain("pgbackrest.d");
    expect(BACKUP_PATHS.includeDir).toBe("/run/pg-ha/pgbackrest.d");
    expect(BACKUP_PATHS.cipherConf).toBe(`${BACKUP_PATHS.includeDir}/cipher.conf`);
    expect(start).toContain('"$INCLUDE_DIR/cipher.conf"');
    expect(start).toContain("$PGHA_SECRETS/pgbackrest-cipher.conf");
    expect(BACKUP_PATHS.cipherConfUpload).toBe("/etc/pg-ha/secrets/pgbackrest-cipher.conf");
    expect(start).toContain("backup-repo-client.key");
    expect(start).toContain("backup-scheduler.py");
  });

  test("the drill uses the drill configuration, the include directory and the status directory", () => {
    const drill = backupScript("restore-drill.sh");
    expect(drill).toContain(`--config=${BACKUP_PATHS.drillConf}`);
    expect(drill).toContain(`--config-include-path=${BACKUP_PATHS.includeDir}`);
    expect(drill).toContain(`STATUS_DIR=${BACKUP_PATHS.statusDir}`);
    expect(drill).toContain("DATA=$STATUS_DIR/drill-data");
    expect(BACKUP_PATHS.drillData).toBe(`${BACKUP_PATHS.statusDir}/drill-data`);
    expect(BACKUP_PATHS.lastDrill).toBe(`${BACKUP_PATHS.statusDir}/last-drill.json`);
    expect(drill).toContain("RESULT=$STATUS_DIR/last-drill.json");
  });

  test("the scheduler and the health check read the drill's result where the drill writes it", () => {
    expect(backupScript("backup-scheduler.py")).toContain(`STATUS_DIR = "${BACKUP_PATHS.statusDir}"`);
    expect(backupScript("backup-health.sh")).toContain(BACKUP_PATHS.lastDrill);
    expect(backupScript("backup-health.sh")).toContain(String(BACKUP_TLS_PORT));
  });

  test("the health check's clients are bounded inside Docker's 5 s", () => {
    const health = backupScript("backup-health.sh");
    const bounds = [...health.matchAll(/timeout -s KILL (\d+)/g)].map((m) => Number(m[1]));
    expect(bounds.length).toBeGreaterThan(0);
    expect(bounds.reduce((a, b) => a + b, 0)).toBeLessThan(5);
  });
});
