// The e2e executor itself, on the real Docker engine, with a tiny program (fixtures/) and a
// busybox image built locally. Run: npx jest --selectProjects e2e tests/e2e/executor.test.ts
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import { cleanupLeftovers, deploy, destroy, LABEL, replaceContainer, type DeployResult } from "./executor";

jest.setTimeout(120_000);

const PROGRAM = path.join(__dirname, "executor/fixtures/selftest-program.ts");
const IMAGE = "pgha-e2e-selftest:busybox";
const STACK = "executor-selftest";
const FAIL_STACK = "executor-selftest-fail";
const PREFIX = "pgha-e2e-selftest";

function sh(cmd: string, args: string[], input?: string): string {
    return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}
const dockerExec = (container: string, ...args: string[]) => sh("docker", ["exec", container, ...args]).trim();
const stat = (container: string, file: string) => dockerExec(container, "stat", "-c", "%a %u %g", file);
const labelled = (kind: "ps -a" | "network ls" | "volume ls", stack: string) =>
    sh("docker", [...kind.split(" "), "-q", "--filter", `label=${LABEL.stack}=${stack}`]).trim();

function httpGet(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
        http.get({ host: "127.0.0.1", port, path: "/" }, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve(body));
        }).on("error", reject);
    });
}

/** Reads a file from a volume with a throwaway container. */
function readFromVolume(volume: string, file: string): string {
    return sh("docker", ["run", "--rm", "-v", `${volume}:/data`, IMAGE, "cat", `/data/${file}`]);
}

beforeAll(async () => {
    if (spawnSync("docker", ["image", "inspect", IMAGE], { stdio: "ignore" }).status !== 0) {
        sh("bash", [path.join(__dirname, "executor/fixtures/build-busybox-image.sh"), IMAGE]);
    }
    await cleanupLeftovers(STACK);
    await cleanupLeftovers(FAIL_STACK);
});

