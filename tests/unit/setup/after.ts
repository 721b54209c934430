import * as pulumi from "@pulumi/pulumi";

// Running the program under mocks can take many seconds on a loaded 2-core machine; jest's 5 s
// default would fail a hook that is merely slow (jest reads a project's testTimeout only from the
// command line or the top-level config, so it is set here, for this project alone).
jest.setTimeout(120_000);

// Drain the mock monitor's RPC queue so nothing runs after a test file ends.
afterAll(() => pulumi.runtime.disconnect());
