// One HTTP exchange with the platform, bounded by a timeout and the caller's deadline.
import { type WppOperation, WppTimeoutError, WppUnreachableError } from "./errors.ts";

export interface HttpRequest {
  method: "GET" | "POST";
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpAnswer {
  status: number;
  text: string;
}

export interface AttemptLimits {
  timeoutMs: number;
  deadline?: number;
  signal?: AbortSignal;
  now: () => number;
}

/**
 * One HTTP exchange, body included, bounded by the per-attempt timeout and by the caller's
 * deadline, whichever comes first. Network failures become `platform_unreachable`, running out
 * of time `platform_timeout`; a caller's abort is passed through untouched.
 */
export async function sendOnce(
  fetchFn: typeof fetch,
  op: WppOperation,
  request: HttpRequest,
  limits: AttemptLimits,
): Promise<HttpAnswer> {
  const { signal } = limits;
  if (signal?.aborted) throw signal.reason;
  const left = limits.deadline === undefined ? Infinity : limits.deadline - limits.now();
  const budget = Math.min(limits.timeoutMs, left);
  const byDeadline = left <= limits.timeoutMs;
  if (budget <= 0) throw timeoutError(op, budget, true);

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, budget);
  const onCallerAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onCallerAbort, { once: true });
  try {
    const response = await fetchFn(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: controller.signal,
      // A redirect would replay the bearer header somewhere we did not choose.
      redirect: "manual",
    });
    // Read inside the timer: a body that stalls or breaks is part of the same attempt.
    const text = await response.text();
    return { status: response.status, text };
  } catch (e) {
    if (timedOut) throw timeoutError(op, budget, byDeadline);
    if (signal?.aborted) throw signal.reason;
    throw new WppUnreachableError({
      op,
      message: `WPP ${op}: platform unreachable (${describeNetworkError(e)})`,
      cause: e,
    });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onCallerAbort);
  }
}

export function timeoutError(op: WppOperation, budgetMs: number, byDeadline: boolean) {
  const why = byDeadline ? "the call's deadline passed" : `no answer within ${budgetMs} ms`;
  return new WppTimeoutError({ op, message: `WPP ${op}: timed out (${why})` });
}

function describeNetworkError(e: unknown): string {
  // Only the error's class and a generic hint: fetch messages can quote the request.
  if (e instanceof TypeError) return "network error";
  if (e instanceof Error) return e.name;
  return "unknown failure";
}