describe("a working program", () => {
    let result: DeployResult;
    let outputs: Record<string, any>;
    const app = `${PREFIX}-app`;

    beforeAll(async () => {
        result = await deploy({ programPath: PROGRAM, stack: STACK, config: { scenario: "main", prefix: PREFIX } });
        outputs = result.outputs.stack as Record<string, any>;
    });

    test("records the created resources in creation order, components excluded", () => {
        const types = result.resources.map((r) => r.type);
        expect(types).toEqual(expect.arrayContaining(["docker:index/network:Network", "tls:index/locallySignedCert:LocallySignedCert"]));
        expect(types).not.toContain("pgha:selftest:Pki");
        const at = (name: string) => result.resources.findIndex((r) => r.name === name);
        expect(at("app")).toBeGreaterThan(at("net"));
        expect(at("app")).toBeGreaterThan(at("data"));
        expect(at("pki-server")).toBeGreaterThan(at("pki-ca"));
    });

    test("network has the subnet, the container its fixed address and alias, off the default bridge", () => {
        const net = JSON.parse(sh("docker", ["network", "inspect", `${PREFIX}-net`]))[0];
        expect(net.IPAM.Config[0]).toMatchObject({ Subnet: "10.213.77.0/24", Gateway: "10.213.77.1" });
        expect(net.Labels).toMatchObject({ purpose: "selftest", [LABEL.marker]: "true", [LABEL.stack]: STACK });
        expect(outputs.appNetworkData).toEqual([
            expect.objectContaining({ networkName: `${PREFIX}-net`, ipAddress: "10.213.77.10", gateway: "10.213.77.1" }),
        ]);
        const info = JSON.parse(sh("docker", ["inspect", app]))[0];
        expect(Object.keys(info.NetworkSettings.Networks)).toEqual([`${PREFIX}-net`]);
        expect(info.NetworkSettings.Networks[`${PREFIX}-net`].Aliases).toContain("app-alias");
    });

    test("container: labels, secret env unwrapped, healthy, port published on 127.0.0.1", async () => {
        const info = JSON.parse(sh("docker", ["inspect", app]))[0];
        expect(info.Config.Labels).toMatchObject({ role: "app", [LABEL.destroyGraceSeconds]: "5", [LABEL.stack]: STACK });
        expect(info.Config.Env).toEqual(expect.arrayContaining(["SECRET_TOKEN=s3cret", "PLAIN=1"]));
        expect(info.State.Health.Status).toBe("healthy");
        expect(info.Config.Healthcheck.Interval).toBe(500_000_000);
        const [port] = outputs.appPorts;
        expect(port).toMatchObject({ internal: 8080, ip: "127.0.0.1", protocol: "tcp" });
        expect(port.external).toBeGreaterThan(0);
        expect(await httpGet(port.external)).toBe("hello from the e2e executor\n");
    });

    test("uploads: root-owned, provider modes, implied parents 0755, existing dirs untouched, into volumes", () => {
        expect(stat(app, "/www/index.html")).toBe("644 0 0");
        expect(stat(app, "/opt/e2e/bin/run.sh")).toBe("744 0 0");
        expect(stat(app, "/opt/e2e/secret/key.pem")).toBe("640 0 70");
        expect(stat(app, "/opt/e2e/secret")).toBe("755 0 0");
        expect(stat(app, "/opt/e2e")).toBe("755 0 0");
        expect(stat(app, "/tmp")).toBe("1777 0 0");
        expect(dockerExec(app, "od", "-An", "-tu1", "/opt/e2e/data.bin").split(/\s+/)).toEqual(["0", "1", "2", "255"]);
        expect(dockerExec(app, "cat", "/opt/e2e/secret/key.pem")).toBe(outputs.serverKeyPem.trim());
        expect(readFromVolume(`${PREFIX}-data`, "uploaded.txt")).toBe("landed in the volume\n");
    });

    test("random: length and character sets honoured, secrets revealed", () => {
        expect(outputs.password).toMatch(/^[A-Za-z0-9!#%]{24}$/);
        expect(outputs.password.replace(/[^A-Z]/g, "").length).toBeGreaterThanOrEqual(2);
        expect(outputs.password.replace(/[^0-9]/g, "").length).toBeGreaterThanOrEqual(2);
        expect(outputs.lowercase).toMatch(/^[a-z]{16}$/);
    });

    describe("tls", () => {
        let dir: string;
        const openssl = (...args: string[]) => sh("openssl", args);
        beforeAll(() => {
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgha-e2e-tls-"));
            for (const f of ["caCertPem", "serverCertPem", "serverKeyPem", "edCertPem"]) fs.writeFileSync(path.join(dir, f), outputs[f]);
        });
        afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

        test("openssl verifies the server certificate against the CA, with SANs and usages", () => {
            expect(openssl("verify", "-CAfile", path.join(dir, "caCertPem"), path.join(dir, "serverCertPem")).trim()).toMatch(/: OK$/);
            const server = openssl("x509", "-noout", "-text", "-in", path.join(dir, "serverCertPem"));
            expect(server).toMatch(/DNS:app, DNS:app-alias, DNS:localhost, IP Address:127.0.0.1, IP Address:10.213.77.10/);
            expect(server).toMatch(/TLS Web Server Authentication/);
            expect(server).toMatch(/X509v3 Authority Key Identifier/);
            expect(server).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
            const ca = openssl("x509", "-noout", "-text", "-in", path.join(dir, "caCertPem"));
            expect(ca).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
            expect(ca).toMatch(/X509v3 Subject Key Identifier/);
            expect(ca).toMatch(/Certificate Sign, CRL Sign/);
            expect(outputs.serverKeyPem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
        });

        test("ECDSA keys default to P224 in SEC1 form, as the provider's", () => {
            expect(outputs.defaultEcdsaKeyPem).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
            expect(sh("openssl", ["pkey", "-noout", "-text"], outputs.defaultEcdsaKeyPem)).toMatch(/NIST CURVE: P-224/);
        });

        test("an ED25519 self-signed certificate is valid for OpenSSL", () => {
            const ed = path.join(dir, "edCertPem");
            expect(openssl("verify", "-CAfile", ed, "-partial_chain", ed).trim()).toMatch(/: OK$/);
        });

        test("node tls (OpenSSL 3) completes a verified handshake with the certificate", async () => {
            const server = tls.createServer({ cert: outputs.serverCertPem, key: outputs.serverKeyPem }, (s) => s.end("ok"));
            await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
            const { port } = server.address() as { port: number };
            try {
                const reply = await new Promise<string>((resolve, reject) => {
                    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca: outputs.caCertPem }, () => {
                        socket.once("data", (d) => resolve(d.toString()));
                    });
                    socket.on("error", reject);
                });
                expect(reply).toBe("ok");
            } finally {
                server.close();
            }
        });
    });

    test("the volume survives replacing the container, which is stopped gracefully", async () => {
        dockerExec(app, "sh", "-c", "echo kept > /data/marker");
        const oldId = result.resources.find((r) => r.name === "app")!.id;
        const replaced = await replaceContainer("app");
        expect(replaced.id).not.toBe(oldId);
        expect(JSON.parse(sh("docker", ["inspect", app]))[0].State.Health.Status).toBe("healthy");
        expect(dockerExec(app, "cat", "/data/marker")).toBe("kept");
        expect(dockerExec(app, "cat", "/data/stopped")).toBe("graceful"); // destroyGraceSeconds let the trap run
    });

    test("destroy with keepData removes containers and networks but keeps the volume", async () => {
        await destroy({ keepData: true });
        expect(labelled("ps -a", STACK)).toBe("");
        expect(labelled("network ls", STACK)).toBe("");
        expect(labelled("volume ls", STACK)).not.toBe("");
        expect(readFromVolume(`${PREFIX}-data`, "stopped")).toBe("graceful\ngraceful\n");
    });

    test("re-deploying adopts the kept volume; destroy removes everything", async () => {
        await deploy({ programPath: PROGRAM, stack: STACK, config: { scenario: "main", prefix: PREFIX } });
        expect(dockerExec(app, "cat", "/data/marker")).toBe("kept");
        await destroy();
        for (const kind of ["ps -a", "network ls", "volume ls"] as const) expect(labelled(kind, STACK)).toBe("");
    });
});

describe("failures", () => {
    const failing = (scenario: string) =>
        deploy({ programPath: PROGRAM, stack: FAIL_STACK, config: { scenario, prefix: `${PREFIX}-fail` } });
    afterEach(() => destroy({ stack: FAIL_STACK }));

    test("a missing image fails clearly, naming the resource and how to build it", async () => {
        await expect(failing("missing-image")).rejects.toThrow(
            /docker:index\/remoteImage:RemoteImage "missing".*pgha-e2e-selftest:no-such-tag.*cannot be pulled.*bash tests\/images\/build.sh/s,
        );
    });

    test("invalid upload permissions are rejected before anything is created", async () => {
        await expect(failing("bad-permissions")).rejects.toThrow(/docker:index\/container:Container "broken".*permissions.*"644"/s);
        expect(labelled("ps -a", FAIL_STACK)).toBe("");
    });

    test("a never-healthy container fails after waitTimeout with its health output and logs", async () => {
        const started = Date.now();
        await expect(failing("never-healthy")).rejects.toThrow(
            /container failed to be in healthy state after 3s.*probe-says-no.*hello-from-unhealthy/s,
        );
        expect(Date.now() - started).toBeLessThan(15_000);
    });

    test("a container that exits while waiting fails fast with its logs", async () => {
        const started = Date.now();
        await expect(failing("exits")).rejects.toThrow(/exited with code 3.*bye-now/s);
        expect(Date.now() - started).toBeLessThan(15_000);
    });
});

describe("stack references and image builds", () => {
    const REF_PROGRAM = path.join(__dirname, "executor/fixtures/reference-program.ts");
    const REF_STACK = "executor-selftest-ref";
    const BUILT = `${PREFIX}:built`;
    const other = { outputs: { greeting: "hello from the other stack", token: "t0ken" }, secretOutputNames: ["token"] };
    const run = (config: Record<string, unknown>, stackReferences: Record<string, typeof other> = { "organization/other/dev": other }) =>
        deploy({ programPath: REF_PROGRAM, stack: REF_STACK, config: { otherStack: "organization/other/dev", imageName: BUILT, ...config }, stackReferences });
    afterEach(() => destroy({ stack: REF_STACK }));

    test("a StackReference reads the outputs given for its stack, secret where that stack marks them", async () => {
        const { outputs } = await run({});
        expect(outputs.seen).toEqual({ greeting: other.outputs.greeting, token: "t0ken", greetingIsSecret: false, tokenIsSecret: true });
    });

    test("docker.Image builds the Dockerfile with its build args, offline, and reports the image id", async () => {
        const { outputs } = await run({});
        const id = sh("docker", ["image", "inspect", "-f", "{{.Id}}", BUILT]).trim();
        expect(outputs.repoDigest).toBe(id);
        expect(sh("docker", ["run", "--rm", id]).trim()).toBe(other.outputs.greeting);
        expect(sh("docker", ["image", "inspect", "-f", `{{index .Config.Labels "${LABEL.stack}"}}`, BUILT]).trim()).toBe(REF_STACK);
    });

    test("a reference to a stack whose outputs were not given fails, naming the stack", async () => {
        await expect(run({ otherStack: "organization/missing/dev" })).rejects.toThrow(
            /pulumi:pulumi:StackReference "organization\/missing\/dev": no outputs given for stack "organization\/missing\/dev".*organization\/other\/dev/s,
        );
    });

    test("an image that would be pushed is refused: no registry is reachable", async () => {
        await expect(run({ skipPush: false })).rejects.toThrow(/docker:index\/image:Image "greeter": pushing .* set skipPush: true/);
    });
});
