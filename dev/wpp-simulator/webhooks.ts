import { type DeliveryFilter, DeliveryLog } from "./delivery-log.ts";
import type { DeliveryPlan, EventFaultBook } from "./event-faults.ts";
import { eventType, renderEvent } from "./event-shapes.ts";
import type { PlatformEvent } from "./events.ts";
import type { Limiter } from "./limiter.ts";
import { ReorderBuffer, type Turn } from "./reorder.ts";
import type { DeliveryView, EventType, Variants } from "./types.ts";
import { postEvent, type PostResult } from "./webhook-post.ts";

// Enough for a burst's worth of records, small enough to dump in a state snapshot.
const KEPT_DELIVERIES = 1_000;

export interface DispatcherDeps {
  log: (line: Record<string, unknown>) => void;
  variants: () => Variants;
  faults: EventFaultBook;
  now?: () => number;
}

export interface EmitOptions {
  /** Each event is sent at least this many times (a burst's `duplicate`). */
  copies?: number;
  /** Bounds the requests in flight (a burst's `concurrency`). */
  limiter?: Limiter;
  /** The caller already sent it out of order (a burst's `reorder`). */
  reordered?: boolean;
  /** No log line per delivery: a burst logs one summary instead. */
  quiet?: boolean;
}

/** How one copy of an event fared, after every attempt it was allowed. */
export interface SendOutcome {
  ok: boolean;
  status?: number;
  error?: string;
  attempts: number;
  /** First attempt's start to the last attempt's end, queueing for a limiter excluded. */
  ms: number;
}

export interface Emission {
  eventId: string;
  session: string;
  type: EventType;
  dropped: boolean;
  /** Settles when every copy is done; never rejects. */
  settled: Promise<SendOutcome[]>;
}

type Head = Pick<DeliveryView, "eventId" | "session" | "type">;

/**
 * Sends webhook events fire-and-forget, as the platform does, through the delivery faults
 * (drop, delay, duplicate, reorder, retry). A receiver that is down or slow is recorded and
 * logged, never allowed to disturb the simulator.
 */
export class WebhookDispatcher {
  readonly #log = new DeliveryLog(KEPT_DELIVERIES);
  readonly #reorder = new ReorderBuffer();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #now: () => number;
  // Replaced on reset, so sends still in flight from before neither record nor linger.
  #generation = new AbortController();
  #closed = false;
  #sequence = 0;

  constructor(private readonly deps: DispatcherDeps) {
    this.#now = deps.now ?? Date.now;
  }

  get deliveries(): DeliveryView[] {
    return this.#log.list();
  }

  listDeliveries(filter?: DeliveryFilter): DeliveryView[] {
    return this.#log.list(filter);
  }

  clearDeliveries(): number {
    return this.#log.clear();
  }

  emit(url: string, event: PlatformEvent, opts: EmitOptions = {}): Emission {
    const v = this.deps.variants();
    const at = this.#now();
    const head: Head = {
      eventId: `evt_${++this.#sequence}`,
      session: event.session,
      type: eventType(event, v),
    };
    const generation = this.#generation;
    if (this.#closed) return { ...head, dropped: false, settled: Promise.resolve([]) };
    const plan = this.deps.faults.take(head);
    if (plan.drop) {
      this.#record(generation, opts, {
        ...head,
        at,
        ok: false,
        attempt: 0,
        copy: 1,
        duplicate: false,
        reordered: false,
        dropped: true,
      });
      return { ...head, dropped: true, settled: Promise.resolve([]) };
    }
    // Rendered once: copies and retries resend the very same body, timestamp included.
    const body = JSON.stringify(renderEvent(event, v, at));
    const copies = Math.max(plan.copies, opts.copies ?? 1);
    const sends: Promise<SendOutcome>[] = [];
    for (let copy = 1; copy <= copies; copy++) {
      const send = this.#send(generation, url, body, head, copy, plan, opts);
      this.#pending.add(send);
      void send.finally(() => this.#pending.delete(send));
      sends.push(send);
    }
    return { ...head, dropped: false, settled: Promise.all(sends) };
  }

  /** Forgets the records and abandons what is still waiting or in flight. */
  reset(): void {
    this.#generation.abort();
    this.#generation = new AbortController();
    this.#reorder.release();
    this.#log.clear();
  }

  /** Cuts deliveries still waiting or in flight and waits for them to settle. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#generation.abort();
    this.#reorder.release();
    await Promise.allSettled([...this.#pending]);
  }

  async #send(
    generation: AbortController,
    url: string,
    body: string,
    head: Head,
    copy: number,
    plan: DeliveryPlan,
    opts: EmitOptions,
  ): Promise<SendOutcome> {
    const signal = generation.signal;
    const delay = plan.delayMs();
    if (delay > 0) await sleep(delay, signal);
    let turn: Turn | undefined;
    if (plan.reorderWindowMs !== undefined && !signal.aborted) {
      turn = await this.#reorder.hold(plan.reorderWindowMs);
    }
    const reordered = (opts.reordered ?? false) || (turn?.reordered ?? false);
    const outcome: SendOutcome = { ok: false, attempts: 0, ms: 0 };
    let firstStart: number | undefined;
    try {
      for (let attempt = 1; attempt <= plan.retry.attempts && !signal.aborted; attempt++) {
        if (attempt > 1) await sleep(plan.retry.backoffMs, signal);
        if (signal.aborted) break;
        const at = this.#now();
        const post = () => {
          firstStart ??= performance.now();
          return postEvent(url, body, plan.retry.timeoutMs, signal);
        };
        const result = await (opts.limiter ? opts.limiter.run(post) : post());
        Object.assign(outcome, outcomeOf(result), { attempts: attempt });
        this.#record(generation, opts, {
          ...head,
          at,
          ok: result.ok,
          ...(result.status !== undefined ? { status: result.status } : {}),
          ...(result.error !== undefined ? { error: result.error } : {}),
          attempt,
          copy,
          duplicate: copy > 1,
          reordered,
          dropped: false,
          ms: result.ms,
        });
        if (result.ok) break;
      }
    } finally {
      turn?.done();
    }
    if (firstStart !== undefined) outcome.ms = Math.round(performance.now() - firstStart);
    return outcome;
  }

  #record(generation: AbortController, opts: EmitOptions, record: DeliveryView): void {
    if (generation !== this.#generation) return;
    this.#log.add(record);
    // Nothing here names the URL (it carries the receiver's secret) or a QR.
    if (!opts.quiet) this.deps.log({ event: "webhook", ...record });
  }
}

function outcomeOf(result: PostResult): Partial<SendOutcome> {
  return { ok: result.ok, status: result.status, error: result.error };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
