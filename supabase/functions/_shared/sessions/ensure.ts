// "Ensure a session": the one provisioning core every door uses (wpp-create today; issue 17's
// wpp-start and wpp-provision are adapters of the same core). It reuses a usable session, or
// creates exactly one new platform client and stores it before anything else can fail.
//
// It is a loop driven by the database's decision: decide (wpp_provision_begin), act, and where
// the act learns something the decision did not know (the session was replaced meanwhile, the
// platform declared its apiKey dead) ask again. It takes at most MAX_STEPS steps and calls
// nothing recursively; each step's platform calls are reported to the request log.
//
// One click of the CRM's panel may arrive four times (its helper retries 5xx and network errors),
// and a double click twice. What keeps that to one platform create:
// - the provisioning lease: one create at a time per integration;
// - the cooldown: a create whose outcome is unknown (the platform may have acted, then timed out,
//   answered 5xx or garbage) blocks further creates for WPP_CREATE_COOLDOWN_SECONDS, so retries
//   get 409 instead of a second client;
// - the repeat window: a recreate or add_new repeated shortly after a create gets that session;
// - the heal rule: only the platform's own refusal of an apiKey older than the fresh-key grace
//   period replaces a session on a plain connect, and only once per request.
import { AppError } from "../errors.ts";
import { platformFailure } from "../wpp/failure.ts";
import { isYoungSession } from "./session-age.ts";
import {
  type ConnectionEnv,
  observeConnection,
  type Observed,
  SessionReplaced,
  webhookUrl,
} from "./connection.ts";
import type { BeginResult, CallerContext, CreateDecision, Integration, Mode } from "../db/store.ts";
import { isWppError, type StartResult, WppMalformedError } from "../wpp/mod.ts";

export type SessionStatus = "connected" | "qr_issued" | "starting";

/** The kinds of step the core takes. */
export type StepKind = "begin" | "reuse" | "reread" | "create";

export interface EnsureEnv extends ConnectionEnv {
  /** How many platform calls the request has made so far (the request log counts them). */
  platformCalls: () => number;
  /** Told of each step taken, with the platform calls it made. */
  traceStep: (kind: StepKind, platformCalls: number) => void;
}

export interface EnsureInput {
  organizationId: string;
  mode: Mode;
  integrationId?: string;
  /** What wpp_context said about the caller's organisation and the targeted integration. */
  context: CallerContext;
}

export interface EnsureOutcome {
  integrationId: string;
  session: string;
  apiKey: string;
  status: SessionStatus;
  qrcode?: string;
  created: boolean;
  /** What happened, in the audit trail's words where there is an audit event. */
  outcome: "reused" | "created" | "recreated";
  reason?: string;
}

/**
 * One step of the loop. Platform calls per step:
 * - begin: none (the database decides; a busy answer is waited out here, bounded);
 * - reuse: none while the stored state is fresh; otherwise one refresh of the session: status,
 *   then, when not linked, the webhook registration and a start (a young session's first click
 *   also fetches its first token);
 * - reread: none (the database names the session that replaced the one looked at);
 * - create: the platform create, then a token, the webhook registration and a start, and the
 *   stop of the session it replaces.
 */
type Step =
  | {
    kind: "begin";
    mode: Mode;
    integrationId?: string;
    /** A heal: the session whose apiKey the platform refused, and the first look's reason. */
    heal?: { deadSession?: string; reason: string };
  }
  | { kind: "reuse"; integration: Integration; reason: string }
  | { kind: "reread"; integrationId: string; reason: string }
  | { kind: "create"; decision: CreateDecision };

type StepResult = { done: EnsureOutcome } | { next: Step };

/** begin → reuse → begin (dead key) → create, or begin → reuse → reread → reuse. */
const MAX_STEPS = 4;
const BUSY_POLL_MS = 200;

export async function ensureSession(env: EnsureEnv, input: EnsureInput): Promise<EnsureOutcome> {
  const known = input.context.integration;
  let step: Step = input.mode === "connect" && known && usableAsIs(known)
    ? { kind: "reuse", integration: known, reason: "valid_session" }
    : { kind: "begin", mode: input.mode, integrationId: input.integrationId };
  // One second look per request: a reread after a replacement, or a heal after a dead key.
  let secondLookTaken = false;
  for (let taken = 0; taken < MAX_STEPS; taken++) {
    const callsBefore = env.platformCalls();
    let result: StepResult;
    try {
      result = await runStep(env, input, step, secondLookTaken);
    } finally {
      env.traceStep(step.kind, env.platformCalls() - callsBefore);
    }
    if ("done" in result) return result.done;
    if (result.next.kind === "reread" || result.next.kind === "begin") secondLookTaken = true;
    step = result.next;
  }
  throw new AppError("internal_error", `provisioning took more than ${MAX_STEPS} steps`);
}

