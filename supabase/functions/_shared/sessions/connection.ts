// Is a session linked, and if not, which QR should be scanned now? Answered from the stored
// state while it is fresh (webhook events and earlier reads keep it so), otherwise by ONE
// platform refresh per session at a time: the database hands out a refresh lease, and concurrent
// clicks and polls wait for the holder's result instead of repeating its calls. That is what keeps
// a burst of clicks to one start (and one QR), and what keeps a replaced session from being
// started again: the lease is refused once the session is no longer the stored one.
import type { PlatformPort, SessionPort } from "../wpp/port.ts";
import type { Connection, Integration, WppStore } from "../db/store.ts";
import type { StartResult } from "../wpp/mod.ts";
import { isYoungSession } from "./session-age.ts";

/**
 * What the caller may do to the platform:
 * - click: an owner or admin pressed «Подключить WhatsApp»: status, then (not linked) the webhook
 *   and a start, which relinks an unlinked phone too;
 * - poll: an owner's or admin's status poll: status, the QR, a start only when there is no QR; an
 *   unlinked phone is reported, not relinked (that is the user's decision, taken with a click);
 * - qr: an owner or admin asks for the QR: the QR only;
 * - read: a member: the status only, never a QR, never a start.
 */
export type Purpose = "click" | "poll" | "qr" | "read";

export interface Observed {
  connection: Connection;
  qr: string | null;
  /** ms epoch the QR was issued (or seen), when there is one. */
  qrAt: number | null;
  /** stored: answered from the database; platform: this request asked; waited: another did. */
  source: "stored" | "platform" | "waited";
}

export interface ConnectionEnv {
  store: WppStore;
  platform: PlatformPort;
  /** The user on whose behalf the request runs (for re-reading the context while waiting). */
  callerId: string;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** ms epoch by which every platform call must have settled. */
  deadline: number;
  busyWaitMs: number;
  /** A session younger than this may still see its new apiKey refused by the platform. */
  freshKeyGraceMs: number;
  webhookBaseUrl: string;
  warn: (what: string, e: unknown) => void;
}

/** The session a request was about is no longer the integration's session. */
export class SessionReplaced extends Error {
  constructor() {
    super("the session was replaced meanwhile");
    this.name = "SessionReplaced";
  }
}

const WAIT_POLL_MS = 100;
const OFFLINE_WORDS = new Set(["offline", "disconnected", "logout", "logged_out", "loggedout"]);

/** The URL the platform posts events to; the integration's webhook secret in it is the credential. */
export function webhookUrl(base: string, secret: string): string {
  return `${base}/functions/v1/wpp-webhook/${encodeURIComponent(secret)}`;
}

export function fromStored(i: Integration): Observed {
  return { connection: i.connection, qr: i.qr, qrAt: i.qr_at, source: "stored" };
}

/** Whether the stored state answers this purpose without the platform. */
export function storedIsEnough(i: Integration, purpose: Purpose, force: boolean): boolean {
  if (i.connection === "unknown") return false;
  // The platform still posts this session's events elsewhere (a session made before this project
  // was installed): the next refresh points them here.
  if (!i.webhook_current) return false;
  // A poll with force:false, and a member's read, may show what is known even if it is old.
  if (!force && (purpose === "poll" || purpose === "read")) return true;
  if (!i.fresh) return false;
  switch (purpose) {
    case "click":
      return i.connection === "connected" || (i.connection === "qr" && i.qr !== null);
    case "poll":
      return i.connection !== "starting" && (i.connection !== "qr" || i.qr !== null);
    case "qr":
      return i.connection === "connected" || (i.connection === "qr" && i.qr !== null);
    case "read":
      return true;
  }
}

export async function observeConnection(
  env: ConnectionEnv,
  integration: Integration,
  purpose: Purpose,
  force: boolean,
): Promise<Observed> {
  if (storedIsEnough(integration, purpose, force)) return fromStored(integration);
  return await refresh(env, integration, purpose);
}

