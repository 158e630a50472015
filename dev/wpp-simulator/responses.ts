import type { Variants } from "./types.ts";

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

/** The platform's error answers, JSON or plain text depending on the chosen variant. */
export function platformError(v: Variants, status: number, message: string): Response {
  if (v.errorBody === "json") return json(status, { error: message });
  return new Response(message, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** The page Express answers for a route it does not know. */
export function expressNotFound(method: string, path: string): Response {
  const escaped = `Cannot ${method} ${path}`
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const page = [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    "<title>Error</title>",
    "</head>",
    "<body>",
    `<pre>${escaped}</pre>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
  return new Response(page, {
    status: 404,
    headers: { "content-type": "text/html; charset=utf-8" },
  });
}

/** A JSON answer cut short, as a crashing upstream might send. */
export function malformedJson(): Response {
  return new Response('{"session": "00000000', {
    status: 200,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

/** The text the platform puts in an error of this status for this kind of route. */
export function usualErrorText(op: string, status: number): string {
  if (op === "token" && (status === 401 || status === 403)) return "Invalid API key";
  if (status === 401) return "Invalid token";
  if (status === 403) return "Forbidden";
  if (status === 502) return "Bad Gateway";
  if (status === 503) return "Service Unavailable";
  if (status >= 500) return "Internal Server Error";
  return "Bad Request";
}
