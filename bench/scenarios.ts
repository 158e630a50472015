// The two paths under load. Reuse: one organisation whose session is linked, so every click is
// caller context, begin, one status call. Create: every request is a different organisation's
// first click, so every one provisions a new platform client.
import { type CellResult, runCell } from "./load.ts";
import { FunctionLog, type RequestLine } from "./function-log.ts";
import { resetStatements, rpcCalls } from "./db-stats.ts";
import type { Sql, Tenant } from "./fixtures.ts";

export type PathName = "reuse" | "create";

export interface CellRun {
  path: PathName;
  connections: number;
  load: CellResult;
  /** What the function logged for the requests of this cell. */
  lines: RequestLine[];
  /** RPC calls PostgreSQL executed during the cell. */
  pgCalls: Record<string, number>;
}

export interface PathContext {
  functionUrl: string;
  sql: Sql;
  log: FunctionLog;
}

async function measured(
  ctx: PathContext,
  path: PathName,
  connections: number,
  run: () => Promise<CellResult>,
): Promise<CellRun> {
  await ctx.log.mark();
  await resetStatements(ctx.sql);
  const load = await run();
  // Requests cut off by the end of a timed cell still finish inside the function; let them, so
  // the log and PostgreSQL count the same requests.
  await new Promise((r) => setTimeout(r, 300));
  const lines = await ctx.log.since(load.requests);
  return { path, connections, load, lines, pgCalls: await rpcCalls(ctx.sql) };
}

export async function reuseCell(
  ctx: PathContext,
  tenant: Tenant,
  connections: number,
  seconds: number,
): Promise<CellRun> {
  return await measured(ctx, "reuse", connections, () =>
    runCell({
      url: ctx.functionUrl,
      connections,
      seconds,
      tokenFor: () => tenant.token,
    }));
}

/** Hands out each tenant once: a token used twice would measure the reuse path instead. */
export class TenantPool {
  #next = 0;
  constructor(private readonly tenants: Tenant[]) {}

  take(): Tenant {
    const t = this.tenants[this.#next++];
    if (!t) throw new Error("the benchmark ran out of fresh organisations");
    return t;
  }

  get left(): number {
    return this.tenants.length - this.#next;
  }
}

export async function createCell(
  ctx: PathContext,
  pool: TenantPool,
  connections: number,
  amount: number,
): Promise<CellRun> {
  return await measured(ctx, "create", connections, () =>
    runCell({
      url: ctx.functionUrl,
      connections,
      amount,
      tokenFor: () => pool.take().token,
    }));
}
