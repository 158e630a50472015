// Turns the measurements into the tables printed at the end of a run and into
// docs/benchmarks.md, and decides which of issue #13's targets were met. Every figure is derived
// here from the raw runs, nowhere else.
import type { FastCell, FastPath } from "./scenarios.ts";
import { PATH_LABEL } from "./scenarios.ts";
import type { Floors } from "./floors.ts";
import type { ColdStart } from "./cold-start.ts";
import type { Memory } from "./process-stats.ts";
import type { Machine } from "./machine.ts";
import type { WaitResult } from "./scan-wait.ts";
import { VARIANT_LABEL, WAIT_MS } from "./scan-wait.ts";
import type { WebhookRun } from "./webhook.ts";
import type { RequestLine } from "./function-log.ts";
import type { CpuUse } from "./cpu.ts";
import { failures } from "./load.ts";
import { totalCalls, totalExecMs } from "./db-stats.ts";
import { byOpText } from "./sim-calls.ts";
import { fmtMs, summarize, type Summary, tally } from "./stats.ts";

/** A connect click that created a session (the setup's clicks, one at a time). */
export interface CreateSample {
  ms: number;
  requestId: string;
  line?: RequestLine;
}

export interface ReportInput {
  machine: Machine;
  floors: Floors;
  creates: CreateSample[];
  cells: FastCell[];
  wait: WaitResult;
  /** As fast as the stack answers. */
  webhook: WebhookRun;
  /** A steady flow over a few connections: what the targets are read from. */
  webhookSteady: WebhookRun;
  colds: ColdStart[];
  /** CPU the machine spent during the phases not in a cell. */
  phases: { name: string; cpu: CpuUse }[];
  /** Memory of each function's process at the end of the run. */
  memory: Record<string, Memory>;
  benchSeconds: number;
}

/** Issue #13's targets. */
export const TARGETS = {
  fastPathOverFloor: 2,
  waitPlatformCalls: 5,
  webhookPerSecond: 500,
  webhookP99Ms: 20,
};

/** The previous design (commit 2fa448a's docs/benchmarks.md, and issue #13's side by side). */
const BEFORE = {
  reuseP50: 7.21,
  rpcFloorP50: 1.23,
  reuseDbTrips: 2,
  reusePlatformCalls: 1,
  reuseRps10: 321,
  reuseRps50: 374,
  createP50: 15.1,
  createDbTrips: 4,
  createPlatformCalls: 4,
  sideBySideBeforeScan: 18.5,
  crmBeforeScan: 16.8,
  sideBySideLinked: 14.8,
  crmLinked: 12.3,
  waitCallsDemoPage: 50,
  waitCallsCrm: 92,
  measured: "2026-11-26T09:19Z on a 2-core AMD EPYC VM, linux 6.18.44-fc-v669, load 1.1 → 2.7; " +
    "its floor was wpp_caller_context, an RPC that no longer exists",
};

interface Verdict {
  target: string;
  measured: string;
  /** measured ÷ target, with the side it must stay on. */
  ratio: string;
  ok: boolean;
}

interface CellFigures {
  cell: FastCell;
  served: number;
  own: Summary;
  total: Summary;
  db: Summary;
  platform: Summary;
  dbTrips: Map<number, number>;
  rpcNames: Set<string>;
  platformCalls: Map<number, number>;
  pgPerRequest: number;
  /** Mean ms PostgreSQL spent executing one RPC. */
  pgExecMs: number;
  failed: number;
}

