// The «Подключить WhatsApp» flow: reuse a valid session, or create exactly one new platform
// client and store it before anything else can fail. The database decides reuse/create/busy
// atomically (wpp_provision_begin); this module only follows its decision.
import { AppError } from "../_shared/errors.ts";
import { platformFailure } from "../_shared/platform-errors.ts";
import { cacheNewToken } from "../_shared/token-cache.ts";
import { isYoungSession } from "../_shared/session-age.ts";
import type { BeginResult, ProvisioningStore } from "../_shared/provisioning-store.ts";
import type { PlatformPort, SessionPort } from "../_shared/platform-port.ts";
import { isWppError, type StartResult, WppMalformedError } from "../_shared/wpp/mod.ts";

export type ConnectionStatus = "connected" | "qr_issued" | "starting";

export interface ProvisionInput {
  organizationId: string;
  actor: string;
  force: boolean;
}

export interface ProvisionEnv {
  store: ProvisioningStore;
  platform: PlatformPort;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** ms epoch by which every platform call must have settled. */
  deadline: number;
  leaseSeconds: number;
  busyWaitMs: number;
  freshKeyGraceMs: number;
  webhookBaseUrl: string;
  /** Best-effort background failures (audit writes, stopping an old session) end up here. */
  warn: (what: string, e: unknown) => void;
}

export interface ProvisionOutcome {
  integrationId: string;
  session: string;
  apiKey: string;
  status: ConnectionStatus;
  qrcode?: string;
  created: boolean;
  /** What happened, for the log: reused, created, recreated, self_healed. */
  outcome: string;
  reason?: string;
}

const BUSY_POLL_MS = 200;

/** The URL the platform posts events to; the integration's secret key in it is the credential. */
export function webhookUrl(base: string, webhookKey: string): string {
  return `${base}/functions/v1/wpp-webhook/${encodeURIComponent(webhookKey)}`;
}

function fromStart(start: StartResult): { status: ConnectionStatus; qrcode?: string } {
  if (start.state === "connected") return { status: "connected" };
  if (start.state === "qr" && start.qr) return { status: "qr_issued", qrcode: start.qr };
  return { status: "starting" };
}

function errorDetails(e: unknown): Record<string, unknown> {
  if (e instanceof WppMalformedError && e.orphanSession) {
    return {
      code: e.code,
      op: e.op,
      http_status: e.status ?? null,
      orphan_session: e.orphanSession,
    };
  }
  if (isWppError(e)) return { code: e.code, op: e.op, http_status: e.status ?? null };
  if (e instanceof AppError) return { code: e.code };
  return { code: "internal_error" };
}

/**
 * Asks the database for a decision. While another request holds the lease, a plain click waits
 * (bounded) and then joins the stored session; a forced recreate does not wait, since the
 * running request is already replacing the session.
 */
async function beginOrWait(env: ProvisionEnv, input: ProvisionInput): Promise<BeginResult> {
  const waitUntil = Math.min(env.now() + env.busyWaitMs, env.deadline);
  while (true) {
    const begin = await env.store.begin({
      organizationId: input.organizationId,
      force: input.force,
      actor: input.actor,
      leaseSeconds: env.leaseSeconds,
    });
    if (begin.decision !== "busy") return begin;
    const retryAfter = Math.max(1, Math.ceil(begin.retry_after_seconds ?? 1));
    if (input.force || env.now() + BUSY_POLL_MS > waitUntil) {
      throw new AppError(
        "provisioning_in_progress",
        "another request is connecting this organisation's WhatsApp right now; try again shortly",
        { retryAfterSeconds: Math.min(retryAfter, 5) },
      );
    }
    await env.sleep(BUSY_POLL_MS);
  }
}

async function connect(
  env: ProvisionEnv,
  client: SessionPort,
  webhookKey: string,
): Promise<{ status: ConnectionStatus; qrcode?: string }> {
  const opts = { deadline: env.deadline };
  const status = await client.accountStatus(opts);
  if (status.connected) return { status: "connected" };
  // Registering again is harmless (one URL per session) and repairs a create whose webhook
  // step failed.
  await client.registerWebhook(webhookUrl(env.webhookBaseUrl, webhookKey), opts);
  return fromStart(await client.startAccount(opts));
}

function isFresh(env: ProvisionEnv, begin: BeginResult): boolean {
  return isYoungSession(begin.session_created_at, env.now(), env.freshKeyGraceMs);
}

async function reuse(env: ProvisionEnv, begin: BeginResult): Promise<ProvisionOutcome> {
  const session = begin.session!;
  const apiKey = begin.api_key!;
  const storedToken = begin.jwt_token && begin.jwt_expires_at
    ? { token: begin.jwt_token, expiresAt: Number(begin.jwt_expires_at) }
    : undefined;
  const client = env.platform.forSession({ apiKey, session, storedToken });
  try {
    if (isFresh(env, begin) && !storedToken) {
      // Its first token: let the client wait out the platform's activation delay.
      await client.getToken({ deadline: env.deadline, freshKey: true });
    }
    const result = await connect(env, client, begin.webhook_key);
    return {
      integrationId: begin.integration_id,
      session,
      apiKey,
      ...result,
      created: false,
      outcome: "reused",
    };
  } finally {
    await cacheNewToken(env.store, env.warn, begin.integration_id, session, client);
  }
}

