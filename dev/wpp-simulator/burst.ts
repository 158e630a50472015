import { burstEvent } from "./events.ts";
import { Limiter } from "./limiter.ts";
import { shuffled } from "./reorder.ts";
import type { BurstReport, BurstSpec } from "./types.ts";
import type { SendOutcome, WebhookDispatcher } from "./webhooks.ts";

export const DEFAULT_BURST_CONCURRENCY = 10;

/**
 * Sends `count` events to a session's receiver as fast as `concurrency` allows, through the
 * same dispatcher (and so the same delivery faults) as every other event, and reports how the
 * receiver coped. Answers once every delivery has settled.
 */
export async function runBurst(
  webhooks: WebhookDispatcher,
  url: string,
  spec: BurstSpec,
  log: (line: Record<string, unknown>) => void,
): Promise<BurstReport> {
  const types = spec.types ?? ["message"];
  const produced = Array.from(
    { length: spec.count },
    (_, i) => ({ i, event: burstEvent(spec.session, types[i % types.length], i) }),
  );
  const order = spec.reorder ? shuffled(produced) : produced;
  const limiter = new Limiter(spec.concurrency ?? DEFAULT_BURST_CONCURRENCY);
  const started = performance.now();
  // Emitted in send order: the limiter is first come, first served.
  const emissions = order.map(({ i, event }, position) =>
    webhooks.emit(url, event, {
      copies: spec.duplicate,
      limiter,
      reordered: position !== i,
      quiet: true,
    })
  );
  const outcomes = (await Promise.all(emissions.map((e) => e.settled))).flat();
  const durationMs = Math.round(performance.now() - started);
  const report = summarise(spec, outcomes, emissions.filter((e) => e.dropped).length, durationMs);
  log({
    event: "burst",
    session: spec.session,
    count: report.count,
    delivered: report.delivered,
    failed: report.failed,
    dropped: report.dropped,
    p50: report.latencyMs.p50,
    p99: report.latencyMs.p99,
    ms: durationMs,
  });
  return report;
}

function summarise(
  spec: BurstSpec,
  outcomes: SendOutcome[],
  dropped: number,
  durationMs: number,
): BurstReport {
  const errors: Record<string, number> = {};
  let delivered = 0;
  for (const o of outcomes) {
    if (o.ok) {
      delivered++;
      continue;
    }
    const key = o.status !== undefined ? String(o.status) : o.error ?? "aborted";
    errors[key] = (errors[key] ?? 0) + 1;
  }
  const latencies = outcomes.filter((o) => o.attempts > 0).map((o) => o.ms).sort((a, b) => a - b);
  return {
    session: spec.session,
    count: spec.count,
    dropped,
    deliveries: outcomes.length,
    delivered,
    failed: outcomes.length - delivered,
    attempts: outcomes.reduce((n, o) => n + o.attempts, 0),
    errors,
    latencyMs: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: latencies.length ? latencies[latencies.length - 1] : null,
    },
    durationMs,
    perSecond: durationMs > 0
      ? Math.round(outcomes.length / (durationMs / 1000) * 10) / 10
      : outcomes.length,
  };
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}