function figures(cell: FastCell): CellFigures {
  const ok = cell.lines.filter((l) => l.status === 200);
  return {
    cell,
    served: cell.lines.length,
    own: summarize(ok.map((l) => l.own_ms)),
    total: summarize(ok.map((l) => l.ms)),
    db: summarize(ok.map((l) => l.db_ms)),
    platform: summarize(ok.map((l) => l.platform_ms)),
    dbTrips: tally(cell.lines.map((l) => l.db_calls.length)),
    rpcNames: new Set(cell.lines.flatMap((l) => l.db_calls.map((c) => c.op))),
    platformCalls: tally(cell.lines.map((l) => l.platform_calls.length)),
    pgPerRequest: cell.lines.length ? totalCalls(cell.pg) / cell.lines.length : NaN,
    pgExecMs: totalExecMs(cell.pg) / totalCalls(cell.pg),
    failed: failures(cell.load) + cell.lines.filter((l) => l.status !== 200).length,
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

const x = (v: number) => `${v.toFixed(2)}×`;
const mark = (ok: boolean) => (ok ? "met" : "**MISSED**");

function verdicts(input: ReportInput, cells: CellFigures[]): Verdict[] {
  const floor = input.floors.rpc.p50;
  const out: Verdict[] = [];

  for (const path of ["reuse", "status"] as FastPath[]) {
    const p50 = input.floors.paths[path]?.p50 ?? NaN;
    const ratio = p50 / floor;
    out.push({
      target: `${PATH_LABEL[path]}: p50 ≤ ${TARGETS.fastPathOverFloor}× one RPC (1 conn.)`,
      measured: `${fmtMs(p50)} ms vs floor ${fmtMs(floor)} ms = ${x(ratio)}`,
      ratio: `${(ratio / TARGETS.fastPathOverFloor).toFixed(2)} (≤ 1)`,
      ok: ratio <= TARGETS.fastPathOverFloor,
    });
  }
  for (const path of ["reuse", "reuse_qr", "status"] as FastPath[]) {
    const of = cells.filter((f) => f.cell.path === path);
    if (!of.length) continue;
    const trips = Math.max(...of.flatMap((f) => [...f.dbTrips.keys()]));
    const pg = Math.max(...of.map((f) => f.pgPerRequest));
    const rpcs = [...new Set(of.flatMap((f) => [...f.rpcNames]))];
    const logged = Math.max(...of.flatMap((f) => [...f.platformCalls.keys()]));
    const sim = of.reduce((n, f) => n + f.cell.simCalls.total, 0);
    const failed = of.reduce((n, f) => n + f.failed, 0);
    const ok = trips === 1 && Math.abs(pg - 1) < 0.005 && rpcs.length === 1 &&
      rpcs[0] === "wpp_context" && logged === 0 && sim === 0 && failed === 0;
    out.push({
      target: `${PATH_LABEL[path]}: 1 read-only RPC, 0 platform calls, all 200`,
      measured:
        `RPCs/request: ${trips} in the log (${rpcs.join(", ")}), ${
          pg.toFixed(2)
        } in pg_stat; platform calls: ${logged} in the log, ${sim} at the simulator; ` +
        `failed: ${failed}`,
      ratio: "–",
      ok,
    });
  }

  for (const run of input.wait.runs) {
    out.push({
      target: `waiting for a scan (${VARIANT_LABEL[run.variant]}): platform calls in ${
        WAIT_MS / 1000
      } s ≤ ${TARGETS.waitPlatformCalls}`,
      measured: `${run.platformCalls} (${byOpText({ total: 0, byOp: run.byOp })})`,
      ratio: `${(run.platformCalls / TARGETS.waitPlatformCalls).toFixed(2)} (≤ 1)`,
      ok: run.platformCalls <= TARGETS.waitPlatformCalls,
    });
  }
  const attributed = input.wait.runs.reduce((n, r) => n + r.platformCalls, 0);
  const panelFailed = input.wait.runs.reduce(
    (n, r) =>
      n +
      Object.entries(r.httpStatuses).filter(([s]) => s !== "200").reduce((m, [, c]) => m + c, 0),
    0,
  );
  out.push({
    target: "waiting for a scan: the functions' count = the simulator's, every poll answered 200",
    measured:
      `logged ${attributed}, simulator ${input.wait.simulator.total}; log lines ${input.wait.linesFound}/${input.wait.linesExpected}; non-200 answers ${panelFailed}`,
    ratio: "–",
    ok: attributed === input.wait.simulator.total &&
      input.wait.linesFound === input.wait.linesExpected && panelFailed === 0,
  });

  const w = input.webhook;
  const r = input.webhookSteady;
  out.push({
    target: `webhook receiver: ≥ ${TARGETS.webhookPerSecond} events/s`,
    measured: `steady (${r.connections} connections): ${r.load.rps.toFixed(0)}/s (${r.sent} in ${
      r.load.seconds.toFixed(1)
    } s); as fast as it goes (${w.connections} connections): ${w.load.rps.toFixed(0)}/s`,
    ratio: `${(r.load.rps / TARGETS.webhookPerSecond).toFixed(2)} (≥ 1)`,
    ok: r.load.rps >= TARGETS.webhookPerSecond,
  });
  out.push({
    target:
      `webhook receiver: p99 < ${TARGETS.webhookP99Ms} ms at ≥ ${TARGETS.webhookPerSecond} events/s`,
    measured: `steady: p99 ${fmtMs(r.load.latency.p99)} ms (p50 ${
      fmtMs(r.load.latency.p50)
    } ms) at ${r.load.rps.toFixed(0)}/s; as fast as it goes: p99 ${
      fmtMs(w.load.latency.p99)
    } ms at ${w.load.rps.toFixed(0)}/s`,
    ratio: `${(r.load.latency.p99 / TARGETS.webhookP99Ms).toFixed(2)} (< 1)`,
    ok: r.load.latency.p99 < TARGETS.webhookP99Ms && r.load.rps >= TARGETS.webhookPerSecond,
  });
  for (const run of [r, w]) {
    const finalsOk = run.finals.every((f) => f.ok);
    out.push({
      target:
        `webhook receiver, ${run.connections} connections: none lost (every event 200, every distinct event forwarded, final connection = newest session event's)`,
      measured:
        `200: ${run.answeredOk}/${run.sent}; distinct answered 200: ${run.distinctOk}/${run.plan.distinct}; forwarded distinct: ${run.forwardedDistinct}/${run.plan.distinct} (unknown ${run.unknownForwards}, ` +
        `refused token ${run.badToken}); final states right: ${
          run.finals.filter((f) => f.ok).length
        }/${run.finals.length}`,
      ratio: "–",
      ok: run.answeredOk === run.sent && run.sent === run.plan.distinct + run.plan.copies &&
        run.distinctOk === run.plan.distinct && run.forwardedDistinct === run.plan.distinct &&
        run.unknownForwards === 0 && run.badToken === 0 && finalsOk,
    });
  }
  return out;
}

/** Why a miss happened, where this run's own figures can tell. */
function missNotes(input: ReportInput): string[] {
  const w = input.webhook;
  const notes: string[] = [];
  if (
    w.load.rps < TARGETS.webhookPerSecond ||
    input.webhookSteady.load.latency.p99 >= TARGETS.webhookP99Ms ||
    input.webhookSteady.load.rps < TARGETS.webhookPerSecond
  ) {
    const per = w.cpu.ownMs / w.sent;
    const fn = (w.cpu.components.find(([c]) => c === "wpp-webhook")?.[1] ?? 0) / w.sent;
    const cores = input.machine.cores;
    notes.push(
      `Webhook receiver: each event cost ${fmtMs(per)} ms of CPU across the stack's processes ` +
        `(${
          w.cpu.components.filter(([, ms]) => ms / w.sent >= 0.005)
            .map(([c, ms]) => `${c} ${fmtMs(ms / w.sent)}`).join(", ")
        }), so ${cores} cores carry at most ${(cores * 1000 / per).toFixed(0)} events/s at ` +
        `100 % CPU, and ${
          (cores * 1000 / (per - fn)).toFixed(0)
        } events/s even if wpp-webhook cost nothing. ` +
        `The stack used ${(w.cpu.ownMs / w.cpu.wallMs).toFixed(2)} cores meanwhile (other ` +
        `processes ${(w.cpu.foreignMs / w.cpu.wallMs).toFixed(2)}); the p99 is queueing behind ` +
        `that CPU (p99 inside wpp-webhook's RPC: ${
          fmtMs(summarize(w.lines.map((l) => l.db_ms)).p99)
        } ms).`,
    );
  }
  return notes;
}

function verdictTable(vs: Verdict[]): string {
  return table(
    ["target", "measured", "measured ÷ target", "verdict"],
    vs.map((v) => [v.target, v.measured, v.ratio, mark(v.ok)]),
  );
}

function beforeAfterTable(input: ReportInput, cells: CellFigures[]): string {
  const cell = (p: FastPath, c: number) =>
    cells.find((f) => f.cell.path === p && f.cell.connections === c);
  const p50 = (p: FastPath) => cell(p, 1)?.cell.load.latency.p50 ?? NaN;
  const seq = (p: FastPath) => input.floors.paths[p]?.p50 ?? NaN;
  const rps = (c: number) => cell("reuse", c)?.cell.load.rps ?? NaN;
  const floor = input.floors.rpc.p50;
  const reuse = cell("reuse", 1);
  const waits = input.wait.runs.map((r) => `${r.platformCalls} (${r.variant})`).join(", ");
  const created = input.creates.flatMap((c) => c.line ? [c.line] : []);
  const createP50 = summarize(input.creates.map((c) => c.ms)).p50;
  return table(["measure", "before (previous design)", "after (this run)"], [
    [
      "reuse click p50, 1 connection (autocannon), through the gateway",
      `${fmtMs(BEFORE.reuseP50)} ms`,
      `${fmtMs(p50("reuse"))} ms`,
    ],
    [
      "reuse click p50 ÷ one PostgREST RPC through the gateway",
      `${x(BEFORE.reuseP50 / BEFORE.rpcFloorP50)} (${fmtMs(BEFORE.reuseP50)} ÷ ${
        fmtMs(BEFORE.rpcFloorP50)
      } ms, measured apart)`,
      `${x(seq("reuse") / floor)} (${fmtMs(seq("reuse"))} ÷ ${fmtMs(floor)} ms, interleaved)`,
    ],
    [
      "database round trips per reuse click",
      String(BEFORE.reuseDbTrips),
      reuse ? tallyText(reuse.dbTrips) : "–",
    ],
    [
      "platform calls per reuse click",
      String(BEFORE.reusePlatformCalls),
      reuse ? tallyText(reuse.platformCalls) : "–",
    ],
    [
      "reuse click req/s at 10 / 50 connections",
      `${BEFORE.reuseRps10} / ${BEFORE.reuseRps50}`,
      `${rps(10).toFixed(0)} / ${rps(50).toFixed(0)}`,
    ],
    [
      `first click (creates the session) p50, one at a time (after: ${input.creates.length} clicks)`,
      `${fmtMs(BEFORE.createP50)} ms`,
      `${fmtMs(createP50)} ms`,
    ],
    [
      "database round trips / platform calls per first click",
      `${BEFORE.createDbTrips} / ${BEFORE.createPlatformCalls}`,
      `${tallyText(tally(created.map((l) => l.db_calls.length)))} (${
        [...new Set(created.flatMap((l) => l.db_calls.map((c) => c.op)))].join(", ")
      }) / ${tallyText(tally(created.map((l) => l.platform_calls.length)))}`,
    ],
    [
      "reuse click p50 before the scan (issue #13 side by side; the CRM's own: " +
      `${BEFORE.crmBeforeScan} ms)`,
      `${BEFORE.sideBySideBeforeScan} ms`,
      `${fmtMs(p50("reuse_qr"))} ms`,
    ],
    [
      `reuse click p50 once linked (issue #13 side by side; the CRM's own: ${BEFORE.crmLinked} ms)`,
      `${BEFORE.sideBySideLinked} ms`,
      `${fmtMs(p50("reuse"))} ms`,
    ],
    [
      `platform calls in the first ${WAIT_MS / 1000} s of waiting for a scan, polled as the panel`,
      `${BEFORE.waitCallsDemoPage} (our demo page), ${BEFORE.waitCallsCrm} (the CRM's own functions)`,
      waits,
    ],
    [
      "webhook receiver",
      "none in this project (events went to the CRM's own receiver)",
      `${input.webhook.load.rps.toFixed(0)} events/s, p99 ${
        fmtMs(input.webhook.load.latency.p99)
      } ms, ${input.webhook.plan.distinct - input.webhook.forwardedDistinct} lost`,
    ],
  ]);
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
      "failed",
      "RPCs/req (log)",
      "RPCs/req (pg_stat)",
      "ms in PostgreSQL/RPC",
      "platform calls/req (log)",
      "platform calls (simulator)",
    ],
    cells.map((f) => [
      PATH_LABEL[f.cell.path],
      f.cell.connections,
      f.cell.load.requests,
      f.cell.load.rps.toFixed(0),
      fmtMs(f.cell.load.latency.p50),
      fmtMs(f.cell.load.latency.p95),
      fmtMs(f.cell.load.latency.p99),
      f.failed,
      tallyText(f.dbTrips),
      f.pgPerRequest.toFixed(2),
      fmtMs(f.pgExecMs),
      tallyText(f.platformCalls),
      f.cell.simCalls.total,
    ]),
  );
}

