/**
 * Two projects: fast unit tests with Pulumi mocks, and the real-engine suite.
 * Timeouts are sized for a loaded 2-core machine (set in each project's setupFilesAfterEnv: jest
 * ignores a testTimeout given per project).
 */
const tsJest = ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: { warnOnly: false } }];
module.exports = {
  projects: [
    {
      displayName: "unit",
      testEnvironment: "node",
      transform: { "^.+\\.ts$": tsJest },
      testMatch: ["<rootDir>/tests/unit/**/*.test.ts"],
      setupFiles: ["<rootDir>/tests/unit/setup/mocks.ts"],
      setupFilesAfterEnv: ["<rootDir>/tests/unit/setup/after.ts"],
    },
    {
      displayName: "e2e",
      testEnvironment: "node",
      setupFilesAfterEnv: ["<rootDir>/tests/e2e/support/timeout.ts"],
      transform: { "^.+\\.ts$": tsJest },
      testMatch: ["<rootDir>/tests/e2e/**/*.test.ts"],
      globalSetup: "<rootDir>/tests/e2e/support/host-commands.ts",
    },
  ],
};
