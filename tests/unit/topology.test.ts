// Where an HA cluster's members live: their names and the fixed addresses they advertise, which
// must stay in the lower half of the subnet (Docker hands the upper half to everything else).
import { parseClusterConfig, type ClusterSpec } from "../../config";
import {
  dynamicAddressRange, etcdMembers, HA_MAX_PREFIX, patroniNodes, ROUTER_PORTS, routerMember, serverEndpoints, subnetAddress,
} from "../../topology";
import { fixedPrimaryConfig, stackConfig } from "./harness";

const spec = (overrides: Record<string, string> = {}): ClusterSpec => parseClusterConfig({ ...stackConfig("dev"), ...overrides });
const fixedPrimary = (overrides: Record<string, string> = {}): ClusterSpec => parseClusterConfig({ ...fixedPrimaryConfig("dev"), ...overrides });
const ipNumber = (ip: string) => ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);

describe("subnetAddress", () => {
  test.each([
    ["172.30.10.0/24", 11, "172.30.10.11"],
    ["172.30.10.0/24", 0, "172.30.10.0"],
    ["172.30.10.64/26", 30, "172.30.10.94"],
    ["10.1.0.0/16", 300, "10.1.1.44"],
    ["10.255.255.0/24", 255, "10.255.255.255"],
    ["10.0.255.0/24", 256, "10.1.0.0"],
  ])("%s + %i = %s", (subnet, offset, address) => {
    expect(subnetAddress(subnet, offset)).toBe(address);
  });
});

describe("dynamicAddressRange", () => {
  test.each([
    ["172.30.10.0/24", "172.30.10.128/25"],
    ["172.30.20.0/24", "172.30.20.128/25"],
    ["10.1.0.0/16", "10.1.128.0/17"],
    ["172.30.10.64/26", "172.30.10.96/27"],
    ["172.30.10.192/26", "172.30.10.224/27"],
    ["172.30.8.0/22", "172.30.10.0/23"],
  ])("the upper half of %s is %s", (subnet, range) => {
    expect(dynamicAddressRange(subnet)).toBe(range);
  });
});

describe("HA members", () => {
  test("the dev stack: nodes from .11, its one etcd member at .21, the router at .30", () => {
    const dev = spec();
    expect(patroniNodes(dev)).toEqual([
      { name: "pgha-dev-node-1", address: "172.30.10.11" },
      { name: "pgha-dev-node-2", address: "172.30.10.12" },
    ]);
    expect(etcdMembers(dev)).toEqual([{ name: "pgha-dev-etcd-1", address: "172.30.10.21" }]);
    expect(routerMember(dev)).toEqual({ name: "pgha-dev-router", address: "172.30.10.30" });
  });

  test("the prod stack: three nodes and three etcd members in its own subnet", () => {
    const prod = parseClusterConfig(stackConfig("prod"));
    expect(patroniNodes(prod)).toEqual([1, 2, 3].map((i) => ({ name: `pgha-prod-node-${i}`, address: `172.30.20.1${i}` })));
    expect(etcdMembers(prod)).toEqual([1, 2, 3].map((i) => ({ name: `pgha-prod-etcd-${i}`, address: `172.30.20.2${i}` })));
    expect(routerMember(prod)).toEqual({ name: "pgha-prod-router", address: "172.30.20.30" });
  });

  test("one node per replica plus one; one etcd member per pg-ha:etcdMembers", () => {
    expect(patroniNodes(spec({ "pg-ha:replicas": "0" })).map((n) => n.name)).toEqual(["pgha-dev-node-1"]);
    expect(patroniNodes(spec({ "pg-ha:replicas": "5" })).map((n) => n.name)).toEqual([1, 2, 3, 4, 5, 6].map((i) => `pgha-dev-node-${i}`));
    expect(etcdMembers(spec({ "pg-ha:etcdMembers": "5" })).map((m) => m.name)).toEqual([1, 2, 3, 4, 5].map((i) => `pgha-dev-etcd-${i}`));
  });

  // The largest cluster in every subnet config.ts accepts for Patroni, /16 to /26, at its first
  // and its last aligned place in 172.30.0.0/16.
  const subnets = [...new Set(Array.from({ length: HA_MAX_PREFIX - 16 + 1 }, (_, i) => 16 + i)
    .flatMap((prefix) => [`172.30.0.0/${prefix}`, `172.30.${prefix <= 24 ? 256 - 2 ** (24 - prefix) : 255}.${prefix <= 24 ? 0 : 256 - 2 ** (32 - prefix)}/${prefix}`]))];
  test.each(subnets)("the largest cluster in %s: every fixed address distinct, in the lower half, neither the network's nor its gateway's", (subnet) => {
    const largest = spec({ "pg-ha:networkSubnet": subnet, "pg-ha:replicas": "5", "pg-ha:etcdMembers": "5" });
    const members = [...patroniNodes(largest), ...etcdMembers(largest), routerMember(largest)];
    expect(members).toHaveLength(6 + 5 + 1);
    const base = ipNumber(subnet.split("/")[0]);
    const half = 2 ** (32 - Number(subnet.split("/")[1])) / 2;
    const offsets = members.map((m) => ipNumber(m.address) - base);
    expect(new Set(offsets).size).toBe(members.length);
    for (const offset of offsets) expect({ offset, inLowerHalf: offset > 1 && offset < half }).toEqual({ offset, inLowerHalf: true });
    // Docker's range for everything else starts right above them.
    expect(ipNumber(dynamicAddressRange(subnet).split("/")[0]) - base).toBe(half);
  });
});

describe("serverEndpoints", () => {
  test("with Patroni: the router's read-write and read-only ports, whichever node leads", () => {
    expect(ROUTER_PORTS).toEqual({ readWrite: 5000, readOnly: 5001, monitor: 8404 });
    expect(serverEndpoints(spec())).toEqual({
      readWrite: { host: "pgha-dev-router", port: 5000 },
      readOnly: { hosts: ["pgha-dev-router"], port: 5001 },
    });
    expect(serverEndpoints(spec({ "pg-ha:replicas": "0" }))).toEqual(serverEndpoints(spec()));
  });

  test("without: the fixed primary, and the replicas for reads (the primary when there is none)", () => {
    expect(serverEndpoints(fixedPrimary())).toEqual({
      readWrite: { host: "pgha-dev-primary", port: 5432 },
      readOnly: { hosts: ["pgha-dev-replica-1"], port: 5432 },
    });
    expect(serverEndpoints(fixedPrimary({ "pg-ha:replicas": "2" })).readOnly).toEqual({ hosts: ["pgha-dev-replica-1", "pgha-dev-replica-2"], port: 5432 });
    expect(serverEndpoints(fixedPrimary({ "pg-ha:replicas": "0" })).readOnly).toEqual({ hosts: ["pgha-dev-primary"], port: 5432 });
  });
});
