// HTTP side of wpp-status: method and CORS, caller, body, organisation, then the status read.
// Every dependency comes in as an argument so tests can drive each branch.
import { z } from "zod";
import type { Config, ConfigResult } from "../_shared/config.ts";
import { AppError } from "../_shared/errors.ts";
import { jsonResponse } from "../_shared/http.ts";
import { parseJsonBody } from "../_shared/body.ts";
import type { TokenVerifier } from "../_shared/auth.ts";
import type { PlatformPort } from "../_shared/platform-port.ts";
import type { WppCallEvent } from "../_shared/wpp/mod.ts";
import type { RequestLog } from "../_shared/request-log.ts";
import { assertOwnPath, createEnvelope, warnInto } from "../_shared/request-envelope.ts";
import type { StatusStoreFactory } from "./store.ts";
import { readStatus, type StatusOutcome } from "./status.ts";

export const FUNCTION_NAME = "wpp-status";

/** A POST carries no options: the strict empty object refuses fields meant for wpp-create. */
export const StatusRequestSchema = z.strictObject({});

/** Only sessions: the type itself says this function cannot create a platform client. */
export type SessionPlatformFactory = (
  onCall: (e: WppCallEvent) => void,
) => Pick<PlatformPort, "forSession">;

export interface HandlerDeps {
  verifyToken: TokenVerifier;
  store: StatusStoreFactory;
  platform: SessionPlatformFactory;
  now: () => number;
  requestId: () => string;
  log: (line: Record<string, unknown>) => void;
}

/** Room kept after the platform calls for caching a token. */
const DEADLINE_RESERVE_MS = 1_000;

// Only the states that need someone to act carry an `error`; the others are ordinary states.
const PROBLEMS: Partial<Record<NonNullable<StatusOutcome["reason"]>, string>> = {
  needs_new_session: "the stored WhatsApp session is unusable: an owner or an admin must connect " +
    "WhatsApp again",
  dead_key: "the WPP Platform refuses this session's apiKey: an owner or an admin must connect " +
    "WhatsApp again, which replaces the session",
};

async function handle(
  req: Request,
  config: Config,
  deps: HandlerDeps,
  log: RequestLog,
  cors: Headers,
): Promise<Response> {
  assertOwnPath(req, FUNCTION_NAME, `GET /functions/v1/${FUNCTION_NAME}`);
  if (req.method !== "GET" && req.method !== "POST") {
    throw new AppError(
      "method_not_allowed",
      `method ${req.method} is not allowed; use GET or POST`,
      {
        headers: { Allow: "GET, POST, OPTIONS" },
      },
    );
  }

  const caller = await deps.verifyToken(req.headers.get("authorization"));
  log.set({ user_id: caller.userId });
  if (req.method === "POST") await parseJsonBody(req, StatusRequestSchema);

  const store = deps.store(log.onDbCall);
  const ctx = await store.callerContext(caller.userId);
  if (!ctx.organization_id) {
    throw new AppError("no_organization", "your account is not a member of any organisation");
  }
  // Every member may look: the status and the QR are what the whole team needs to see.
  log.set({ organization_id: ctx.organization_id, role: ctx.role });

  const outcome = await readStatus({
    store,
    platform: deps.platform(log.onPlatformCall),
    deadline: deps.now() + config.WPP_REQUEST_DEADLINE_MS - DEADLINE_RESERVE_MS,
    now: deps.now,
    freshKeyGraceMs: config.WPP_FRESH_KEY_GRACE_MS,
    warn: warnInto(log),
  }, ctx.organization_id);
  log.set({
    outcome: "status",
    connection: outcome.status,
    integration_id: outcome.integrationId ?? null,
    session: outcome.session ?? null,
    ...(outcome.reason ? { reason: outcome.reason } : {}),
    ...(outcome.platformState ? { platform_state: outcome.platformState } : {}),
  });

  return jsonResponse(200, {
    success: true,
    status: outcome.status,
    ...(outcome.session ? { session: outcome.session } : {}),
    ...(outcome.qrcode ? { qrcode: outcome.qrcode } : {}),
    ...(outcome.integrationId ? { integration_id: outcome.integrationId } : {}),
    ...(outcome.reason ? { reason: outcome.reason } : {}),
    ...(outcome.reason && PROBLEMS[outcome.reason] ? { error: PROBLEMS[outcome.reason] } : {}),
    request_id: log.requestId,
  }, cors);
}

export function createHandler(
  configResult: ConfigResult,
  deps: HandlerDeps,
): (req: Request) => Promise<Response> {
  return createEnvelope(
    FUNCTION_NAME,
    configResult,
    deps,
    (req, config, log, cors) => handle(req, config, deps, log, cors),
  );
}
