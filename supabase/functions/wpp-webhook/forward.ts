// Every verified platform event goes on, byte for byte, to the CRM's own receiver (which handles
// inbound messages), after the platform has had its answer: the platform's 200 never waits for
// the CRM. Each attempt has a timeout; network errors, 429 and 5xx are retried a bounded number
// of times; any other answer is final.
export interface ForwardOptions {
  url: string;
  /** Sent as `Authorization: Bearer <token>` when set. */
  token?: string;
  timeoutMs: number;
  attempts: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export interface ForwardResult {
  ok: boolean;
  attempts: number;
  /** The last HTTP status, 0 when no answer came. */
  status: number;
  ms: number;
}

export type Forwarder = (body: BodyInit, contentType: string | null) => Promise<ForwardResult>;

const BASE_DELAY_MS = 200;

export function createForwarder(opts: ForwardOptions): Forwarder {
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  return async (body, contentType) => {
    const t0 = performance.now();
    let status = 0;
    for (let attempt = 1;; attempt++) {
      status = 0;
      try {
        const res = await doFetch(opts.url, {
          method: "POST",
          headers: {
            "content-type": contentType ?? "application/json",
            "x-forwarded-by": "wpp-connect",
            ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          },
          body,
          signal: AbortSignal.timeout(opts.timeoutMs),
          redirect: "manual",
        });
        status = res.status;
        await res.body?.cancel();
      } catch {
        // Network error or timeout: status stays 0, which is retried.
      }
      const ok = status >= 200 && status < 300;
      const retryable = status === 0 || status === 429 || status >= 500;
      if (ok || !retryable || attempt >= opts.attempts) {
        return { ok, attempts: attempt, status, ms: Math.round(performance.now() - t0) };
      }
      await sleep(BASE_DELAY_MS * 2 ** (attempt - 1));
    }
  };
}
