// random:index/* with terraform-provider-random semantics, from crypto.randomInt/randomBytes.
import * as crypto from "crypto";
import type * as pulumi from "@pulumi/pulumi";
import type * as randomSdk from "@pulumi/random";
import type { Handler, HandlerContext, HandlerResult, Inputs } from "./types";

type StringInputs = pulumi.Unwrap<randomSdk.RandomStringArgs>;

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const NUMERIC = "0123456789";
const DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?";

function pick(charset: string, count: number): string[] {
    if (count > 0 && charset.length === 0) throw new Error("no characters to choose from: enable at least one character set");
    return Array.from({ length: count }, () => charset[crypto.randomInt(charset.length)]);
}

/**
 * The provider's CreateString: each min* count is drawn from its own set (whether or not that set
 * is enabled), the rest from the union of enabled sets, then the whole is shuffled.
 */
export function randomString(inputs: StringInputs): string {
    const special = inputs.overrideSpecial || DEFAULT_SPECIAL;
    const useNumeric = inputs.numeric ?? inputs.number ?? true;
    const mins = {
        upper: inputs.minUpper ?? 0,
        lower: inputs.minLower ?? 0,
        numeric: inputs.minNumeric ?? 0,
        special: inputs.minSpecial ?? 0,
    };
    const required = mins.upper + mins.lower + mins.numeric + mins.special;
    if (inputs.length < 1 || inputs.length < required) {
        throw new Error(`length (${inputs.length}) must be >= 1 and >= minUpper + minLower + minNumeric + minSpecial (${required})`);
    }
    const pool =
        (inputs.upper ?? true ? UPPER : "") +
        (inputs.lower ?? true ? LOWER : "") +
        (useNumeric ? NUMERIC : "") +
        (inputs.special ?? true ? special : "");
    const chars = [
        ...pick(UPPER, mins.upper),
        ...pick(LOWER, mins.lower),
        ...pick(NUMERIC, mins.numeric),
        ...pick(special, mins.special),
    ];
    chars.push(...pick(pool, inputs.length - chars.length));
    for (let i = chars.length - 1; i > 0; i--) {
        const j = crypto.randomInt(i + 1);
        [chars[i], chars[j]] = [chars[j], chars[i]];
    }
    return chars.join("");
}

function stringDefaults(inputs: StringInputs) {
    return {
        special: inputs.special ?? true,
        upper: inputs.upper ?? true,
        lower: inputs.lower ?? true,
        numeric: inputs.numeric ?? inputs.number ?? true,
        minUpper: inputs.minUpper ?? 0,
        minLower: inputs.minLower ?? 0,
        minNumeric: inputs.minNumeric ?? 0,
        minSpecial: inputs.minSpecial ?? 0,
    };
}

async function createRandomPassword(_ctx: HandlerContext, _name: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as StringInputs;
    // bcryptHash is not produced (no bcrypt implementation installed).
    return { id: "none", outputs: { ...stringDefaults(inputs), result: randomString(inputs) } };
}

async function createRandomString(_ctx: HandlerContext, _name: string, raw: Inputs): Promise<HandlerResult> {
    const inputs = raw as StringInputs;
    const result = randomString(inputs);
    return { id: result, outputs: { ...stringDefaults(inputs), result } };
}

async function createRandomBytes(_ctx: HandlerContext, _name: string, raw: Inputs): Promise<HandlerResult> {
    const { length } = raw as pulumi.Unwrap<randomSdk.RandomBytesArgs>;
    const bytes = crypto.randomBytes(length);
    return { id: "none", outputs: { base64: bytes.toString("base64"), hex: bytes.toString("hex") } };
}

async function createRandomId(_ctx: HandlerContext, _name: string, raw: Inputs): Promise<HandlerResult> {
    const { byteLength, prefix = "" } = raw as pulumi.Unwrap<randomSdk.RandomIdArgs>;
    const bytes = crypto.randomBytes(byteLength);
    const id = bytes.toString("base64url");
    return {
        id,
        outputs: {
            b64Url: prefix + id,
            b64Std: prefix + bytes.toString("base64"),
            hex: prefix + bytes.toString("hex"),
            dec: prefix + BigInt(`0x${bytes.toString("hex") || "0"}`).toString(),
        },
    };
}

export const randomHandlers: Record<string, Handler> = {
    "random:index/randomPassword:RandomPassword": createRandomPassword,
    "random:index/randomString:RandomString": createRandomString,
    "random:index/randomBytes:RandomBytes": createRandomBytes,
    "random:index/randomId:RandomId": createRandomId,
};
