// wpp-webhook: the platform's events, accepted only at a URL that carries an integration's
// webhook secret (the platform signs nothing, so the URL is the credential). Session events
// update the stored connection in the order the platform produced them; every verified event is
// forwarded to the CRM's own receiver after the platform has its 200. An unknown secret gets a
// 404 with no database write and nothing forwarded. Bodies, QRs and secrets are never logged.
import { createHash } from "node:crypto";
import type { Config } from "../_shared/config.ts";
import { AppError } from "../_shared/errors.ts";
import { jsonResponse } from "../_shared/http/responses.ts";
import { readCapped } from "../_shared/http/body.ts";
import type { RequestLog } from "../_shared/http/request-log.ts";
import { allowMethods, functionHandler } from "../_shared/http/envelope.ts";
import type { StoreFactory, WebhookEventResult } from "../_shared/db/store.ts";
import { readEvent } from "./event.ts";
import type { Forwarder, ForwardResult } from "./forward.ts";
import type { SecretCache } from "./secret-cache.ts";

export const FUNCTION_NAME = "wpp-webhook";

export interface WebhookDeps {
  store: StoreFactory;
  /** null when WPP_EVENTS_FORWARD_URL is not set. */
  forward: Forwarder | null;
  /** URLs the database confirmed a moment ago; null: every event asks the database. */
  secretCache: SecretCache | null;
  /** Keeps work alive after the answer (EdgeRuntime.waitUntil on Supabase). */
  background: (work: Promise<unknown>) => void;
  now: () => number;
  requestId: () => string;
  log: (line: Record<string, unknown>) => void;
}

// What this project's secrets look like (base64url of 32 bytes); anything else is refused
// before the database is asked.
const SECRET = /^[A-Za-z0-9_-]{32,128}$/;

function unknownUrl(): AppError {
  // Deliberately says nothing about what was wrong with the URL.
  return new AppError("not_found", "unknown webhook URL");
}

// node:crypto, not crypto.subtle: on Deno 2.1 a subtle digest costs about 50 times the CPU, on
// every event.
function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

async function handle(
  req: Request,
  config: Config,
  deps: WebhookDeps,
  log: RequestLog,
  cors: Headers,
): Promise<Response> {
  const path = new URL(req.url).pathname.replace(/\/+$/, "");
  const match = path.match(/^\/wpp-webhook\/([^/]+)$/);
  if (!match) throw unknownUrl();
  allowMethods(req, ["POST"]);
  let secret: string;
  try {
    secret = decodeURIComponent(match[1]);
  } catch {
    throw unknownUrl();
  }
  if (!SECRET.test(secret)) throw unknownUrl();

  const bytes = await readCapped(req, config.WPP_WEBHOOK_MAX_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new AppError("invalid_json", "the event is not JSON");
  }
  const event = readEvent(json, deps.now());
  if (!event) throw new AppError("invalid_body", "the event is not a JSON object of a known shape");
  log.set({ event: event.type, ...(event.connection ? { connection: event.connection } : {}) });

  const secretHash = sha256Hex(secret);
  const store = () =>
    deps.store({ deadline: deps.now() + config.WPP_REQUEST_DEADLINE_MS, timing: log.onDbCall });
  const known = event.connection ? undefined : deps.secretCache?.get(secretHash);
  let result: WebhookEventResult;
  if (known && (event.account === null || event.account === known.session)) {
    // A message or delivery to a URL confirmed a moment ago: nothing to store but the session's
    // liveness, which the next confirmation (within the cache's lifetime) records.
    result = {
      found: true,
      integration_id: known.integrationId,
      organization_id: known.organizationId,
      applied: false,
      forward: true,
    };
    log.set({ source: "cache" });
  } else {
    result = await store().webhookEvent({
      secretHash,
      account: event.account,
      connection: event.connection,
      qr: event.qr,
      eventAt: event.at,
    });
    if (!result.found) {
      deps.secretCache?.forget(secretHash);
      throw unknownUrl();
    }
    if (result.forward) {
      deps.secretCache?.confirm(secretHash, {
        integrationId: result.integration_id!,
        organizationId: result.organization_id!,
        session: result.session ?? null,
      });
    }
  }
  log.set({
    integration_id: result.integration_id,
    organization_id: result.organization_id,
    applied: result.applied ?? false,
    ...(result.reason ? { reason: result.reason } : {}),
  });

  if (deps.forward && result.forward) {
    const requestId = log.requestId;
    const integrationId = result.integration_id;
    log.set({ forward: "scheduled" });
    deps.background(
      deps.forward(bytes, req.headers.get("content-type")).then((r: ForwardResult) => {
        // Only a forward that failed or needed a retry gets a line of its own: at hundreds of
        // events a second a line per forward costs the receiver as much as the event does.
        if (r.ok && r.attempts === 1) return;
        deps.log({
          level: r.ok ? "warn" : "error",
          fn: FUNCTION_NAME,
          msg: "forward",
          request_id: requestId,
          integration_id: integrationId,
          ok: r.ok,
          status: r.status,
          attempts: r.attempts,
          ms: r.ms,
        });
      }),
    );
  }
  return jsonResponse(200, { success: true, request_id: log.requestId }, cors);
}

export const createHandler = functionHandler<WebhookDeps>(FUNCTION_NAME, handle);
