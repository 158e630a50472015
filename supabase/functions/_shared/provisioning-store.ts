// Database access for provisioning: each method is one RPC through PostgREST (one round trip),
// and every decision that must be atomic is taken inside the database (see the migrations).
import type { SupabaseClient } from "@supabase/supabase-js";
import { z } from "zod";
import { createServiceClient, type DbTiming, timedRpc } from "./rpc.ts";
import type { TokenStore } from "./token-cache.ts";

export type { DbTiming };

export type Decision = "reuse" | "create" | "busy";

const CallerContextSchema = z.object({
  organization_id: z.string().nullable(),
  role: z.enum(["owner", "admin", "member"]).nullable(),
});
export type CallerContext = z.infer<typeof CallerContextSchema>;

const BeginSchema = z.object({
  decision: z.enum(["reuse", "create", "busy"]),
  integration_id: z.string(),
  organization_id: z.string(),
  lease_id: z.string().nullable().optional(),
  reason: z.string().nullable().optional(),
  session: z.string().nullable().optional(),
  api_key: z.string().nullable().optional(),
  jwt_token: z.string().nullable().optional(),
  jwt_expires_at: z.coerce.number().nullable().optional(),
  webhook_key: z.string(),
  old_session: z.string().nullable().optional(),
  old_api_key: z.string().nullable().optional(),
  retry_after_seconds: z.number().nullable().optional(),
  session_created_at: z.number().nullable().optional(),
});
export type BeginResult = z.infer<typeof BeginSchema>;

export interface BeginInput {
  organizationId: string;
  force: boolean;
  actor: string;
  leaseSeconds: number;
  deadSession?: string;
}

export interface CompleteInput {
  integrationId: string;
  leaseId: string;
  session: string;
  apiKey: string;
  actor: string;
  details: Record<string, unknown>;
}

export type EventAction =
  | "session_stopped"
  | "stop_failed"
  | "webhook_registered"
  | "failed"
  | "token_refreshed";

/** The database operations the handlers need; tests may pass their own implementation. */
export interface ProvisioningStore extends TokenStore {
  callerContext(userId: string): Promise<CallerContext>;
  begin(input: BeginInput): Promise<BeginResult>;
  complete(input: CompleteInput): Promise<void>;
  fail(
    integrationId: string,
    leaseId: string,
    reason: string,
    details: Record<string, unknown>,
    actor: string,
  ): Promise<void>;
  recordEvent(
    organizationId: string,
    integrationId: string | null,
    actor: string,
    action: EventAction,
    details: Record<string, unknown>,
  ): Promise<void>;
}

/** Builds a store per request, so each request's log gets its own database timings. */
export type StoreFactory = (timing?: DbTiming) => ProvisioningStore;

export function createSupabaseStore(
  opts: { supabaseUrl: string; serviceRoleKey: string },
): StoreFactory {
  const client = createServiceClient(opts.supabaseUrl, opts.serviceRoleKey);
  return (timing) => supabaseStore(client, timing);
}

function supabaseStore(client: SupabaseClient, timing?: DbTiming): ProvisioningStore {
  const rpc = <T>(op: string, args: Record<string, unknown>, schema?: z.ZodType<T>) =>
    timedRpc(client, op, args, schema, timing);

  return {
    callerContext: (userId) =>
      rpc("wpp_caller_context", { p_user_id: userId }, CallerContextSchema),
    begin: (i) =>
      rpc("wpp_provision_begin", {
        p_organization_id: i.organizationId,
        p_force: i.force,
        p_actor: i.actor,
        p_lease_seconds: i.leaseSeconds,
        p_dead_session: i.deadSession ?? null,
      }, BeginSchema),
    complete: async (i) => {
      await rpc("wpp_provision_complete", {
        p_integration_id: i.integrationId,
        p_lease_id: i.leaseId,
        p_session: i.session,
        p_api_key: i.apiKey,
        p_actor: i.actor,
        p_details: i.details,
      });
    },
    fail: async (integrationId, leaseId, reason, details, actor) => {
      await rpc("wpp_provision_fail", {
        p_integration_id: integrationId,
        p_lease_id: leaseId,
        p_reason: reason,
        p_details: details,
        p_actor: actor,
      });
    },
    storeToken: (integrationId, session, token, expiresAt) =>
      rpc("wpp_store_token", {
        p_integration_id: integrationId,
        p_session: session,
        p_token: token,
        p_expires_at: expiresAt,
      }, z.boolean()),
    recordEvent: async (organizationId, integrationId, actor, action, details) => {
      await rpc("wpp_record_event", {
        p_organization_id: organizationId,
        p_integration_id: integrationId,
        p_actor: actor,
        p_action: action,
        p_details: details,
      });
    },
  };
}
