// Database round trips as PostgreSQL saw them, independent of what the function says it did.
// PostgREST runs each RPC as one top-level statement naming the function, so per-function call
// counts in pg_stat_statements are the round trips, and their execution time is what PostgreSQL
// itself spent on them.
import type { Sql } from "./fixtures.ts";

const RPC = /"(wpp_[a-z_]+)"\s*\(/;

export interface RpcStat {
  calls: number;
  /** ms inside PostgreSQL, all calls together. */
  execMs: number;
}

export async function enableStatements(sql: Sql): Promise<void> {
  await sql`create extension if not exists pg_stat_statements with schema extensions`;
}

export async function resetStatements(sql: Sql): Promise<void> {
  await sql`select extensions.pg_stat_statements_reset()`;
}

/** Calls and execution time per RPC since the last reset. */
export async function rpcStats(sql: Sql): Promise<Record<string, RpcStat>> {
  const rows = await sql<{ query: string; calls: string; ms: number }[]>`
    select query, calls::text, total_exec_time as ms
      from extensions.pg_stat_statements where query like '%"wpp\_%'`;
  const out: Record<string, RpcStat> = {};
  for (const r of rows) {
    const name = RPC.exec(r.query)?.[1];
    if (!name) continue;
    const s = out[name] ??= { calls: 0, execMs: 0 };
    s.calls += Number(r.calls);
    s.execMs += Number(r.ms);
  }
  return out;
}

export function totalCalls(stats: Record<string, RpcStat>): number {
  return Object.values(stats).reduce((s, r) => s + r.calls, 0);
}

export function totalExecMs(stats: Record<string, RpcStat>): number {
  return Object.values(stats).reduce((s, r) => s + r.execMs, 0);
}
