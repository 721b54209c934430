/**
 * synchronousMode = quorum: every commit waits until ANY 1 replica has it. The trade-off the README
 * states is real: with no replica reachable, commits wait; they complete once one replica is back.
 */
import {
  allStreaming, deployCluster, type DeployedCluster, docker, query, removeCluster, report, sqlInContainer, waitFor, withClient,
} from "./support/cluster";

jest.setTimeout(300_000);

let cluster: DeployedCluster;

beforeAll(async () => {
  cluster = await deployCluster("prod", 18, {
    "pg-ha:clusterName": "pgha-quorum",
    "pg-ha:networkSubnet": "172.30.60.0/24",
    "pg-ha:publishPooledPort": "18432",
    "pg-ha:synchronousMode": "quorum",
  }, "quorum");
}, 600_000);

afterAll(async () => {
  if (cluster) await removeCluster(cluster);
});

test("both replicas are quorum standbys, and a commit is on a replica when it returns", async () => {
  await waitFor("replicas streaming", () => allStreaming(cluster), 30_000);
  expect(await sqlInContainer(cluster.primary, "SHOW synchronous_standby_names")).toBe("ANY 1 (replica_1, replica_2)");
  expect(await sqlInContainer(cluster.primary, "SELECT string_agg(application_name || '=' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication"))
    .toBe("replica_1=quorum,replica_2=quorum");
});

test("with both replicas down a commit waits; it completes when one replica is back", async () => {
  const url = cluster.outputs.hostPooledUrl!;
  const ca = cluster.outputs.caCertPem;
  await query(url, ca, "CREATE TABLE IF NOT EXISTS quorum_rows (id int PRIMARY KEY)");
  await docker("stop", "-t", "30", ...cluster.replicas);
  try {
    // Bounded: the commit must still be waiting after 3 s.
    const pending = withClient(url, ca, (c) => c.query("INSERT INTO quorum_rows VALUES (1)"));
    const outcome = await Promise.race([pending.then(() => "committed"), new Promise((r) => setTimeout(() => r("waiting"), 3_000))]);
    expect(outcome).toBe("waiting");
    expect(await sqlInContainer(cluster.primary, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).toBe("1");

    const start = Date.now();
    await docker("start", cluster.replicas[0]);
    await pending;
    report(`quorum: commit waited with both replicas down; completed ${((Date.now() - start) / 1000).toFixed(1)} s after one replica started`);
    expect(await sqlInContainer(cluster.replicas[0], "SELECT count(*) FROM quorum_rows WHERE id = 1", "app")).toBe("1");
  } finally {
    await docker("start", ...cluster.replicas);
  }
  await waitFor("both replicas streaming again", () => allStreaming(cluster), 60_000, 250);
});
