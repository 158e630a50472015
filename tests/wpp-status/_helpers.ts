// Calls to wpp-status and wpp-create as the page makes them, and the simulator's call counts
// around them, so each test can say exactly which platform calls a status read made.
import { callFunction, type CallResult, sim } from "../_support/wpp.ts";
import type { CallCounts } from "../../dev/wpp-simulator/admin-client.ts";

export function status(
  token: string | null,
  opts: {
    method?: string;
    body?: string | Record<string, unknown>;
    headers?: Record<string, string>;
  } = {},
): Promise<CallResult> {
  return callFunction(token, { fn: "wpp-status", method: opts.method ?? "GET", ...opts });
}

export function connect(token: string, force = false): Promise<CallResult> {
  return callFunction(token, { fn: "wpp-create", body: force ? { force_recreate: true } : {} });
}

export type OpCounts = Omit<CallCounts, "routes">;

/** How many calls of each kind the platform received while `fn` ran. */
export async function platformCallsDuring<T>(fn: () => Promise<T>): Promise<[T, OpCounts]> {
  const before = await sim.calls();
  const result = await fn();
  const after = await sim.calls();
  const delta = {} as OpCounts;
  for (const op of Object.keys(after) as (keyof CallCounts)[]) {
    if (op === "routes") continue;
    delta[op] = after[op] - before[op];
  }
  return [result, delta];
}

/** A connected session for a new organisation's admin: create, then scan the QR. */
export async function connectedSession(token: string): Promise<string> {
  const created = await connect(token);
  if (created.status !== 200) {
    throw new Error(`wpp-create answered ${created.status}: ${created.text}`);
  }
  const session = created.json.session as string;
  await sim.scan(session);
  return session;
}

/**
 * The shared database connection and the simulator's keep-alive sockets outlive each test by
 * design (closed by the module's last test), so the per-test leak checks are off.
 */
export function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeResources: false, sanitizeOps: false });
}
