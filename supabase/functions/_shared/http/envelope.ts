// What every function does around its own logic: CORS and the preflight, the not_configured
// answer, one error model for every failure, and exactly one log line per request.
import type { Config, ConfigResult } from "../config.ts";
import type { Caller, TokenVerifier } from "./auth.ts";
import { AppError, isAppError } from "../errors.ts";
import { corsHeaders, errorResponse } from "./responses.ts";
import { RequestLog } from "./request-log.ts";

export interface EnvelopeDeps {
  requestId: () => string;
  log: (line: Record<string, unknown>) => void;
}

/** A function's own work: called for every non-preflight request once the config is valid. */
export type FunctionLogic = (
  req: Request,
  config: Config,
  log: RequestLog,
  cors: Headers,
) => Promise<Response>;

/** The same, with the function's dependencies passed in (what handler.ts files export). */
export type FunctionHandle<D> = (
  req: Request,
  config: Config,
  deps: D,
  log: RequestLog,
  cors: Headers,
) => Promise<Response>;

/**
 * A function's `createHandler(config, deps)`: its own handle wrapped in the envelope. The entry
 * file is then `Deno.serve(createHandler(loadConfig(), deps))`.
 */
export function functionHandler<D extends EnvelopeDeps>(name: string, handle: FunctionHandle<D>) {
  return (configResult: ConfigResult, deps: D): (req: Request) => Promise<Response> =>
    createEnvelope(
      name,
      configResult,
      deps,
      (req, config, log, cors) => handle(req, config, deps, log, cors),
    );
}

/** A signed-in user's function: its own work once path, method and token are checked. */
export type SignedInHandle<D> = (
  req: Request,
  config: Config,
  deps: D,
  log: RequestLog,
  cors: Headers,
  caller: Caller,
) => Promise<Response>;

/**
 * `functionHandler` for the functions the CRM's panel calls: the function's own path only, the
 * given methods only (`usage` is named in the 404), then the user's token, before any work.
 */
export function signedInHandler<D extends EnvelopeDeps & { verifyToken: TokenVerifier }>(
  name: string,
  route: { methods: readonly ("GET" | "POST")[]; usage: string },
  handle: SignedInHandle<D>,
) {
  return functionHandler<D>(name, async (req, config, deps, log, cors) => {
    assertOwnPath(req, name, route.usage);
    allowMethods(req, route.methods);
    const caller = await deps.verifyToken(req.headers.get("authorization"));
    log.set({ user_id: caller.userId });
    return await handle(req, config, deps, log, cors, caller);
  });
}

/** Refuses every method but the given ones, naming the allowed ones. */
export function allowMethods(req: Request, methods: readonly ("GET" | "POST")[]): void {
  if ((methods as readonly string[]).includes(req.method)) return;
  throw new AppError(
    "method_not_allowed",
    `method ${req.method} is not allowed; use ${methods.join(" or ")}`,
    { headers: { Allow: [...methods, "OPTIONS"].join(", ") } },
  );
}

/** Refuses any path but the function's own (the gateway forwards `/<name>/...`). */
function assertOwnPath(req: Request, name: string, usage: string): void {
  const path = new URL(req.url).pathname.replace(/\/+$/, "");
  if (path !== `/${name}` && path !== "") {
    throw new AppError("not_found", `no such route: ${path}; ${usage}`);
  }
}

/** Warnings from best-effort steps go into the log line by code, never by message. */
export function warnInto(log: RequestLog): (what: string, e: unknown) => void {
  return (what, e) =>
    log.set({
      [`warning_${what}`]: e instanceof Error ? (e as { code?: string }).code ?? e.name : "error",
    });
}

export function createEnvelope(
  name: string,
  configResult: ConfigResult,
  deps: EnvelopeDeps,
  logic: FunctionLogic,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const log = new RequestLog(deps.requestId(), name, req.method);
    const origins = configResult.ok ? configResult.config.corsOrigins : "*";
    const cors = corsHeaders(origins, req.headers.get("origin"));
    cors.set("x-request-id", log.requestId);
    let response: Response;
    try {
      if (req.method === "OPTIONS") {
        response = new Response(null, { status: 204, headers: cors });
      } else if (!configResult.ok) {
        throw new AppError(
          "not_configured",
          `the function is not configured: ${configResult.problem}`,
        );
      } else {
        response = await logic(req, configResult.config, log, cors);
      }
    } catch (e) {
      const error = isAppError(e)
        ? e
        : new AppError("internal_error", "unexpected error; see the function's log for request_id");
      if (!isAppError(e)) log.set({ exception: e instanceof Error ? e.name : typeof e });
      // Error messages are written to be shown to callers, so they are safe to log as well.
      log.set({ outcome: "error", error_code: error.code, error: error.message });
      response = errorResponse(error, log.requestId, cors);
    }
    deps.log(log.line(response.status));
    return response;
  };
}
