// Turns the measurements into the tables printed at the end of a run and into
// docs/benchmarks.md. Every figure is derived here from the raw runs, nowhere else.
import type { CellRun, PathName } from "./scenarios.ts";
import type { Floors } from "./floors.ts";
import type { ColdStart } from "./cold-start.ts";
import type { Memory } from "./process-stats.ts";
import type { Machine } from "./machine.ts";
import { totalCalls } from "./db-stats.ts";
import { fmtMs, summarize, type Summary, tally } from "./stats.ts";

export interface ReportInput {
  machine: Machine;
  runs: CellRun[];
  floors: Floors;
  colds: ColdStart[];
  loadedMemory: Memory;
  benchSeconds: number;
}

const GOALS = { reuseOwnP50Ms: 5, reuseDbTrips: 2, createDbTrips: 4 };
/** Calls each path has to make at the very least: what its floor is built from. */
const MIN_CALLS: Record<PathName, { rpc: number; platform: number }> = {
  reuse: { rpc: 2, platform: 1 },
  create: { rpc: 4, platform: 4 },
};

/** Platform call durations reach the log rounded to whole ms: the most each can be off by. */
const PLATFORM_ROUNDING_MS = 0.5;

interface CellFigures {
  run: CellRun;
  served: number;
  own: Summary;
  total: Summary;
  db: Summary;
  platform: Summary;
  dbTrips: Map<number, number>;
  platformCalls: Map<number, number>;
  pgPerRequest: number;
  non2xx: number;
}

function figures(run: CellRun): CellFigures {
  const ok = run.lines.filter((l) => l.status === 200);
  const non2xx = Object.entries(run.load.statuses)
    .filter(([s]) => !s.startsWith("2"))
    .reduce((n, [, c]) => n + c, 0) + run.load.errors;
  return {
    run,
    served: run.lines.length,
    own: summarize(ok.map((l) => l.own_ms)),
    total: summarize(ok.map((l) => l.ms)),
    db: summarize(ok.map((l) => l.db_ms)),
    platform: summarize(ok.map((l) => l.platform_ms)),
    dbTrips: tally(run.lines.map((l) => l.db_calls.length)),
    platformCalls: tally(run.lines.map((l) => l.platform_calls.length)),
    pgPerRequest: run.lines.length ? totalCalls(run.pgCalls) / run.lines.length : NaN,
    non2xx,
  };
}

function tallyText(t: Map<number, number>): string {
  if (t.size === 1) return String([...t.keys()][0]);
  return [...t].map(([v, n]) => `${v} (×${n})`).join(", ");
}

function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function loadTable(cells: CellFigures[]): string {
  return table(
    [
      "path",
      "conc.",
      "requests",
      "req/s",
      "p50 ms",
      "p95 ms",
      "p99 ms",
      "non-2xx",
      "own p50",
      "own p95",
      "own p99",
      "DB trips/req (log)",
      "DB trips/req (pg_stat)",
      "platform calls/req",
    ],
    cells.map((f) => [
      f.run.path,
      f.run.connections,
      f.run.load.requests,
      f.run.load.rps.toFixed(0),
      fmtMs(f.run.load.latency.p50),
      fmtMs(f.run.load.latency.p95),
      fmtMs(f.run.load.latency.p99),
      f.non2xx,
      fmtMs(f.own.p50),
      fmtMs(f.own.p95),
      fmtMs(f.own.p99),
      tallyText(f.dbTrips),
      f.pgPerRequest.toFixed(2),
      tallyText(f.platformCalls),
    ]),
  );
}

function breakdownTable(cells: CellFigures[]): string {
  return table(
    [
      "path",
      "conc.",
      "total p50",
      "in DB calls p50",
      "in platform calls p50",
      "own p50",
      "own share",
    ],
    cells.map((f) => [
      f.run.path,
      f.run.connections,
      fmtMs(f.total.p50),
      fmtMs(f.db.p50),
      fmtMs(f.platform.p50),
      fmtMs(f.own.p50),
      `${Math.round((f.own.p50 / f.total.p50) * 100)} %`,
    ]),
  );
}

