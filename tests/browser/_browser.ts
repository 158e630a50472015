// A real Chromium for the page tests, and a second origin to serve the page from, so every call
// the page makes to the API is cross-origin and goes through a real CORS preflight.
import { type Browser, chromium, type Page } from "playwright-core";
import sparticuz from "@sparticuz/chromium";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stack } from "../_support/stack.ts";

/** Debian's Chromium, used when the machine has it. */
export const DEBIAN_CHROMIUM = "/usr/bin/chromium";
export const SCREENSHOTS = fileURLToPath(new URL("../../test-output/browser/", import.meta.url));

/**
 * Debian's Chromium when installed, otherwise the one @sparticuz/chromium ships inside
 * node_modules (so `npm ci` is all a machine needs), unpacked into the temp folder on first use.
 */
export async function chromiumPath(): Promise<string> {
  if (await Deno.stat(DEBIAN_CHROMIUM).then(() => true, () => false)) return DEBIAN_CHROMIUM;
  // The package hands out its temp-folder binary as soon as the file exists, so a second test run
  // unpacking at the same moment would launch a half-written one: unpack one run at a time.
  const lock = await Deno.open(join(tmpdir(), "wpp-connect-chromium.lock"), {
    create: true,
    write: true,
  });
  try {
    await lock.lock(true);
    return await sparticuz.executablePath();
  } catch (e) {
    throw new Error(
      `the browser tests need Chromium: ${DEBIAN_CHROMIUM} is missing and @sparticuz/chromium ` +
        `(npm ci installs it) could not unpack its own: ${(e as Error).message}`,
    );
  } finally {
    lock.close();
  }
}

/** Fails loudly without Chromium: a browser test that skips itself proves nothing. */
export async function launchChromium(): Promise<Browser> {
  return await chromium.launch({
    executablePath: await chromiumPath(),
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface PageOrigin {
  /** e.g. http://127.0.0.1:41234, never the gateway's origin. */
  origin: string;
  close(): Promise<void>;
}

/**
 * Serves the gateway's /demo/ files from another port. Only the page's own files come through
 * here; the page's API calls go straight to the gateway.
 */
export function servePageElsewhere(): PageOrigin {
  const ac = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: () => {},
  }, async (req) => {
    const url = new URL(req.url);
    if (!url.pathname.startsWith("/demo/")) return new Response("not found", { status: 404 });
    const upstream = await fetch(`${stack.url}${url.pathname}`);
    return new Response(upstream.body, {
      status: upstream.status,
      headers: { "content-type": upstream.headers.get("content-type") ?? "text/plain" },
    });
  });
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

export function pageUrl(origin: string, params: Record<string, string>): string {
  const query = new URLSearchParams({ api: stack.url, ...params });
  return `${origin}/demo/?${query}`;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });
}

export interface Preflight {
  url: string;
  origin?: string;
  requestMethod?: string;
}

/**
 * CORS preflights, as Chromium's network layer sends them. Playwright's own request events leave
 * preflights out, so this listens through the DevTools protocol.
 */
export async function recordPreflights(page: Page): Promise<Preflight[]> {
  const seen: Preflight[] = [];
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.requestWillBeSent", (e) => {
    if (e.request.method !== "OPTIONS") return;
    const headers = Object.fromEntries(
      Object.entries(e.request.headers).map(([k, v]) => [k.toLowerCase(), String(v)]),
    );
    seen.push({
      url: e.request.url,
      origin: headers["origin"],
      requestMethod: headers["access-control-request-method"],
    });
  });
  return seen;
}
