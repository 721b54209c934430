// A plan printed the way `pulumi preview --diff` prints it: one block per step with its URN and
// changed properties, changed lines of multi-line text, and `[secret]` for any top-level property
// holding a secret (the engine marks the whole property, arrays included, as secret).
import type { PropertyChange, Step } from "./planner";

const SYMBOL: Record<Step["op"], string> = { same: "  ", create: "+ ", update: "~ ", replace: "+-", delete: "- " };

function show(v: unknown): string {
    return typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v ?? null);
}

/** Changed lines only: removed lines with "-", added with "+", in order. */
function lineDiff(a: string, b: string, indent: string): string[] {
    const [oldLines, newLines] = [a.split("\n"), b.split("\n")];
    const kept = new Set(oldLines.filter((l) => newLines.includes(l)));
    return [
        ...oldLines.filter((l) => !kept.has(l)).map((l) => `${indent}- ${l}`),
        ...newLines.filter((l) => !kept.has(l)).map((l) => `${indent}+ ${l}`),
    ];
}

/** Set elements keyed by what identifies them (`file` of an upload, `label` of a label). */
function keyed(items: unknown[]): Map<string, Record<string, unknown>> | undefined {
    const records = items as Record<string, unknown>[];
    const key = ["file", "label", "containerPath", "name"].find((k) => records.every((r) => r && typeof r === "object" && typeof r[k] === "string"));
    return key ? new Map(records.map((r) => [String(r[key]), r])) : undefined;
}

function valueDiff(key: string, a: unknown, b: unknown, indent: string): string[] {
    if (typeof a === "string" && typeof b === "string" && (a.includes("\n") || b.includes("\n"))) {
        return [`${indent}~ ${key}:`, ...lineDiff(a, b, `${indent}    `)];
    }
    if (Array.isArray(a) && Array.isArray(b)) {
        const [ka, kb] = [keyed(a), keyed(b)];
        if (ka && kb) {
            const lines = [`${indent}~ ${key}: [`];
            for (const k of ka.keys()) if (!kb.has(k)) lines.push(`${indent}    - ${k}`);
            for (const [k, y] of kb) {
                const x = ka.get(k);
                if (!x) lines.push(`${indent}    + ${k}`);
                else if (JSON.stringify(x) !== JSON.stringify(y)) {
                    for (const f of new Set([...Object.keys(x), ...Object.keys(y)])) {
                        if (JSON.stringify(x[f]) !== JSON.stringify(y[f])) lines.push(...valueDiff(`[${k}].${f}`, x[f], y[f], `${indent}    `));
                    }
                }
            }
            return [...lines, `${indent}  ]`];
        }
    }
    if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
        const [x, y] = [a as Record<string, unknown>, b as Record<string, unknown>];
        const lines = [`${indent}~ ${key}: {`];
        for (const f of new Set([...Object.keys(x), ...Object.keys(y)])) {
            if (JSON.stringify(x[f]) !== JSON.stringify(y[f])) lines.push(...valueDiff(f, x[f], y[f], `${indent}    `));
        }
        return [...lines, `${indent}  }`];
    }
    return [`${indent}~ ${key}: ${show(a)} => ${show(b)}`];
}

function changeLines(c: PropertyChange): string[] {
    const why = c.effect === "replace" ? " (forces replacement)" : c.effect === "renewal" ? " (inside the early-renewal window)" : "";
    if (c.secret) return [`      ~ ${c.key}: [secret] => [secret]${why}`];
    const lines = valueDiff(c.key, c.old, c.new, "      ");
    lines[0] += why;
    return lines;
}

export function formatPlan(steps: Step[], stack: string, preview: boolean): string {
    const out = [`${preview ? "Previewing update" : "Updating"} (${stack}):`];
    for (const s of steps.filter((s) => s.op !== "same")) {
        const order = s.op === "replace" ? (s.deleteFirst ? ", delete before replace" : ", create before delete") : "";
        const because = s.dependentOf ? `, because ${s.dependentOf.split("::").pop()} is replaced first` : s.retained ? ", retained: kept on the engine" : "";
        out.push(`    ${SYMBOL[s.op]}${s.type}: (${s.op}${order}${because})`, `        [urn=${s.urn}]`);
        for (const c of s.changes) out.push(...changeLines(c));
    }
    const count = (op: Step["op"]) => steps.filter((s) => s.op === op).length;
    out.push("Resources:");
    for (const [op, label] of [["create", "to create"], ["update", "to update"], ["replace", "to replace"], ["delete", "to delete"]] as const) {
        if (count(op)) out.push(`    ${SYMBOL[op]}${count(op)} ${preview ? label : label.replace("to ", "").replace(/e?$/, "ed")}`);
    }
    out.push(`    ${count("same")} unchanged`);
    return out.join("\n");
}