/** Per RPC, over every cell of a path: calls per request (pg_stat) and time per call (log). */
function rpcTable(cells: CellFigures[]): string {
  const rows: (string | number)[][] = [];
  for (const path of ["reuse", "create"] as PathName[]) {
    const of = cells.filter((f) => f.run.path === path);
    const served = of.reduce((n, f) => n + f.served, 0);
    const single = of.find((f) => f.run.connections === 1);
    const names = new Set(of.flatMap((f) => Object.keys(f.run.pgCalls)));
    for (const name of [...names].sort()) {
      const calls = of.reduce((n, f) => n + (f.run.pgCalls[name] ?? 0), 0);
      const ms = single?.run.lines.flatMap((l) => l.db_calls.filter((c) => c.op === name))
        .map((c) => c.ms) ?? [];
      rows.push([path, name, (calls / served).toFixed(2), fmtMs(summarize(ms).p50)]);
    }
  }
  return table(["path", "RPC", "calls/request (pg_stat)", "p50 ms per call (log, 1 conn.)"], rows);
}

function floorTable(floors: Floors): string {
  return table(["floor (one request, sequential)", "p50 ms", "p95 ms", "p99 ms", "samples"], [
    ["PostgREST RPC wpp_caller_context via the gateway", ...row(floors.rpc)],
    ["simulator POST /auth/token", ...row(floors.platform)],
  ]);
}

function row(s: Summary): (string | number)[] {
  return [fmtMs(s.p50), fmtMs(s.p95), fmtMs(s.p99), s.n];
}

function ratioTable(cells: CellFigures[], floors: Floors): string {
  const single = cells.filter((f) => f.run.connections === 1);
  return table(
    [
      "path (1 connection)",
      "own p50 ms",
      "own ÷ RPC floor",
      "end-to-end p50 ms",
      "sum of floors ms",
      "end-to-end ÷ floors",
    ],
    single.map((f) => {
      const need = MIN_CALLS[f.run.path];
      const ideal = need.rpc * floors.rpc.p50 + need.platform * floors.platform.p50;
      return [
        f.run.path,
        fmtMs(f.own.p50),
        `${(f.own.p50 / floors.rpc.p50).toFixed(2)} ×`,
        fmtMs(f.run.load.latency.p50),
        `${fmtMs(ideal)} (${need.rpc} RPC + ${need.platform} platform)`,
        `${(f.run.load.latency.p50 / ideal).toFixed(2)} ×`,
      ];
    }),
  );
}

function goalTable(cells: CellFigures[]): string {
  const of = (p: PathName) => cells.filter((f) => f.run.path === p);
  const maxTrips = (p: PathName) =>
    Math.max(...of(p).flatMap((f) => [...f.dbTrips.keys(), Math.ceil(f.pgPerRequest - 1e-9)]));
  const mark = (ok: boolean) => (ok ? "met" : "**missed**");
  const ownRows = of("reuse").map((f) => [
    `reuse own overhead p50 < ${GOALS.reuseOwnP50Ms} ms (${f.run.connections} conn.)`,
    `${fmtMs(f.own.p50)} ms ± ${PLATFORM_ROUNDING_MS * MIN_CALLS.reuse.platform}`,
    mark(f.own.p50 < GOALS.reuseOwnP50Ms),
  ]);
  return table(["goal", "measured", "verdict"], [
    ...ownRows,
    [
      `reuse path ≤ ${GOALS.reuseDbTrips} database round trips`,
      `${maxTrips("reuse")} (worst request, log and pg_stat)`,
      mark(maxTrips("reuse") <= GOALS.reuseDbTrips),
    ],
    [
      `create path ≤ ${GOALS.createDbTrips} database round trips`,
      `${maxTrips("create")} (worst request, log and pg_stat)`,
      mark(maxTrips("create") <= GOALS.createDbTrips),
    ],
  ]);
}

