// Database access for wpp-status: the caller's organisation and the token cache come from the
// provisioning store; the one read of its own is wpp_integration_for_status, which neither locks
// nor writes (a poll every two seconds must not touch the provisioning lock or the audit trail).
import { z } from "zod";
import { type CallerContext, createSupabaseStore } from "../_shared/provisioning-store.ts";
import { createServiceClient, type DbTiming, timedRpc } from "../_shared/rpc.ts";
import type { TokenStore } from "../_shared/token-cache.ts";

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

export interface StatusStore extends TokenStore {
  callerContext(userId: string): Promise<CallerContext>;
  /** The organisation's primary WhatsApp/WPP integration, or null when it has none. */
  integrationForStatus(organizationId: string): Promise<StatusIntegration | null>;
}

export type StatusStoreFactory = (timing?: DbTiming) => StatusStore;

export function createStatusStore(
  opts: { supabaseUrl: string; serviceRoleKey: string },
): StatusStoreFactory {
  const provisioning = createSupabaseStore(opts);
  const client = createServiceClient(opts.supabaseUrl, opts.serviceRoleKey);
  return (timing) => {
    const shared = provisioning(timing);
    return {
      callerContext: (userId) => shared.callerContext(userId),
      storeToken: (...args) => shared.storeToken(...args),
      integrationForStatus: (organizationId) =>
        timedRpc(
          client,
          "wpp_integration_for_status",
          { p_organization_id: organizationId },
          IntegrationSchema.nullable(),
          timing,
        ),
    };
  };
}
