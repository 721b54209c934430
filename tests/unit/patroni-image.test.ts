// The users' Patroni image (images/postgres-patroni/Dockerfile) and the local test images
// (tests/images/build.sh) install the same packages, so tests run what users deploy.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../..");

function dockerfilePackages(): string[] {
  const text = fs.readFileSync(path.join(ROOT, "images/postgres-patroni/Dockerfile"), "utf8");
  const m = /apt-get install -y --no-install-recommends ([^;\\]+);/.exec(text);
  if (!m) throw new Error("no apt-get install line in images/postgres-patroni/Dockerfile");
  return m[1].trim().split(/\s+/).sort();
}

function buildScriptPackages(): string[] {
  // Sources build.sh's functions without running its main part (the main part needs root).
  const script = `eval "$(sed -n '/^patroni_packages() {/,/^}/p' ${path.join(ROOT, "tests/images/build.sh")})"; patroni_packages`;
  return execFileSync("bash", ["-c", script], { encoding: "utf8" }).trim().split(/\s+/).sort();
}

test("the Dockerfile installs exactly the Patroni packages the test images get", () => {
  expect(dockerfilePackages()).toEqual(buildScriptPackages());
  expect(buildScriptPackages()).toEqual(expect.arrayContaining(["patroni", "pgbackrest", "python3-etcd", "python3-psycopg"]));
});

test("both PostgreSQL test images install them", () => {
  const script = `eval "$(sed -n '/^packages() {/,/^}/p;/^patroni_packages() {/,/^}/p' ${path.join(ROOT, "tests/images/build.sh")})"; packages postgres 18; packages postgres 17`;
  const [pg18, pg17] = execFileSync("bash", ["-c", script], { encoding: "utf8" }).trim().split("\n");
  for (const line of [pg18, pg17]) expect(line.split(/\s+/)).toEqual(expect.arrayContaining(dockerfilePackages()));
});

test("the Dockerfile starts from the official postgres image, pinned by tag", () => {
  const text = fs.readFileSync(path.join(ROOT, "images/postgres-patroni/Dockerfile"), "utf8");
  expect(text).toMatch(/^ARG POSTGRES_IMAGE=postgres:1[78]-trixie$/m);
  expect(text).toMatch(/^FROM \$\{POSTGRES_IMAGE\}$/m);
});

test("the etcd Dockerfile installs the etcd packages of the test image, from the Debian release the test image uses", () => {
  const text = fs.readFileSync(path.join(ROOT, "images/etcd/Dockerfile"), "utf8");
  const m = /apt-get install -y --no-install-recommends ([^;\\]+);/.exec(text);
  if (!m) throw new Error("no apt-get install line in images/etcd/Dockerfile");
  const script = `eval "$(sed -n '/^packages() {/,/^}/p;/^patroni_packages() {/,/^}/p' ${path.join(ROOT, "tests/images/build.sh")})"; packages ha-tools`;
  const testImage = execFileSync("bash", ["-c", script], { encoding: "utf8" }).trim().split(/\s+/);
  expect(testImage).toEqual(expect.arrayContaining(m[1].trim().split(/\s+/)));
  expect(text).toMatch(/^FROM debian:trixie-slim$/m);
  expect(fs.readFileSync(path.join(ROOT, "tests/images/build.sh"), "utf8")).toMatch(/TAG=pgha-test\/ha-tools:latest SUITE=trixie/);
});
