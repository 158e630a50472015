import { z } from "zod";
import {
  EVENT_FAULT_KINDS,
  EVENT_TYPES,
  type EventFaultKind,
  type EventFaultSpec,
  type EventFaultView,
  type EventType,
} from "./types.ts";

const ms = (max: number) => z.number().int().min(0).max(max).optional();

/** Which fields each kind takes; any other kind-specific field is refused. */
const KIND_FIELDS: Record<EventFaultKind, (keyof EventFaultSpec)[]> = {
  drop: [],
  delay: ["ms", "jitterMs"],
  duplicate: ["copies"],
  reorder: ["windowMs"],
  retry: ["attempts", "backoffMs", "timeoutMs"],
};
const SPECIFIC = new Set(Object.values(KIND_FIELDS).flat());

export const eventFaultSpec = z.strictObject({
  kind: z.enum(EVENT_FAULT_KINDS),
  session: z.string().min(1).optional(),
  types: z.array(z.enum(EVENT_TYPES)).min(1).optional(),
  probability: z.number().gt(0).max(1).optional(),
  ms: ms(300_000),
  jitterMs: ms(300_000),
  copies: z.number().int().min(2).max(20).optional(),
  windowMs: z.number().int().min(1).max(60_000).optional(),
  attempts: z.number().int().min(1).max(10).optional(),
  backoffMs: ms(60_000),
  timeoutMs: z.number().int().min(1).max(60_000).optional(),
  times: z.number().int().min(1).optional(),
  forMs: z.number().int().min(1).optional(),
}).check((ctx) => {
  const f = ctx.value;
  const problem = (message: string) => ctx.issues.push({ code: "custom", message, input: f });
  for (const field of SPECIFIC) {
    if (f[field] !== undefined && !KIND_FIELDS[f.kind].includes(field)) {
      problem(`${field} does not apply to ${f.kind}`);
    }
  }
  if (f.kind === "delay" && f.ms === undefined && f.jitterMs === undefined) {
    problem("ms or jitterMs is required");
  }
  if (f.kind === "duplicate" && f.copies === undefined) problem("copies is required");
  if (f.kind === "reorder" && f.windowMs === undefined) problem("windowMs is required");
  if (f.kind === "retry" && f.attempts === undefined && f.timeoutMs === undefined) {
    problem("attempts or timeoutMs is required");
  }
});

export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
}

/** As the platform behaves as far as is known: one attempt, never retried. */
export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({
  attempts: 1,
  backoffMs: 0,
  timeoutMs: 5_000,
});

/** What happens to one event on its way out. */
export interface DeliveryPlan {
  drop: boolean;
  /** Draws the wait before one copy is sent (jitter is drawn per copy). */
  delayMs: () => number;
  copies: number;
  reorderWindowMs?: number;
  retry: RetryPolicy;
}

interface ActiveFault {
  id: number;
  spec: EventFaultSpec;
  remaining?: number;
  until?: number;
}

/**
 * Faults on webhook deliveries. Each fault is spent once per event it acts on (not per copy or
 * attempt); `probability` decides per event whether it acts. Delays add up; for the other kinds
 * the oldest matching fault wins.
 */
export class EventFaultBook {
  #faults: ActiveFault[] = [];
  #nextId = 1;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  add(spec: EventFaultSpec): EventFaultView {
    const fault: ActiveFault = { id: this.#nextId++, spec };
    if (spec.times !== undefined) fault.remaining = spec.times;
    if (spec.forMs !== undefined) fault.until = this.now() + spec.forMs;
    this.#faults.push(fault);
    return view(fault);
  }

  clear(kind?: EventFaultKind): number {
    const before = this.#faults.length;
    this.#faults = kind === undefined ? [] : this.#faults.filter((f) => f.spec.kind !== kind);
    return before - this.#faults.length;
  }

  list(): EventFaultView[] {
    this.#prune();
    return this.#faults.map(view);
  }

  take(event: { session: string; type: EventType }): DeliveryPlan {
    this.#prune();
    const matching = this.#faults.filter((f) =>
      (f.spec.session === undefined || f.spec.session === event.session) &&
      (f.spec.types === undefined || f.spec.types.includes(event.type))
    );
    const acts = (f: ActiveFault) => {
      const yes = f.spec.probability === undefined || this.random() < f.spec.probability;
      if (yes && f.remaining !== undefined) f.remaining--;
      return yes;
    };
    let fixed = 0;
    let jitter = 0;
    const plan: DeliveryPlan = { drop: false, delayMs: () => 0, copies: 1, retry: DEFAULT_RETRY };
    // A dropped event meets no other fault, so none of them is spent on it.
    plan.drop = matching.some((f) => f.spec.kind === "drop" && acts(f));
    if (!plan.drop) {
      let duplicated = false;
      let retried = false;
      for (const f of matching) {
        const s = f.spec;
        if (s.kind === "delay" && acts(f)) {
          fixed += s.ms ?? 0;
          jitter += s.jitterMs ?? 0;
        } else if (s.kind === "duplicate" && !duplicated && acts(f)) {
          duplicated = true;
          plan.copies = s.copies ?? 2;
        } else if (s.kind === "reorder" && plan.reorderWindowMs === undefined && acts(f)) {
          plan.reorderWindowMs = s.windowMs;
        } else if (s.kind === "retry" && !retried && acts(f)) {
          retried = true;
          plan.retry = {
            attempts: s.attempts ?? DEFAULT_RETRY.attempts,
            backoffMs: s.backoffMs ?? DEFAULT_RETRY.backoffMs,
            timeoutMs: s.timeoutMs ?? DEFAULT_RETRY.timeoutMs,
          };
        }
      }
    }
    if (fixed > 0 || jitter > 0) plan.delayMs = () => fixed + Math.round(this.random() * jitter);
    this.#prune();
    return plan;
  }

  #prune(): void {
    const at = this.now();
    this.#faults = this.#faults.filter((f) =>
      (f.remaining === undefined || f.remaining > 0) && (f.until === undefined || at < f.until)
    );
  }
}

function view(fault: ActiveFault): EventFaultView {
  const out: EventFaultView = { id: fault.id, ...fault.spec };
  if (fault.remaining !== undefined) out.remaining = fault.remaining;
  if (fault.until !== undefined) out.until = fault.until;
  return out;
}
