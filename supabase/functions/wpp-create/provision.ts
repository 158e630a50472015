// The «Подключить WhatsApp» flow: reuse a usable session, or create exactly one new platform
// client and store it before anything else can fail. The database decides reuse / create / busy /
// cooldown atomically (wpp_provision_begin); this module follows its decision.
//
// One click of the CRM's panel may arrive four times (its helper retries 5xx and network errors),
// and a double click twice. What keeps that to one platform create:
// - the provisioning lease: one create at a time per integration;
// - the cooldown: a create whose outcome is unknown (the platform may have acted, then timed out,
//   answered 5xx or garbage) blocks further creates for WPP_CREATE_COOLDOWN_SECONDS, so retries
//   get 409 instead of a second client;
// - the repeat window: a recreate or add_new repeated shortly after a create gets that session.
import { AppError } from "../_shared/errors.ts";
import { platformFailure } from "../_shared/platform-errors.ts";
import { isYoungSession } from "../_shared/session-age.ts";
import {
  type ConnectionEnv,
  observeConnection,
  type Observed,
  SessionReplaced,
  webhookUrl,
} from "../_shared/connection.ts";
import type {
  BeginResult,
  CallerContext,
  CreateDecision,
  Integration,
  Mode,
} from "../_shared/store.ts";
import { isWppError, type StartResult, WppMalformedError } from "../_shared/wpp/mod.ts";

export type ClickStatus = "connected" | "qr_issued" | "starting";

export type ProvisionEnv = ConnectionEnv;

export interface ClickInput {
  organizationId: string;
  mode: Mode;
  integrationId?: string;
  /** What wpp_context said about the caller's organisation and the targeted integration. */
  context: CallerContext;
}

export interface ClickOutcome {
  integrationId: string;
  session: string;
  apiKey: string;
  status: ClickStatus;
  qrcode?: string;
  created: boolean;
  /** What happened, in the audit trail's words where there is an audit event. */
  outcome: "reused" | "created" | "recreated";
  reason?: string;
}

const BUSY_POLL_MS = 200;

function clickStatus(o: Observed): { status: ClickStatus; qrcode?: string } {
  if (o.connection === "connected") return { status: "connected" };
  if (o.connection === "qr" && o.qr) return { status: "qr_issued", qrcode: o.qr };
  return { status: "starting" };
}

function fromStart(start: StartResult): { status: ClickStatus; qrcode?: string } {
  if (start.state === "connected") return { status: "connected" };
  if (start.state === "qr" && start.qr) return { status: "qr_issued", qrcode: start.qr };
  return { status: "starting" };
}

/** A platform failure after which the platform may or may not have created a client. */
function outcomeUnknown(e: unknown): boolean {
  return isWppError(e) &&
    (e.code === "platform_timeout" || e.code === "platform_unreachable" ||
      e.code === "platform_error" || e.code === "platform_malformed");
}

function errorDetails(e: unknown): Record<string, unknown> {
  if (isWppError(e)) {
    return {
      code: e.code,
      op: e.op,
      http_status: e.status ?? null,
      // Already scrubbed of every credential the client knows, and cut to one short line.
      platform_said: e.platformMessage ?? null,
      ...(e instanceof WppMalformedError && e.orphanSession
        ? { orphan_session: e.orphanSession }
        : {}),
    };
  }
  if (e instanceof AppError) return { code: e.code };
  return { code: "internal_error" };
}

function usableAsIs(i: Integration): boolean {
  return i.valid && i.is_active && !i.provisioning && !i.cooldown;
}

/**
 * Asks the database for a decision. While another request holds the lease (or a refresh of the
 * session is running) every click waits, bounded, and asks again: a double-clicked recreate or
 * add_new then finds the session the first one made.
 */
async function beginOrWait(
  env: ProvisionEnv,
  input: ClickInput,
  deadSession?: string,
): Promise<Exclude<BeginResult, { decision: "busy" }>> {
  const waitUntil = Math.min(env.now() + env.busyWaitMs, env.deadline);
  while (true) {
    const begin = await env.store.begin({
      organizationId: input.organizationId,
      actor: env.callerId,
      mode: input.mode,
      integrationId: input.integrationId,
      deadSession,
    });
    if (begin.decision !== "busy") return begin;
    if (env.now() + BUSY_POLL_MS > waitUntil) {
      throw new AppError(
        "provisioning_in_progress",
        "another request is connecting this WhatsApp number right now; try again shortly",
        { retryAfterSeconds: Math.min(Math.max(1, begin.retry_after_seconds ?? 1), 5) },
      );
    }
    await env.sleep(BUSY_POLL_MS);
  }
}

