// The fast paths under load, each through the gateway with the panel's headers:
// - reuse: wpp-create {} by an admin whose session is linked and whose stored state is fresh;
// - reuse_qr: the same click while a QR is on show (before the scan), state fresh;
// - status: wpp-status {session_name, force:true} by that admin, state fresh and linked.
// Each should be one read-only RPC (wpp_context) and no platform call; the function's log, the
// database's statement counts and the simulator's call counts each say whether it was.
import type { SimulatorAdmin } from "../dev/wpp-simulator/admin-client.ts";
import type { Sql, Tenant } from "./fixtures.ts";
import type { FunctionLog, RequestLine } from "./function-log.ts";
import { type CellResult, runCell } from "./load.ts";
import { resetStatements, type RpcStat, rpcStats } from "./db-stats.ts";
import { type CallDelta, callDelta } from "./sim-calls.ts";
import { type CpuSnapshot, type CpuUse, cpuUse } from "./cpu.ts";

export type FastPath = "reuse" | "reuse_qr" | "status";

export const PATH_LABEL: Record<FastPath, string> = {
  reuse: "reuse click, linked",
  reuse_qr: "reuse click, QR on show",
  status: "status poll {force:true}, linked",
};

export interface FastCell {
  path: FastPath;
  connections: number;
  load: CellResult;
  /** What the function logged for the requests of this cell. */
  lines: RequestLine[];
  /** RPCs PostgreSQL executed during the cell. */
  pg: Record<string, RpcStat>;
  /** Platform calls the simulator counted during the cell. */
  simCalls: CallDelta;
  /** CPU used during the cell, by component and by everything else on the machine. */
  cpu: CpuUse;
}

export interface FastContext {
  gatewayUrl: string;
  anonKey: string;
  sql: Sql;
  sim: SimulatorAdmin;
  logs: { create: FunctionLog; status: FunctionLog };
  cpu: () => Promise<CpuSnapshot>;
}

export interface FastTarget {
  tenant: Tenant;
  integrationId: string;
  session: string;
}

/**
 * Stored state counts as fresh for WPP_STATE_FRESH_SECONDS after the last event or read; in
 * production the session's own events (messages, QR rotations) keep it so. Here it is set
 * before each cell, which is shorter than that window: a lapse would show as platform calls.
 */
export async function freshen(sql: Sql, integrationId: string): Promise<void> {
  await sql`update public.wpp_integration_state set checked_at = now()
             where integration_id = ${integrationId}`;
}

export async function fastCell(
  ctx: FastContext,
  path: FastPath,
  target: FastTarget,
  connections: number,
  seconds: number,
): Promise<FastCell> {
  const fn = path === "status" ? "wpp-status" : "wpp-create";
  const log = path === "status" ? ctx.logs.status : ctx.logs.create;
  const body = path === "status" ? { session_name: target.session, force: true } : {};
  await freshen(ctx.sql, target.integrationId);
  await log.mark();
  await resetStatements(ctx.sql);
  const before = await ctx.sim.calls();
  const cpuBefore = await ctx.cpu();
  const load = await runCell({
    url: `${ctx.gatewayUrl}/functions/v1/${fn}`,
    method: "POST",
    headers: {
      "content-type": "application/json",
      apikey: ctx.anonKey,
      authorization: `Bearer ${target.tenant.token}`,
    },
    body: JSON.stringify(body),
    connections,
    seconds,
  });
  const cpu = cpuUse(cpuBefore, await ctx.cpu());
  // Requests cut off by the end of a timed cell still finish inside the function; let them, so
  // the log, PostgreSQL and the simulator count the same requests.
  await new Promise((r) => setTimeout(r, 300));
  const simCalls = callDelta(before, await ctx.sim.calls());
  const lines = await log.requests(load.requests);
  return { path, connections, load, lines, pg: await rpcStats(ctx.sql), simCalls, cpu };
}
