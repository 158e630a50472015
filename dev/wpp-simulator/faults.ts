import { z } from "zod";
import {
  FAULT_KINDS,
  type FaultSpec,
  type FaultView,
  type Operation,
  OPERATIONS,
} from "./types.ts";

export const faultSpec = z.strictObject({
  op: z.enum(OPERATIONS).optional(),
  kind: z.enum(FAULT_KINDS),
  status: z.number().int().min(400).max(599).optional(),
  message: z.string().optional(),
  ms: z.number().int().min(0).optional(),
  field: z.union([z.string(), z.array(z.string())]).optional(),
  phase: z.enum(["before", "after"]).optional(),
  times: z.number().int().min(1).optional(),
  forMs: z.number().int().min(1).optional(),
}).check((ctx) => {
  const f = ctx.value;
  const problem = (message: string) => ctx.issues.push({ code: "custom", message, input: f });
  if (f.kind !== "fresh_key_refusal" && f.op === undefined) problem("op is required");
  if (f.kind === "fresh_key_refusal" && f.op !== undefined && f.op !== "create") {
    problem("fresh_key_refusal concerns create only");
  }
  if (f.kind === "status" && f.status === undefined) problem("status is required");
  if ((f.kind === "latency" || f.kind === "fresh_key_refusal") && f.ms === undefined) {
    problem("ms is required");
  }
});

interface ActiveFault {
  id: number;
  spec: FaultSpec & { op: Operation };
  remaining?: number;
  until?: number;
}

/** What to do to one call: how long to stall first, then at most one failure. */
export interface FaultPlan {
  latencyMs: number;
  fault?: FaultSpec & { op: Operation };
}

/**
 * Faults set over the admin API, process-wide so tests in other processes can drive them.
 * Each is spent per matching call (`times`) or by time (`forMs`), or lasts until cleared.
 */
export class FaultBook {
  #faults: ActiveFault[] = [];
  #nextId = 1;

  constructor(private readonly now: () => number = Date.now) {}

  add(spec: FaultSpec): FaultView {
    const fault: ActiveFault = {
      id: this.#nextId++,
      spec: { ...spec, op: spec.op ?? "create" },
    };
    if (spec.times !== undefined) fault.remaining = spec.times;
    if (spec.forMs !== undefined) fault.until = this.now() + spec.forMs;
    this.#faults.push(fault);
    return view(fault);
  }

  clear(op?: Operation): number {
    const before = this.#faults.length;
    this.#faults = op === undefined ? [] : this.#faults.filter((f) => f.spec.op !== op);
    return before - this.#faults.length;
  }

  list(): FaultView[] {
    this.#prune();
    return this.#faults.map(view);
  }

  /** Spends the faults this call meets: every latency, then the oldest other fault. */
  take(op: Operation): FaultPlan {
    this.#prune();
    const plan: FaultPlan = { latencyMs: 0 };
    for (const fault of this.#faults) {
      if (fault.spec.op !== op || fault.spec.kind === "fresh_key_refusal") continue;
      if (fault.spec.kind === "latency") {
        plan.latencyMs += fault.spec.ms ?? 0;
        this.#spend(fault);
      } else if (!plan.fault) {
        plan.fault = fault.spec;
        this.#spend(fault);
      }
    }
    this.#prune();
    return plan;
  }

  /** Read by create: how long the key it is about to hand out must be refused. */
  takeFreshKeyRefusal(): number {
    this.#prune();
    const fault = this.#faults.find((f) => f.spec.kind === "fresh_key_refusal");
    if (!fault) return 0;
    this.#spend(fault);
    this.#prune();
    return fault.spec.ms ?? 0;
  }

  #spend(fault: ActiveFault): void {
    if (fault.remaining !== undefined) fault.remaining--;
  }

  #prune(): void {
    const at = this.now();
    this.#faults = this.#faults.filter((f) =>
      (f.remaining === undefined || f.remaining > 0) && (f.until === undefined || at < f.until)
    );
  }
}

function view(fault: ActiveFault): FaultView {
  const out: FaultView = { id: fault.id, ...fault.spec };
  if (fault.remaining !== undefined) out.remaining = fault.remaining;
  if (fault.until !== undefined) out.until = fault.until;
  return out;
}
