// Retry delays for the platform calls that may be repeated (never a create).
export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Exponential, capped, with "equal jitter": half the delay is fixed so retries never bunch at
 * zero, half is random so many edge functions retrying at once do not hit the platform in step.
 */
export function backoffDelay(
  policy: RetryPolicy,
  retry: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Waits `ms`, or rejects with the signal's reason as soon as it aborts. The timer is cleared on
 * abort so nothing is left pending behind a cancelled call.
 */
export function pause(
  ms: number,
  signal: AbortSignal | undefined,
  sleep?: (ms: number) => Promise<void>,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => {
      if (timer !== undefined) clearTimeout(timer);
      reject(signal?.reason);
    };
    const done = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (sleep) {
      sleep(ms).then(done, (e) => {
        signal?.removeEventListener("abort", onAbort);
        reject(e);
      });
    } else {
      timer = setTimeout(done, ms);
    }
  });
}
