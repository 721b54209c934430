// Deploying a cluster takes tens of seconds on a loaded 2-core machine; no test or hook of this
// suite may depend on jest's 5 s default. Files that need longer set their own.
jest.setTimeout(300_000);
