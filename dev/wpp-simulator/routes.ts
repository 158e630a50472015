import type { Operation } from "./types.ts";

export interface RouteMatch {
  op: Operation;
  /** "METHOD /path/:template", the key call counts are kept under. */
  template: string;
  session?: string;
}

interface Route {
  op: Operation;
  method: "GET" | "POST";
  template: string;
  pattern: RegExp;
}

function route(op: Operation, method: "GET" | "POST", template: string): Route {
  const source = template.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(":session", "([^/]+)");
  return { op, method, template, pattern: new RegExp(`^${source}/?$`) };
}

// The platform's routes, as known (see /work/shared/wpp-platform.md).
const ROUTES: Route[] = [
  route("create", "POST", "/api/integrations/wpp/create"),
  route("token", "POST", "/auth/token"),
  route("start", "POST", "/api/accounts/start"),
  route("status", "GET", "/api/accounts/:session/status"),
  route("qr", "GET", "/api/accounts/:session/qr"),
  route("webhook", "POST", "/internal/session/:session/webhook"),
  route("stop", "POST", "/internal/session/:session/stop"),
];

/** Like Express, a known path with the wrong method is simply not found. */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  for (const r of ROUTES) {
    if (r.method !== method) continue;
    const m = r.pattern.exec(path);
    if (!m) continue;
    const match: RouteMatch = { op: r.op, template: `${r.method} ${r.template}` };
    if (m[1] !== undefined) match.session = safeDecode(m[1]);
    return match;
  }
  return undefined;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
