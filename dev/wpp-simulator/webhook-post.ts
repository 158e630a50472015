export interface PostResult {
  ok: boolean;
  status?: number;
  /** The error's name only: messages can quote the URL, which carries the receiver's secret. */
  error?: string;
  ms: number;
}

/** One POST of an event body to a receiver, cut after `timeoutMs` or when `stop` aborts. */
export async function postEvent(
  url: string,
  body: string,
  timeoutMs: number,
  stop: AbortSignal,
): Promise<PostResult> {
  const started = performance.now();
  // A plain timer rather than AbortSignal.timeout, so stopping leaves no timer behind.
  const cut = new AbortController();
  const timer = setTimeout(
    () => cut.abort(new DOMException("receiver too slow", "TimeoutError")),
    timeoutMs,
  );
  const onStop = () => cut.abort(new DOMException("simulator stopping", "AbortError"));
  if (stop.aborted) onStop();
  else stop.addEventListener("abort", onStop, { once: true });
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: cut.signal,
    });
    await response.body?.cancel();
    return { ok: response.ok, status: response.status, ms: elapsed(started) };
  } catch (e) {
    const error = e instanceof Error || e instanceof DOMException ? e.name : "failed";
    return { ok: false, error, ms: elapsed(started) };
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", onStop);
  }
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
