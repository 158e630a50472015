// One platform call: send, retry what may be retried, time it, turn failures into WppErrors.
import { backoffDelay, pause } from "./backoff.ts";
import { platformMessageFrom } from "./error-body.ts";
import {
  isTransient,
  isWppError,
  type WppError,
  wppError,
  type WppErrorCode,
  type WppOperation,
} from "./errors.ts";
import type { Runtime } from "./runtime.ts";
import { type HttpAnswer, type HttpRequest, sendOnce, timeoutError } from "./transport.ts";
import type { CallOptions, WppCallEvent } from "./types.ts";

/** One platform call, described once and then performed with the right retry policy. */
export interface Exchange<T> {
  op: WppOperation;
  method: "GET" | "POST";
  path: string;
  /** Bearer credential: WPP_SECRET for create, a token for the session calls. */
  bearer?: string;
  body?: Record<string, unknown>;
  /** Only safe to repeat when a lost answer may already have taken effect. */
  retried: boolean;
  /** Turns a 2xx body into the result; `sentAt` is the ms epoch the attempt started. */
  read: (text: string, sentAt: number) => T;
}

/** Numbers the HTTP attempts of one logical call across all of its retry loops. */
export interface AttemptCounter {
  attempt: number;
}

export async function perform<T>(
  rt: Runtime,
  exchange: Exchange<T>,
  opts: CallOptions,
  counter: AttemptCounter = { attempt: 0 },
): Promise<T> {
  const limit = exchange.retried ? rt.retry.attempts : 1;
  for (let tried = 1;; tried++) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (opts.deadline !== undefined && rt.now() >= opts.deadline) {
      throw timeoutError(exchange.op, 0, true);
    }
    let failure: WppError;
    try {
      return await attemptOnce(rt, exchange, opts, ++counter.attempt);
    } catch (e) {
      if (!isWppError(e)) throw e;
      failure = e;
    }
    if (tried >= limit || !isTransient(failure)) throw failure;
    const delayMs = backoffDelay(rt.retry, tried);
    // No point waiting for an attempt that could not start before the deadline.
    if (opts.deadline !== undefined && rt.now() + delayMs >= opts.deadline) throw failure;
    rt.emitLog({
      event: "wpp.retry",
      op: exchange.op,
      attempt: counter.attempt,
      delayMs,
      code: failure.code,
    });
    await pause(delayMs, opts.signal, rt.sleep);
  }
}

async function attemptOnce<T>(
  rt: Runtime,
  exchange: Exchange<T>,
  opts: CallOptions,
  attempt: number,
): Promise<T> {
  const { op } = exchange;
  const sentAt = rt.now();
  const started = performance.now();
  let status: number | undefined;
  try {
    const fetchFn = op === "create" ? rt.fetchIsolated : rt.fetch;
    const answer = await sendOnce(fetchFn, op, toRequest(rt, exchange), {
      timeoutMs: rt.timeoutMs,
      deadline: opts.deadline,
      signal: opts.signal,
      now: rt.now,
    });
    status = answer.status;
    if (status < 200 || status > 299) throw errorForAnswer(rt, op, answer);
    const value = exchange.read(answer.text, sentAt);
    report(rt, { op, attempt, started, ok: true, status });
    return value;
  } catch (e) {
    const code = isWppError(e) ? e.code : undefined;
    report(rt, { op, attempt, started, ok: false, status, code, error: e });
    throw e;
  }
}

function toRequest(rt: Runtime, exchange: Exchange<unknown>): HttpRequest {
  const headers: Record<string, string> = { accept: "application/json" };
  // Deno's fetch silently re-sends a request whose reused keep-alive connection closes before
  // any answer, even a POST the platform already acted on. For create that would be a second
  // client, so create never travels on a pooled connection (see Runtime.fetchIsolated); every
  // other call is safe to repeat and keeps its connection alive.
  if (exchange.op === "create") headers.connection = "close";
  if (exchange.bearer !== undefined) headers.authorization = `Bearer ${exchange.bearer}`;
  if (exchange.body !== undefined) headers["content-type"] = "application/json";
  return {
    method: exchange.method,
    url: rt.baseUrl + exchange.path,
    headers,
    body: exchange.body === undefined ? undefined : JSON.stringify(exchange.body),
  };
}

function errorForAnswer(rt: Runtime, op: WppOperation, answer: HttpAnswer): WppError {
  const { status } = answer;
  const found = platformMessageFrom(answer.text);
  const platformMessage = found === undefined ? undefined : rt.scrubber.scrub(found);
  const said = platformMessage === undefined ? "" : `: ${platformMessage}`;
  return wppError(codeForStatus(op, answer), {
    op,
    status,
    platformMessage,
    message: `WPP ${op}: platform answered ${status}${said}`,
  });
}

function codeForStatus(op: WppOperation, answer: HttpAnswer): WppErrorCode {
  const { status } = answer;
  if (status >= 500) return "platform_error";
  if (status === 401 || status === 403) {
    // The same status means different things depending on which credential was presented.
    if (op === "create") return "platform_unauthorized";
    if (op === "token") {
      // Only the platform's own refusal condemns a key. A proxy or gateway in between answers
      // 401/403 with an HTML page; taking that for a dead key would replace a working session.
      return isPlatformRefusal(answer.text) ? "invalid_api_key" : "platform_error";
    }
  }
  return "platform_rejected";
}

/** The platform answers errors as JSON `{"error": ...}` (or `message`), or as a short text. */
function isPlatformRefusal(text: string): boolean {
  const trimmed = text.trim();
  try {
    const body = JSON.parse(trimmed);
    return body !== null && typeof body === "object" &&
      (typeof body.error === "string" || typeof body.message === "string");
  } catch {
    return trimmed !== "" && !trimmed.startsWith("<") && /key/i.test(trimmed) &&
      trimmed.length < 200;
  }
}

interface Report {
  op: WppOperation;
  attempt: number;
  started: number;
  ok: boolean;
  status?: number;
  code?: WppErrorCode;
  error?: unknown;
}

function report(rt: Runtime, r: Report): void {
  const ms = performance.now() - r.started;
  const event: WppCallEvent = { op: r.op, ms, ok: r.ok, attempt: r.attempt };
  if (r.status !== undefined) event.status = r.status;
  if (r.code !== undefined) event.code = r.code;
  rt.emitCall(event);
  const line: Record<string, unknown> = { event: "wpp.call", ...event };
  if (r.error instanceof Error) line.error = rt.scrubber.scrub(r.error.message);
  rt.emitLog(line);
}
