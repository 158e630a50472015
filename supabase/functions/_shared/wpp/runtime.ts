// The client's options with their defaults, shared by the client and its session clients.
import { type RetryPolicy } from "./backoff.ts";
import { SecretScrubber } from "./mask.ts";
import type { WppCallEvent, WppClientOptions } from "./types.ts";

/** The client's options with defaults applied; shared by the client and its session clients. */
export interface Runtime {
  baseUrl: string;
  secret?: string;
  timeoutMs: number;
  retry: RetryPolicy;
  freshKeyRetryMs: number;
  tokenSafetyMarginMs: number;
  fetch: typeof fetch;
  /** For create: a connection of its own, never taken from or returned to a pool. */
  fetchIsolated: typeof fetch;
  now: () => number;
  sleep?: (ms: number) => Promise<void>;
  scrubber: SecretScrubber;
  emitCall: (event: WppCallEvent) => void;
  emitLog: (line: Record<string, unknown>) => void;
}

export const DEFAULTS = {
  timeoutMs: 10_000,
  attempts: 3,
  baseDelayMs: 200,
  maxDelayMs: 2_000,
  freshKeyRetryMs: 8_000,
  tokenSafetyMarginMs: 60_000,
} as const;

export function buildRuntime(options: WppClientOptions): Runtime {
  const baseUrl = checkBaseUrl(options.baseUrl);
  const scrubber = new SecretScrubber();
  scrubber.add(options.secret);
  const { onCall, log } = options;
  return {
    baseUrl,
    secret: options.secret,
    timeoutMs: positive(options.timeoutMs, DEFAULTS.timeoutMs, "timeoutMs"),
    retry: {
      attempts: Math.max(1, Math.floor(options.retry?.attempts ?? DEFAULTS.attempts)),
      baseDelayMs: nonNegative(options.retry?.baseDelayMs, DEFAULTS.baseDelayMs, "baseDelayMs"),
      maxDelayMs: nonNegative(options.retry?.maxDelayMs, DEFAULTS.maxDelayMs, "maxDelayMs"),
    },
    freshKeyRetryMs: nonNegative(
      options.freshKeyRetryMs,
      DEFAULTS.freshKeyRetryMs,
      "freshKeyRetryMs",
    ),
    tokenSafetyMarginMs: nonNegative(
      options.tokenSafetyMarginMs,
      DEFAULTS.tokenSafetyMarginMs,
      "tokenSafetyMarginMs",
    ),
    fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    fetchIsolated: options.fetch ?? isolatedFetch,
    now: options.now ?? Date.now,
    sleep: options.sleep,
    scrubber,
    // Observers must never break a platform call, so their failures are swallowed.
    emitCall: (event) => {
      try {
        onCall?.(event);
      } catch { /* observer failure is not the call's failure */ }
    },
    emitLog: (line) => {
      if (!log) return;
      try {
        log(scrubber.scrubDeep(line));
      } catch { /* observer failure is not the call's failure */ }
    },
  };
}

function checkBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError("WppPlatformClient: baseUrl is not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError("WppPlatformClient: baseUrl must be http(s)");
  }
  // Joined by hand rather than with new URL(path, base), which would drop a path prefix.
  return raw.replace(/\/+$/, "");
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!(v > 0)) throw new TypeError(`WppPlatformClient: ${name} must be > 0`);
  return v;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!(v >= 0)) throw new TypeError(`WppPlatformClient: ${name} must be >= 0`);
  return v;
}

interface HttpClientApi {
  createHttpClient?: (opts: { poolMaxIdlePerHost?: number }) => { close(): void };
}

/**
 * One request on a client of its own, closed once the answer is read, so the connection is never
 * reused. Where the runtime has no Deno.createHttpClient, the `connection: close` header the
 * request carries is the remaining guard.
 */
async function isolatedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const api = Deno as unknown as HttpClientApi;
  if (typeof api.createHttpClient !== "function") return await fetch(input, init);
  const client = api.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const response = await fetch(input, { ...init, client } as RequestInit);
    const body = await response.arrayBuffer();
    return new Response(body, { status: response.status, headers: response.headers });
  } finally {
    client.close();
  }
}
