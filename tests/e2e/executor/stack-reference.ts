// pulumi:pulumi:StackReference: the outputs of another stack, given as data to deploy(), stand in
// for what the Pulumi service or backend would return. The SDK reads a reference like an existing
// resource (its id is the referenced stack's name).
import type * as pulumi from "@pulumi/pulumi";

export const STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference";

/** What a StackReference to one stack sees: its outputs, and which of them are secrets. */
export interface StackReferenceAnswer {
    outputs: Record<string, unknown>;
    /** Outputs the program must treat as secrets, as the referenced stack's state marks them. */
    secretOutputNames?: string[];
}

/** The state the SDK expects for a StackReference to `args.id`, from `answers`. */
export function readStackReference(
    answers: Record<string, StackReferenceAnswer>,
    args: pulumi.runtime.MockResourceArgs,
): { id: string; state: Record<string, unknown> } {
    const stackName = String(args.id ?? args.inputs.name);
    const answer = answers[stackName];
    if (!answer) {
        const known = Object.keys(answers);
        throw new Error(
            `no outputs given for stack "${stackName}": pass deploy({ stackReferences: { "${stackName}": { outputs } } })` +
                (known.length > 0 ? ` (given: ${known.join(", ")})` : ""),
        );
    }
    return {
        id: stackName,
        state: { name: stackName, outputs: answer.outputs, secretOutputNames: answer.secretOutputNames ?? [] },
    };
}
