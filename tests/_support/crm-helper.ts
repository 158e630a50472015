// The CRM panel's HTTP helper, as ../shared/crm-contract.md §3 describes it, so tests call the
// functions exactly the way the real panel does: the same headers, the same retries (up to 3
// retries on 408, 429, 500, 502, 503, 504 and on network errors, 1 s·2ⁿ ±25 % apart, at most
// 10 s, Retry-After ignored, never on 409 or another 4xx) and the same error text (`error`, else
// `message`, else `HTTP <status>`).
import { stack } from "./stack.ts";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** ± this fraction of each delay. */
  jitter: number;
}

/** The panel's own numbers. */
export const CRM_POLICY: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 1_000,
  maxDelayMs: 10_000,
  jitter: 0.25,
};

const RETRIED = new Set([408, 429, 500, 502, 503, 504]);

export interface Attempt {
  /** 0 when no answer came (network error). */
  status: number;
  /** ms since the call started. */
  at: number;
  ms: number;
  body: Record<string, unknown> | null;
}

export interface HelperResult {
  ok: boolean;
  status: number;
  data: Record<string, unknown> | null;
  /** The text the panel would show for a failure. */
  error: string | null;
  attempts: Attempt[];
  /** ms from the first attempt to the last answer. */
  ms: number;
}

export interface HelperOptions {
  /** The signed-in user's access token. */
  token: string;
  policy?: RetryPolicy;
  baseUrl?: string;
  anonKey?: string;
  /** Extra headers (an Idempotency-Key in tests that want one; the panel sends none). */
  headers?: Record<string, string>;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface CrmHelper {
  post(fn: string, body: Record<string, unknown>): Promise<HelperResult>;
  get(fn: string, query?: Record<string, string>): Promise<HelperResult>;
}

function delayFor(policy: RetryPolicy, retry: number, random: () => number): number {
  const base = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.round(base * (1 + policy.jitter * (random() * 2 - 1)));
}

function errorText(status: number, body: Record<string, unknown> | null): string {
  if (body && typeof body.error === "string") return body.error;
  if (body && typeof body.message === "string") return body.message;
  return `HTTP ${status}`;
}

export function crmHelper(opts: HelperOptions): CrmHelper {
  const policy = opts.policy ?? CRM_POLICY;
  const random = opts.random ?? Math.random;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const base = (opts.baseUrl ?? stack.url).replace(/\/+$/, "");
  const headers = {
    "Content-Type": "application/json",
    apikey: opts.anonKey ?? stack.anonKey,
    Authorization: `Bearer ${opts.token}`,
    ...opts.headers,
  };

  async function call(url: string, init: RequestInit): Promise<HelperResult> {
    const t0 = performance.now();
    const attempts: Attempt[] = [];
    for (let n = 0;; n++) {
      const started = performance.now();
      let status = 0;
      let body: Record<string, unknown> | null = null;
      try {
        const res = await fetch(url, { ...init, headers });
        status = res.status;
        const text = await res.text();
        try {
          const parsed = JSON.parse(text);
          body = parsed !== null && typeof parsed === "object" ? parsed : null;
        } catch {
          body = null;
        }
      } catch {
        status = 0;
      }
      attempts.push({
        status,
        at: Math.round(started - t0),
        ms: Math.round(performance.now() - started),
        body,
      });
      const retry = status === 0 || RETRIED.has(status);
      if (!retry || n + 1 >= policy.attempts) {
        const ok = status >= 200 && status < 300;
        return {
          ok,
          status,
          data: body,
          error: ok ? null : errorText(status, body),
          attempts,
          ms: Math.round(performance.now() - t0),
        };
      }
      await sleep(delayFor(policy, n, random));
    }
  }

  return {
    post: (fn, body) =>
      call(`${base}/functions/v1/${fn}`, { method: "POST", body: JSON.stringify(body) }),
    get: (fn, query = {}) => {
      const qs = new URLSearchParams(query).toString();
      return call(`${base}/functions/v1/${fn}${qs ? `?${qs}` : ""}`, { method: "GET" });
    },
  };
}
