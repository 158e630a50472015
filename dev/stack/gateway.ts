// One port with Kong's routes and plugins as Supabase's docker/volumes/api/kong.yml sets them up:
//   /rest/v1/*  → PostgREST   cors, key-auth (apikey header or query), Authorization from apikey
//   /auth/v1/*  → Auth        the same, except the open routes (verify, callback, authorize, JWKS)
//   /functions/v1/<name> → the function's processes, round-robin: a passthrough without key-auth
//                (a platform's webhook carries no apikey); CORS, preflights included, is the
//                function's business, as on hosted Supabase
// plus /health and the extra routes (the demo page). It only routes: the services do the work.
import { type ProjectKeys, verifyProjectJwt } from "./keys.ts";

export interface GatewayFunction {
  name: string;
  verifyJwt: boolean;
  /** Base URLs of the function's processes; requests go round-robin. */
  upstreams: string[];
}

export interface GatewayOptions {
  postgrestUrl: string;
  authUrl: string;
  keys: ProjectKeys;
  functions: GatewayFunction[];
  /** Extra static routes (the demo page), path prefix → handler. */
  extraRoutes?: Record<string, (req: Request) => Response | Promise<Response>>;
  health: () => Promise<{ ok: boolean; body: unknown }>;
}

// Hop-by-hop headers, plus the ones fetch manages itself; everything else is passed untouched.
const DROP_REQUEST = ["host", "connection", "keep-alive", "transfer-encoding", "accept-encoding"];
const DROP_RESPONSE = ["connection", "keep-alive", "transfer-encoding", "content-encoding"];
const SMALL_BODY_BYTES = 64 * 1024;

/** kong.yml's open Auth routes: Kong matches route paths as prefixes. */
const OPEN_AUTH_PREFIXES = [
  "/auth/v1/verify",
  "/auth/v1/callback",
  "/auth/v1/authorize",
  "/auth/v1/.well-known/jwks.json",
];

// Kong's cors plugin with kong.yml's (empty) config: any origin, its default methods, the
// requested headers echoed back, no credentials.
const CORS_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

async function forward(req: Request, target: string, headers = new Headers(req.headers)) {
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
    // A small answer is passed on whole: piping a stream through costs more than the copy, and
    // nearly every answer here is a few hundred bytes of JSON. Anything else streams.
    const length = Number(res.headers.get("content-length") ?? NaN);
    const body = length <= SMALL_BODY_BYTES ? await res.arrayBuffer() : res.body;
    return new Response(body, { status: res.status, statusText: res.statusText, headers: out });
  } catch (e) {
    return json(502, { message: "An invalid response was received from the upstream server" }, {
      "x-gateway-error": (e as Error).name,
    });
  }
}

function preflight(req: Request): Response {
  const headers = new Headers({
    "access-control-allow-origin": "*",
    "access-control-allow-methods": CORS_METHODS,
  });
  const requested = req.headers.get("access-control-request-headers");
  if (requested) headers.set("access-control-allow-headers", requested);
  return new Response(null, { status: 200, headers });
}

function withCors(res: Response): Response {
  const headers = new Headers(res.headers);
  headers.set("access-control-allow-origin", "*");
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

const isPreflight = (req: Request) =>
  req.method === "OPTIONS" && req.headers.has("origin") &&
  req.headers.has("access-control-request-method");

export function createGatewayHandler(opts: GatewayOptions): (req: Request) => Promise<Response> {
  const fns = new Map(opts.functions.map((f) => [f.name, { ...f, next: 0 }]));
  const consumers = new Set([opts.keys.anonKey, opts.keys.serviceRoleKey]);

  /**
   * key-auth (key names `apikey`, header first, then query string; credentials not hidden), then
   * request-transformer: Authorization stays if the client sent one, else it becomes the key.
   */
  function keyAuth(req: Request, url: URL): Headers | Response {
    const key = req.headers.get("apikey") ?? url.searchParams.get("apikey");
    const challenge = { "www-authenticate": 'Key realm="kong"' };
    if (!key) return json(401, { message: "No API key found in request" }, challenge);
    if (!consumers.has(key)) {
      return json(401, { message: "Invalid authentication credentials" }, challenge);
    }
    const headers = new Headers(req.headers);
    if (!headers.has("authorization")) headers.set("authorization", `Bearer ${key}`);
    return headers;
  }

  async function service(
    req: Request,
    url: URL,
    prefix: string,
    upstream: string,
    open: boolean,
  ): Promise<Response> {
    if (isPreflight(req)) return preflight(req);
    let headers: Headers | undefined;
    if (!open) {
      const checked = keyAuth(req, url);
      if (checked instanceof Response) return withCors(checked);
      headers = checked;
    }
    const rest = url.pathname.slice(prefix.length) || "/";
    // Forwarded, a query-string apikey is a filter to PostgREST ("failed to parse filter"); the
    // key has done its job here, so it goes no further.
    let search = url.search;
    if (url.searchParams.has("apikey")) {
      const query = new URLSearchParams(url.search);
      query.delete("apikey");
      search = query.size ? `?${query}` : "";
    }
    return withCors(await forward(req, `${upstream}${rest}${search}`, headers));
  }

  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname;

    if (path === "/health" || path === "/health/") {
      const { ok, body } = await opts.health();
      return json(ok ? 200 : 503, body, { "cache-control": "no-store" });
    }

    if (path === "/rest/v1" || path.startsWith("/rest/v1/")) {
      return await service(req, url, "/rest/v1", opts.postgrestUrl, false);
    }

    if (path === "/auth/v1" || path.startsWith("/auth/v1/")) {
      const open = OPEN_AUTH_PREFIXES.some((p) => path.startsWith(p));
      return await service(req, url, "/auth/v1", opts.authUrl, open);
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

    return json(404, { message: "no Route matched with those values" });
  };
}
