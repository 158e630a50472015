// wpp-disconnect: «Отключить» in the CRM's panel. Stops the number's platform session, marks the
// row disconnected and inactive, keeps the row and its audit trail. A repeat answers success too;
// a stop that failed is retried by the repeat.
import { z } from "zod";
import type { Config } from "../_shared/config.ts";
import { AppError } from "../_shared/errors.ts";
import { jsonResponse } from "../_shared/http/responses.ts";
import { parseJsonBody } from "../_shared/http/body.ts";
import type { HandlerDeps } from "../_shared/deps.ts";
import type { RequestLog } from "../_shared/http/request-log.ts";
import { signedInHandler } from "../_shared/http/envelope.ts";
import type { Caller } from "../_shared/http/auth.ts";
import { openScope, requireManager } from "../_shared/scope.ts";
import { platformFailure } from "../_shared/wpp/failure.ts";
import { isWppError } from "../_shared/wpp/mod.ts";
import type { DisconnectResult } from "../_shared/db/store.ts";

export const FUNCTION_NAME = "wpp-disconnect";

export const DisconnectRequestSchema = z.strictObject({
  integration_id: z.uuid(),
});

const BUSY_POLL_MS = 200;

async function handle(
  req: Request,
  config: Config,
  deps: HandlerDeps,
  log: RequestLog,
  cors: Headers,
  caller: Caller,
): Promise<Response> {
  const body = await parseJsonBody(req, DisconnectRequestSchema);
  log.set({ integration_id: body.integration_id });

  const { store, env } = openScope(config, deps, log, caller.userId);
  const ctx = await store.context(caller.userId, { integrationId: body.integration_id });
  const organizationId = requireManager(ctx, log, "disconnect WhatsApp numbers");
  if (!ctx.found) {
    throw new AppError(
      "not_found",
      "no WhatsApp number with this integration_id in your organisation",
    );
  }

  // A start of this session may be in flight; it ends within one platform call.
  const waitUntil = Math.min(env.now() + env.busyWaitMs, env.deadline);
  let marked: DisconnectResult;
  while (true) {
    marked = await store.disconnect(body.integration_id, organizationId, caller.userId);
    if (marked.outcome !== "busy") break;
    if (marked.reason === "provisioning" || env.now() + BUSY_POLL_MS > waitUntil) {
      throw new AppError(
        "provisioning_in_progress",
        "this WhatsApp number is being connected right now; disconnect it once that is done",
        { retryAfterSeconds: Math.min(marked.retry_after_seconds, 5) },
      );
    }
    await env.sleep(BUSY_POLL_MS);
  }
  if (marked.outcome === "not_found") {
    throw new AppError(
      "not_found",
      "no WhatsApp number with this integration_id in your organisation",
    );
  }
  log.set({ outcome: marked.outcome === "marked" ? "disconnected" : "already_disconnected" });

  if (marked.stop_needed && marked.session && marked.api_key) {
    const client = env.platform.forSession({
      apiKey: marked.api_key,
      session: marked.session,
      storedToken: marked.jwt_token && marked.jwt_expires_at
        ? { token: marked.jwt_token, expiresAt: marked.jwt_expires_at }
        : undefined,
    });
    let failure: unknown;
    try {
      await client.stop({ deadline: env.deadline });
    } catch (e) {
      failure = e;
    }
    // A refused key means the platform will not run this session for anyone: it is stopped.
    const deadKey = isWppError(failure) && failure.code === "invalid_api_key";
    await store.disconnectStopped({
      integrationId: body.integration_id,
      session: marked.session,
      ok: failure === undefined || deadKey,
      details: failure && isWppError(failure)
        ? { code: failure.code, op: failure.op, http_status: failure.status ?? null }
        : {},
      actor: caller.userId,
    });
    if (failure !== undefined && !deadKey) {
      log.set({ stop: "failed" });
      throw isWppError(failure) ? platformFailure(failure) : failure;
    }
    log.set({ stop: "stopped", session: marked.session });
  }

  return jsonResponse(200, {
    success: true,
    integration_id: body.integration_id,
    status: "disconnected",
    request_id: log.requestId,
  }, cors);
}

export const createHandler = signedInHandler<HandlerDeps>(
  FUNCTION_NAME,
  { methods: ["POST"], usage: `POST /functions/v1/${FUNCTION_NAME}` },
  handle,
);
