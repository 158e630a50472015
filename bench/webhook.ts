// The webhook receiver under load: the planned events (webhook-events.ts) POSTed to
// wpp-webhook/<secret> through the gateway by autocannon from its own thread, with the CRM's
// receiver listening at WPP_EVENTS_FORWARD_URL (forward-receiver.ts, another thread). Then:
// was every request answered 200, did every distinct event reach the receiver, and does each
// integration's stored connection equal its newest session event's?
import type { Sql } from "./fixtures.ts";
import type { FunctionLog, RequestLine } from "./function-log.ts";
import { type CellResult, runCell } from "./load.ts";
import { type CpuSnapshot, type CpuUse, cpuUse } from "./cpu.ts";
import {
  eventKey,
  planEvents,
  type PlanOptions,
  type ReceiverCommand,
  type ReceiverReport,
  type SessionConnection,
  type Target,
  type WebhookPlan,
} from "./webhook-events.ts";

export class ForwardReceiver {
  #worker = new Worker(new URL("./forward-receiver.ts", import.meta.url), { type: "module" });

  #ask<T>(cmd: ReceiverCommand): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#worker.onmessage = (e) => resolve(e.data as T);
      this.#worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`forward receiver failed: ${e.message}`));
      };
      this.#worker.postMessage(cmd);
    });
  }

  async start(port: number, token: string): Promise<void> {
    await this.#ask({ kind: "start", port, token });
  }

  async reset(): Promise<void> {
    await this.#ask({ kind: "reset" });
  }

  report(): Promise<ReceiverReport> {
    return this.#ask({ kind: "report" });
  }

  async stop(): Promise<void> {
    await this.#ask({ kind: "stop" });
    this.#worker.terminate();
  }
}

export interface FinalState {
  session: string;
  expected: SessionConnection;
  stored: string;
  qrMatches: boolean;
  ok: boolean;
}

export interface WebhookRun {
  connections: number;
  /** The offered rate (events/s), or null when sent as fast as the stack answered. */
  rate: number | null;
  targets: number;
  plan: Omit<WebhookPlan, "sequence" | "keys" | "newest">;
  load: CellResult;
  /** Requests answered 200 / sent. */
  answeredOk: number;
  sent: number;
  /** Distinct events with at least one 200. */
  distinctOk: number;
  forwardedDistinct: number;
  forwardedTotal: number;
  /** Forwarded keys the plan does not know (must be 0). */
  unknownForwards: number;
  badToken: number;
  /** ms from the last answer until the receiver had every distinct event. */
  forwardLagMs: number;
  finals: FinalState[];
  lines: RequestLine[];
  /** wpp-webhook's forward lines: ok / in all. */
  forwardOk: number;
  forwardLines: number;
  /** CPU used while the events were sent, by component and by everything else. */
  cpu: CpuUse;
}

export async function runWebhookBench(ctx: {
  gatewayUrl: string;
  sql: Sql;
  log: FunctionLog;
  receiver: ForwardReceiver;
  targets: Target[];
  connections: number;
  rate?: number;
  plan: Omit<PlanOptions, "firstAt">;
  cpu: () => Promise<CpuSnapshot>;
}): Promise<WebhookRun> {
  // Produced after everything stored so far, so no event is older than the state it meets.
  const [{ at }] = await ctx.sql<{ at: string }[]>`
    select (extract(epoch from max(greatest(connection_at, checked_at))) * 1000)::bigint::text as at
      from public.wpp_integration_state
     where integration_id = any(${ctx.targets.map((t) => t.integrationId)}::uuid[])`;
  const plan = planEvents(ctx.targets, { ...ctx.plan, firstAt: Number(at) + 1 });
  if (plan.keys.size !== plan.distinct) throw new Error("the event plan repeats a key");
  const lag = plan.distinct / ctx.targets.length + 1 - (Date.now() - Number(at));
  // Every event must lie in the past when it arrives (a future one is clamped, not refused).
  if (lag > 0) await new Promise((r) => setTimeout(r, lag));

  await ctx.log.mark();
  const cpuBefore = await ctx.cpu();
  const load = await runCell({
    url: ctx.gatewayUrl,
    method: "POST",
    headers: { "content-type": "application/json" },
    connections: ctx.connections,
    sequence: plan.sequence,
    rate: ctx.rate,
  });
  const answeredAt = performance.now();
  const cpu = cpuUse(cpuBefore, await ctx.cpu());
  const answered = load.answered!;

  // Forwards run after each 200: wait, bounded, until the receiver has every distinct event.
  let report: ReceiverReport;
  const until = Date.now() + 20_000;
  while (true) {
    report = await ctx.receiver.report();
    if (report.keys.length >= plan.distinct || Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const forwardLagMs = performance.now() - answeredAt;
  const lines = await ctx.log.requests(answered.length);
  // Only failed or retried forwards are logged: none expected.
  const forwardLines = await ctx.log.forwards(0);

  const stored = await ctx.sql<{ integration_id: string; connection: string; qr: string | null }[]>`
    select integration_id, connection, qr from public.wpp_integration_state
     where integration_id = any(${ctx.targets.map((t) => t.integrationId)}::uuid[])`;
  const finals = ctx.targets.map((t, i): FinalState => {
    const row = stored.find((r) => r.integration_id === t.integrationId);
    const expected = plan.newest[i];
    const qrMatches = expected.connection !== "qr" || row?.qr === expected.qr;
    return {
      session: t.session,
      expected: expected.connection,
      stored: row?.connection ?? "(no row)",
      qrMatches,
      ok: row?.connection === expected.connection && qrMatches,
    };
  });

  const { sequence: _s, keys, newest: _n, ...planFigures } = plan;
  return {
    connections: ctx.connections,
    rate: ctx.rate ?? null,
    targets: ctx.targets.length,
    plan: planFigures,
    load,
    answeredOk: answered.filter((s) => s === 200).length,
    sent: answered.length,
    distinctOk: new Set(
      plan.sequence.flatMap((r, i) => answered[i] === 200 ? [eventKey(JSON.parse(r.body))] : []),
    ).size,
    forwardedDistinct: report.keys.filter(([k]) => keys.has(k)).length,
    forwardedTotal: report.received,
    unknownForwards: report.keys.filter(([k]) => !keys.has(k)).length,
    badToken: report.badToken,
    forwardLagMs,
    finals,
    lines,
    forwardOk: forwardLines.filter((l) => l.ok).length,
    forwardLines: forwardLines.length,
    cpu,
  };
}
