// One port with Kong's routes, as the Supabase CLI exposes them. It only routes: PostgREST, the
// function processes and the JWKS do the work.
import { type ProjectKeys, verifyProjectJwt } from "./keys.ts";

export interface GatewayFunction {
  name: string;
  verifyJwt: boolean;
  /** Base URLs of the function's processes; requests go round-robin. */
  upstreams: string[];
}

export interface GatewayOptions {
  port: number;
  hostname?: string;
  postgrestUrl: string;
  keys: ProjectKeys;
  functions: GatewayFunction[];
  /** Extra static routes (the demo page), path prefix → handler. */
  extraRoutes?: Record<string, (req: Request) => Response | Promise<Response>>;
  health: () => Record<string, unknown>;
}

// Hop-by-hop headers, plus the ones fetch manages itself; everything else is passed untouched.
const DROP_REQUEST = ["host", "connection", "keep-alive", "transfer-encoding", "accept-encoding"];
const DROP_RESPONSE = ["connection", "keep-alive", "transfer-encoding", "content-encoding"];

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

async function forward(req: Request, target: string): Promise<Response> {
  const headers = new Headers(req.headers);
  for (const h of DROP_REQUEST) headers.delete(h);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  try {
    const res = await fetch(target, {
      method: req.method,
      headers,
      body: hasBody ? await req.arrayBuffer() : undefined,
      redirect: "manual",
    });
    const out = new Headers(res.headers);
    for (const h of DROP_RESPONSE) out.delete(h);
    if (out.has("content-length") && res.headers.get("content-encoding")) {
      out.delete("content-length");
    }
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers: out });
  } catch (e) {
    return json(502, { message: "upstream unavailable", error: (e as Error).name });
  }
}

export function createGatewayHandler(opts: GatewayOptions): (req: Request) => Promise<Response> {
  const fns = new Map(opts.functions.map((f) => [f.name, { ...f, next: 0 }]));
  const jwksBody = JSON.stringify(opts.keys.publicJwks);

  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname;

    if (path === "/health" || path === "/health/") return json(200, opts.health());

    if (path === "/auth/v1/.well-known/jwks.json") {
      return new Response(jwksBody, {
        headers: { "content-type": "application/json", "cache-control": "public, max-age=600" },
      });
    }

    if (path.startsWith("/rest/v1/") || path === "/rest/v1") {
      const rest = path.slice("/rest/v1".length) || "/";
      return await forward(req, `${opts.postgrestUrl}${rest}${url.search}`);
    }

    const fnMatch = path.match(/^\/functions\/v1\/([^/]+)(\/.*)?$/);
    if (fnMatch) {
      const fn = fns.get(fnMatch[1]);
      if (!fn) return json(404, { code: "NOT_FOUND", message: "Requested function was not found" });
      if (fn.verifyJwt && req.method !== "OPTIONS") {
        const auth = req.headers.get("authorization") ?? "";
        const token = auth.match(/^Bearer\s+(.+)$/i)?.[1];
        if (!token) return json(401, { code: 401, message: "Missing authorization header" });
        try {
          await verifyProjectJwt(opts.keys, token);
        } catch {
          return json(401, { code: 401, message: "Invalid JWT" });
        }
      }
      const upstream = fn.upstreams[fn.next++ % fn.upstreams.length];
      return await forward(req, `${upstream}/${fn.name}${fnMatch[2] ?? ""}${url.search}`);
    }

    for (const [prefix, handler] of Object.entries(opts.extraRoutes ?? {})) {
      if (path === prefix || path.startsWith(prefix + "/")) return await handler(req);
    }

    return json(404, { message: "no route matched", path });
  };
}
