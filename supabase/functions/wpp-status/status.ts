// What the «Подключить WhatsApp» page polls: is the number linked, and if a scan is awaited, the
// QR to scan now. Reads only: it never creates a platform client and never changes which session
// is stored. The one write is caching a platform token it had to fetch, so the next poll (two
// seconds later) does not fetch another.
import type { PlatformPort, SessionPort } from "../_shared/platform-port.ts";
import { isWppError } from "../_shared/wpp/mod.ts";
import { platformFailure } from "../_shared/platform-errors.ts";
import { cacheNewToken } from "../_shared/token-cache.ts";
import { isYoungSession } from "../_shared/session-age.ts";
import type { StatusStore } from "./store.ts";

export type ConnectionStatus =
  | "connected"
  | "qr_issued"
  | "starting"
  | "disconnected"
  | "not_configured";

/**
 * Why there is no usable session, so the page can say what to do:
 * - no_integration: the organisation never connected WhatsApp;
 * - needs_new_session: the stored session is a placeholder, incomplete, or marked unusable;
 * - provisioning: a wpp-create request is creating the session right now;
 * - activating: the platform refuses the apiKey of a session created moments ago, which it has
 *   been seen doing before it activates a new key;
 * - dead_key: the platform refuses the stored apiKey of an older session.
 */
export type StatusReason =
  | "no_integration"
  | "needs_new_session"
  | "provisioning"
  | "activating"
  | "dead_key";

export interface StatusOutcome {
  status: ConnectionStatus;
  integrationId?: string;
  session?: string;
  qrcode?: string;
  reason?: StatusReason;
  /** The platform's own word for the account's state, for the log. */
  platformState?: string;
}

export interface StatusEnv {
  store: StatusStore;
  platform: Pick<PlatformPort, "forSession">;
  /** ms epoch by which every platform call must have settled. */
  deadline: number;
  now: () => number;
  /** A session younger than this whose apiKey is refused is still being activated. */
  freshKeyGraceMs: number;
  warn: (what: string, e: unknown) => void;
}

// The account exists but the phone is not linked any more (unlinked, logged out, stopped). A
// status read does not restart it: relinking is the user's decision, taken with the connect
// button, whose wpp-create call starts the account and hands out a QR.
const OFFLINE_WORDS = new Set(["offline", "disconnected", "logout", "logged_out", "loggedout"]);

async function askPlatform(
  env: StatusEnv,
  client: SessionPort,
): Promise<Pick<StatusOutcome, "status" | "qrcode" | "platformState">> {
  const opts = { deadline: env.deadline };
  const account = await client.accountStatus(opts);
  if (account.connected) return { status: "connected", platformState: account.status };
  if (OFFLINE_WORDS.has(account.status.toLowerCase())) {
    return { status: "disconnected", platformState: account.status };
  }
  const qr = await client.getQr(opts);
  if (qr) return { status: "qr_issued", qrcode: qr, platformState: account.status };
  // No QR yet: starting the existing account is what makes the platform issue one.
  const start = await client.startAccount(opts);
  if (start.state === "connected") return { status: "connected", platformState: start.raw };
  if (start.state === "qr" && start.qr) {
    return { status: "qr_issued", qrcode: start.qr, platformState: start.raw };
  }
  return { status: "starting", platformState: start.raw };
}

export async function readStatus(env: StatusEnv, organizationId: string): Promise<StatusOutcome> {
  const integration = await env.store.integrationForStatus(organizationId);
  if (!integration) return { status: "not_configured", reason: "no_integration" };
  const integrationId = integration.integration_id;
  const session = integration.session ?? undefined;
  const apiKey = integration.api_key;
  if (!integration.valid || !session || !apiKey) {
    // While wpp-create holds the lease the session is being made; saying "not connected" then
    // would invite a second click for nothing.
    return integration.provisioning
      ? { status: "starting", reason: "provisioning", integrationId }
      // A placeholder such as client_system is not a session: it is not shown as one.
      : { status: "not_configured", reason: "needs_new_session", integrationId };
  }

  const storedToken = integration.jwt_token && integration.jwt_expires_at
    ? { token: integration.jwt_token, expiresAt: integration.jwt_expires_at }
    : undefined;
  const client = env.platform.forSession({ apiKey, session, storedToken });
  try {
    return { ...await askPlatform(env, client), integrationId, session };
  } catch (e) {
    // A refused apiKey is not an outage. On a session created moments ago it is the platform
    // still activating the key: the next poll asks again, this one does not wait. On an older
    // session the key is dead and wpp-create replaces the session on the next click, after
    // checking the key itself; marking the row is left to it, so this read stays a read. Any
    // other failure is an outage, reported as wpp-create reports it.
    if (isWppError(e) && e.code === "invalid_api_key") {
      if (isYoungSession(integration.session_created_at, env.now(), env.freshKeyGraceMs)) {
        return { status: "starting", reason: "activating", integrationId, session };
      }
      return { status: "not_configured", reason: "dead_key", integrationId, session };
    }
    throw isWppError(e) ? platformFailure(e) : e;
  } finally {
    await cacheNewToken(env.store, env.warn, integrationId, session, client);
  }
}
