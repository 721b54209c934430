/**
 * The chart of the report, as a self-contained SVG rendered from a results file: throughput by
 * client count, direct against pooled, one panel per script and connection mode. The chart is a
 * Vega-Lite spec (`chartSpec`, a pure function of the results) rendered to SVG headless by Vega,
 * with no canvas and no browser, so the same results always give the same SVG.
 *
 * Vega 5 / Vega-Lite 5, not 6: the 6.x releases are ESM-only with top-level await, which neither
 * `require` under ts-node (CommonJS) nor Jest without --experimental-vm-modules can load.
 */
import * as vega from "vega";
import * as vegaLite from "vega-lite";
import type { Connections, Script } from "./pgbench";
import type { BenchResults } from "./results";
import { CONNECTIONS, SCRIPTS, summarize } from "./summary";

/** The two series, as named in the legend, with their colour and point shape. */
export const SERIES = {
  direct: { name: "direct (primary)", color: "#1f77b4", shape: "circle" },
  pooled: { name: "pooled (PgBouncer)", color: "#e8710a", shape: "square" },
} as const;

const SCRIPT_TITLES: Record<Script, string> = { "select-only": "Select-only", "tpcb-like": "TPC-B-like" };
const CONNECTION_TITLES: Record<Connections, string> = { persistent: "persistent connections", "per-transaction": "new connection per transaction (-C)" };

/** The title of the panel of SCRIPT and CONNECTIONS. */
export function panelTitle(script: Script, connections: Connections): string {
  return `${SCRIPT_TITLES[script]}, ${CONNECTION_TITLES[connections]}`;
}

/** One plotted point; `above` says on which side of it its value goes: away from the other series' point at the same x. */
export interface ChartPoint {
  panel: string;
  clients: number;
  series: string;
  tps: number;
  above: boolean;
}

/** The points of the chart, panel by panel in reading order, direct before pooled. */
export function chartData(results: BenchResults): ChartPoint[] {
  const s = summarize(results);
  const out: ChartPoint[] = [];
  for (const connections of CONNECTIONS) {
    for (const script of SCRIPTS) {
      const panel = panelTitle(script, connections);
      const rows = s.grid.filter((r) => r.script === script && r.connections === connections);
      const direct = rows.filter((r) => r.direct?.tps !== undefined).map((r) => ({ clients: r.clients, tps: r.direct!.tps! }));
      const pooled = rows.filter((r) => r.pooled?.tps !== undefined).map((r) => ({ clients: r.clients, tps: r.pooled!.tps! }));
      if (connections === "persistent") {
        const thousand = s.thousand.find((t) => t.script === script && t.tps !== undefined);
        if (thousand) pooled.push({ clients: thousand.clients, tps: thousand.tps! });
      }
      const add = (series: keyof typeof SERIES, mine: typeof direct, other: typeof direct) => {
        for (const p of mine) {
          const o = other.find((q) => q.clients === p.clients);
          out.push({ panel, clients: p.clients, series: SERIES[series].name, tps: p.tps, above: o === undefined ? series === "pooled" : p.tps >= o.tps });
        }
      };
      add("direct", direct, pooled);
      add("pooled", pooled, direct);
    }
  }
  return out;
}

/** The Vega-Lite spec of the chart of RESULTS, data inlined. */
export function chartSpec(results: BenchResults): vegaLite.TopLevelSpec {
  const env = results.environment;
  const st = results.settings;
  const subtitle = [
    `${env.cpuModel}, ${env.cores} cores, ${env.memoryGiB} GiB · ${env.postgres.server ?? "PostgreSQL ?"} · PgBouncer ${env.pgbouncer.version ?? "?"} · run ${results.id}`,
    `median of 1-s samples, ${st.gridRounds ?? 1} × ${st.gridDurationS} s per point · 1000 clients: pooled only`,
  ];
  const panels = CONNECTIONS.flatMap((c) => SCRIPTS.map((s) => panelTitle(s, c)));
  const names = [SERIES.direct.name, SERIES.pooled.name];
  const value = (above: boolean) => ({
    transform: [{ filter: above ? "datum.above" : "!datum.above" }],
    mark: { type: "text" as const, dy: above ? -10 : 11, fontSize: 10.5, fontWeight: "bold" as const },
    encoding: { text: { field: "tps", type: "quantitative" as const, format: ",.0f" } },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: "pg-ha: throughput by client count, direct vs pooled (TLS 1.3 + SCRAM on both paths)", subtitle },
    data: { values: chartData(results) as unknown as Record<string, unknown>[] },
    facet: { field: "panel", type: "nominal", sort: panels, title: null },
    columns: 2,
    // Vega measures text without a canvas by a rough estimate that overstates the long panel titles;
    // laying out by the plots alone, with room for the axes in the spacing, keeps the panels together
    // (the panels are about as wide as the title as estimated, so little blank margin is left on the right).
    bounds: "flush",
    spacing: { column: 84, row: 72 },
    spec: {
      width: 460,
      height: 200,
      encoding: {
        x: { field: "clients", type: "ordinal", title: "clients", axis: { labelAngle: 0 } },
        y: { field: "tps", type: "quantitative", title: "transactions/s", scale: { zero: true, nice: true }, axis: { format: ",~f", tickCount: 5 } },
        color: { field: "series", type: "nominal", title: null, scale: { domain: names, range: [SERIES.direct.color, SERIES.pooled.color] } },
      },
      layer: [
        { mark: { type: "line", strokeWidth: 2.2 } },
        {
          mark: { type: "point", filled: true, size: 60, opacity: 1 },
          encoding: { shape: { field: "series", type: "nominal", title: null, scale: { domain: names, range: [SERIES.direct.shape, SERIES.pooled.shape] } } },
        },
        value(true),
        value(false),
      ],
    },
    resolve: { scale: { x: "independent", y: "independent" } },
    config: {
      background: "#ffffff",
      view: { stroke: null },
      font: "Helvetica, Arial, sans-serif",
      padding: 16,
      title: { anchor: "start", fontSize: 16, subtitleFontSize: 11.5, subtitleColor: "#555", offset: 14 },
      header: { labelFontSize: 13.5, labelFontWeight: "bold", labelColor: "#333", labelAnchor: "start", labelPadding: 6 },
      axis: { labelColor: "#555", titleColor: "#777", titleFontWeight: "normal", gridColor: "#e6e6e6" },
      legend: { orient: "top", labelFontSize: 12.5, labelLimit: 400, symbolSize: 80 },
    },
  };
}

/** The SVG for RESULTS. */
export async function renderChart(results: BenchResults): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(chartSpec(results)).spec), { renderer: "none" });
  try {
    return `<?xml version="1.0" encoding="UTF-8"?>\n${await view.toSVG()}\n`;
  } finally {
    view.finalize();
  }
}