function runStep(
  env: EnsureEnv,
  input: EnsureInput,
  step: Step,
  secondLookTaken: boolean,
): Promise<StepResult> {
  switch (step.kind) {
    case "begin":
      return begin(env, input, step);
    case "reuse":
      return reuse(env, input, step.integration, step.reason, secondLookTaken);
    case "reread":
      return reread(env, step.integrationId, step.reason);
    case "create":
      return create(env, input, step.decision);
  }
}

function usableAsIs(i: Integration): boolean {
  return i.valid && i.is_active && !i.provisioning && !i.cooldown;
}

/**
 * Asks the database for a decision. While another request holds the lease (or a refresh of the
 * session is running) it waits, bounded, and asks again: a double-clicked recreate or add_new
 * then finds the session the first one made.
 */
async function begin(
  env: EnsureEnv,
  input: EnsureInput,
  step: Extract<Step, { kind: "begin" }>,
): Promise<StepResult> {
  const decision = await beginOrWait(env, input.organizationId, step);
  switch (decision.decision) {
    case "not_found":
      throw new AppError(
        "not_found",
        "no WhatsApp number with this integration_id in your organisation",
      );
    case "limit":
      throw new AppError(
        "number_limit_reached",
        `your organisation already has ${decision.count} WhatsApp numbers, the most allowed (${decision.max}); disconnect one first`,
      );
    case "cooldown":
      throw new AppError(
        "create_cooldown",
        "the WPP Platform may have created a session a moment ago without confirming it; " +
          "to avoid a duplicate, no new session is created until the cooldown ends",
        { retryAfterSeconds: Math.max(1, decision.retry_after_seconds ?? 1) },
      );
    case "reuse":
      // A heal that found the session already replaced keeps the reason of the first look.
      return {
        next: {
          kind: "reuse",
          integration: decision,
          reason: step.heal?.reason ?? decision.reason,
        },
      };
    case "create":
      return { next: { kind: "create", decision } };
  }
}

async function beginOrWait(
  env: EnsureEnv,
  organizationId: string,
  step: Extract<Step, { kind: "begin" }>,
): Promise<Exclude<BeginResult, { decision: "busy" }>> {
  const waitUntil = Math.min(env.now() + env.busyWaitMs, env.deadline);
  while (true) {
    const decision = await env.store.begin({
      organizationId,
      actor: env.callerId,
      mode: step.mode,
      integrationId: step.integrationId,
      deadSession: step.heal?.deadSession,
    });
    if (decision.decision !== "busy") return decision;
    if (env.now() + BUSY_POLL_MS > waitUntil) {
      throw new AppError(
        "provisioning_in_progress",
        "another request is connecting this WhatsApp number right now; try again shortly",
        { retryAfterSeconds: Math.min(Math.max(1, decision.retry_after_seconds ?? 1), 5) },
      );
    }
    await env.sleep(BUSY_POLL_MS);
  }
}

function clickStatus(o: Observed): { status: SessionStatus; qrcode?: string } {
  if (o.connection === "connected") return { status: "connected" };
  if (o.connection === "qr" && o.qr) return { status: "qr_issued", qrcode: o.qr };
  return { status: "starting" };
}

/** A reuse whose failures are recorded; a dead key (and only that) asks for a new session. */
async function reuse(
  env: EnsureEnv,
  input: EnsureInput,
  integration: Integration,
  reason: string,
  secondLookTaken: boolean,
): Promise<StepResult> {
  try {
    const observed = await observeConnection(env, integration, "click", true);
    return {
      done: {
        integrationId: integration.integration_id,
        session: integration.session!,
        apiKey: integration.api_key!,
        ...clickStatus(observed),
        created: false,
        outcome: "reused",
        reason,
      },
    };
  } catch (e) {
    if (!secondLookTaken && e instanceof SessionReplaced) {
      // A recreate replaced the session while this click looked at it: answer with the new one.
      return { next: { kind: "reread", integrationId: integration.integration_id, reason } };
    }
    // A key refused right after its create is the platform's known activation delay, not death.
    const deadKey = isWppError(e) && e.code === "invalid_api_key" &&
      !isYoungSession(integration.session_created_at, env.now(), env.freshKeyGraceMs);
    if (!secondLookTaken && deadKey) {
      // Only the platform's own refusal of the key justifies a new session. The database
      // re-checks that the dead session is still the stored one.
      return {
        next: {
          kind: "begin",
          mode: "connect",
          integrationId: integration.integration_id,
          heal: { deadSession: integration.session ?? undefined, reason },
        },
      };
    }
    await env.store.recordEvent({
      organizationId: input.organizationId,
      integrationId: integration.integration_id,
      actor: env.callerId,
      action: "failed",
      details: { stage: "reuse", session: integration.session, ...errorDetails(e) },
    }).catch((err) => env.warn("record_failed", err));
    if (e instanceof SessionReplaced) throw beingReplaced();
    throw isWppError(e) ? platformFailure(e) : e;
  }
}

