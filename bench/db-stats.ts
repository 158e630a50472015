// Database round trips as PostgreSQL saw them, independent of what the function says it did.
// PostgREST runs each RPC as one top-level statement naming the function, so per-function call
// counts in pg_stat_statements are the round trips.
import type { Sql } from "./fixtures.ts";

const RPC = /"(wpp_[a-z_]+)"\s*\(/;

export async function enableStatements(sql: Sql): Promise<void> {
  await sql`create extension if not exists pg_stat_statements with schema extensions`;
}

export async function resetStatements(sql: Sql): Promise<void> {
  await sql`select extensions.pg_stat_statements_reset()`;
}

/** Calls per RPC since the last reset. */
export async function rpcCalls(sql: Sql): Promise<Record<string, number>> {
  const rows = await sql<{ query: string; calls: string }[]>`
    select query, calls::text from extensions.pg_stat_statements where query like '%"wpp\_%'`;
  const out: Record<string, number> = {};
  for (const r of rows) {
    const name = RPC.exec(r.query)?.[1];
    if (name) out[name] = (out[name] ?? 0) + Number(r.calls);
  }
  return out;
}

export function totalCalls(calls: Record<string, number>): number {
  return Object.values(calls).reduce((s, n) => s + n, 0);
}