async function refresh(
  env: ConnectionEnv,
  integration: Integration,
  purpose: Purpose,
): Promise<Observed> {
  const session = integration.session!;
  const begin = await env.store.refreshBegin(
    integration.integration_id,
    session,
    purpose !== "read",
  );
  if (!begin.granted) {
    switch (begin.reason) {
      case "fresh":
        return fromStored(begin as Integration);
      case "inactive":
        return { connection: "offline", qr: null, qrAt: null, source: "stored" };
      case "in_flight":
      case "provisioning":
        return await waitForOthers(env, integration);
      default:
        throw new SessionReplaced();
    }
  }

  const leaseId = begin.refresh_lease_id!;
  const client = env.platform.forSession({
    apiKey: integration.api_key!,
    session,
    storedToken: integration.jwt_token && integration.jwt_expires_at
      ? { token: integration.jwt_token, expiresAt: integration.jwt_expires_at }
      : undefined,
  });
  let learned: Learned | undefined;
  try {
    if (
      purpose === "click" && !integration.jwt_token &&
      isYoungSession(integration.session_created_at, env.now(), env.freshKeyGraceMs)
    ) {
      // The session's first token: a click waits out the platform's activation delay of a new
      // apiKey (a poll does not; the next poll asks again). Only the refresh holder asks, so a
      // burst of clicks right after a create fetches one token, not one each.
      await client.getToken({ deadline: env.deadline, freshKey: true });
    }
    learned = await askPlatform(env, client, purpose, begin.webhook_secret!, begin.webhook_current);
    return {
      connection: learned.connection ?? "unknown",
      qr: learned.qr ?? null,
      qrAt: learned.qr ? learned.at : null,
      source: "platform",
    };
  } finally {
    await env.store.refreshEnd({
      integrationId: integration.integration_id,
      leaseId,
      session,
      connection: learned?.connection,
      qr: learned?.qr,
      observedAt: learned?.at,
      webhookRegistered: learned?.webhookRegistered,
    }).catch((e) => env.warn("refresh_end", e));
    await cacheNewToken(env, integration.integration_id, session, client);
  }
}

interface Learned {
  connection?: Exclude<Connection, "unknown">;
  qr?: string;
  /** ms epoch, taken before asking. */
  at: number;
  webhookRegistered?: boolean;
}

async function askPlatform(
  env: ConnectionEnv,
  client: SessionPort,
  purpose: Purpose,
  webhookSecret: string,
  webhookCurrent: boolean,
): Promise<Learned> {
  const opts = { deadline: env.deadline };
  // Taken before asking: an event the platform sends while this request waits is newer.
  const at = env.now();
  // Registering again is harmless (one URL per session). It repairs a create whose webhook step
  // failed, and points a session made before this project at this project's receiver.
  const register = async () => {
    await client.registerWebhook(webhookUrl(env.webhookBaseUrl, webhookSecret), opts);
    return true;
  };
  if (purpose === "qr") {
    const qr = await client.getQr(opts);
    const webhookRegistered = webhookCurrent ? false : await register();
    return qr ? { connection: "qr", qr, at, webhookRegistered } : { at, webhookRegistered };
  }

  const status = await client.accountStatus(opts);
  const offline = OFFLINE_WORDS.has(status.status.toLowerCase());
  const registerIfStale = async () => webhookCurrent ? false : await register();
  if (status.connected) {
    return { connection: "connected", at, webhookRegistered: await registerIfStale() };
  }
  if (purpose === "read" || (purpose === "poll" && offline)) {
    const webhookRegistered = await registerIfStale();
    return offline ? { connection: "offline", at, webhookRegistered } : { at, webhookRegistered };
  }
  if (purpose === "poll") {
    const qr = await client.getQr(opts);
    if (qr) return { connection: "qr", qr, at, webhookRegistered: await registerIfStale() };
  }
  // A click, or a poll with no QR yet: starting the account is what makes the platform issue one
  // (and relinks an unlinked phone on a click).
  const webhookRegistered = await register();
  return { ...fromStart(await client.startAccount(opts)), at, webhookRegistered };
}

function fromStart(
  start: StartResult,
): { connection: Exclude<Connection, "unknown">; qr?: string } {
  if (start.state === "connected") return { connection: "connected" };
  if (start.state === "qr" && start.qr) return { connection: "qr", qr: start.qr };
  return { connection: "starting" };
}

/** Another request is refreshing (or creating) this session: its result is this one's answer. */
async function waitForOthers(env: ConnectionEnv, integration: Integration): Promise<Observed> {
  const until = Math.min(env.now() + env.busyWaitMs, env.deadline);
  let latest = integration;
  while (env.now() + WAIT_POLL_MS <= until) {
    await env.sleep(WAIT_POLL_MS);
    const ctx = await env.store.context(env.callerId, {
      integrationId: integration.integration_id,
    });
    if (!ctx.integration || ctx.integration.session !== integration.session) {
      throw new SessionReplaced();
    }
    latest = ctx.integration;
    if (!latest.refreshing && !latest.provisioning) break;
  }
  return { ...fromStored(latest), source: "waited" };
}

/** A token fetched during the request is cached in the row, so the next request reuses it. */
export async function cacheNewToken(
  env: Pick<ConnectionEnv, "store" | "warn">,
  integrationId: string,
  session: string,
  client: SessionPort,
): Promise<void> {
  const token = client.newToken();
  if (!token) return;
  try {
    await env.store.storeToken(integrationId, session, token.token, token.expiresAt);
  } catch (e) {
    // An uncached token only costs one token call the next time.
    env.warn("store_token", e);
  }
}