export async function click(env: ProvisionEnv, input: ClickInput): Promise<ClickOutcome> {
  const known = input.context.integration;
  if (input.mode === "connect" && known && usableAsIs(known)) {
    return await reuseOrHeal(env, input, known, "valid_session");
  }
  return await decide(env, input, await beginOrWait(env, input));
}

async function decide(
  env: ProvisionEnv,
  input: ClickInput,
  begin: Exclude<BeginResult, { decision: "busy" }>,
): Promise<ClickOutcome> {
  switch (begin.decision) {
    case "not_found":
      throw new AppError(
        "not_found",
        "no WhatsApp number with this integration_id in your organisation",
      );
    case "limit":
      throw new AppError(
        "number_limit_reached",
        `your organisation already has ${begin.count} WhatsApp numbers, the most allowed (${begin.max}); disconnect one first`,
      );
    case "cooldown":
      throw new AppError(
        "create_cooldown",
        "the WPP Platform may have created a session a moment ago without confirming it; " +
          "to avoid a duplicate, no new session is created until the cooldown ends",
        { retryAfterSeconds: Math.max(1, begin.retry_after_seconds ?? 1) },
      );
    case "reuse":
      return await reuseOrHeal(env, input, begin, begin.reason);
    case "create":
      return await create(env, input, begin);
  }
}

async function reuse(env: ProvisionEnv, integration: Integration): Promise<ClickOutcome> {
  const session = integration.session!;
  const observed = await observeConnection(env, integration, "click", true);
  return {
    integrationId: integration.integration_id,
    session,
    apiKey: integration.api_key!,
    ...clickStatus(observed),
    created: false,
    outcome: "reused",
  };
}

/** A reuse whose failures are recorded; a dead key (and only that) becomes a new session. */
async function reuseOrHeal(
  env: ProvisionEnv,
  input: ClickInput,
  integration: Integration,
  reason: string,
  healed = false,
): Promise<ClickOutcome> {
  try {
    return { ...await reuse(env, integration), reason };
  } catch (e) {
    if (e instanceof SessionReplaced && !healed) {
      // A recreate replaced the session while this click looked at it: answer with the new one.
      const ctx = await env.store.context(env.callerId, {
        integrationId: integration.integration_id,
      });
      if (ctx.integration?.valid) {
        return await reuseOrHeal(env, input, ctx.integration, reason, true);
      }
      throw new AppError(
        "provisioning_in_progress",
        "this WhatsApp number is being replaced right now; try again shortly",
        { retryAfterSeconds: 2 },
      );
    }
    // A key refused right after its create is the platform's known activation delay, not death.
    const deadKey = isWppError(e) && e.code === "invalid_api_key" &&
      !isYoungSession(integration.session_created_at, env.now(), env.freshKeyGraceMs);
    if (deadKey && !healed) {
      // Only the platform's own refusal of the key justifies a new session. The database
      // re-checks that the dead session is still the stored one.
      const again = await beginOrWait(
        env,
        { ...input, mode: "connect", integrationId: integration.integration_id },
        integration.session ?? undefined,
      );
      if (again.decision === "create") return await create(env, input, again);
      if (again.decision === "reuse") return await reuseOrHeal(env, input, again, reason, true);
      return await decide(env, input, again);
    }
    await env.store.recordEvent({
      organizationId: input.organizationId,
      integrationId: integration.integration_id,
      actor: env.callerId,
      action: "failed",
      details: { stage: "reuse", session: integration.session, ...errorDetails(e) },
    }).catch((err) => env.warn("record_failed", err));
    throw isWppError(e) ? platformFailure(e) : e;
  }
}