function breakdownTable(cells: CellFigures[]): string {
  return table(
    [
      "path",
      "conc.",
      "client p50",
      "in the function p50",
      "in its RPC p50",
      "of which in PostgreSQL (mean)",
      "own p50",
    ],
    cells.map((f) => [
      PATH_LABEL[f.cell.path],
      f.cell.connections,
      fmtMs(f.cell.load.latency.p50),
      fmtMs(f.total.p50),
      fmtMs(f.db.p50),
      fmtMs(f.pgExecMs),
      fmtMs(f.own.p50),
    ]),
  );
}

function floorTable(floors: Floors): string {
  const row = (s: Summary) => [
    fmtMs(s.p50),
    fmtMs(s.p95),
    fmtMs(s.p99),
    s.n,
    x(s.p50 / floors.rpc.p50),
  ];
  return table(
    ["one request at a time, interleaved", "p50 ms", "p95 ms", "p99 ms", "samples", "p50 ÷ RPC"],
    [
      ["floor: PostgREST RPC wpp_context through the gateway", ...row(floors.rpc)],
      [
        "transport alone: the same RPC for a user of no organisation (one lookup)",
        ...row(floors.rpcBare),
      ],
      ["floor: simulator GET /api/accounts/{session}/status", ...row(floors.platform)],
      ...(Object.entries(floors.paths) as [FastPath, Summary][]).map((
        [p, s],
      ) => [PATH_LABEL[p], ...row(s)]),
    ],
  );
}

