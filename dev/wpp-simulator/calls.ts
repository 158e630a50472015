import { type CallCounts, type Operation, OPERATIONS } from "./types.ts";

/** Counts platform calls as they arrive, before faults: a retried call shows up twice. */
export class CallCounter {
  #byOp = new Map<Operation | "unknown", number>();
  #byRoute = new Map<string, number>();

  count(op: Operation | "unknown", template: string): void {
    this.#byOp.set(op, (this.#byOp.get(op) ?? 0) + 1);
    this.#byRoute.set(template, (this.#byRoute.get(template) ?? 0) + 1);
  }

  snapshot(): CallCounts {
    const counts = { unknown: this.#byOp.get("unknown") ?? 0 } as CallCounts;
    for (const op of OPERATIONS) counts[op] = this.#byOp.get(op) ?? 0;
    counts.routes = Object.fromEntries(this.#byRoute);
    return counts;
  }

  reset(): void {
    this.#byOp.clear();
    this.#byRoute.clear();
  }
}