/** The session looked at was replaced: the database names the one that replaced it. */
async function reread(env: EnsureEnv, integrationId: string, reason: string): Promise<StepResult> {
  const ctx = await env.store.context(env.callerId, { integrationId });
  if (!ctx.integration?.valid) throw beingReplaced();
  return { next: { kind: "reuse", integration: ctx.integration, reason } };
}

function beingReplaced(): AppError {
  return new AppError(
    "provisioning_in_progress",
    "this WhatsApp number is being replaced right now; try again shortly",
    { retryAfterSeconds: 2 },
  );
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

function fromStart(start: StartResult): { status: SessionStatus; qrcode?: string } {
  if (start.state === "connected") return { status: "connected" };
  if (start.state === "qr" && start.qr) return { status: "qr_issued", qrcode: start.qr };
  return { status: "starting" };
}

/** Stops the replaced session on the platform, best effort; the audit trail says how it went. */
async function stopOldSession(env: EnsureEnv, input: EnsureInput, decision: CreateDecision) {
  const session = decision.old_session;
  if (!session || !decision.old_api_key) return;
  let action: "session_stopped" | "stop_failed" = "session_stopped";
  let details: Record<string, unknown> = { session, reason: decision.reason };
  const client = env.platform.forSession({
    apiKey: decision.old_api_key,
    session,
    storedToken: decision.old_jwt_token && decision.old_jwt_expires_at
      ? { token: decision.old_jwt_token, expiresAt: decision.old_jwt_expires_at }
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
    integrationId: decision.integration_id,
    actor: env.callerId,
    action,
    details,
  }).catch((err) => env.warn(`record_${action}`, err));
}

/** The lease holder's create: one platform client, stored at once, then started. */
async function create(
  env: EnsureEnv,
  input: EnsureInput,
  decision: CreateDecision,
): Promise<StepResult> {
  const release = (reason: string, details: Record<string, unknown>, unknown: boolean) =>
    env.store.fail({
      integrationId: decision.integration_id,
      leaseId: decision.lease_id,
      reason,
      details,
      actor: env.callerId,
      outcomeUnknown: unknown,
    }).catch((e) => env.warn("release_lease", e));

  let created;
  try {
    created = await env.platform.createClient(decision.platform_org_id, {
      deadline: env.deadline,
    });
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
      integrationId: decision.integration_id,
      leaseId: decision.lease_id,
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
  const stopping = decision.old_session && decision.old_session !== created.session
    ? stopOldSession(env, input, decision)
    : Promise.resolve();
  const client = env.platform.forSession({ apiKey: created.apiKey, session: created.session });
  let learned: { status: SessionStatus; qrcode?: string; at: number } | undefined;
  let webhookRegistered = false;
  try {
    const opts = { deadline: env.deadline };
    const token = await client.getToken({ ...opts, freshKey: true });
    await env.store.storeToken(
      decision.integration_id,
      created.session,
      token.token,
      token.expiresAt,
    );
    await client.registerWebhook(webhookUrl(env.webhookBaseUrl, completed.webhook_secret), opts);
    webhookRegistered = true;
    const at = env.now();
    learned = { ...fromStart(await client.startAccount(opts)), at };
    return {
      done: {
        integrationId: decision.integration_id,
        session: created.session,
        apiKey: created.apiKey,
        status: learned.status,
        ...(learned.qrcode ? { qrcode: learned.qrcode } : {}),
        created: true,
        outcome: completed.action,
        reason: decision.reason,
      },
    };
  } catch (e) {
    await env.store.recordEvent({
      organizationId: input.organizationId,
      integrationId: decision.integration_id,
      actor: env.callerId,
      action: "failed",
      details: { stage: "after_store", session: created.session, ...errorDetails(e) },
    }).catch((err) => env.warn("record_failed", err));
    throw isWppError(e) ? platformFailure(e) : e;
  } finally {
    // The creator held the refresh lease since complete; concurrent clicks waited for this QR.
    await env.store.refreshEnd({
      integrationId: decision.integration_id,
      leaseId: completed.refresh_lease_id,
      session: created.session,
      connection: learned ? connectionOf(learned.status) : undefined,
      qr: learned?.qrcode,
      observedAt: learned?.at,
      webhookRegistered,
    }).catch((e) => env.warn("refresh_end", e));
    await stopping;
  }
}

function connectionOf(status: SessionStatus): "connected" | "qr" | "starting" {
  return status === "connected" ? "connected" : status === "qr_issued" ? "qr" : "starting";
}
