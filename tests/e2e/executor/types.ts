// Shapes shared by the handlers, the mocks and the runner.

/** Plain (unwrapped) resource inputs as the mocks receive them. */
export type Inputs = Record<string, unknown>;

/** What a provider handler returns: the resource id and its computed outputs. */
export interface HandlerResult {
    id: string;
    outputs: Record<string, unknown>;
}

/** Facts about the deployment a handler runs in. */
export interface HandlerContext {
    project: string;
    stack: string;
}

export type Handler = (ctx: HandlerContext, name: string, inputs: Inputs) => Promise<HandlerResult>;

/** A resource the executor created, in creation order. */
export interface CreatedResource {
    type: string;
    name: string;
    id: string;
    inputs: Inputs;
    outputs: Record<string, unknown>;
}
