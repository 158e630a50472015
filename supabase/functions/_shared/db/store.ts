// The database operations the functions need, each one RPC (one round trip, see the migrations).
// Every decision that must be atomic is taken inside the database; this module only calls it and
// validates what comes back. Tests may pass their own implementation of WppStore.
import { z } from "zod";
import { type DbTiming, type RpcContext, type ServiceClient, timedRpc } from "./rpc.ts";
import type { Json } from "./database.types.ts";

const ms = z.coerce.number().nullable();

/** One wpp integration as the database sees it now. Holds credentials: it stays in the function. */
export const IntegrationSchema = z.object({
  integration_id: z.string(),
  organization_id: z.string(),
  name: z.string().nullable(),
  is_active: z.boolean(),
  is_primary: z.boolean(),
  session: z.string().nullable(),
  api_key: z.string().nullable(),
  jwt_token: z.string().nullable(),
  jwt_expires_at: ms,
  /** The organizationId the platform knows this number by. */
  platform_org_id: z.string(),
  /** session and apiKey can be used as they are (public.wpp_session_is_valid). */
  valid: z.boolean(),
  placeholder: z.boolean(),
  session_state: z.string(),
  /** A create holds the provisioning lease right now. */
  provisioning: z.boolean(),
  /** A create's outcome is unknown: no create until cooldown_until. */
  cooldown: z.boolean(),
  cooldown_until: z.string().nullable(),
  /** A platform refresh of this session is running. */
  refreshing: z.boolean(),
  connection: z.enum(["unknown", "starting", "qr", "connected", "offline"]),
  connection_at: ms,
  /** Something was heard about the session within the freshness window. */
  fresh: z.boolean(),
  /** Only for owners and admins. */
  qr: z.string().nullable(),
  qr_at: ms,
  ever_connected: z.boolean(),
  disconnected: z.boolean(),
  stop_pending: z.boolean(),
  /** The platform posts this session's events to the current webhook URL. */
  webhook_current: z.boolean(),
  session_created_at: ms,
});
export type Integration = z.infer<typeof IntegrationSchema>;

const ContextSchema = z.object({
  organization_id: z.string().nullable(),
  role: z.enum(["owner", "admin", "member"]).nullable(),
  found: z.boolean(),
  replaced: z.boolean(),
  integration: IntegrationSchema.nullable(),
});
export type CallerContext = z.infer<typeof ContextSchema>;

const retryAfter = z.number().int().nullish();

const BeginSchema = z.discriminatedUnion("decision", [
  IntegrationSchema.extend({
    decision: z.literal("reuse"),
    reason: z.string(),
  }),
  IntegrationSchema.extend({
    decision: z.literal("create"),
    reason: z.string(),
    lease_id: z.string(),
    old_session: z.string().nullable(),
    old_api_key: z.string().nullable(),
    old_jwt_token: z.string().nullable(),
    old_jwt_expires_at: ms,
  }),
  IntegrationSchema.extend({
    decision: z.literal("busy"),
    reason: z.string(),
    retry_after_seconds: retryAfter,
  }),
  IntegrationSchema.extend({
    decision: z.literal("cooldown"),
    retry_after_seconds: retryAfter,
  }),
  z.object({ decision: z.literal("limit"), count: z.number(), max: z.number() }),
  z.object({ decision: z.literal("not_found") }),
]);
export type BeginResult = z.infer<typeof BeginSchema>;
export type CreateDecision = Extract<BeginResult, { decision: "create" }>;

const CompleteSchema = z.object({
  integration_id: z.string(),
  session: z.string(),
  action: z.enum(["created", "recreated"]),
  webhook_secret: z.string(),
  refresh_lease_id: z.string(),
});
export type CompleteResult = z.infer<typeof CompleteSchema>;

const RefreshBeginSchema = IntegrationSchema.extend({
  granted: z.boolean(),
  reason: z.string().nullish(),
  refresh_lease_id: z.string().nullish(),
  webhook_secret: z.string().nullish(),
}).or(z.object({ granted: z.literal(false), reason: z.literal("not_found") }));
export type RefreshBegin = z.infer<typeof RefreshBeginSchema>;

const WebhookEventSchema = z.object({
  found: z.boolean(),
  integration_id: z.string().optional(),
  organization_id: z.string().optional(),
  /** The integration's current session. */
  session: z.string().nullish(),
  applied: z.boolean().optional(),
  forward: z.boolean().optional(),
  reason: z.string().optional(),
});
export type WebhookEventResult = z.infer<typeof WebhookEventSchema>;

