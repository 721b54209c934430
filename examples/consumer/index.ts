/**
 * notes (./service) next to a pg-ha cluster, fed by that stack's outputs: the service joins the
 * cluster network and gets the CA and the connection URLs as files. The URLs stay secrets all
 * the way: in the cluster's stack, in this stack's state, and in the container as files only the
 * service user can read. No password is in the image, the command, the env vars or the labels.
 */
import * as path from "path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

const config = new pulumi.Config();
const serviceName = config.get("serviceName") || "notes";
if (!/^[a-z][a-z0-9-]*$/.test(serviceName)) {
  throw new Error(`pg-ha-consumer:serviceName "${serviceName}": use lowercase letters, digits and '-', starting with a letter`);
}
const nodeImage = config.get("nodeImage") || undefined;

// The cluster's stack, e.g. organization/pg-ha/dev; its URLs arrive as secrets.
const cluster = new pulumi.StackReference(config.require("clusterStack"));
const pooledUrl = cluster.requireOutput("pooledUrl");
const readOnlyUrl = cluster.requireOutput("readOnlyUrl");
const caCertPem = cluster.requireOutput("caCertPem");
const networkName = cluster.requireOutput("networkName");

const serviceDir = path.join(__dirname, "service");
const image = new docker.Image(serviceName, {
  imageName: `${serviceName}:local`,
  build: {
    context: serviceDir,
    dockerfile: path.join(serviceDir, "Dockerfile"),
    args: nodeImage ? { NODE_IMAGE: nodeImage } : {},
  },
  skipPush: true, // a local image for the local engine
});

/** The image's `node` user: the only one that can read the URL files. */
const NODE_UID = "1000";
const secretFile = (file: string, content: pulumi.Input<string>) => ({
  file, content, owner: NODE_UID, group: NODE_UID, permissions: "0400",
});

const service = new docker.Container(serviceName, {
  name: serviceName,
  image: image.repoDigest, // a new build replaces the container
  init: true, // docker-init is PID 1 and reaps orphans (a health check that overran, say)
  restart: "unless-stopped",
  networksAdvanced: [{ name: networkName }],
  uploads: [
    { file: "/run/secrets/pg-ca.pem", content: caCertPem, permissions: "0444" },
    secretFile("/run/secrets/pooled-url", pooledUrl),
    secretFile("/run/secrets/read-only-url", readOnlyUrl),
  ],
  healthcheck: { tests: ["CMD", "timeout", "3", "bash", "healthcheck.sh"], interval: "5s", timeout: "10s", startPeriod: "10s", retries: 3 },
  wait: true, // `pulumi up` fails when the service cannot reach the database
  logDriver: "json-file",
  logOpts: { "max-size": "10m", "max-file": "3" },
});

export const containerName = service.name;
export const imageId = image.repoDigest;
