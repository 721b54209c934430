/**
 * Two projects: fast unit tests with Pulumi mocks, and the real-engine suite.
 * Timeouts are sized for a loaded 2-core machine: running the program under mocks can take many
 * seconds there, and jest's 5 s default would fail a hook that is merely slow.
 */
const tsJest = ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: { warnOnly: false } }];
module.exports = {
  projects: [
    {
      displayName: "unit",
      testEnvironment: "node",
      testTimeout: 120_000,
      transform: { "^.+\\.ts$": tsJest },
      testMatch: ["<rootDir>/tests/unit/**/*.test.ts"],
      setupFiles: ["<rootDir>/tests/unit/setup/mocks.ts"],
      setupFilesAfterEnv: ["<rootDir>/tests/unit/setup/after.ts"],
    },
    {
      displayName: "e2e",
      testEnvironment: "node",
      testTimeout: 300_000,
      transform: { "^.+\\.ts$": tsJest },
      testMatch: ["<rootDir>/tests/e2e/**/*.test.ts"],
      globalSetup: "<rootDir>/tests/e2e/support/host-commands.ts",
    },
  ],
};
