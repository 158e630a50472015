// Platform calls as the simulator counted them on arrival: the independent check of what the
// functions say they called.
import type { CallCounts, SimulatorAdmin } from "../dev/wpp-simulator/admin-client.ts";
import { OPERATIONS } from "../dev/wpp-simulator/types.ts";

export interface CallDelta {
  total: number;
  byOp: Record<string, number>;
}

export function callDelta(before: CallCounts, after: CallCounts): CallDelta {
  const byOp: Record<string, number> = {};
  let total = 0;
  for (const op of [...OPERATIONS, "unknown"] as const) {
    const n = after[op] - before[op];
    if (n) byOp[op] = n;
    total += n;
  }
  return { total, byOp };
}

/** Counts the platform calls made while `work` runs. */
export async function countingCalls<T>(
  sim: SimulatorAdmin,
  work: () => Promise<T>,
): Promise<{ result: T; calls: CallDelta }> {
  const before = await sim.calls();
  const result = await work();
  return { result, calls: callDelta(before, await sim.calls()) };
}

export function byOpText(d: CallDelta): string {
  const parts = Object.entries(d.byOp).map(([op, n]) => `${op} ${n}`);
  return parts.length ? parts.join(", ") : "none";
}