/** CPU ms per request (or event) by component: where the two cores went under load. */
function cpuTable(cells: CellFigures[], webhook: WebhookRun): string {
  const rows: { name: string; n: number; cpu: CpuUse }[] = [
    ...cells.filter((f) => f.cell.connections > 1).map((f) => ({
      name: `${PATH_LABEL[f.cell.path]}, ${f.cell.connections} conn.`,
      n: f.served,
      cpu: f.cell.cpu,
    })),
    { name: `webhook events, ${webhook.connections} conn.`, n: webhook.sent, cpu: webhook.cpu },
  ];
  // Components that took a visible share somewhere, in the order of the heaviest.
  const totals = new Map<string, number>();
  for (const r of rows) {
    for (const [c, ms] of r.cpu.components) totals.set(c, (totals.get(c) ?? 0) + ms / r.n);
  }
  const components = [...totals].filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1])
    .map(([c]) => c);
  return table(
    ["cell", "requests", ...components, "other", "all", "CPU in use"],
    rows.map((r) => {
      const of = new Map(r.cpu.components);
      const other = r.cpu.components.filter(([c]) => !components.includes(c))
        .reduce((s, [, ms]) => s + ms, 0);
      return [
        r.name,
        r.n,
        ...components.map((c) => fmtMs((of.get(c) ?? 0) / r.n)),
        fmtMs(other / r.n),
        fmtMs(r.cpu.ownMs / r.n),
        `${(r.cpu.ownMs / r.cpu.wallMs).toFixed(2)} cores`,
      ];
    }),
  );
}

