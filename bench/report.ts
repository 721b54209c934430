/**
 * bench/REPORT.md, rendered from a results file alone (no figure is typed by hand): machine,
 * method, tables, the chart, and each target with its verdict. Pure function.
 */
import { type ConnectionCost, costOf, PATH_TITLES } from "./connections";
import type { BenchResults } from "./results";
import { allFailures, summarize, type PointFigures } from "./summary";
import { evaluateTargets, f, FAILOVER_ANCHORS, pct, scriptName, TARGETS } from "./targets";
import { FAILOVER_KINDS, FAILOVER_TITLES, failoverFailures, failoverOf, type FailoverResult, summarizeFailover } from "./failover";
import type { MemorySummary } from "./usage";
import { backupFailures, SHORT_BACKUP_MS, summarizeBackup } from "./backup";

const s1 = (ms: number | undefined) => f(ms === undefined ? undefined : ms / 1000, 1);
const kb = (b: number | undefined) => (b === undefined ? "n/a" : `${f(b / 1024, 1)} kB`);

function table(head: string[], rows: (string | number)[][], align?: ("l" | "r")[]): string {
  const sep = head.map((_, i) => ((align?.[i] ?? (i === 0 ? "l" : "r")) === "r" ? "---:" : "---"));
  return [`| ${head.join(" | ")} |`, `| ${sep.join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

function verdict(t: { met?: boolean; failed?: string }): string {
  if (t.failed !== undefined) return "**failed measurement**";
  return t.met === undefined ? "not measured" : t.met ? "**met**" : "**missed**";
}

/** A point's throughput, or that it failed (it has no figure then). */
function tpsCell(p: PointFigures | undefined): string {
  return p?.failure !== undefined ? "**failed**" : f(p?.tps);
}

/** What one connection costs on this machine, by path, and what that allows the per-transaction ratio. */
function connectionCostTable(costs: ConnectionCost[] | undefined): string[] {
  if (!costs || costs.length === 0) return ["**What a connection costs on this machine**: not measured in this run.", ""];
  const stock = costOf(costs, "stock-socket");
  const direct = costOf(costs, "direct-tls");
  const pooled = costOf(costs, "pooled-tls");
  const n = costs[0].connections;
  return [
    `**What a connection costs on this machine** (measured in this run, before the grid: \`pgbench -C -c 1 -t ${n}\` running \`SELECT 1\`, one connection after another, while no other part of the benchmark runs; the stock server is PostgreSQL's initdb defaults in the same image, with a grid node's CPU and memory limit)`,
    "",
    table(["Path", "Connections", "ms per connection", "Connections / s", "× stock backend start"], costs.map((c) => [
      PATH_TITLES[c.path], f(c.connections), c.averageMs === undefined ? `not measured: ${c.error ?? "no figure"}` : `**${f(c.averageMs, 1)}**`, f(c.perSecond, 1),
      c.averageMs !== undefined && stock ? `${f(c.averageMs / stock, 1)}×` : "n/a",
    ]), ["l", "r", "r", "r", "r"]),
    "",
    direct !== undefined && pooled !== undefined && pooled > 0
      ? `A direct connection starts a backend, a pooled one does not: connection cost alone puts the per-transaction ratio (pooled / direct, below) at about **${f(direct / pooled, 1)}×** on this machine. How much of it is the machine's own backend start is under [Targets in detail](#targets-in-detail), *New connection per transaction*.`
      : "",
    "",
  ];
}

function cores(p: PointFigures | undefined): string {
  if (!p) return "n/a";
  return `${f(p.cores.client, 2)} / ${f(p.cores.proxy, 2)} / ${f(p.cores.pgbouncer, 2)} / ${f(p.cores.primary, 2)} / ${f(p.cores.host, 2)}`;
}

function memoryRows(memory: MemorySummary[]): (string | number)[][] {
  return memory.map((m) => [m.phase, m.container, f(m.samples), f(m.usedMedianMb, 0), f(m.usedMaxMb, 0), f(m.rssMaxMb, 0), f(m.cacheMaxMb, 0), m.limitMb === undefined ? "none" : f(m.limitMb, 0)]);
}

/** "a" or "a to b" for the smallest and largest of VALUES. */
function range(values: number[]): string | undefined {
  if (values.length === 0) return undefined;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? f(lo) : `${f(lo)} to ${f(hi)}`;
}

/** How the grid's windows were sized, and what makes a run a failed measurement. */
function windowsText(r: BenchResults): string {
  const st = r.settings;
  const used = range(r.grid.points.flatMap((p) => p.rounds.map((x) => x.run.durationS)));
  const sized = st.costConnections > 0
    ? `Each window is sized to leave at least ${st.minSteadySamples} steady 1-s samples after all clients connected: the time to connect them is estimated from the connection cost measured at the start of this run (one connection's time × clients per pgbench thread × 2, as they connect concurrently), or 1.5 × the time the same point took to connect in an earlier round if that is longer; windows stay within ${st.gridDurationS} to ${st.gridMaxDurationS} s${used ? ` (used: ${used} s)` : ""}.`
    : `Windows: ${used ?? st.gridDurationS} s.`;
  return `${sized} A run that completes no transaction, or leaves fewer than ${st.minSteadySamples} steady sample${st.minSteadySamples === 1 ? "" : "s"}, is a failed measurement: it is listed with its reason, the point gets no figure, and it enters no median.`;
}

export interface ReportPaths {
  /** The chart, relative to REPORT.md. */
  chart: string;
  /** The results file, relative to REPORT.md. */
  json: string;
}

export function renderReport(r: BenchResults, paths: ReportPaths): string {
  const s = summarize(r);
  const targets = evaluateTargets(r);
  const env = r.environment;
  const st = r.settings;
  const out: string[] = [];
  const push = (...lines: string[]) => out.push(...lines);

  push(
    "# pg-ha benchmark report",
    "",
    `Generated by \`npm run bench\` from [\`${paths.json}\`](${paths.json}); every figure below comes from that file (regenerate with \`npm run bench -- --report ${paths.json}\`). Run \`${r.id}\`, ${r.startedAt} to ${r.finishedAt}: ${f(r.totalSeconds / 60, 1)} min in total.`,
    "",
    "## Targets",
    "",
    table(["Target", "Goal", "Measured", "Verdict", "Margin"], targets.map((t) => [t.title, t.goal, t.measured, verdict(t), t.margin]), ["l", "l", "l", "l", "l"]),
    "",
    "Why each target was met or missed, and what would close a gap, is under [Targets in detail](#targets-in-detail).",
    "",
  );
  if ((r.notes ?? []).length > 0) {
    push("**Deviations from the plan in this run:**", "", ...r.notes!.map((x) => `- ${x}`), "");
  }
  const known = allFailures(r);
  const failures = [...known, ...[...failoverFailures(failoverOf(r)), ...backupFailures(r.backup)].filter((x) => !known.some((k) => k.phase === x.phase && k.error === x.error))];
  if (failures.length > 0) {
    push("**Failed measurements, and phases that failed or were skipped, in this run** (a failed measurement has no figure and is in no median):", "", ...failures.map((x) => `- ${x.phase}: ${x.error}`), "");
  }

  push(
    "## Machine",
    "",
    table(["", ""], [
      ["Host", `${env.hostname}${env.hypervisor ? ` (virtual machine, ${env.hypervisor})` : ""}`],
      ["CPU", `${env.cpuModel}, ${env.cores} cores`],
      ["Memory", `${env.memoryGiB} GiB`],
      ["OS, kernel", `${env.os}, ${env.kernel}`],
      ["Docker engine", `${env.engine.version} (API ${env.engine.apiVersion}, cgroup v${env.engine.cgroupVersion ?? "?"}, ${env.engine.storageDriver ?? "?"})`],
      ["PostgreSQL", `${env.postgres.server ?? "n/a"}; image \`${env.postgres.image}\` ${env.postgres.imageId ? `(\`${env.postgres.imageId.slice(0, 19)}\`)` : ""}`],
      ["PgBouncer", `${env.pgbouncer.version ?? "n/a"}${env.pgbouncer.tls ? ` (${env.pgbouncer.tls})` : ""}; image \`${env.pgbouncer.image}\` ${env.pgbouncer.imageId ? `(\`${env.pgbouncer.imageId.slice(0, 19)}\`)` : ""}`],
      ["Client", [env.client.pgbench, env.client.openssl].filter(Boolean).join("; ")],
      ["Node.js", env.node],
      ["Commit", env.git ? `${env.git.commit.slice(0, 12)}${env.git.dirty ? " (with uncommitted changes)" : ""}` : "n/a"],
    ], ["l", "l"]),
    "",
    "The machine is shared: other work may have run on it at the same time. Phases run one after another; each comparison (direct against pooled, tuned against stock) is measured side by side in this one run, and tables give medians.",
    "",
  );

  const clusters = Object.entries(st.clusters);
  push(
    "## Method",
    "",
    `Everything runs on this machine. The clusters are deployed by the program itself (\`index.ts\`) through the e2e executor (\`tests/e2e/executor\`: the program under Pulumi mocks that create real Docker objects on the local engine), from the committed stack configuration plus the overrides below; images are the local \`${env.postgres.image}\` and \`${env.pgbouncer.image}\`. Clients are \`pgbench\` and \`psql\` on the host, connecting to 127.0.0.1 published ports with the stack outputs' URLs exactly as given (\`sslmode=verify-full\`, \`PGSSLROOTCERT\` = the cluster CA): TLS 1.3 and SCRAM-SHA-256 on both paths, and PgBouncer re-encrypts to the server with verify-full.`,
    "",
    table(["Cluster", "Shape", "Nodes", "max_connections", "Pool (size + reserve / max db / max clients)", "Overrides of Pulumi.<shape>.yaml", "Used for"],
      clusters.map(([, c]) => [
        `\`${c.cluster}\``, c.shape, `${c.replicas} replica(s); ${c.nodeMemoryMb} MB, ${c.nodeCpus} CPU each`, c.maxConnections,
        `${c.pool.mode}: ${c.pool.defaultPoolSize} + ${c.pool.reservePoolSize} / ${c.pool.maxDbConnections} / ${c.pool.maxClientConn}`,
        Object.entries(c.overrides).map(([k, v]) => `\`${k.replace("pg-ha:", "")}=${v}\``).join(", "), c.purpose,
      ]), ["l", "l", "l", "r", "l", "l", "l"]),
    "",
    `The local images and \`nodeCpus\` capped at this machine's ${env.cores} cores (prod asks for 4) are set for every cluster, as the e2e suite does. All clusters run PostgreSQL ${st.postgresMajor}.`,
    "",
    `1. **Cold deploy** (${st.deployReps} runs per shape, dev and prod alternating, median): every object of the cluster (containers, network, volumes) is removed, the images are already on the engine (the executor never pulls), then the clock runs from the deploy call until every container is healthy (the executor waits for each health check, as \`pulumi up\` does with \`wait: true\`) and every replica streams (the slot is active in \`pg_stat_replication\` and \`pg_stat_wal_receiver\` says streaming). The timeline comes from the engine (created, started) and each server's own log line (ready, streaming, process up).`,
    `2. **Direct vs pooled**: \`pgbench -i -s ${st.scale}\`, then for select-only (\`-S\`) and TPC-B-like (built-in), persistent connections and a new connection per transaction (\`-C\`), at ${st.gridClients.join(", ")} clients, direct (the primary's published port) and pooled (PgBouncer, transaction pooling). ${st.gridRounds ?? 1} round(s): each round visits every point and runs direct and pooled back to back, the order alternating from point to point and reversed in the next round. Each run: \`pgbench -n -M simple -j ${st.threads} -P 1 -T <window>\`. ${windowsText(r)} Before each direct run PgBouncer's server connections are closed (\`KILL app; RESUME app\` on its console) so that 100 direct clients fit into max_connections. Throughput is the **median of the 1-second progress samples of all rounds** once all clients are connected (each run's first second left out); pgbench's own overall figure is in the JSON too. CPU per run: each container's cgroup CPU time, the engine's userland proxy for the published ports (\`docker-proxy\`) from /proc, the host's from /proc/stat, pgbench's own from the shell's \`times\` (cores = CPU seconds per second of the run).`,
    `3. **1000 clients** through PgBouncer (\`max_client_conn\` raised for it): ${st.thousandScripts.map(scriptName).join(" and ")}, \`-c ${st.thousandClients} -T ${range(r.thousand.runs.map((x) => x.run.durationS)) ?? st.thousandDurationS}\`${st.thousandMaxDurationS > st.thousandDurationS ? ` (sized the same way, within ${st.thousandDurationS} to ${st.thousandMaxDurationS} s)` : ""}; all clients connect first (TLS and SCRAM each, inside the window), then run. Errors = failed transactions + error lines (aborted clients, refused connections) + a non-zero exit. PgBouncer's \`SHOW POOLS\` is sampled each second for the clients connected and waiting.`,
    `4. **Replication lag** on the prod shape (2 replicas, asynchronous): \`pgbench -i -s ${st.scale}\` through PgBouncer, then a TPC-B-like load of ${st.lagClients} clients for ${st.lagDurationS} s through PgBouncer. One psql session inside the primary's container samples \`pg_stat_replication\` every ${st.lagIntervalMs} ms (\`\\watch\`, bounded by count and deadline${r.lag?.samplerNice !== undefined ? `; that psql and its server process run at nice ${r.lag.samplerNice} so that the load they measure does not delay the samples` : ""}): replay lag in bytes (\`pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)\`, and from \`sent_lsn\`) and in time (\`replay_lag\`; NULL, i.e. caught up and idle, counts as 0). Percentiles over the samples taken during the load.`,
    `5. **Tuned vs stock**: a single-node cluster (replicas = 0, dev's 1 GB / 1 CPU node). Its deployed postgresql.conf (tuned) and the same file with the TUNING block replaced by PostgreSQL's defaults (stock; only max_connections kept, the TLS, hba, WAL, logging and autovacuum parts identical) are copied in turn into **the same container**, which is restarted each time. ${st.tuningReps} rounds, the order alternating; in each: select-only then TPC-B-like, ${st.tuningClients} clients direct, \`-T ${st.tuningDurationS}\`. Ratio = median tuned / median stock.`,
    `6. **Memory**: every second during each load, each container's memory from its cgroup: *used* as \`docker stats\` shows it (usage minus inactive page cache), *RSS* (anonymous memory) and *cache* (page cache and shared memory, where shared_buffers lives).`,
    ...failoverMethod(r),
    ...backupMethod(r),
    "",
    `The whole run is bounded: every pgbench has \`-T\` and a process timeout, the lag sampler a count and a deadline, waits have timeouts, and the run stops itself after ${f(st.budgetS / 60, 0)} minutes${ownBudgets(r)}; its clusters are removed at the end, also on failure.`,
    "",
  );

  // 1. Deploy
  push("## Results", "", "### 1. Cold deploy", "");
  push(
    table(["Shape", "Runs: to every replica streaming (s)", "Median: all healthy (s)", "Median: replicas streaming (s)", "Primary ready (s)", "Replicas streaming (s)", "PgBouncer up (s)", "Health-check waits (s)"],
      s.deploy.map((d) => [
        d.shape,
        r.deploy.runs.filter((x) => x.shape === d.shape).map((x) => s1(x.streamingMs)).join(", "),
        s1(d.healthyMedianMs), `**${s1(d.streamingMedianMs)}**`,
        s1(d.readyMedianMs.primary), d.readyMedianMs.replica === undefined ? "n/a" : s1(d.readyMedianMs.replica), s1(d.readyMedianMs.pgbouncer), s1(d.healthWaitMedianMs),
      ])),
    "",
    "Timeline columns are medians, seconds after the deploy call; *health-check waits* is the time between one tier being ready and the next being created (or the deploy ending), i.e. the latency of the health checks.",
    "",
  );

  // 2. Grid
  push("### 2. Direct vs pooled", "", `![Throughput by client count, direct vs pooled](${paths.chart})`, "");
  for (const connections of ["persistent", "per-transaction"] as const) {
    const rows = s.grid.filter((g) => g.connections === connections);
    if (connections === "per-transaction") push(...connectionCostTable(r.connectionCost));
    if (rows.length === 0) continue;
    push(`**${connections === "persistent" ? "Persistent connections" : "A new connection per transaction (-C)"}** (tps = median of 1-s samples; CPU = cores used by pgbench / docker-proxy / PgBouncer / primary / whole host)`, "");
    const head = ["Script", "Clients", "Direct tps", "Pooled tps", "Pooled / direct", "Latency direct (ms)", "Latency pooled (ms)"];
    if (connections === "per-transaction") head.push("Connect direct (ms)", "Connect pooled (ms)");
    head.push("Errors d / p", "CPU direct", "CPU pooled");
    push(table(head, rows.map((g) => {
      const row: (string | number)[] = [scriptName(g.script), g.clients, tpsCell(g.direct), tpsCell(g.pooled), g.ratio === undefined ? "n/a" : `**${f(g.ratio, 2)}**`, f(g.direct?.latencyMs, 2), f(g.pooled?.latencyMs, 2)];
      if (connections === "per-transaction") row.push(f(g.direct?.connectionMs, 2), f(g.pooled?.connectionMs, 2));
      row.push(`${f(g.direct?.errors)} / ${f(g.pooled?.errors)}`, cores(g.direct), cores(g.pooled));
      return row;
    })), "");
    const failed = rows.flatMap((g) => (["direct", "pooled"] as const).flatMap((target) => (g[target]?.failure ? [`- ${scriptName(g.script)}, ${g.clients} clients, ${target}: ${g[target]!.failure}`] : [])));
    if (failed.length > 0) push("Failed measurements (no figure, in no median):", "", ...failed, "");
  }

  // 3. Thousand
  push("### 3. 1000 clients through PgBouncer", "");
  if (s.thousand.length === 0) push("Not measured in this run.", "");
  else {
    push(table(["Script", "Clients", "tps (median of 1-s)", "pgbench tps", "Errors", "Failed tx", "Initial connection (s)", "Latency (ms)", "Peak clients / waiting / servers", "CPU pgbench / docker-proxy / PgBouncer / primary / host"],
      s.thousand.map((t) => [scriptName(t.script), t.clients, tpsCell(t), f(t.pgbenchTps), `**${f(t.errors)}**`, f(r.thousand.runs.find((x) => x.run.script === t.script)?.run.failed), s1(t.initialConnectionMs), f(t.latencyMs, 1),
        t.pools ? `${f(t.pools.maxClients)} / ${f(t.pools.maxWaiting)} / ${f(t.pools.maxServers)}` : "n/a", cores(t)])), "");
    const msgs = s.thousand.flatMap((t) => t.errorMessages.map((e) => `- ${scriptName(t.script)}: ${e.count}× \`${e.message}\``));
    if (msgs.length) push("Error messages:", "", ...msgs, "");
    const failed = s.thousand.filter((t) => t.failure).map((t) => `- ${scriptName(t.script)}: ${t.failure}`);
    if (failed.length) push("Failed measurements (no figure):", "", ...failed, "");
  }

  // 4. Lag
  push("### 4. Replication lag under a TPC-B-like write load", "");
  if (!r.lag) push("Not measured in this run.", "");
  else {
    const { lag, load } = r.lag;
    push(
      `Load: ${load.clients} clients through PgBouncer for ${load.durationS} s, ${f(load.steadyTps ?? load.tps)} tps (median of 1-s samples), ${f(load.failed)} failed; WAL written: ${f((lag.walBytesPerS ?? 0) / 1024 / 1024, 2)} MB/s. Sampling: ${f(lag.ticks)} samples during the load, interval median ${f(lag.intervalMs?.p50)} ms, p99 ${f(lag.intervalMs?.p99)} ms, max ${f(lag.intervalMs?.max)} ms.`,
      "",
      table(["Replica", "Samples", "Replay lag bytes p50", "p99", "max", "sent − replay p99", "Replay lag time p50 (ms)", "p99 (ms)", "max (ms)", "Catch-up after load (ms)", "Not streaming"],
        Object.entries(lag.replicas).map(([name, x]) => [name, f(x.samples), kb(x.replayBytes?.p50), `**${kb(x.replayBytes?.p99)}**`, kb(x.replayBytes?.max), kb(x.sentReplayBytes?.p99),
          f(x.replayLagMs?.p50, 1), `**${f(x.replayLagMs?.p99, 1)}**`, f(x.replayLagMs?.max, 1), x.catchUpMs === undefined ? "n/a" : f(x.catchUpMs), f(x.notStreamingSamples)])),
      "",
    );
  }

  // 5. Tuning
  push("### 5. Tuned postgresql.conf vs PostgreSQL's stock settings", "");
  if (!r.tuning || s.tuning.length === 0) push("Not measured in this run.", "");
  else {
    const t = r.tuning;
    const names = Object.keys(t.settings.tuned);
    push(
      `Same container (\`${t.container}\`, ${st.clusters.stock?.nodeMemoryMb ?? "?"} MB, ${st.clusters.stock?.nodeCpus ?? "?"} CPU), same data (scale ${st.scale}, ${f(t.dataMb)} MB), ${st.tuningClients} clients direct. Settings as the server reported them in each configuration:`,
      "",
      table(["Setting", "Tuned", "Stock"], names.map((n) => [`\`${n}\``, t.settings.tuned[n] ?? "", t.settings.stock[n] ?? ""]), ["l", "l", "l"]),
      "",
      table(["Script", "Tuned tps (each round)", "Stock tps (each round)", "Median tuned", "Median stock", "Tuned / stock"],
        s.tuning.map((x) => {
          const rounds = (config: "tuned" | "stock", values: number[]) => [...values.map((v) => f(v)), ...x.failed.filter((y) => y.config === config).map((y) => `#${y.rep} failed`)].join(", ");
          return [scriptName(x.script), rounds("tuned", x.tuned), rounds("stock", x.stock), f(x.tunedMedian), f(x.stockMedian), `**${f(x.ratio, 2)}**`];
        })),
      "",
      ...s.tuning.flatMap((x) => x.failed.map((y) => `- Failed measurement, ${scriptName(x.script)} ${y.config} #${y.rep} (not in the medians): ${y.reason}`)),
      ...(s.tuning.some((x) => x.failed.length > 0) ? [""] : []),
      tuningReading(r, s.tuning),
      "",
    );
  }

  // 6. Memory
  push("### 6. Resident memory of each container under load", "");
  if (r.memory.length === 0) push("Not measured in this run.", "");
  else {
    push(table(["Load", "Container", "Samples", "Used median (MiB)", "Used max (MiB)", "RSS max (MiB)", "Cache + shm max (MiB)", "Limit (MiB)"], memoryRows(r.memory), ["l", "l", "r", "r", "r", "r", "r", "r"]), "");
  }

  // 7. Failover
  push("### 7. Failover under a writer", "");
  const fo = failoverOf(r);
  if (!fo) push("Not measured in this run.", "");
  else push(...failoverSection(fo));

  // 8. Backups
  push("### 8. Backups and restore (pgBackRest)", "");
  if (!r.backup) push("Not measured in this run.", "");
  else push(...backupSection(r));

  // Targets in detail
  push("## Targets in detail", "");
  for (const t of targets) {
    push(`### ${t.title}: ${t.failed !== undefined ? "failed measurement" : t.met === undefined ? "not measured" : t.met ? "met" : "missed"}`, "", `- **Goal:** ${t.goal}`, `- **Measured:** ${t.measured}`, `- **Margin:** ${t.margin}`, `- **Why:** ${t.why}`, `- **What would close it:** ${t.close}`, "");
  }

  push(
    "## Reproduce",
    "",
    "```bash",
    "npm run bench                                  # deploys, measures, writes bench/results/<id>.json, .svg and bench/REPORT.md",
    "BENCH_PHASES=failover BENCH_OUT=/tmp/bench npm run bench   # one phase, its results and report under /tmp/bench",
    `npm run bench -- --report ${paths.json.replace(/^results\//, "bench/results/")}   # re-renders the chart and this report from a results file`,
    "```",
    "",
    "Needs the Docker engine, the local test images (`bash tests/images/build.sh`) and `pgbench`/`psql` on the host; no other package. `BENCH_QUICK=1` shortens every phase for a smoke test (its figures are not for reporting).",
    "",
  );
  return out.join("\n");
}

function tuningReading(r: BenchResults, rows: ReturnType<typeof summarize>["tuning"]): string {
  const t = r.tuning!;
  const parts: string[] = [];
  for (const x of rows) {
    if (x.ratio === undefined) continue;
    const spread = (v: number[]) => (v.length > 1 ? (Math.max(...v) - Math.min(...v)) / (Math.max(...v) || 1) : 0);
    const noise = Math.max(spread(x.tuned), spread(x.stock));
    const diff = x.ratio - 1;
    const word = Math.abs(diff) <= Math.max(0.05, noise) ? `within the noise (${pct(diff, 1)}; rounds vary by up to ${pct(noise)})` : diff > 0 ? `${pct(diff, 1)} faster tuned` : `${pct(-diff, 1)} faster stock`;
    parts.push(`${scriptName(x.script)}: ${word}.`);
  }
  const sb = (v?: string) => v ?? "?";
  const dataMb = t.dataMb;
  const stockSb = t.settings.stock.shared_buffers;
  const tunedSb = t.settings.tuned.shared_buffers;
  const toMb = (v?: string) => {
    const m = /^(\d+)(kB|MB|GB)$/.exec(v ?? "");
    return m ? Number(m[1]) * ({ kB: 1 / 1024, MB: 1, GB: 1024 } as Record<string, number>)[m[2]] : undefined;
  };
  const stockMb = toMb(stockSb);
  const tunedMb = toMb(tunedSb);
  if (dataMb !== undefined && stockMb !== undefined && tunedMb !== undefined) {
    parts.push(
      dataMb > stockMb && dataMb <= tunedMb
        ? `The data (${f(dataMb)} MB) fits in the tuned shared_buffers (${sb(tunedSb)}) but not in stock's (${sb(stockSb)}): stock reads part of it through the kernel's page cache, which still holds it, so the difference is a copy per page rather than disk reads.`
        : dataMb <= stockMb
          ? `The data (${f(dataMb)} MB) fits even in stock's shared_buffers (${sb(stockSb)}), so buffer size cannot make a difference here.`
          : `The data (${f(dataMb)} MB) is larger than both shared_buffers settings (${sb(stockSb)}, ${sb(tunedSb)}); both read through the page cache.`,
    );
  }
  // checkpoint_timeout is 5 min in both configurations (the tuning does not set it).
  if (r.settings.tuningDurationS * 2 < 300) {
    parts.push(`Each round runs ${r.settings.tuningDurationS * 2} s after a restart, shorter than a checkpoint cycle (checkpoint_timeout 5 min) in either configuration, so the WAL and checkpoint settings (max_wal_size, min_wal_size, wal_compression, checkpoint_completion_target) hardly act; their benefit shows under sustained writes, which this bounded benchmark does not run.`);
  }
  return parts.join(" ");
}

/** How the failover phase measures, for the method list (nothing when it did not run). */
function failoverMethod(r: BenchResults): string[] {
  const fo = failoverOf(r);
  if (!fo) return [];
  const switchover = fo.switchoverMethod === "ops"
    ? "a planned switchover with `npm run ops -- switchover` (PgBouncer's databases paused, `patronictl switchover`, the router's read-write port followed to the new primary, RESUME)"
    : "a planned switchover: `PAUSE app` on PgBouncer's admin console, `patronictl switchover --force`, then, once the router's read-write port reaches the new primary three connections in a row, `RECONNECT app` and `RESUME app`";
  return [
    `7. **Failover** (a budget of its own, ${f(fo.budgetS)} s, added to the run's): a dev-shaped Patroni cluster with ${fo.replicas} replicas, ${fo.etcdMembers} etcd members and synchronous_mode ${fo.synchronousMode} (overrides in the table above). One client writes one id per transaction through PgBouncer's published port every ${f(fo.writer.intervalMs)} ms, each write bounded by a 15 s query timeout, reconnecting 200 ms after an error. ${fo.minEvents} rounds, each: SIGKILL of the leader (\`docker kill\`), a clean stop of the leader (\`docker stop\`: Patroni shuts PostgreSQL down and releases its lock), and ${switchover}. After a kill or a stop the old leader is started again, and every event ends when one member leads and all others stream. Figures: for a kill, the time from the kill to the first acknowledgement of a write sent after the container was dead; for every event, the longest time between acknowledgements from the last one before it to its end (the *stall*), and the writes that got an error meanwhile; after each event every acknowledged id so far is looked up on the new primary. A kind with fewer than ${fo.minEvents} events measured is a failed measurement.`,
  ];
}

/** Section 7: each kind's figures beside its target, every event, and the published figures. */
function failoverSection(fo: FailoverResult): string[] {
  const out: string[] = [];
  const s1 = (ms: number | undefined) => f(ms === undefined ? undefined : ms / 1000, 1);
  const summary = summarizeFailover(fo);
  const kill = summary.find((k) => k.kind === "kill")!;
  out.push(
    `Cluster \`${fo.cluster}\`: ${fo.replicas + 1} Patroni nodes, ${fo.etcdMembers} etcd members, the router and PgBouncer; synchronous_mode ${fo.synchronousMode}. The writer had ${f(fo.writer.acknowledged)} writes acknowledged and ${f(fo.writer.errors)} errors (${f(fo.writer.inDoubt)} writes in doubt: no answer to their COMMIT).${fo.switchoverMethod ? ` Switchovers: ${fo.switchoverMethod === "ops" ? "`npm run ops -- switchover`" : "PAUSE / patronictl switchover / RESUME"}.` : ""}`,
    "",
  );
  const target: Record<string, string> = {
    kill: `median ≤ ${TARGETS.failoverKillMedianS} s, max ≤ ${TARGETS.failoverKillMaxS} s`,
    stop: `≤ ${TARGETS.failoverStallS} s`,
    switchover: `≤ ${TARGETS.failoverStallS} s, ${TARGETS.switchoverErrors} errors`,
  };
  out.push(
    table(["Event", "Measured", "Figure", "Each (s)", "Median (s)", "Max (s)", "Target", "Client errors", "Acknowledged rows lost"],
      summary.map((k) => {
        const fig = k.kind === "kill" ? k.recoveryMs : k.stallMs;
        return [k.title, `${k.measured} of ${fo.minEvents}${k.failure ? " (**failed**)" : ""}`, k.kind === "kill" ? "kill to first acknowledged write" : "longest write stall",
          fig.values.map((v) => f(v / 1000, 1)).join(", ") || "n/a", `**${s1(fig.median)}**`, `**${s1(fig.max)}**`, target[k.kind], f(k.errors), f(k.lostRows)];
      }), ["l", "r", "l", "l", "r", "r", "l", "r", "r"]),
    "",
  );
  out.push(
    "**Unplanned failover beside published figures** (until the database takes writes again; the published ones are the services' own figures or users' measurements, on other machines and loads):",
    "",
    table(["", "Time"], [
      [`pg-ha, measured here (SIGKILL of the leader, ${kill.measured} kills)`, kill.recoveryMs.median === undefined ? "not measured" : `**median ${s1(kill.recoveryMs.median)} s, max ${s1(kill.recoveryMs.max)} s**`],
      ["pg-ha, target", target.kill],
      ...FAILOVER_ANCHORS.map((a) => [a.system, a.figure]),
    ], ["l", "l"]),
    "",
  );
  out.push(
    "**Every event** (stall and errors from the last acknowledged write before the event until every member streams again):",
    "",
    table(["Event", "Old → new leader", "Kill to first write (s)", "Longest stall (s)", "Errors", "Rows checked / missing", "Old leader streaming again (s)", "Detail"],
      FAILOVER_KINDS.flatMap((kind) => fo.events.filter((e) => e.kind === kind).map((e) => [
        `${kind} #${e.n}`, `${e.oldLeader} → ${e.newLeader ?? "?"}`, e.kind === "kill" ? s1(e.recoveryMs) : "", s1(e.stallMs), f(e.errors),
        `${f(e.checkedRows)} / ${f(e.lostRows)}`, s1(e.rejoinMs), e.failure ? `**failed:** ${e.failure}` : (e.detail ?? ""),
      ])), ["l", "l", "r", "r", "r", "r", "r", "l"]),
    "",
  );
  if (fo.finalCheck) out.push(`At the end, all ${f(fo.finalCheck.checked)} acknowledged rows were looked up on ${fo.finalCheck.primary}: ${f(fo.finalCheck.lost)} missing.`, "");
  const messages = new Map<string, number>();
  for (const e of fo.events) for (const m of e.errorMessages) messages.set(`${FAILOVER_TITLES[e.kind]}: ${m.message}`, (messages.get(`${FAILOVER_TITLES[e.kind]}: ${m.message}`) ?? 0) + m.count);
  if (messages.size > 0) out.push("Client errors by message:", "", ...[...messages].map(([m, n]) => `- ${n}× ${m}`), "");
  if (fo.notes.length > 0) out.push(...fo.notes.map((n) => `- ${n}`), "");
  return out;
}

/** The failover and backup phases' own budgets, as the budget sentence names them. */
function ownBudgets(r: BenchResults): string {
  const own = [failoverOf(r) && { name: "the failover phase's", s: failoverOf(r)!.budgetS }, r.backup && { name: "the backup phase's", s: r.backup.budgetS }]
    .filter((x): x is { name: string; s: number } => Boolean(x));
  if (own.length === 0) return "";
  const rest = r.settings.budgetS - own.reduce((a, x) => a + x.s, 0);
  return ` (${own.map((x) => `${f(x.s / 60, 0)} of them ${x.name} own budget`).join(", ")}, added to the ${f(rest / 60, 0)} minutes of the other phases)`;
}

/** How the backup phase measures, for the method list (nothing when it did not run). */
function backupMethod(r: BenchResults): string[] {
  const b = r.backup;
  if (!b) return [];
  return [
    `8. **Backups** (a budget of its own, ${f(b.budgetS)} s, added to the run's): a dev-shaped Patroni cluster \`${b.cluster}\` with its pgBackRest repository host (\`${b.cluster}-backup\`, volume \`${b.cluster}-backup-repo\`; zstd, AES-256, process-max 2, pg-ha:backupRetentionFull ${f(b.retentionFull)}, archive_timeout ${f(b.archiveTimeoutS)} s). After the scheduler's first full backup of the empty cluster: \`pgbench -i -s ${b.scale}\`; a full backup (\`pgbackrest --type=full --no-expire-auto backup\` on the repository host, as postgres); ${b.load ? `TPC-B-like traffic (${b.load.clients} clients, ${b.load.durationS} s, direct)` : "pgbench traffic"} while one connection samples the primary's \`pg_stat_archiver\` and \`pg_walfile_name(pg_current_wal_lsn())\` every ${f(b.archive.intervalMs)} ms; a differential backup; another full backup; \`pgbackrest expire\` with the repository measured before and after (info's per-backup repository sizes, and \`du -sb\` of the volume, which also holds the WAL archive); the restore drill on demand (\`restore-drill.sh\`: restore into a throwaway directory, start, write, identifier, canary row, pg_amcheck, pg_checksums); then a new cluster \`${b.restoredCluster}\` deployed with pg-ha:restoreFrom this repository (to the end of the archive) and timed from the deploy call until \`SELECT count(*) FROM pgbench_accounts\` answers on it. Throughput: database size per second of pgBackRest's own command time (its "command end" line) for full backups and restores; for a differential, the size of the files it found changed per second.`,
  ];
}

/** Section 8: backup, restore and drill figures, archive lag and the repository's size. */
function backupSection(r: BenchResults): string[] {
  const b = r.backup!;
  const s = summarizeBackup(b);
  const mb = (v: number | undefined, d = 1) => f(v, d);
  const out: string[] = [];
  out.push(
    `Data set: pgbench scale ${f(b.scale)}, the app database ${mb(b.dataBytes === undefined ? undefined : b.dataBytes / 1048576, 0)} MB${b.initMs !== undefined ? ` (\`pgbench -i\` ${s1(b.initMs)} s)` : ""}.`,
    "",
    table(["Backup", "Label", "Database (MB)", "Changed files (MB)", "In the repository (MB)", "Time (s)", "MB/s"],
      [...s.full.map((x) => ["full", x] as const), ...s.diff.map((x) => ["differential", x] as const)].map(([kind, x]) =>
        [kind, `\`${x.label}\``, mb(x.databaseMb, 0), mb(x.copiedMb, 0), mb(x.repositoryMb), f(x.seconds, 1), `**${f(x.mbPerS, 1)}**`]), ["l", "l", "r", "r", "r", "r", "r"]),
    "",
    `Full backups: median **${f(s.fullMbPerS, 1)} MB/s** of the database; differential: **${f(s.diffMbPerS, 1)} MB/s** of the files it found changed (MB/s for a full backup is the database read; for a differential, the files it found changed, of which block-level incremental stores only the changed blocks).`,
    "",
  );
  const short = s.full.filter((x) => x.seconds !== undefined && x.seconds * 1000 < SHORT_BACKUP_MS);
  if (short.length) out.push(`- ${short.map((x) => x.label).join(", ")} took less than ${f(SHORT_BACKUP_MS / 1000)} s: the throughput is coarse; a larger scale would measure it better.`, "");
  const rs = s.restore;
  const dr = s.drill;
  out.push(
    table(["Restore", "Database (MB)", "pgBackRest restore (s)", "MB/s", "To a queryable cluster (s)", "Check"], [
      ...(rs ? [[`new cluster \`${b.restoredCluster}\` from \`${b.restore!.backup}\` + WAL`, mb(rs.databaseMb, 0), f(rs.commandS, 1), `**${f(rs.mbPerS, 1)}**`,
        `**${f(rs.queryableS, 1)}** (deploy returned after ${f(rs.deployS, 1)})`, `${f(b.restore!.rows)} of ${f(b.restore!.expectedRows)} pgbench_accounts rows`]] : []),
      ...(dr ? [[`restore drill (\`${b.drill!.backup ?? "?"}\`)`, "", f(dr.restoreSeconds, 0), f(dr.mbPerS, 1), `${f(dr.seconds)} (whole drill)`,
        `${dr.passed ? "passed" : "**failed**"}: ${Object.entries(b.drill!.checks).filter(([k]) => k !== "restoreSeconds").map(([k, v]) => `${k}=${v}`).join(", ")}`]] : []),
    ], ["l", "r", "r", "r", "l", "l"]),
    "",
    "The drill's times are whole seconds (its result file), so its MB/s is coarse.",
    "",
  );
  const a = s.archive;
  out.push(
    `**Archive lag** while pgbench wrote${b.load ? ` (${f(b.load.steadyTps ?? b.load.tps)} tps, ${f(b.load.durationS)} s)` : ""}: ${f(a.samples)} samples, ${f(a.segmentsWritten)} WAL segments written, ${f(a.failures)} archive failures.`,
    "",
    table(["", "p50", "p99", "max"], [
      ["Age of the newest archived segment (s)", s1(a.ageMs?.p50), s1(a.ageMs?.p99), `**${s1(a.ageMs?.max)}**`],
      ["Completed segments waiting to be archived", f(a.waiting?.p50, 1), f(a.waiting?.p99, 1), `**${f(a.waiting?.max)}**`],
    ]),
    "",
    "Age is from \`last_archived_time\` to the sample; a segment is archived once full or after archive_timeout, so under steady writes the age is the time to fill a segment plus the archiver's delay.",
    "",
  );
  const rp = s.repository;
  if (rp) {
    const [before, after] = [b.repository.beforeExpiry!, b.repository.afterExpiry!];
    out.push(
      `**Repository size** (\`pgbackrest expire\` with retention ${f(b.retentionFull)} full, ${s1(b.repository.expireMs)} s):`,
      "",
      table(["", "Backups (full)", "Backups per info (MB)", "Volume, du (MB)", "of it backup/ (MB)", "of it archive/ (MB)"], [
        ["before expiry", `${f(before.backups)} (${f(before.fullBackups)})`, mb(rp.beforeMb.info), mb(rp.beforeMb.du), mb(before.backupDuBytes / 1048576), mb(before.archiveDuBytes / 1048576)],
        ["after expiry", `${f(after.backups)} (${f(after.fullBackups)})`, mb(rp.afterMb.info), mb(rp.afterMb.du), mb(after.backupDuBytes / 1048576), mb(after.archiveDuBytes / 1048576)],
        ["freed", "", `**${mb(rp.freedMb.info)}**`, `**${mb(rp.freedMb.du)}**`, "", ""],
      ]),
      "",
    );
  }
  if (b.notes.length > 0) out.push(...b.notes.map((n) => `- ${n}`), "");
  return out;
}
