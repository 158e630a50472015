// wpp-create, an adapter of the provisioning core (_shared/sessions/ensure.ts): the panel's body
// and the Idempotency-Key in, the core, the panel's answer shape out. Every dependency comes in
// as an argument so tests can drive each branch.
import { z } from "zod";
import type { Config } from "../_shared/config.ts";
import { AppError, isAppError } from "../_shared/errors.ts";
import { errorBody, jsonResponse } from "../_shared/http/responses.ts";
import { parseJsonBody } from "../_shared/http/body.ts";
import type { HandlerDeps } from "../_shared/deps.ts";
import type { RequestLog } from "../_shared/http/request-log.ts";
import { signedInHandler } from "../_shared/http/envelope.ts";
import type { Caller } from "../_shared/http/auth.ts";
import { openScope, requireManager } from "../_shared/scope.ts";
import type { Mode, WppStore } from "../_shared/db/store.ts";
import { maskSecret } from "../_shared/wpp/mod.ts";
import { ensureSession } from "../_shared/sessions/ensure.ts";

export const FUNCTION_NAME = "wpp-create";

/**
 * What the CRM's panel sends (`add_new`, and `force_recreate` when set) plus `integration_id` to
 * recreate one given number. Strict: a key nobody sends is refused.
 */
export const CreateRequestSchema = z.strictObject({
  force_recreate: z.boolean().optional(),
  add_new: z.boolean().optional(),
  integration_id: z.uuid().optional(),
});

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function modeOf(body: z.infer<typeof CreateRequestSchema>): Mode {
  if (body.add_new === true) {
    if (body.integration_id) {
      throw new AppError(
        "invalid_body",
        "add_new adds a new number; integration_id names an existing one: send one of them",
      );
    }
    // force_recreate next to add_new changes nothing: a new number is a new session anyway.
    return "add_new";
  }
  return body.force_recreate === true ? "recreate" : "connect";
}

/**
 * A recreate or add_new that is answered with an existing session looks like a silent no-op to a
 * curl user; the message says why, and when asking again would make a new one.
 */
function reuseExplained(reason: string | undefined, windowSeconds: number) {
  if (reason === "recently_created") {
    return {
      message:
        `this session was created less than ${windowSeconds} s ago, so this force_recreate ` +
        `is taken as a repeat of the one that made it; send it again after that to replace it`,
    };
  }
  if (reason === "pending_number") {
    return {
      message: "this number of your organisation is still waiting for its first scan: " +
        "add another once it is connected (or disconnect it)",
    };
  }
  return {};
}

async function handle(
  req: Request,
  config: Config,
  deps: HandlerDeps,
  log: RequestLog,
  cors: Headers,
  caller: Caller,
): Promise<Response> {
  const idempotencyKey = req.headers.get("idempotency-key");
  if (idempotencyKey !== null && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
    throw new AppError(
      "invalid_header",
      "Idempotency-Key must be 1 to 255 visible ASCII characters",
    );
  }
  const body = await parseJsonBody(req, CreateRequestSchema);
  const mode = modeOf(body);
  log.set({ mode, ...(body.integration_id ? { target: body.integration_id } : {}) });

  const { store, env } = openScope(config, deps, log, caller.userId);
  const context = await store.context(caller.userId, { integrationId: body.integration_id });
  const organizationId = requireManager(context, log, "connect, add or recreate WhatsApp numbers");
  if (body.integration_id && !context.found) {
    throw new AppError(
      "not_found",
      "no WhatsApp number with this integration_id in your organisation",
    );
  }

  const run = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
    const outcome = await ensureSession(env, {
      organizationId,
      mode,
      integrationId: body.integration_id,
      context,
    });
    log.set({
      outcome: outcome.outcome,
      integration_id: outcome.integrationId,
      session: outcome.session,
      connection: outcome.status,
      ...(outcome.reason ? { reason: outcome.reason } : {}),
    });
    return {
      status: 200,
      body: {
        success: true,
        session: outcome.session,
        apiKey: maskSecret(outcome.apiKey),
        status: outcome.status,
        ...(outcome.qrcode ? { qrcode: outcome.qrcode } : {}),
        integration_id: outcome.integrationId,
        created: outcome.created,
        ...reuseExplained(outcome.reason, config.WPP_REPEAT_WINDOW_SECONDS),
        request_id: log.requestId,
      },
    };
  };

  if (idempotencyKey === null) {
    const answer = await run();
    return jsonResponse(answer.status, answer.body, cors);
  }
  return await withIdempotencyKey(store, log, cors, {
    userId: caller.userId,
    organizationId,
    key: idempotencyKey,
    fingerprint: `${mode}:${body.integration_id ?? ""}`,
  }, run);
}

/** The first answer for a key is kept; a repeat gets it again, without running anything. */
async function withIdempotencyKey(
  store: WppStore,
  log: RequestLog,
  cors: Headers,
  claim: { userId: string; organizationId: string; key: string; fingerprint: string },
  run: () => Promise<{ status: number; body: Record<string, unknown> }>,
): Promise<Response> {
  const claimed = await store.idempotencyClaim(claim);
  switch (claimed.state) {
    case "replay": {
      log.set({ idempotency: "replayed", outcome: "replayed" });
      const headers = new Headers(cors);
      headers.set("Idempotency-Replayed", "true");
      return jsonResponse(claimed.http_status, claimed.response, headers);
    }
    case "mismatch":
      throw new AppError(
        "idempotency_key_reused",
        "this Idempotency-Key was already used for a different request",
      );
    case "in_flight":
      throw new AppError(
        "idempotency_in_progress",
        "the first request with this Idempotency-Key is still running; repeat it shortly",
        { retryAfterSeconds: Math.min(claimed.retry_after_seconds, 5) },
      );
  }
  log.set({ idempotency: "claimed" });
  const finish = (httpStatus: number, response: Record<string, unknown>) =>
    store.idempotencyFinish({
      userId: claim.userId,
      key: claim.key,
      claimId: claimed.claim_id,
      httpStatus,
      response,
    }).catch((e) =>
      log.set({ warning_idempotency_finish: (e as { code?: string }).code ?? "error" })
    );
  let answer;
  try {
    answer = await run();
  } catch (e) {
    const error = isAppError(e) ? e : new AppError("internal_error", "unexpected error");
    await finish(error.status, errorBody(error, log.requestId));
    throw e;
  }
  await finish(answer.status, answer.body);
  return jsonResponse(answer.status, answer.body, cors);
}

export const createHandler = signedInHandler<HandlerDeps>(
  FUNCTION_NAME,
  { methods: ["POST"], usage: `POST /functions/v1/${FUNCTION_NAME}` },
  handle,
);
