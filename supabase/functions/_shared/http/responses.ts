// Responses every function shares: CORS on each of them (errors included, or the browser hides
// the error from the page), JSON bodies, and the error shape the CRM's UI reads.
import { AppError } from "../errors.ts";

const ALLOWED_HEADERS =
  "authorization, x-client-info, apikey, content-type, x-request-id, idempotency-key";

export function corsHeaders(origins: "*" | string[], requestOrigin: string | null): Headers {
  const h = new Headers({
    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Max-Age": "600",
    "Access-Control-Expose-Headers": "x-request-id, retry-after, idempotency-replayed",
  });
  if (origins === "*") {
    h.set("Access-Control-Allow-Origin", "*");
  } else {
    // A listed origin is echoed; others get no allow-origin header, so browsers refuse them.
    if (requestOrigin && origins.includes(requestOrigin)) {
      h.set("Access-Control-Allow-Origin", requestOrigin);
    }
    h.set("Vary", "Origin");
  }
  return h;
}

export function jsonResponse(status: number, body: unknown, headers: Headers): Response {
  const h = new Headers(headers);
  h.set("content-type", "application/json; charset=utf-8");
  h.set("cache-control", "no-store");
  return new Response(JSON.stringify(body), { status, headers: h });
}

/** The body of an error answer, in the shape the CRM's UI reads (`error`, else `message`). */
export function errorBody(error: AppError, requestId: string): Record<string, unknown> {
  return {
    success: false,
    status: "error",
    code: error.code,
    error: error.message,
    request_id: requestId,
  };
}

export function errorResponse(error: AppError, requestId: string, headers: Headers): Response {
  const h = new Headers(headers);
  if (error.extra.retryAfterSeconds !== undefined) {
    h.set("Retry-After", String(error.extra.retryAfterSeconds));
  }
  for (const [k, v] of Object.entries(error.extra.headers ?? {})) h.set(k, v);
  return jsonResponse(error.status, errorBody(error, requestId), h);
}
