// The e2e executor: runs the Pulumi program under mocks that create real Docker objects.
export { deploy, loadStackConfig, type DeployOptions, type DeployResult } from "./deploy";
export { cleanupLeftovers, destroy, replaceContainer } from "./teardown";
export { LABEL } from "./engine";
export { unwrapSecrets } from "./state";
export type { StackReferenceAnswer } from "./stack-reference";
export type { CreatedResource } from "./types";
