// The «Подключить WhatsApp» demo page on the gateway, under /demo: the page and its scripts from
// dev/demo/, supabase-js's browser build from node_modules (no CDN), the anon key and the demo
// users' emails (`/demo/config`), and a QR drawer (`POST /demo/qr`). Users sign in through
// /auth/v1 with their password, as in the CRM; `npm run token` mints tokens for scripts.
import { join } from "node:path";
import { ROOT } from "./paths.ts";
import { DEMO_USERS } from "./demo-users.ts";
import type { RouteContext } from "./stack.ts";
import QRCode from "qrcode";

type Route = (req: Request) => Response | Promise<Response>;

const DEMO_DIR = join(ROOT, "dev/demo");

/** What the page may load, by the name it asks for; nothing else on disk is reachable. */
const FILES: Record<string, { path: string; type: string }> = {
  "index.html": { path: join(DEMO_DIR, "index.html"), type: "text/html; charset=utf-8" },
  "style.css": { path: join(DEMO_DIR, "style.css"), type: "text/css; charset=utf-8" },
  "app.js": { path: join(DEMO_DIR, "app.js"), type: "text/javascript; charset=utf-8" },
  "api.js": { path: join(DEMO_DIR, "api.js"), type: "text/javascript; charset=utf-8" },
  "messages.js": { path: join(DEMO_DIR, "messages.js"), type: "text/javascript; charset=utf-8" },
  "qr.js": { path: join(DEMO_DIR, "qr.js"), type: "text/javascript; charset=utf-8" },
  "vendor/supabase.js": {
    path: join(ROOT, "node_modules/@supabase/supabase-js/dist/umd/supabase.js"),
    type: "text/javascript; charset=utf-8",
  },
};

// The page may be opened from another origin than the API (that is how the browser test gets a
// real CORS preflight), so its JSON endpoints allow any origin, as the functions do.
const CORS = { "access-control-allow-origin": "*", "cache-control": "no-store" };

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...CORS, "content-type": "application/json; charset=utf-8" },
  });
}

async function file(name: string): Promise<Response> {
  const entry = FILES[name];
  if (!entry) return json(404, { error: `no demo file ${name}` });
  try {
    return new Response(await Deno.readFile(entry.path), {
      headers: { "content-type": entry.type, "cache-control": "no-cache" },
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return json(404, { error: `${name} is not installed` });
    throw e;
  }
}

function config(ctx: RouteContext): Response {
  return json(200, {
    anonKey: ctx.keys.anonKey,
    users: DEMO_USERS.map(({ key, email, role }) => ({ key, email, role })),
  });
}

const MAX_QR_TEXT = 2048;

/**
 * Draws a raw pairing string as an SVG QR code with the qrcode package (the page has no encoder
 * of its own). Local development only: the string is the scan secret of a session.
 */
async function qrSvg(req: Request): Promise<Response> {
  const text = await req.text();
  if (!text || text.length > MAX_QR_TEXT) {
    return json(400, {
      error: `send the pairing string as the body (1 to ${MAX_QR_TEXT} characters)`,
    });
  }
  const svg = await QRCode.toString(text, { type: "svg", margin: 1, errorCorrectionLevel: "L" });
  return new Response(svg, { headers: { ...CORS, "content-type": "image/svg+xml" } });
}

export function demoPageRoutes(ctx: RouteContext): Record<string, Route> {
  return {
    "/demo": (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/demo/qr" && req.method === "POST") return qrSvg(req);
      if (req.method !== "GET" && req.method !== "HEAD") {
        return json(405, { error: "the demo page only answers GET" });
      }
      const rest = url.pathname.slice("/demo".length);
      // Relative script URLs in the page resolve against /demo/, not /.
      if (rest === "") return Response.redirect(new URL(`/demo/${url.search}`, url), 302);
      if (rest === "/" || rest === "/index.html") return file("index.html");
      if (rest === "/config") return config(ctx);
      return file(decodeURIComponent(rest.slice(1)));
    },
  };
}
