/**
 * The e2e suite's first step: every host command in tests/images/host-packages.txt must exist.
 * A missing one fails the run at once, naming the Debian package to install, instead of failing
 * tests one by one with a spawn error.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const LIST = path.join(__dirname, "..", "..", "images", "host-packages.txt");

/** `[command, package]` pairs from the list, comments and blank lines skipped. */
export function hostPackages(file = LIST): [string, string][] {
  return fs.readFileSync(file, "utf8").split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.split(/\s+/) as [string, string]);
}

/** The commands not found on PATH, each with its package. */
export function missingHostCommands(pairs = hostPackages()): [string, string][] {
  return pairs.filter(([command]) => spawnSync("sh", ["-c", `command -v ${command}`]).status !== 0);
}

export default function requireHostCommands(): void {
  const missing = missingHostCommands();
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map(([, p]) => p))].join(" ");
  throw new Error(
    `missing host commands: ${missing.map(([c, p]) => `${c} (package ${p})`).join(", ")}; ` +
      `run 'bash tests/images/setup-engine.sh' or 'apt-get install -y ${packages}'`,
  );
}
