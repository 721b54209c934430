/** Two projects: fast unit tests with Pulumi mocks, and the real-engine suite. */
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
      transform: { "^.+\\.ts$": tsJest },
      testMatch: ["<rootDir>/tests/e2e/**/*.test.ts"],
    },
  ],
};
