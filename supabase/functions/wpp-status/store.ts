// Database access for wpp-status: the caller's organisation and the token cache come from the
// provisioning store; the one read of its own is wpp_integration_for_status, which neither locks
// nor writes (a poll every two seconds must not touch the provisioning lock or the audit trail).
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { z } from "zod";
import { AppError } from "../_shared/errors.ts";
import {
  type CallerContext,
  createSupabaseStore,
  type DbTiming,
} from "../_shared/provisioning-store.ts";

const IntegrationSchema = z.object({
  integration_id: z.string(),
  session: z.string().nullish(),
  api_key: z.string().nullish(),
  jwt_token: z.string().nullish(),
  jwt_expires_at: z.coerce.number().nullish(),
  /** ms epoch the stored session was created, when known. */
  session_created_at: z.number().nullish(),
  session_state: z.string(),
  /** The stored session and apiKey can be used as they are (public.wpp_session_is_valid). */
  valid: z.boolean(),
  /** A wpp-create request holds the provisioning lease right now. */
  provisioning: z.boolean(),
});

/** Holds credentials: it stays inside the function. */
export type StatusIntegration = z.infer<typeof IntegrationSchema>;

export interface StatusStore {
  callerContext(userId: string): Promise<CallerContext>;
  /** The organisation's primary WhatsApp/WPP integration, or null when it has none. */
  integrationForStatus(organizationId: string): Promise<StatusIntegration | null>;
  storeToken(
    integrationId: string,
    session: string,
    token: string,
    expiresAt: number,
  ): Promise<boolean>;
}

export type StatusStoreFactory = (timing?: DbTiming) => StatusStore;

export function createStatusStore(
  opts: { supabaseUrl: string; serviceRoleKey: string },
): StatusStoreFactory {
  const provisioning = createSupabaseStore(opts);
  const client: SupabaseClient = createClient(opts.supabaseUrl, opts.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
  return (timing) => {
    const shared = provisioning(timing);
    return {
      callerContext: (userId) => shared.callerContext(userId),
      storeToken: (...args) => shared.storeToken(...args),
      integrationForStatus: (organizationId) => readIntegration(client, organizationId, timing),
    };
  };
}

async function readIntegration(
  client: SupabaseClient,
  organizationId: string,
  timing?: DbTiming,
): Promise<StatusIntegration | null> {
  const op = "wpp_integration_for_status";
  const t0 = performance.now();
  let ok = false;
  try {
    let answer;
    try {
      answer = await client.rpc(op, { p_organization_id: organizationId });
    } catch {
      throw new AppError("internal_error", `database call ${op} failed (unreachable)`);
    }
    if (answer.error) {
      throw new AppError("internal_error", `database call ${op} failed (${answer.error.code})`);
    }
    const parsed = IntegrationSchema.nullable().safeParse(answer.data ?? null);
    if (!parsed.success) {
      throw new AppError("internal_error", `database call ${op} answered an unexpected shape`);
    }
    ok = true;
    return parsed.data;
  } finally {
    timing?.(op, performance.now() - t0, ok);
  }
}
