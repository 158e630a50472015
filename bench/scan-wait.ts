// The first 60 s of waiting for a scan, as the CRM's panel spends them: a connect click answers
// qr_issued, then every 2 s the panel asks wpp-qr and wpp-status {force:true} in parallel
// (crm-contract.md §2) until the phone is linked, which in these 60 s it is not. What counts is
// how often that reaches the platform. Three sessions wait side by side, one per variant:
// - usual: the simulator posts its events as it does (a QR event at the start);
// - rotation: the QR on show is replaced every 20 s, each time with a QR event, as WhatsApp
//   rotates it (emitted per session through the admin API: the simulator's own rotation,
//   WPP_SIM_QR_ROTATE_MS, would rotate every waiting session at once);
// - dropped: none of the session's events arrives (a drop fault set before its create).
// The simulator counts platform calls globally, so the variants' calls are told apart by the
// functions' own log lines (each names its session), and their sum must equal the simulator's
// count over the same window.
import type { SimulatorAdmin } from "../dev/wpp-simulator/admin-client.ts";
import { newQr, sessionId } from "../dev/wpp-simulator/ids.ts";
import type { Tenant } from "./fixtures.ts";
import type { FunctionLog, RequestLine } from "./function-log.ts";
import { panel, type PanelAnswer } from "./panel.ts";
import { type CallDelta, callDelta, countingCalls } from "./sim-calls.ts";

export const WAIT_MS = 60_000;
export const POLL_EVERY_MS = 2_000;
export const ROTATE_EVERY_MS = 20_000;

export type WaitVariant = "usual" | "rotation" | "dropped";

export const VARIANT_LABEL: Record<WaitVariant, string> = {
  usual: "events as usual",
  rotation: `QR rotated every ${ROTATE_EVERY_MS / 1000} s (with its event)`,
  dropped: "every event of the session dropped",
};

export interface WaitRun {
  variant: WaitVariant;
  session: string;
  createStatus: string;
  createCalls: CallDelta;
  ticks: number;
  /** Requests the panel made, retries included. */
  requests: number;
  qrRequests: number;
  httpStatuses: Record<string, number>;
  /** wpp-status's `status` answers. */
  panelStatuses: Record<string, number>;
  /** wpp-qr answers without a QR. */
  qrNull: number;
  /** Distinct QRs the panel was shown (create, wpp-qr, wpp-status). */
  qrsShown: number;
  rotations: number;
  /** ms epoch of the connect click: the events below are counted from there. */
  clickedAt: number;
  eventsDelivered: number;
  eventsDropped: number;
  /** Platform calls the functions logged for this session during the window. */
  platformCalls: number;
  byOp: Record<string, number>;
  sources: Record<string, number>;
  lines: RequestLine[];
}

export interface WaitResult {
  runs: WaitRun[];
  /** Platform calls the simulator counted during the window, all variants together. */
  simulator: CallDelta;
  /** Log lines expected vs found (a missing line would hide calls). */
  linesExpected: number;
  linesFound: number;
}

interface Ctx {
  gatewayUrl: string;
  anonKey: string;
  sim: SimulatorAdmin;
  logs: { qr: FunctionLog; status: FunctionLog };
}

const bump = (m: Record<string, number>, k: string) => m[k] = (m[k] ?? 0) + 1;
const sleepUntil = (t: number) =>
  new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));