const DisconnectSchema = z.discriminatedUnion("outcome", [
  z.object({ outcome: z.literal("not_found") }),
  z.object({
    outcome: z.literal("busy"),
    reason: z.string(),
    retry_after_seconds: z.number().int(),
  }),
  IntegrationSchema.extend({ outcome: z.literal("marked"), stop_needed: z.boolean() }),
  IntegrationSchema.extend({ outcome: z.literal("already"), stop_needed: z.boolean() }),
]);
export type DisconnectResult = z.infer<typeof DisconnectSchema>;

const ClaimSchema = z.discriminatedUnion("state", [
  z.object({ state: z.literal("claimed"), claim_id: z.string() }),
  z.object({
    state: z.literal("replay"),
    http_status: z.number().int(),
    response: z.record(z.string(), z.unknown()),
  }),
  z.object({ state: z.literal("in_flight"), retry_after_seconds: z.number().int() }),
  z.object({ state: z.literal("mismatch") }),
]);
export type IdempotencyClaim = z.infer<typeof ClaimSchema>;

export type Mode = "connect" | "recreate" | "add_new";
export type Connection = Integration["connection"];
export type EventAction = "failed" | "session_stopped" | "stop_failed";

export interface Tuning {
  leaseSeconds: number;
  repeatWindowSeconds: number;
  maxNumbers: number;
  freshSeconds: number;
  cooldownSeconds: number;
  refreshLeaseSeconds: number;
}

export interface WppStore {
  context(
    userId: string,
    target?: { integrationId?: string; session?: string },
  ): Promise<CallerContext>;
  begin(input: {
    organizationId: string;
    actor: string;
    mode: Mode;
    integrationId?: string;
    deadSession?: string;
  }): Promise<BeginResult>;
  complete(input: {
    integrationId: string;
    leaseId: string;
    session: string;
    apiKey: string;
    actor: string;
    details: Record<string, unknown>;
  }): Promise<CompleteResult>;
  fail(input: {
    integrationId: string;
    leaseId: string;
    reason: string;
    details: Record<string, unknown>;
    actor: string;
    outcomeUnknown: boolean;
  }): Promise<void>;
  refreshBegin(integrationId: string, session: string, withQr: boolean): Promise<RefreshBegin>;
  refreshEnd(input: {
    integrationId: string;
    leaseId: string;
    session: string;
    connection?: Exclude<Connection, "unknown">;
    qr?: string;
    observedAt?: number;
    /** The current webhook URL was registered on the platform by this refresh. */
    webhookRegistered?: boolean;
  }): Promise<void>;
  webhookEvent(input: {
    secretHash: string;
    account: string | null;
    connection: Exclude<Connection, "unknown"> | null;
    qr: string | null;
    eventAt: number | null;
  }): Promise<WebhookEventResult>;
  storeToken(integrationId: string, session: string, token: string, expiresAt: number): Promise<
    boolean
  >;
  disconnect(integrationId: string, organizationId: string, actor: string): Promise<
    DisconnectResult
  >;
  disconnectStopped(input: {
    integrationId: string;
    session: string;
    ok: boolean;
    details: Record<string, unknown>;
    actor: string;
  }): Promise<void>;
  idempotencyClaim(input: {
    userId: string;
    organizationId: string;
    key: string;
    fingerprint: string;
  }): Promise<IdempotencyClaim>;
  idempotencyFinish(input: {
    userId: string;
    key: string;
    claimId: string;
    httpStatus: number;
    response: Record<string, unknown>;
  }): Promise<void>;
  recordEvent(input: {
    organizationId: string;
    integrationId: string;
    actor: string;
    action: EventAction;
    details: Record<string, unknown>;
  }): Promise<void>;
}

/** Builds a store per request: its deadline bounds every call, its log gets every timing. */
export type StoreFactory = (request: { deadline: number; timing?: DbTiming }) => WppStore;

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? undefined : new Date(ms).toISOString();

const json = (value: Record<string, unknown>) => value as Json;

