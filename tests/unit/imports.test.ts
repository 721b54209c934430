/**
 * The data path reads one way: stack config -> validated spec -> tuning -> rendered files ->
 * container inputs -> outputs. This walks the program's own imports (TypeScript's
 * preProcessFile, so `import type` and `export ... from` count too) and fails on any cycle and on
 * any module that imports from a layer above its own.
 */
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

const ROOT = path.join(__dirname, "..", "..");

/**
 * The program's layers, lowest first. A module may import from its own layer or below. config.ts
 * turns the stack configuration into a spec and checks that the tuning fits the node, so it sits
 * above the tuning; nothing that renders or wires resources needs it.
 */
const LAYERS: { name: string; holds: (file: string) => boolean }[] = [
  { name: "spec (the cluster's shape, shared constants)", holds: (f) => f === "spec.ts" },
  { name: "topology (names and places derived from the spec)", holds: (f) => f === "topology.ts" },
  { name: "tuning and parameters", holds: (f) => ["config-templates/pgtune.ts", "config-templates/tuning.ts", "config-templates/parameters.ts"].includes(f) },
  { name: "stack config (settings -> validated spec)", holds: (f) => f === "config.ts" },
  { name: "rendered files", holds: (f) => f.startsWith("config-templates/") },
  { name: "container inputs", holds: (f) => f.startsWith("components/") },
  { name: "outputs", holds: (f) => f === "index.ts" },
];

/** Module (path relative to ROOT) -> the project modules it imports. */
type ImportGraph = Map<string, string[]>;

function resolveLocal(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined; // a package
  const base = path.join(path.dirname(path.join(ROOT, from)), specifier);
  for (const candidate of [`${base}.ts`, path.join(base, "index.ts")]) {
    if (fs.existsSync(candidate)) return path.relative(ROOT, candidate).split(path.sep).join("/");
  }
  throw new Error(`${from}: cannot resolve import "${specifier}"`);
}

/** Every module reachable from ENTRIES through relative imports. */
function importGraph(entries: string[]): ImportGraph {
  const graph: ImportGraph = new Map();
  const pending = [...entries];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (graph.has(file)) continue;
    const info = ts.preProcessFile(fs.readFileSync(path.join(ROOT, file), "utf8"), true, true);
    const targets = [...new Set(info.importedFiles.map((i) => resolveLocal(file, i.fileName)).filter((t): t is string => t !== undefined))];
    graph.set(file, targets.sort());
    pending.push(...targets);
  }
  return graph;
}

/** Each cycle once, as the path that closes it ("a.ts -> b.ts -> a.ts"). */
function cyclesOf(graph: ImportGraph): string[] {
  const cycles = new Set<string>();
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const target of graph.get(file) ?? []) {
      if (state.get(target) === "open") {
        const loop = stack.slice(stack.indexOf(target));
        // The same cycle found from another module reads the same: start it at its smallest name.
        const start = loop.indexOf([...loop].sort()[0]);
        const rotated = [...loop.slice(start), ...loop.slice(0, start)];
        cycles.add([...rotated, rotated[0]].join(" -> "));
      } else if (!state.has(target)) {
        visit(target);
      }
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return [...cycles].sort();
}

function layerOf(file: string): number {
  return LAYERS.findIndex((layer) => layer.holds(file));
}

/** Every import that points up, and every module that belongs to no layer. */
function layerProblems(graph: ImportGraph): string[] {
  const problems: string[] = [];
  for (const [file, targets] of graph) {
    const own = layerOf(file);
    if (own < 0) {
      problems.push(`${file} belongs to no layer`);
      continue;
    }
    for (const target of targets) {
      const theirs = layerOf(target);
      if (theirs > own) problems.push(`${file} (${LAYERS[own].name}) imports ${target} (${LAYERS[theirs].name}), a layer above it`);
    }
  }
  return problems.sort();
}

/** index.ts, config.ts and every module under components/ and config-templates/. */
function programModules(): string[] {
  const under = (dir: string) =>
    fs.readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")).map((f) => `${dir}/${f}`);
  return ["index.ts", "config.ts", ...under("components"), ...under("config-templates")];
}

describe("the program's imports", () => {
  const graph = importGraph(programModules());

  test("reach every layer from index.ts, the spec at the bottom", () => {
    const reachable = importGraph(["index.ts"]);
    expect([...reachable.keys()]).toEqual(expect.arrayContaining(["spec.ts", "topology.ts", "config.ts", "config-templates/tuning.ts", "config-templates/render.ts", "components/cluster.ts"]));
    expect(graph.get("spec.ts")).toEqual([]);
  });

  test("form no cycle", () => {
    expect(cyclesOf(graph)).toEqual([]);
  });

  test("never point to a layer above the importing module", () => {
    expect(layerProblems(graph)).toEqual([]);
  });
});

describe("the checks themselves", () => {
  const graph = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges));

  test("a cycle is named by its path, once, however it is reached", () => {
    const g = graph({ "index.ts": ["config.ts"], "config.ts": ["topology.ts"], "topology.ts": ["config.ts"] });
    expect(cyclesOf(g)).toEqual(["config.ts -> topology.ts -> config.ts"]);
    expect(cyclesOf(graph({ "spec.ts": ["spec.ts"] }))).toEqual(["spec.ts -> spec.ts"]);
    expect(cyclesOf(graph({ "a.ts": ["b.ts"], "b.ts": [] }))).toEqual([]);
  });

  test("an upward import is named with both layers; an unplaced module is reported", () => {
    const g = graph({ "config.ts": ["components/topology.ts"], "components/topology.ts": ["spec.ts"], "spec.ts": [], "tools/x.ts": [] });
    expect(layerProblems(g)).toEqual([
      "config.ts (stack config (settings -> validated spec)) imports components/topology.ts (container inputs), a layer above it",
      "tools/x.ts belongs to no layer",
    ]);
  });
});
