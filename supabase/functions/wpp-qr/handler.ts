// wpp-qr: the QR code to scan for one of the organisation's WhatsApp numbers, as the CRM's panel
// asks for it (`GET ?session=` or `POST {"session"}`): `{success, qr}`, qr null while there is
// none. Owners and admins only: whoever scans the QR links their phone to the organisation.
import { z } from "zod";
import type { Config } from "../_shared/config.ts";
import { AppError } from "../_shared/errors.ts";
import { jsonResponse } from "../_shared/http/responses.ts";
import { readInput } from "../_shared/http/input.ts";
import type { HandlerDeps } from "../_shared/deps.ts";
import type { RequestLog } from "../_shared/http/request-log.ts";
import { signedInHandler } from "../_shared/http/envelope.ts";
import type { Caller } from "../_shared/http/auth.ts";
import { openScope, requireManager } from "../_shared/scope.ts";
import { observeConnection, SessionReplaced } from "../_shared/sessions/connection.ts";
import { platformFailure } from "../_shared/wpp/failure.ts";
import { isWppError } from "../_shared/wpp/mod.ts";

export const FUNCTION_NAME = "wpp-qr";

export const QrRequestSchema = z.strictObject({
  session: z.string().trim().min(1).max(128).optional(),
});

async function handle(
  req: Request,
  config: Config,
  deps: HandlerDeps,
  log: RequestLog,
  cors: Headers,
  caller: Caller,
): Promise<Response> {
  const body = await readInput(req, QrRequestSchema);

  const { store, env } = openScope(config, deps, log, caller.userId);
  const ctx = await store.context(caller.userId, { session: body.session });
  requireManager(ctx, log, "see the QR code");
  if (body.session && !ctx.found && !ctx.replaced) {
    throw new AppError("not_found", "no WhatsApp session with this session in your organisation");
  }
  const integration = ctx.integration;

  let qr: string | null = null;
  let reason: string | undefined;
  if (ctx.replaced) {
    reason = "replaced"; // a replaced session's QR is never handed out
  } else if (!integration || !integration.valid || integration.disconnected) {
    reason = "no_session";
  } else {
    try {
      const observed = await observeConnection(env, integration, "qr", true);
      qr = observed.connection === "qr" ? observed.qr : null;
      if (observed.connection === "connected") reason = "connected";
      log.set({ source: observed.source });
    } catch (e) {
      if (e instanceof SessionReplaced) {
        reason = "replaced";
      } else if (isWppError(e) && e.code === "invalid_api_key") {
        reason = "dead_key";
      } else {
        throw isWppError(e) ? platformFailure(e) : e;
      }
    }
  }
  log.set({
    outcome: "qr",
    integration_id: integration?.integration_id ?? null,
    session: integration?.session ?? null,
    has_qr: qr !== null,
    ...(reason ? { reason } : {}),
  });
  return jsonResponse(200, {
    success: true,
    qr,
    ...(reason ? { reason } : {}),
    request_id: log.requestId,
  }, cors);
}

export const createHandler = signedInHandler<HandlerDeps>(
  FUNCTION_NAME,
  { methods: ["GET", "POST"], usage: `GET /functions/v1/${FUNCTION_NAME}?session=<session>` },
  handle,
);
