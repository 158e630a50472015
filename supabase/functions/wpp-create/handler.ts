// HTTP side of wpp-create: method and CORS, caller, body, role, then the provisioning flow.
// Every dependency comes in as an argument so tests can drive each branch.
import { z } from "zod";
import type { Config, ConfigResult } from "../_shared/config.ts";
import { AppError } from "../_shared/errors.ts";
import { jsonResponse, maskApiKey } from "../_shared/http.ts";
import { parseJsonBody } from "../_shared/body.ts";
import type { TokenVerifier } from "../_shared/auth.ts";
import type { StoreFactory } from "../_shared/provisioning-store.ts";
import type { PlatformFactory } from "../_shared/platform-port.ts";
import type { RequestLog } from "../_shared/request-log.ts";
import { assertOwnPath, createEnvelope, warnInto } from "../_shared/request-envelope.ts";
import { provision } from "./provision.ts";

export const FUNCTION_NAME = "wpp-create";

export const CreateRequestSchema = z.strictObject({
  force_recreate: z.boolean().optional(),
  add_new: z.boolean().optional(),
});

export interface HandlerDeps {
  verifyToken: TokenVerifier;
  store: StoreFactory;
  platform: PlatformFactory;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  requestId: () => string;
  log: (line: Record<string, unknown>) => void;
}

/** Room kept after the platform calls for the database writes that close a request. */
const DEADLINE_RESERVE_MS = 1_000;
const MAY_PROVISION = new Set(["owner", "admin"]);

async function handle(
  req: Request,
  config: Config,
  deps: HandlerDeps,
  log: RequestLog,
  cors: Headers,
): Promise<Response> {
  assertOwnPath(req, FUNCTION_NAME, `POST /functions/v1/${FUNCTION_NAME}`);
  if (req.method !== "POST") {
    throw new AppError("method_not_allowed", `method ${req.method} is not allowed; use POST`, {
      headers: { Allow: "POST, OPTIONS" },
    });
  }

  const caller = await deps.verifyToken(req.headers.get("authorization"));
  log.set({ user_id: caller.userId });
  const body = await parseJsonBody(req, CreateRequestSchema);
  if (body.add_new === true) {
    throw new AppError(
      "not_supported",
      "add_new: a second WhatsApp number per organisation is not supported yet",
    );
  }
  const force = body.force_recreate === true;
  log.set({ force_recreate: force });

  const store = deps.store(log.onDbCall);
  const ctx = await store.callerContext(caller.userId);
  if (!ctx.organization_id) {
    throw new AppError("no_organization", "your account is not a member of any organisation");
  }
  log.set({ organization_id: ctx.organization_id, role: ctx.role });
  if (!ctx.role || !MAY_PROVISION.has(ctx.role)) {
    throw new AppError(
      "forbidden",
      "only an owner or an admin of the organisation may connect or recreate WhatsApp",
    );
  }

  const started = deps.now();
  const outcome = await provision({
    store,
    platform: deps.platform(log.onPlatformCall),
    now: deps.now,
    sleep: deps.sleep,
    deadline: started + config.WPP_REQUEST_DEADLINE_MS - DEADLINE_RESERVE_MS,
    leaseSeconds: config.WPP_LEASE_SECONDS,
    busyWaitMs: config.WPP_BUSY_WAIT_MS,
    freshKeyGraceMs: config.WPP_FRESH_KEY_GRACE_MS,
    webhookBaseUrl: config.webhookBaseUrl,
    warn: warnInto(log),
  }, { organizationId: ctx.organization_id, actor: caller.userId, force });
  log.set({
    outcome: outcome.outcome,
    integration_id: outcome.integrationId,
    session: outcome.session,
    connection: outcome.status,
    ...(outcome.reason ? { reason: outcome.reason } : {}),
  });

  return jsonResponse(200, {
    success: true,
    session: outcome.session,
    apiKey: maskApiKey(outcome.apiKey),
    status: outcome.status,
    ...(outcome.qrcode ? { qrcode: outcome.qrcode } : {}),
    integration_id: outcome.integrationId,
    created: outcome.created,
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
