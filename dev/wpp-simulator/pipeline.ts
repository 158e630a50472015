import type { CallCounter } from "./calls.ts";
import type { FrontConnection } from "./front.ts";
import { HANDLERS, type PlatformContext } from "./platform.ts";
import {
  expressNotFound,
  json,
  malformedJson,
  platformError,
  usualErrorText,
} from "./responses.ts";
import { matchRoute, type RouteMatch } from "./routes.ts";
import type { FaultSpec, Operation } from "./types.ts";

export interface PipelineDeps extends PlatformContext {
  calls: CallCounter;
  connectionOf: (remotePort: number) => FrontConnection | undefined;
  /** Aborts when the simulator shuts down, releasing hung and delayed requests. */
  closing: AbortSignal;
  admin: (req: Request, url: URL) => Promise<Response>;
  log: (line: Record<string, unknown>) => void;
}

interface Outcome {
  response: Response;
  op?: Operation;
  fault?: string;
  /** The client never got an answer (hang or cut connection). */
  dropped?: boolean;
}

/** Every request: admin or platform route, call counting, faults, one log line. */
export function createPipeline(deps: PipelineDeps) {
  return async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> => {
    const started = performance.now();
    const url = new URL(req.url);
    let outcome: Outcome;
    try {
      outcome = url.pathname.startsWith("/__admin/")
        ? { response: await deps.admin(req, url) }
        : await platformCall(deps, req, url, deps.connectionOf(info.remoteAddr.port));
    } catch (e) {
      outcome = { response: json(500, { error: e instanceof Error ? e.message : "failed" }) };
    }
    const line: Record<string, unknown> = {
      method: req.method,
      path: url.pathname,
      status: outcome.dropped ? 0 : outcome.response.status,
      ms: Math.round(performance.now() - started),
    };
    if (outcome.op) line.op = outcome.op;
    if (outcome.fault) line.fault = outcome.fault;
    deps.log(line);
    return outcome.response;
  };
}

async function platformCall(
  deps: PipelineDeps,
  req: Request,
  url: URL,
  conn: FrontConnection | undefined,
): Promise<Outcome> {
  const match = matchRoute(req.method, url.pathname);
  if (!match) {
    deps.calls.count("unknown", `${req.method} ${url.pathname}`);
    return { response: expressNotFound(req.method, url.pathname) };
  }
  const { op } = match;
  deps.calls.count(op, match.template);
  const plan = deps.faults.take(op);
  if (plan.latencyMs > 0) await wait(plan.latencyMs, [deps.closing, conn?.gone]);
  const fault = plan.fault;
  if (fault && fault.kind !== "missing_field" && fault.phase !== "after") {
    return await applyFault(deps, fault, req, match, conn);
  }
  const response = await HANDLERS[op](deps, req, match);
  if (!fault) return { response, op };
  if (fault.kind === "missing_field") {
    return { response: await withoutFields(response, fault, op), op, fault: fault.kind };
  }
  await response.body?.cancel();
  return await applyFault(deps, fault, req, match, conn);
}

async function applyFault(
  deps: PipelineDeps,
  fault: FaultSpec,
  req: Request,
  match: RouteMatch,
  conn: FrontConnection | undefined,
): Promise<Outcome> {
  const base = { op: match.op, fault: fault.kind };
  switch (fault.kind) {
    case "hang":
      // Holds the request until the client gives up or the simulator stops.
      await wait(Infinity, [deps.closing, conn?.gone]);
      return { ...base, response: new Response(null, { status: 504 }), dropped: true };
    case "close":
      conn?.cut();
      return { ...base, response: new Response(null, { status: 502 }), dropped: true };
    case "malformed":
      return { ...base, response: malformedJson() };
    case "status": {
      const status = fault.status ?? 500;
      if (status === 404 && fault.message === undefined) {
        return { ...base, response: expressNotFound(req.method, new URL(req.url).pathname) };
      }
      const text = fault.message ?? usualErrorText(match.op, status);
      return { ...base, response: platformError(deps.variants(), status, text) };
    }
    default:
      return { ...base, response: json(500, { error: `fault ${fault.kind} misplaced` }) };
  }
}

/** Fields a client cannot do without, per route, when the fault names none. */
const REQUIRED: Record<Operation, string[]> = {
  create: ["apiKey"],
  token: ["token"],
  start: ["qr", "qrCode", "qrcode", "data", "status", "state"],
  status: ["status", "state"],
  qr: ["qr", "qrCode", "qrcode", "data"],
  webhook: [],
  stop: [],
};

async function withoutFields(response: Response, fault: FaultSpec, op: Operation) {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return new Response(text, response);
  }
  if (body === null || typeof body !== "object" || !response.ok) {
    return json(response.status, body);
  }
  const fields = fault.field === undefined
    ? REQUIRED[op]
    : Array.isArray(fault.field)
    ? fault.field
    : [fault.field];
  const trimmed = { ...body as Record<string, unknown> };
  for (const field of fields) delete trimmed[field];
  return json(response.status, trimmed);
}

function wait(ms: number, signals: (AbortSignal | undefined)[]): Promise<void> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  if (live.some((s) => s.aborted)) return Promise.resolve();
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      if (timer !== undefined) clearTimeout(timer);
      for (const s of live) s.removeEventListener("abort", done);
      resolve();
    };
    for (const s of live) s.addEventListener("abort", done, { once: true });
    if (Number.isFinite(ms)) timer = setTimeout(done, ms);
  });
}