/** What else the machine did while each part ran: the honest caveat to every figure above. */
function disturbanceTable(input: ReportInput, cells: CellFigures[]): string {
  const rows: [string, CpuUse][] = [
    ...input.phases.map((p): [string, CpuUse] => [p.name, p.cpu]),
    ...cells.map((f): [string, CpuUse] => [
      `${PATH_LABEL[f.cell.path]}, ${f.cell.connections} conn.`,
      f.cell.cpu,
    ]),
    [`webhook events, ${input.webhookSteady.connections} conn.`, input.webhookSteady.cpu],
    [`webhook events, ${input.webhook.connections} conn.`, input.webhook.cpu],
  ];
  const cores = (ms: number, wall: number) => (ms / wall).toFixed(2);
  return table(
    [
      "part",
      "seconds",
      "this stack (cores)",
      "other processes (cores)",
      "stolen by the host (cores)",
    ],
    rows.map(([name, c]) => [
      name,
      (c.wallMs / 1000).toFixed(1),
      cores(c.ownMs, c.wallMs),
      cores(c.foreignMs, c.wallMs),
      cores(c.stealMs, c.wallMs),
    ]),
  );
}

/** The first click, which creates: where its time goes, call by call (the function's log). */
function createTable(creates: CreateSample[]): string {
  const lines = creates.flatMap((c) => c.line ? [c.line] : []);
  const rows: (string | number)[][] = [
    [
      "at the client (panel's fetch, through the gateway)",
      "1",
      fmtMs(
        summarize(creates.map((c) => c.ms)).p50,
      ),
    ],
    ["in the function", "1", fmtMs(summarize(lines.map((l) => l.ms)).p50)],
    ["of which own (not in a call)", "–", fmtMs(summarize(lines.map((l) => l.own_ms)).p50)],
  ];
  const ops = new Map<string, number[]>();
  for (const l of lines) {
    for (const c of l.db_calls) ops.set(`RPC ${c.op}`, [...ops.get(`RPC ${c.op}`) ?? [], c.ms]);
    for (const c of l.platform_calls) {
      ops.set(`platform ${c.op}`, [...ops.get(`platform ${c.op}`) ?? [], c.ms]);
    }
  }
  for (const [op, ms] of ops) {
    rows.push([op, (ms.length / lines.length).toFixed(2), fmtMs(summarize(ms).p50)]);
  }
  return table([`first click (${creates.length}, one at a time)`, "per click", "p50 ms"], rows);
}

