// One database round trip: an RPC through PostgREST with the service role, bounded by the
// request's deadline, timed for the request's log, its answer validated, its failure turned into
// the functions' error model.
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import type { z } from "zod";
import { AppError } from "../errors.ts";
import type { Database } from "./database.types.ts";

/** The service-role client, typed by the types generated from the migrations. */
export type ServiceClient = SupabaseClient<Database>;
type Functions = Database["public"]["Functions"];
/** An RPC of this project: its name and its arguments are checked against the migrations. */
export type RpcName = keyof Functions & string;

export type DbTiming = (op: string, ms: number, ok: boolean) => void;

/** One client (and its connection pool) per process. */
export function createServiceClient(supabaseUrl: string, serviceRoleKey: string): ServiceClient {
  return createClient<Database>(supabaseUrl, serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
}

/** Where and until when one request may talk to the database. */
export interface RpcContext {
  client: ServiceClient;
  /** ms epoch after which a call is abandoned. */
  deadline: number;
  timing?: DbTiming;
}

function dbFailure(op: string, code: string | undefined): AppError {
  if (code === "WP409") {
    return new AppError(
      "provisioning_conflict",
      "another request took over this provisioning; try again",
    );
  }
  // lock_not_available: lock_timeout fired because another transaction holds a row.
  if (code === "55P03") {
    return new AppError(
      "database_busy",
      `database call ${op} waited too long for a row another transaction holds; try again`,
      { retryAfterSeconds: 2 },
    );
  }
  // The database's own message may name internals: callers get the operation and the code only.
  return new AppError("internal_error", `database call ${op} failed (${code ?? "unknown"})`);
}

export async function timedRpc<F extends RpcName, T>(
  ctx: RpcContext,
  op: F,
  args: Functions[F]["Args"],
  schema: z.ZodType<T>,
): Promise<T> {
  const t0 = performance.now();
  let ok = false;
  const left = ctx.deadline - Date.now();
  try {
    if (left <= 0) throw timedOut(op);
    const signal = AbortSignal.timeout(left);
    let answer;
    try {
      answer = await ctx.client.rpc(op, args).abortSignal(signal);
    } catch {
      throw signal.aborted ? timedOut(op) : unavailable(op);
    }
    if (answer.error) {
      // supabase-js reports an aborted fetch as an error object rather than a throw.
      if (signal.aborted) throw timedOut(op);
      if (!answer.error.code && answer.status === 0) throw unavailable(op);
      throw dbFailure(op, answer.error.code);
    }
    const parsed = schema.safeParse(answer.data ?? null);
    if (!parsed.success) {
      throw new AppError("internal_error", `database call ${op} answered an unexpected shape`);
    }
    ok = true;
    return parsed.data;
  } finally {
    ctx.timing?.(op, performance.now() - t0, ok);
  }
}

function timedOut(op: string): AppError {
  return new AppError(
    "database_timeout",
    `the database did not answer ${op} before the request's deadline; try again`,
    { retryAfterSeconds: 2 },
  );
}

function unavailable(op: string): AppError {
  return new AppError("database_unavailable", `the database is unreachable (${op}); try again`, {
    retryAfterSeconds: 2,
  });
}
