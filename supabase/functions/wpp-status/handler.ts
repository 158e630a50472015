// wpp-status: the connection of one of the organisation's WhatsApp numbers, in the shape the
// CRM's panel reads. Answered from the stored state while it is fresh (platform events keep it
// so); otherwise one platform refresh per session at a time. It never creates a platform client,
// and a member sees the status only: no QR, and no platform start on their behalf.
import { z } from "zod";
import type { Config } from "../_shared/config.ts";
import { AppError } from "../_shared/errors.ts";
import { jsonResponse } from "../_shared/http/responses.ts";
import { readInput } from "../_shared/http/input.ts";
import type { HandlerDeps } from "../_shared/deps.ts";
import type { RequestLog } from "../_shared/http/request-log.ts";
import { signedInHandler } from "../_shared/http/envelope.ts";
import type { Caller } from "../_shared/http/auth.ts";
import { mayManage, openScope, requireMember } from "../_shared/scope.ts";
import {
  observeConnection,
  type Observed,
  SessionReplaced,
} from "../_shared/sessions/connection.ts";
import { isYoungSession } from "../_shared/sessions/session-age.ts";
import { platformFailure } from "../_shared/wpp/failure.ts";
import { isWppError } from "../_shared/wpp/mod.ts";

export const FUNCTION_NAME = "wpp-status";

/** The panel's poll: `{session_name, force}`; `{}` asks about the organisation's number. */
export const StatusRequestSchema = z.strictObject({
  session_name: z.string().trim().min(1).max(128).optional(),
  force: z.boolean().optional(),
});

export type PanelStatus = "connected" | "qr_issued" | "qr_pending" | "disconnected";

const MESSAGES: Record<string, string> = {
  connected: "WhatsApp is connected",
  qr_issued: "scan the QR code with WhatsApp on the phone (Linked devices)",
  qr_pending: "waiting for the WPP Platform to issue a QR code",
  offline: "the phone is not linked any more: an owner or an admin must connect WhatsApp again",
  no_integration: "WhatsApp is not connected yet",
  needs_new_session: "the stored WhatsApp session is unusable: an owner or an admin must " +
    "connect WhatsApp again",
  provisioning: "a new WhatsApp session is being created",
  activating: "the new session is being activated by the WPP Platform",
  dead_key: "the WPP Platform refuses this session's apiKey: an owner or an admin must connect " +
    "WhatsApp again, which replaces the session",
  replaced: "this session was replaced by a newer one",
  disconnected: "this WhatsApp number was disconnected",
};

interface Answer {
  status: PanelStatus;
  reason?: string;
  observed?: Observed;
}

function fromObserved(observed: Observed): Answer {
  switch (observed.connection) {
    case "connected":
      return { status: "connected", observed };
    case "qr":
      return { status: "qr_issued", observed };
    case "offline":
      return { status: "disconnected", reason: "offline", observed };
    default:
      return { status: "qr_pending", observed };
  }
}

async function handle(
  req: Request,
  config: Config,
  deps: HandlerDeps,
  log: RequestLog,
  cors: Headers,
  caller: Caller,
): Promise<Response> {
  const body = await readInput(req, StatusRequestSchema, { force: "boolean" });
  // Without `force` (the plain GET of earlier versions) the platform is asked unless fresh.
  const force = body.force ?? true;

  const { store, env } = openScope(config, deps, log, caller.userId);
  const ctx = await store.context(caller.userId, { session: body.session_name });
  const { role } = requireMember(ctx, log);
  if (body.session_name && !ctx.found && !ctx.replaced) {
    throw new AppError(
      "not_found",
      "no WhatsApp session with this session_name in your organisation",
    );
  }
  const integration = ctx.integration;

  let answer: Answer;
  if (ctx.replaced) {
    answer = { status: "disconnected", reason: "replaced" };
  } else if (!integration) {
    answer = { status: "disconnected", reason: "no_integration" };
  } else if (integration.disconnected) {
    answer = { status: "disconnected", reason: "disconnected" };
  } else if (!integration.valid) {
    // While wpp-create holds the lease the session is being made; "not connected" then would
    // invite a second click for nothing.
    answer = integration.provisioning
      ? { status: "qr_pending", reason: "provisioning" }
      : { status: "disconnected", reason: "needs_new_session" };
  } else {
    try {
      answer = fromObserved(
        await observeConnection(env, integration, mayManage(role) ? "poll" : "read", force),
      );
    } catch (e) {
      if (e instanceof SessionReplaced) {
        answer = { status: "disconnected", reason: "replaced" };
      } else if (isWppError(e) && e.code === "invalid_api_key") {
        // On a session created moments ago this is the platform still activating the key; on an
        // older one the key is dead and the next click replaces the session (after checking the
        // key itself: this read stays a read).
        answer =
          isYoungSession(integration.session_created_at, deps.now(), config.WPP_FRESH_KEY_GRACE_MS)
            ? { status: "qr_pending", reason: "activating" }
            : { status: "disconnected", reason: "dead_key" };
      } else {
        throw isWppError(e) ? platformFailure(e) : e;
      }
    }
  }

  const observed = answer.observed;
  const qrcode = mayManage(role) && answer.status === "qr_issued" ? observed?.qr : null;
  log.set({
    outcome: "status",
    connection: answer.status,
    integration_id: integration?.integration_id ?? null,
    session: integration?.session ?? null,
    ...(answer.reason ? { reason: answer.reason } : {}),
    ...(observed ? { source: observed.source } : {}),
  });
  return jsonResponse(200, {
    success: true,
    status: answer.status,
    qrcode: qrcode ?? null,
    last_qr_at: observed?.qrAt ? new Date(observed.qrAt).toISOString() : null,
    account_number: integration?.valid ? integration.session : null,
    message: MESSAGES[answer.reason ?? answer.status] ?? MESSAGES[answer.status],
    session: integration?.valid ? integration.session : null,
    integration_id: integration?.integration_id ?? null,
    ...(answer.reason ? { reason: answer.reason } : {}),
    request_id: log.requestId,
  }, cors);
}

export const createHandler = signedInHandler<HandlerDeps>(
  FUNCTION_NAME,
  { methods: ["POST", "GET"], usage: `POST /functions/v1/${FUNCTION_NAME}` },
  handle,
);