function waitTable(wait: WaitResult): string {
  const counts = (m: Record<string, number>) =>
    Object.entries(m).map(([k, n]) => `${k} ${n}`).join(", ") || "–";
  return table(
    [
      "variant",
      "connect click answered",
      "platform calls of the click",
      "ticks",
      "requests",
      "wpp-status said",
      "QRs shown",
      "events delivered / dropped since the click",
      `platform calls in ${WAIT_MS / 1000} s`,
      "answered from",
    ],
    wait.runs.map((r) => [
      VARIANT_LABEL[r.variant],
      r.createStatus,
      `${r.createCalls.total} (${byOpText(r.createCalls)})`,
      r.ticks,
      r.requests,
      counts(r.panelStatuses),
      r.qrsShown,
      `${r.eventsDelivered} / ${r.eventsDropped}`,
      `**${r.platformCalls}** (${byOpText({ total: 0, byOp: r.byOp })})`,
      counts(r.sources),
    ]),
  );
}

function webhookTable(w: WebhookRun, cores: number): string {
  const ok = w.lines.filter((l) => l.status === 200);
  const cpuAll = w.cpu.ownMs / w.sent;
  const cpuFn = (w.cpu.components.find(([c]) => c === "wpp-webhook")?.[1] ?? 0) / w.sent;
  const own = summarize(ok.map((l) => l.own_ms));
  const db = summarize(ok.map((l) => l.db_ms));
  const fnMs = summarize(ok.map((l) => l.ms));
  return table(["measure", "value"], [
    [
      "events sent",
      `${w.sent}: ${w.plan.distinct} distinct (${w.plan.messages} messages, ${w.plan.deliveries} ` +
      `delivery statuses, ${w.plan.sessionEvents} session events) + ${w.plan.copies} copies, ` +
      `shuffled, to ${w.targets} integrations`,
    ],
    ["session events sent after a newer one of the same number", String(w.plan.sentLate)],
    ["connections", `${w.connections}${w.rate ? `, offered ${w.rate} events/s` : ""}`],
    ["throughput", `${w.load.rps.toFixed(0)} events/s over ${w.load.seconds.toFixed(1)} s`],
    [
      "latency at the sender (through the gateway)",
      `p50 ${fmtMs(w.load.latency.p50)} ms, p95 ${fmtMs(w.load.latency.p95)} ms, p99 ${
        fmtMs(w.load.latency.p99)
      } ms, max ${fmtMs(w.load.latency.max)} ms`,
    ],
    [
      "inside wpp-webhook (its log)",
      `p50 ${fmtMs(fnMs.p50)} ms (RPC ${fmtMs(db.p50)}, own ${fmtMs(own.p50)}), p99 ${
        fmtMs(fnMs.p99)
      } ms (RPC ${fmtMs(db.p99)}, own ${fmtMs(own.p99)})`,
    ],
    [
      "CPU per event, every process of the stack",
      `${fmtMs(cpuAll)} ms: ${
        w.cpu.components.filter(([, ms]) => ms / w.sent >= 0.005)
          .map(([c, ms]) => `${c} ${fmtMs(ms / w.sent)}`).join(", ")
      } (the CPU table)`,
    ],
    [
      `ceiling at 100 % of ${cores} cores`,
      `${(cores * 1000 / cpuAll).toFixed(0)} events/s; ${
        (cores * 1000 / (cpuAll - cpuFn)).toFixed(0)
      } events/s if wpp-webhook itself cost nothing`,
    ],
    ["answered 200", `${w.answeredOk} / ${w.sent} (statuses: ${JSON.stringify(w.load.statuses)})`],
    [
      "forwarded to the CRM's receiver",
      `${w.forwardedDistinct} / ${w.plan.distinct} distinct, ${w.forwardedTotal} in all; ` +
      `forwards that failed or were retried (their log lines): ${
        w.forwardLines - w.forwardOk
      } failed, ${w.forwardOk} retried; the last arrived ${
        Math.round(w.forwardLagMs)
      } ms after the last answer`,
    ],
    [
      "final stored connection",
      w.finals.map((f) =>
        `${f.session}: ${f.stored} (newest event: ${f.expected}${
          f.expected === "qr" ? f.qrMatches ? ", same QR" : ", **other QR**" : ""
        })`
      ).join("; "),
    ],
  ]);
}

