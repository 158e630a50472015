// One database round trip: an RPC through PostgREST with the service role, timed for the
// request's log, its answer validated, its failure turned into the functions' error model.
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import type { z } from "zod";
import { AppError } from "./errors.ts";

export type DbTiming = (op: string, ms: number, ok: boolean) => void;

/** One client (and its connection pool) per process. */
export function createServiceClient(supabaseUrl: string, serviceRoleKey: string): SupabaseClient {
  return createClient(supabaseUrl, serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
}

function dbFailure(op: string, code: string | undefined): AppError {
  if (code === "WP409") {
    return new AppError(
      "provisioning_conflict",
      "another request took over this provisioning; try again",
    );
  }
  // The database's own message may name internals: callers get the operation and the code only.
  return new AppError("internal_error", `database call ${op} failed (${code ?? "unknown"})`);
}

export async function timedRpc<T>(
  client: SupabaseClient,
  op: string,
  args: Record<string, unknown>,
  schema: z.ZodType<T> | undefined,
  timing: DbTiming | undefined,
): Promise<T> {
  const t0 = performance.now();
  let ok = false;
  try {
    let answer;
    try {
      answer = await client.rpc(op, args);
    } catch {
      throw new AppError("internal_error", `database call ${op} failed (unreachable)`);
    }
    if (answer.error) throw dbFailure(op, answer.error.code);
    if (!schema) {
      ok = true;
      return answer.data as T;
    }
    const parsed = schema.safeParse(answer.data ?? null);
    if (!parsed.success) {
      throw new AppError("internal_error", `database call ${op} answered an unexpected shape`);
    }
    ok = true;
    return parsed.data;
  } finally {
    timing?.(op, performance.now() - t0, ok);
  }
}