function coldTable(colds: ColdStart[], loaded: Memory): string {
  const firstAnswer = summarize(colds.map((c) => c.firstAnswerMs));
  const firstReuse = summarize(colds.map((c) => c.firstReuseMs));
  const rss = Math.max(...colds.map((c) => c.memoryAfter.peakMiB));
  return table(["measure", "value"], [
    [
      `spawn → first answer (${colds.length} starts)`,
      `median ${fmtMs(firstAnswer.p50)} ms, max ${fmtMs(firstAnswer.max)} ms`,
    ],
    [
      "spawn → first reuse request answered 200",
      `median ${fmtMs(firstReuse.p50)} ms, max ${fmtMs(firstReuse.max)} ms`,
    ],
    ["peak RSS (VmHWM) after one request", `${rss.toFixed(1)} MiB`],
    ["peak RSS (VmHWM) of the process that served every cell", `${loaded.peakMiB.toFixed(1)} MiB`],
    ["RSS (VmRSS) of that process at the end", `${loaded.rssMiB.toFixed(1)} MiB`],
  ]);
}

function machineTable(m: Machine): string {
  return table(["", ""], [
    ["CPU", m.cpu],
    ["cores", m.cores],
    ["memory", `${m.memoryGiB} GiB`],
    ["OS", m.os],
    ["Deno", m.deno],
    ["PostgreSQL", m.postgres],
    ["PostgREST", m.postgrest],
    ["load generator", m.loadGenerator],
    ["1-minute load average", m.load],
    ["date", m.date],
  ]);
}

export function renderReport(input: ReportInput): { console: string; markdown: string } {
  const cells = input.runs.map(figures);
  const sections = [
    "## Load (through the gateway)",
    loadTable(cells),
    "## Where the time goes (function's own log, 200 answers)",
    breakdownTable(cells),
    "## Database round trips by RPC",
    rpcTable(cells),
    "## Floors",
    floorTable(input.floors),
    "## Overhead against the floor",
    ratioTable(cells, input.floors),
    "## Goals",
    goalTable(cells),
    "## Cold start and memory",
    coldTable(input.colds, input.loadedMemory),
  ].join("\n\n");
  const markdown = [
    "# wpp-create benchmarks",
    "",
    "Generated by `deno task bench` (bench/main.ts); rerun it rather than editing this file.",
    "",
    "## Machine",
    "",
    machineTable(input.machine),
    "",
    sections,
    "",
    METHOD.replace("{SECONDS}", String(Math.round(input.benchSeconds))),
  ].join("\n");
  return { console: sections, markdown };
}

const METHOD = `## How these figures are made

- **Stack.** The benchmark starts its own throwaway stack (embedded PostgreSQL, PostgREST, the
  WPP simulator with no added latency, one wpp-create process, the gateway) on free ports in a
  temporary directory, with the function's production timeouts (bench/functions.env). The load
  generator runs on the same machine, so all of it shares the same cores: figures at 10 and 50
  connections measure the machine as much as the function.
- **Paths.** *Reuse*: one organisation whose session was created once and then linked with the
  simulator's scan, so each click is caller context + begin + one status call. *Create*: every
  request carries the token of a different, pre-created organisation, so each one provisions a
  new platform client (create, token, webhook, start) and stores it. The simulator then posts a
  QR webhook to the gateway for each start, as the platform would; that traffic runs alongside.
- **Latency and req/s** come from autocannon's per-response timings at the client, through the
  gateway. Reuse cells run for a fixed time, create cells for a fixed number of organisations.
- **Own overhead** is the function's own account, one JSON log line per request
  (supabase/functions/_shared/request-log.ts): total time minus the time spent inside platform
  calls and database calls. It is JWT verification, body parsing, validation, JSON, logging and
  the event loop, including time spent waiting for the CPU. The client logs each platform call's
  duration in whole milliseconds (supabase/functions/_shared/wpp/perform.ts rounds it), so own
  overhead is only known to ±0.5 ms per platform call: ±0.5 ms on the reuse path, ±2 ms on the
  create path, where a fast run can even show it below zero.
- **Database round trips** are counted twice: from the log's \`db_calls\` and, independently, from
  pg_stat_statements (calls of the \`wpp_*\` RPC statements during the cell, divided by the
  requests the function logged in that cell).
- **Floors** are measured in the same run, sequentially with Deno's fetch as the function makes
  them: one PostgREST RPC through the gateway with the service key, one simulator token call.
  The "sum of floors" is what a path would cost if the function itself took no time at all.
- **Cold start**: a new wpp-create process spawned with the stack's environment, timed to its
  first HTTP answer and to its first complete reuse request; memory is read from
  /proc/<pid>/status.

The whole run took {SECONDS} s.
`;