export async function runScanWait(
  ctx: Ctx,
  tenants: Record<WaitVariant, Tenant>,
): Promise<WaitResult> {
  const variants = Object.keys(tenants) as WaitVariant[];
  const created: {
    variant: WaitVariant;
    session: string;
    first: PanelAnswer;
    calls: CallDelta;
    clickedAt: number;
  }[] = [];
  // One create at a time: the dropped variant's fault must name the session before it exists.
  for (const variant of variants) {
    const p = panel(ctx.gatewayUrl, ctx.anonKey, tenants[variant].token);
    if (variant === "dropped") {
      const next = sessionId((await ctx.sim.state()).sessions.length + 1);
      await ctx.sim.setEventFault({ kind: "drop", session: next });
    }
    const clickedAt = Date.now();
    const { result: first, calls } = await countingCalls(
      ctx.sim,
      () => p.post("wpp-create", { add_new: false }),
    );
    const session = String(first.body?.session);
    if (first.status !== 200 || first.body?.status !== "qr_issued" || !first.body?.qrcode) {
      throw new Error(
        `scan wait (${variant}): the connect click answered ${first.status} ` +
          `${JSON.stringify({ status: first.body?.status, code: first.body?.code })}`,
      );
    }
    if (variant === "dropped") {
      const faults = await ctx.sim.eventFaults();
      if (!faults.some((f) => f.session === session)) {
        throw new Error("scan wait: the drop fault does not name the session just created");
      }
    }
    created.push({ variant, session, first, calls, clickedAt });
  }

  await ctx.logs.qr.mark();
  await ctx.logs.status.mark();
  const before = await ctx.sim.calls();
  const t0 = performance.now();

  const runs = await Promise.all(
    created.map(async ({ variant, session, first, calls, clickedAt }) => {
      const p = panel(ctx.gatewayUrl, ctx.anonKey, tenants[variant].token);
      const run: WaitRun = {
        variant,
        session,
        createStatus: String(first.body?.status),
        createCalls: calls,
        ticks: 0,
        requests: 0,
        qrRequests: 0,
        httpStatuses: {},
        panelStatuses: {},
        qrNull: 0,
        qrsShown: 0,
        rotations: 0,
        clickedAt,
        eventsDelivered: 0,
        eventsDropped: 0,
        platformCalls: 0,
        byOp: {},
        sources: {},
        lines: [],
      };
      const shown = new Set<string>([String(first.body?.qrcode)]);
      const rotation = variant === "rotation"
        ? (async () => {
          for (let at = ROTATE_EVERY_MS; at < WAIT_MS; at += ROTATE_EVERY_MS) {
            await sleepUntil(t0 + at);
            await ctx.sim.emitEvent(session, { type: "qr", qr: newQr() });
            run.rotations++;
          }
        })()
        : Promise.resolve();
      // The panel's setInterval: a tick every 2 s whatever the previous one is doing.
      const ticks: Promise<void>[] = [];
      for (let at = 0; at < WAIT_MS; at += POLL_EVERY_MS) {
        await sleepUntil(t0 + at);
        run.ticks++;
        ticks.push((async () => {
          const [qr, status] = await Promise.all([
            p.get("wpp-qr", { session }),
            p.post("wpp-status", { session_name: session, force: true }),
          ]);
          for (const a of [qr, status]) {
            run.requests += a.attempts;
            bump(run.httpStatuses, String(a.status));
          }
          run.qrRequests += qr.attempts;
          if (typeof qr.body?.qr === "string") shown.add(qr.body.qr);
          else run.qrNull++;
          bump(run.panelStatuses, String(status.body?.status));
          if (typeof status.body?.qrcode === "string") shown.add(status.body.qrcode);
        })());
      }
      await Promise.all([...ticks, rotation]);
      run.qrsShown = shown.size;
      return run;
    }),
  );
  await sleepUntil(t0 + WAIT_MS);
  const simulator = callDelta(before, await ctx.sim.calls());

  const expected = runs.reduce((n, r) => n + r.requests, 0);
  const qrExpected = runs.reduce((n, r) => n + r.qrRequests, 0);
  const found = [
    ...await ctx.logs.qr.requests(qrExpected),
    ...await ctx.logs.status.requests(expected - qrExpected),
  ];
  for (const run of runs) {
    run.lines = found.filter((l) => l.session === run.session);
    for (const l of run.lines) {
      run.platformCalls += l.platform_calls.length;
      for (const c of l.platform_calls) bump(run.byOp, c.op);
      bump(run.sources, l.source ?? "none");
    }
    const deliveries = (await ctx.sim.deliveries({ session: run.session }))
      .filter((d) => d.at >= run.clickedAt);
    run.eventsDelivered = deliveries.filter((d) => d.ok).length;
    run.eventsDropped = deliveries.filter((d) => d.dropped).length;
  }
  await ctx.sim.clearEventFaults();
  return { runs, simulator, linesExpected: expected, linesFound: found.length };
}