function coldTable(colds: ColdStart[], memory: Record<string, Memory>): string {
  const firstAnswer = summarize(colds.map((c) => c.firstAnswerMs));
  const firstReuse = summarize(colds.map((c) => c.firstReuseMs));
  const rss = Math.max(...colds.map((c) => c.memoryAfter.peakMiB));
  return table(["measure", "value"], [
    [
      `wpp-create: spawn → first answer (${colds.length} starts)`,
      `median ${fmtMs(firstAnswer.p50)} ms, max ${fmtMs(firstAnswer.max)} ms`,
    ],
    [
      "wpp-create: spawn → first reuse click answered 200",
      `median ${fmtMs(firstReuse.p50)} ms, max ${fmtMs(firstReuse.max)} ms`,
    ],
    ["wpp-create: peak RSS (VmHWM) after one request", `${rss.toFixed(1)} MiB`],
    ...Object.entries(memory).map(([fn, m]) => [
      `${fn}: peak RSS / RSS at the end of the run`,
      `${m.peakMiB.toFixed(1)} / ${m.rssMiB.toFixed(1)} MiB`,
    ]),
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
    ["other test / bench runs on the machine", m.others],
    ["date", m.date],
  ]);
}

export function renderReport(
  input: ReportInput,
): { console: string; markdown: string; missed: string[] } {
  const cells = input.cells.map(figures);
  const vs = verdicts(input, cells);
  const sections = [
    "## Targets (issue #13)",
    verdictTable(vs),
    ...missNotes(input),
    "## Before and after",
    beforeAfterTable(input, cells),
    `Before: commit 2fa448a's docs/benchmarks.md (measured ${BEFORE.measured}) and the figures ` +
    "issue #13 quotes. Absolute milliseconds of different runs compare poorly (this run's RPC " +
    `floor is ${fmtMs(input.floors.rpc.p50)} ms, and the transport alone ` +
    `${fmtMs(input.floors.rpcBare.p50)} ms, against ${fmtMs(BEFORE.rpcFloorP50)} ms then): ` +
    "compare the ratios and the counts.",
    "## Fast paths under load (through the gateway, the panel's headers)",
    loadTable(cells),
    "## Where the time goes (the function's own log, 200 answers)",
    breakdownTable(cells),
    "## The first click (creates the session)",
    createTable(input.creates),
    "## Floors and fast paths, one request at a time",
    floorTable(input.floors),
    "## CPU per request by component (ms; /proc, this run's processes only)",
    cpuTable(cells, input.webhook),
    `## The first ${WAIT_MS / 1000} s of waiting for a scan, polled as the CRM's panel polls`,
    waitTable(input.wait),
    `All variants together: the simulator counted ${input.wait.simulator.total} platform calls ` +
    `(${byOpText(input.wait.simulator)}) during the window.`,
    `## Webhook receiver, steady (${input.webhookSteady.connections} connections)`,
    webhookTable(input.webhookSteady, input.machine.cores),
    "## Webhook receiver, as fast as it goes",
    webhookTable(input.webhook, input.machine.cores),
    "## Cold start and memory",
    coldTable(input.colds, input.memory),
    "## What else the machine did meanwhile",
    disturbanceTable(input, cells),
  ].join("\n\n");
  const missed = vs.filter((v) => !v.ok).map((v) => v.target);
  const markdown = [
    "# wpp-connect benchmarks",
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
  return { console: sections, markdown, missed };
}

const METHOD = `## How these figures are made

- **Stack.** The benchmark starts its own throwaway stack (embedded PostgreSQL, PostgREST, the
  auth stand-in, the WPP simulator with no added latency, one process per function, the gateway)
  on free ports in a temporary directory, with the functions' production timeouts
  (bench/functions.env) and WPP_EVENTS_FORWARD_URL pointing at a receiver the benchmark runs.
  The gateway runs in the benchmark's own process; autocannon and the forward receiver run in
  worker threads of it, so neither blocks the gateway's event loop. Everything shares the same
  cores: figures at 10 and 50 connections measure the machine as much as the functions.
- **Fast paths.** *Reuse click*: \`wpp-create {}\` by an admin whose session is linked;
  *reuse click, QR on show*: the same click by an admin whose session waits for its scan;
  *status poll*: \`wpp-status {session_name, force:true}\` for a linked session. The stored state
  is made fresh (\`checked_at = now()\`) before each cell, which is shorter than
  WPP_STATE_FRESH_SECONDS; in production the session's own events keep it so. Latency and
  req/s are autocannon's per-response timings at the client, with the panel's headers
  (\`apikey\`, \`Authorization\`), at 1, 10 and 50 connections; the ratios of the targets come
  from the interleaved rounds described under *Floors*.
- **Round trips and platform calls** are counted three ways: from the function's log
  (\`db_calls\`, \`platform_calls\`, one JSON line per request), from pg_stat_statements (calls of
  the \`wpp_*\` RPC statements during the cell, per request the function logged), and at the
  simulator (\`/__admin/calls\` before and after the cell).
- **Floors** are measured in the same run, one request at a time with Deno's fetch and
  kept-alive connections, as the functions make them, from a worker thread, interleaved round
  by round with the fast paths (so drift in what else the machine does weighs on both alike):
  the very RPC a reuse click makes (\`wpp_context\` through the gateway with the service key),
  the same RPC for a user of no organisation (the transport alone), and one platform status
  call. The ratio a target speaks of is the fast path's p50 over the RPC floor's p50, both from
  these interleaved rounds: what the function adds on top of the one database round trip it
  cannot avoid (a second gateway hop, JWT verification, input validation, JSON, logging).
- **CPU per request** is read from /proc (utime + stime) for every process the benchmark
  started, threads of its own process apart (the gateway on the main thread, autocannon and the
  forward receiver on worker threads), before and after each cell. Other helpers' processes on
  the machine are not counted, but they do compete for the same cores.
- **Waiting for a scan.** Three organisations click «Подключить WhatsApp» (one at a time), then
  wait side by side for ${WAIT_MS / 1000} s of real time while a panel per organisation, through
  a copy of the CRM's HTTP helper (bench/panel.ts: headers, retries), asks \`wpp-qr ?session=\`
  and \`wpp-status {session_name, force:true}\` in parallel every 2 s. Variants: events as the
  simulator posts them; a QR rotated every 20 s with its \`qr\` event (emitted per session
  through the admin API, as the simulator's global rotation would rotate every waiting
  session); every event of the session dropped (a delivery fault set before its create). Each
  function logs the session a request was about, which attributes platform calls to a variant;
  their sum must equal what the simulator counted over the window. The connect click's own
  platform calls (create, token, webhook, start) are shown apart.
- **Webhook receiver.** Events are made up front in the platform's default shapes (rendered by
  the simulator's own code): per integration, messages, delivery statuses and session events,
  each stamped 1 ms after the previous one, plus copies of random ones (the same bytes), all
  shuffled; the newest session event of each integration is never the last one sent. autocannon
  POSTs them, each exactly once, to \`/functions/v1/wpp-webhook/<secret>\` through the gateway,
  over a few connections (\`WEBHOOK_CONNECTIONS\` in bench/main.ts; while this benchmark was
  written, twice as many gave no more events/s, only longer queues). The simulator's own burst (\`/__admin/events/burst\`) was not
  used: it stamps each event when it sends it, so a shuffled burst never arrives out of order
  by time. autocannon and the forward receiver together cost about a tenth of a millisecond of
  CPU per event (the CPU table), so the sender takes next to nothing from the stack it
  measures. None lost means: every request answered 200, every distinct event reached the
  receiver at WPP_EVENTS_FORWARD_URL (counted by message id, or by account, type and time for
  session events), and every integration's stored connection is its newest session event's.
  The ceiling is the cores' time divided by the CPU all processes of the stack spent per event.
- **Cold start**: a new wpp-create process spawned with the stack's environment, timed to its
  first HTTP answer and to its first complete reuse click; memory is read from
  /proc/<pid>/status.

The whole run took {SECONDS} s.
`;
