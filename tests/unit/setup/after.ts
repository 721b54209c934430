import * as pulumi from "@pulumi/pulumi";

// Drain the mock monitor's RPC queue so nothing runs after a test file ends.
afterAll(() => pulumi.runtime.disconnect());
