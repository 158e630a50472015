// What the end-to-end tests of wpp-status, wpp-webhook and the panel replay share: calls as the
// panel makes them, the platform calls made meanwhile (simulator counts), this project's stored
// state of an integration, and waiting for asynchronous effects (webhook deliveries, log lines).
import { callFunction, type CallResult, functionLogLines, sim, sql } from "../_support/wpp.ts";
import type { CallCounts, EventType, Variants } from "../../dev/wpp-simulator/admin-client.ts";
import { waitFor } from "../_support/wait.ts";

/**
 * The shared database connection and the simulator's keep-alive sockets outlive each test by
 * design (closed by the module's last test), so the per-test leak checks are off.
 */
export function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeResources: false, sanitizeOps: false });
}

export type OpCounts = Omit<CallCounts, "routes">;

export const NO_CALLS: OpCounts = {
  create: 0,
  token: 0,
  start: 0,
  status: 0,
  qr: 0,
  webhook: 0,
  stop: 0,
  unknown: 0,
};

export function diffCalls(before: CallCounts, after: CallCounts): OpCounts {
  const delta = { ...NO_CALLS };
  for (const op of Object.keys(NO_CALLS) as (keyof OpCounts)[]) delta[op] = after[op] - before[op];
  return delta;
}

/** How many calls of each kind the platform received while `fn` ran. */
export async function platformCallsDuring<T>(fn: () => Promise<T>): Promise<[T, OpCounts]> {
  const before = await sim.calls();
  const result = await fn();
  return [result, diffCalls(before, await sim.calls())];
}

/** wpp-status as the panel calls it: POST {session_name, force}. */
export function status(
  token: string | null,
  body: string | Record<string, unknown> = {},
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<CallResult> {
  return callFunction(token, { fn: "wpp-status", body, ...opts });
}

/** wpp-create as the panel's connect button: POST {add_new}. */
export async function connect(
  token: string,
  body: Record<string, unknown> = { add_new: false },
): Promise<CallResult> {
  const res = await callFunction(token, { fn: "wpp-create", body });
  if (res.status !== 200) throw new Error(`wpp-create answered ${res.status}: ${res.text}`);
  return res;
}

export { waitFor };

export interface StoredState {
  session: string | null;
  connection: string;
  connection_at: Date | null;
  checked_at: Date | null;
  qr: string | null;
  qr_at: Date | null;
  ever_connected_at: Date | null;
  webhook_secret: string | null;
}

/** This project's own state of one integration (wpp_integration_state). */
export async function stateOf(integrationId: string): Promise<StoredState> {
  const [row] = await sql<StoredState[]>`
    select session, connection, connection_at, checked_at, qr, qr_at, ever_connected_at,
           webhook_secret
      from public.wpp_integration_state where integration_id = ${integrationId}`;
  if (!row) throw new Error(`no wpp_integration_state row for ${integrationId}`);
  return row;
}

/** Makes the stored state older than WPP_STATE_FRESH_SECONDS, as if nothing was heard since. */
export async function makeStale(integrationId: string): Promise<void> {
  await sql`
    update public.wpp_integration_state
       set checked_at = now() - interval '1 hour'
     where integration_id = ${integrationId}`;
}

/** Ages a session past the repeat window, so a force_recreate really replaces it. */
export async function ageSession(integrationId: string): Promise<void> {
  await sql`
    update public.wpp_integration_state
       set session_created_at = now() - interval '1 hour'
     where integration_id = ${integrationId}`;
}

/** The webhook URL path of a secret, as wpp-create registers it. */
export function webhookPath(secret: string): string {
  return `/functions/v1/wpp-webhook/${encodeURIComponent(secret)}`;
}

/** Waits until the simulator recorded a finished delivery of an event of `session`. */
export function delivered(
  session: string,
  type: EventType,
  opts: { count?: number; timeoutMs?: number } = {},
) {
  const count = opts.count ?? 1;
  return waitFor(`${count} ${type} deliveries for ${session}`, async () => {
    const seen = (await sim.deliveries({ session, type })).filter((d) => !d.dropped);
    return seen.length >= count ? seen : undefined;
  }, opts.timeoutMs ?? 5_000);
}

/** The simulator's webhook shape variants, restored to what they were after `fn`. */
export async function withVariants<T>(v: Partial<Variants>, fn: () => Promise<T>): Promise<T> {
  const before = (await sim.state()).variants;
  await sim.setVariants(v);
  try {
    return await fn();
  } finally {
    await sim.setVariants(before);
  }
}

/** The JSON log lines of a function's processes, parsed. */
export async function jsonLogLines(fn: string): Promise<Record<string, unknown>[]> {
  return (await functionLogLines(fn))
    .filter((l) => l.startsWith("{"))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

/** The log line a request wrote (it reaches the log file asynchronously). */
export function logLineOf(fn: string, requestId: string): Promise<Record<string, unknown>> {
  return waitFor(
    `the ${fn} log line of ${requestId}`,
    async () => {
      // wpp-webhook's forward result shares the request id; it carries a `msg`, request lines none.
      const lines = (await jsonLogLines(fn)).filter((l) =>
        l.request_id === requestId && !("msg" in l)
      );
      if (lines.length > 1) throw new Error(`${requestId} logged ${lines.length} times`);
      return lines[0];
    },
    5_000,
    100,
  );
}