export function createSupabaseStore(client: ServiceClient, tuning: Tuning): StoreFactory {
  return ({ deadline, timing }) => {
    const ctx: RpcContext = { client, deadline, timing };
    const call = timedRpc;
    const nothing = z.unknown();

    return {
      context: (userId, target = {}) =>
        call(ctx, "wpp_context", {
          p_user_id: userId,
          p_integration_id: target.integrationId ?? undefined,
          p_session: target.session ?? undefined,
          p_fresh_seconds: tuning.freshSeconds,
        }, ContextSchema),
      begin: (i) =>
        call(ctx, "wpp_provision_begin", {
          p_organization_id: i.organizationId,
          p_actor: i.actor,
          p_mode: i.mode,
          p_integration_id: i.integrationId ?? undefined,
          p_lease_seconds: tuning.leaseSeconds,
          p_repeat_window_seconds: tuning.repeatWindowSeconds,
          p_max_numbers: tuning.maxNumbers,
          p_dead_session: i.deadSession ?? undefined,
          p_fresh_seconds: tuning.freshSeconds,
        }, BeginSchema),
      complete: (i) =>
        call(ctx, "wpp_provision_complete", {
          p_integration_id: i.integrationId,
          p_lease_id: i.leaseId,
          p_session: i.session,
          p_api_key: i.apiKey,
          p_actor: i.actor,
          p_details: json(i.details),
          p_refresh_lease_seconds: tuning.refreshLeaseSeconds,
        }, CompleteSchema),
      fail: async (i) => {
        await call(ctx, "wpp_provision_fail", {
          p_integration_id: i.integrationId,
          p_lease_id: i.leaseId,
          p_reason: i.reason,
          p_details: json(i.details),
          p_actor: i.actor,
          p_outcome_unknown: i.outcomeUnknown,
          p_cooldown_seconds: tuning.cooldownSeconds,
        }, nothing);
      },
      refreshBegin: (integrationId, session, withQr) =>
        call(ctx, "wpp_refresh_begin", {
          p_integration_id: integrationId,
          p_session: session,
          p_lease_seconds: tuning.refreshLeaseSeconds,
          p_fresh_seconds: tuning.freshSeconds,
          p_with_qr: withQr,
        }, RefreshBeginSchema),
      refreshEnd: async (i) => {
        await call(ctx, "wpp_refresh_end", {
          p_integration_id: i.integrationId,
          p_refresh_lease_id: i.leaseId,
          p_session: i.session,
          p_connection: i.connection ?? undefined,
          p_qr: i.qr ?? undefined,
          p_observed_at: iso(i.observedAt),
          p_webhook_registered: i.webhookRegistered ?? false,
        }, nothing);
      },
      webhookEvent: (i) =>
        call(ctx, "wpp_webhook_event", {
          p_secret_hash: `\\x${i.secretHash}`,
          p_account: i.account ?? undefined,
          p_connection: i.connection ?? undefined,
          p_qr: i.qr ?? undefined,
          p_event_at: iso(i.eventAt),
        }, WebhookEventSchema),
      storeToken: (integrationId, session, token, expiresAt) =>
        call(ctx, "wpp_store_token", {
          p_integration_id: integrationId,
          p_session: session,
          p_token: token,
          p_expires_at: expiresAt,
        }, z.boolean()),
      disconnect: (integrationId, organizationId, actor) =>
        call(ctx, "wpp_disconnect", {
          p_integration_id: integrationId,
          p_organization_id: organizationId,
          p_actor: actor,
        }, DisconnectSchema),
      disconnectStopped: async (i) => {
        await call(ctx, "wpp_disconnect_stopped", {
          p_integration_id: i.integrationId,
          p_session: i.session,
          p_ok: i.ok,
          p_details: json(i.details),
          p_actor: i.actor,
        }, nothing);
      },
      idempotencyClaim: (i) =>
        call(ctx, "wpp_idempotency_claim", {
          p_user_id: i.userId,
          p_organization_id: i.organizationId,
          p_key: i.key,
          p_fingerprint: i.fingerprint,
          p_claim_seconds: tuning.leaseSeconds,
        }, ClaimSchema),
      idempotencyFinish: async (i) => {
        await call(ctx, "wpp_idempotency_finish", {
          p_user_id: i.userId,
          p_key: i.key,
          p_claim_id: i.claimId,
          p_http_status: i.httpStatus,
          p_response: json(i.response),
        }, nothing);
      },
      recordEvent: async (i) => {
        await call(ctx, "wpp_record_event", {
          p_organization_id: i.organizationId,
          p_integration_id: i.integrationId,
          p_actor: i.actor,
          p_action: i.action,
          p_details: json(i.details),
        }, nothing);
      },
    };
  };
}
