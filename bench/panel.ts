// The CRM panel's HTTP helper as /work/shared/crm-contract.md §3 describes it (and as
// tests/_support/crm-helper.ts plays it in the tests, which cannot be imported here: it reads the
// test runner's environment): the panel's headers, up to 4 attempts on 408/429/5xx and network
// errors, 1 s·2ⁿ ±25 % apart, never on 409 or another 4xx.

const RETRIED = new Set([408, 429, 500, 502, 503, 504]);
const ATTEMPTS = 4;
const BASE_DELAY_MS = 1_000;
const MAX_DELAY_MS = 10_000;
const JITTER = 0.25;

export interface PanelAnswer {
  status: number;
  body: Record<string, unknown> | null;
  /** Requests this call made: more than one when the helper retried. */
  attempts: number;
  ms: number;
}

export interface Panel {
  post(fn: string, body: Record<string, unknown>): Promise<PanelAnswer>;
  get(fn: string, query: Record<string, string>): Promise<PanelAnswer>;
}

export function panel(baseUrl: string, anonKey: string, token: string): Panel {
  const headers = {
    "Content-Type": "application/json",
    apikey: anonKey,
    Authorization: `Bearer ${token}`,
  };
  async function call(url: string, init: RequestInit): Promise<PanelAnswer> {
    const t0 = performance.now();
    for (let n = 0;; n++) {
      let status = 0;
      let body: Record<string, unknown> | null = null;
      try {
        const res = await fetch(url, { ...init, headers });
        status = res.status;
        const parsed = await res.json().catch(() => null);
        body = parsed !== null && typeof parsed === "object" ? parsed : null;
      } catch {
        status = 0;
      }
      if (!(status === 0 || RETRIED.has(status)) || n + 1 >= ATTEMPTS) {
        return { status, body, attempts: n + 1, ms: performance.now() - t0 };
      }
      const base = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** n);
      await new Promise((r) => setTimeout(r, base * (1 + JITTER * (Math.random() * 2 - 1))));
    }
  }
  return {
    post: (fn, body) =>
      call(`${baseUrl}/functions/v1/${fn}`, { method: "POST", body: JSON.stringify(body) }),
    get: (fn, query) =>
      call(`${baseUrl}/functions/v1/${fn}?${new URLSearchParams(query)}`, { method: "GET" }),
  };
}
