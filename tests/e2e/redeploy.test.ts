/**
 * Data lives in volumes, not containers: tearing the containers down and deploying again onto the
 * kept volumes brings every row back. The executor keeps no state between deploys, so the second
 * deploy also generates new passwords: the primary's start-up reconciles the roles, and only the
 * new passwords work afterwards, which is what a password rotation does.
 */
import {
  allStreaming, deployCluster, type DeployedCluster, query, removeCluster, report, sqlInContainer, waitFor,
} from "./support/cluster";

jest.setTimeout(300_000);

const overrides = {
  "pg-ha:clusterName": "pgha-redeploy",
  "pg-ha:networkSubnet": "172.30.50.0/24",
  "pg-ha:publishDirectPort": "17432",
  "pg-ha:publishPooledPort": "17433",
  "pg-ha:publishReadOnlyPort": "17434",
};

let first: DeployedCluster | undefined;
let second: DeployedCluster | undefined;

afterAll(async () => {
  for (const cluster of [second, first]) if (cluster) await removeCluster(cluster);
});

test("a redeploy onto kept volumes keeps every row and rotates the passwords", async () => {
  first = await deployCluster("dev", 18, overrides, "redeploy-1");
  const oldUrl = first.outputs.hostPooledUrl!;
  await query(oldUrl, first.outputs.caCertPem, "CREATE TABLE kept (id int PRIMARY KEY, note text)");
  await query(oldUrl, first.outputs.caCertPem, "INSERT INTO kept SELECT g, md5(g::text) FROM generate_series(1, 5000) g");
  await waitFor("replica caught up", async () => (await sqlInContainer(first!.replicas[0], "SELECT count(*) FROM kept", "app")) === "5000", 10_000);

  await removeCluster(first, true);
  second = await deployCluster("dev", 18, overrides, "redeploy-2", false);
  const ca = second.outputs.caCertPem;
  const newUrl = second.outputs.hostPooledUrl!;
  expect(newUrl).not.toBe(oldUrl);

  const [row] = await query<{ n: string; sum: string }>(newUrl, ca, "SELECT count(*) AS n, sum(id) AS sum FROM kept");
  expect(row).toEqual({ n: "5000", sum: String((5000 * 5001) / 2) });
  expect(await sqlInContainer(second.replicas[0], "SELECT count(*) FROM kept", "app")).toBe("5000");
  await waitFor("replica streaming on its kept volume", () => allStreaming(second!), 30_000);
  // The old password no longer opens a session, directly or through the pooler.
  const oldDirect = first.outputs.hostDirectUrl!;
  await expect(query(oldDirect, ca, "SELECT 1")).rejects.toThrow('password authentication failed for user "app"');
  await expect(query(oldUrl, ca, "SELECT 1")).rejects.toThrow("SASL authentication failed");
  report(`redeploy onto kept volumes: 5000 rows back on primary and replica; cold redeploy ${(second.elapsedMs / 1000).toFixed(1)} s; old password refused`);
});