async function stopOldSession(
  env: ProvisionEnv,
  input: ProvisionInput,
  begin: BeginResult,
): Promise<void> {
  const session = begin.old_session;
  if (!session || !begin.old_api_key) return;
  let action: "session_stopped" | "stop_failed" = "session_stopped";
  let details: Record<string, unknown> = { session, reason: begin.reason ?? null };
  try {
    await env.platform.forSession({ apiKey: begin.old_api_key, session }).stop({
      deadline: env.deadline,
    });
  } catch (e) {
    env.warn("stop_old_session", e);
    action = "stop_failed";
    details = { ...details, ...errorDetails(e) };
  }
  await env.store.recordEvent(
    input.organizationId,
    begin.integration_id,
    input.actor,
    action,
    details,
  )
    .catch((err) => env.warn(`record_${action}`, err));
}

async function create(
  env: ProvisionEnv,
  input: ProvisionInput,
  begin: BeginResult,
): Promise<ProvisionOutcome> {
  const leaseId = begin.lease_id!;
  const release = (reason: string, details: Record<string, unknown>) =>
    env.store.fail(begin.integration_id, leaseId, reason, details, input.actor)
      .catch((e) => env.warn("release_lease", e));

  let created;
  try {
    created = await env.platform.createClient(input.organizationId, { deadline: env.deadline });
  } catch (e) {
    await release("create_failed", { stage: "create", ...errorDetails(e) });
    throw isWppError(e) ? platformFailure(e) : e;
  }

  try {
    await env.store.complete({
      integrationId: begin.integration_id,
      leaseId,
      session: created.session,
      apiKey: created.apiKey,
      actor: input.actor,
      details: { reason: begin.reason ?? null, platform_status: created.status },
    });
  } catch (e) {
    // The platform client exists but could not be stored: say which one, so it can be found.
    await release("store_failed", {
      stage: "store",
      orphan_session: created.session,
      ...errorDetails(e),
    });
    throw e;
  }

  // The new session is stored. From here a failure leaves it in place for the next click.
  const stopping = begin.old_session && begin.old_session !== created.session
    ? stopOldSession(env, input, begin)
    : Promise.resolve();
  const client = env.platform.forSession({ apiKey: created.apiKey, session: created.session });
  try {
    const opts = { deadline: env.deadline };
    const token = await client.getToken({ ...opts, freshKey: true });
    await env.store.storeToken(begin.integration_id, created.session, token.token, token.expiresAt);
    await client.registerWebhook(webhookUrl(env.webhookBaseUrl, begin.webhook_key), opts);
    const result = fromStart(await client.startAccount(opts));
    return {
      integrationId: begin.integration_id,
      session: created.session,
      apiKey: created.apiKey,
      ...result,
      created: true,
      outcome: begin.old_session ? "recreated" : "created",
      reason: begin.reason ?? undefined,
    };
  } catch (e) {
    await env.store.recordEvent(input.organizationId, begin.integration_id, input.actor, "failed", {
      stage: "after_store",
      session: created.session,
      ...errorDetails(e),
    }).catch((err) => env.warn("record_failed", err));
    throw isWppError(e) ? platformFailure(e) : e;
  } finally {
    await stopping;
  }
}

/** A reuse whose failures are recorded and translated; only a dead key is left to the caller. */
async function reuseOrFail(
  env: ProvisionEnv,
  input: ProvisionInput,
  begin: BeginResult,
  opts: { deadKeyIsFatal: boolean },
): Promise<ProvisionOutcome> {
  try {
    return await reuse(env, begin);
  } catch (e) {
    // A key refused right after its create is the platform's known activation delay: report it,
    // and let a later click decide once the grace period is over.
    const deadKey = isWppError(e) && e.code === "invalid_api_key" && !isFresh(env, begin);
    if (deadKey && !opts.deadKeyIsFatal) throw e;
    await env.store.recordEvent(input.organizationId, begin.integration_id, input.actor, "failed", {
      stage: "reuse",
      session: begin.session ?? null,
      ...errorDetails(e),
    }).catch((err) => env.warn("record_failed", err));
    throw isWppError(e) ? platformFailure(e) : e;
  }
}

export async function provision(
  env: ProvisionEnv,
  input: ProvisionInput,
): Promise<ProvisionOutcome> {
  const begin = await beginOrWait(env, input);
  if (begin.decision === "create") return await create(env, input, begin);

  try {
    return await reuseOrFail(env, input, begin, { deadKeyIsFatal: false });
  } catch (e) {
    if (!isWppError(e) || e.code !== "invalid_api_key") throw e;
  }
  // The platform says the stored key is dead: only that, never a timeout or a 5xx, justifies
  // a new session. The database re-checks that the dead session is still the stored one.
  const again = await env.store.begin({
    organizationId: input.organizationId,
    force: false,
    actor: input.actor,
    leaseSeconds: env.leaseSeconds,
    deadSession: begin.session ?? undefined,
  });
  if (again.decision === "busy") {
    throw new AppError(
      "provisioning_in_progress",
      "another request is replacing this organisation's WhatsApp session; try again shortly",
      { retryAfterSeconds: Math.min(Math.max(1, again.retry_after_seconds ?? 1), 5) },
    );
  }
  // Someone else replaced the session meanwhile: join theirs, and never recreate twice in a row.
  if (again.decision === "reuse") {
    return await reuseOrFail(env, input, again, { deadKeyIsFatal: true });
  }
  const outcome = await create(env, input, again);
  return { ...outcome, outcome: "self_healed" };
}