/** Stops the replaced session on the platform, best effort; the audit trail says how it went. */
async function stopOldSession(env: ProvisionEnv, input: ClickInput, begin: CreateDecision) {
  const session = begin.old_session;
  if (!session || !begin.old_api_key) return;
  let action: "session_stopped" | "stop_failed" = "session_stopped";
  let details: Record<string, unknown> = { session, reason: begin.reason };
  const client = env.platform.forSession({
    apiKey: begin.old_api_key,
    session,
    storedToken: begin.old_jwt_token && begin.old_jwt_expires_at
      ? { token: begin.old_jwt_token, expiresAt: begin.old_jwt_expires_at }
      : undefined,
  });
  try {
    await client.stop({ deadline: env.deadline });
  } catch (e) {
    env.warn("stop_old_session", e);
    action = "stop_failed";
    details = { ...details, ...errorDetails(e) };
  }
  await env.store.recordEvent({
    organizationId: input.organizationId,
    integrationId: begin.integration_id,
    actor: env.callerId,
    action,
    details,
  }).catch((err) => env.warn(`record_${action}`, err));
}

async function create(
  env: ProvisionEnv,
  input: ClickInput,
  begin: CreateDecision,
): Promise<ClickOutcome> {
  const release = (reason: string, details: Record<string, unknown>, unknown: boolean) =>
    env.store.fail({
      integrationId: begin.integration_id,
      leaseId: begin.lease_id,
      reason,
      details,
      actor: env.callerId,
      outcomeUnknown: unknown,
    }).catch((e) => env.warn("release_lease", e));

  let created;
  try {
    created = await env.platform.createClient(begin.platform_org_id, { deadline: env.deadline });
  } catch (e) {
    const unknown = outcomeUnknown(e);
    await release(unknown ? "create_outcome_unknown" : "create_failed", {
      stage: "create",
      ...errorDetails(e),
    }, unknown);
    throw isWppError(e) ? platformFailure(e) : e;
  }

  let completed;
  try {
    completed = await env.store.complete({
      integrationId: begin.integration_id,
      leaseId: begin.lease_id,
      session: created.session,
      apiKey: created.apiKey,
      actor: env.callerId,
      details: { platform_status: created.status },
    });
  } catch (e) {
    // The platform client exists but could not be stored: name it, and keep retries from making
    // another one while someone looks.
    await release("store_failed", {
      stage: "store",
      orphan_session: created.session,
      ...errorDetails(e),
    }, true);
    throw e;
  }

  // The new session is stored. From here a failure leaves it in place for the next click.
  const stopping = begin.old_session && begin.old_session !== created.session
    ? stopOldSession(env, input, begin)
    : Promise.resolve();
  const client = env.platform.forSession({ apiKey: created.apiKey, session: created.session });
  let learned: { status: ClickStatus; qrcode?: string; at: number } | undefined;
  let webhookRegistered = false;
  try {
    const opts = { deadline: env.deadline };
    const token = await client.getToken({ ...opts, freshKey: true });
    await env.store.storeToken(begin.integration_id, created.session, token.token, token.expiresAt);
    await client.registerWebhook(webhookUrl(env.webhookBaseUrl, completed.webhook_secret), opts);
    webhookRegistered = true;
    const at = env.now();
    learned = { ...fromStart(await client.startAccount(opts)), at };
    return {
      integrationId: begin.integration_id,
      session: created.session,
      apiKey: created.apiKey,
      status: learned.status,
      ...(learned.qrcode ? { qrcode: learned.qrcode } : {}),
      created: true,
      outcome: completed.action,
      reason: begin.reason,
    };
  } catch (e) {
    await env.store.recordEvent({
      organizationId: input.organizationId,
      integrationId: begin.integration_id,
      actor: env.callerId,
      action: "failed",
      details: { stage: "after_store", session: created.session, ...errorDetails(e) },
    }).catch((err) => env.warn("record_failed", err));
    throw isWppError(e) ? platformFailure(e) : e;
  } finally {
    // The creator held the refresh lease since complete; concurrent clicks waited for this QR.
    await env.store.refreshEnd({
      integrationId: begin.integration_id,
      leaseId: completed.refresh_lease_id,
      session: created.session,
      connection: learned
        ? (learned.status === "connected"
          ? "connected"
          : learned.status === "qr_issued"
          ? "qr"
          : "starting")
        : undefined,
      qr: learned?.qrcode,
      observedAt: learned?.at,
      webhookRegistered,
    }).catch((e) => env.warn("refresh_end", e));
    await stopping;
  }
}
