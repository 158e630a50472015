import { z } from "zod";
import { dropUndefined, invalid, readBody } from "./admin-body.ts";
import { createEventsAdmin } from "./admin-events.ts";
import type { CallCounter } from "./calls.ts";
import type { EventFaultBook } from "./event-faults.ts";
import { type FaultBook, faultSpec } from "./faults.ts";
import type { PlatformState } from "./platform-state.ts";
import { json } from "./responses.ts";
import {
  type Operation,
  OPERATIONS,
  type SessionView,
  type SimulatorSnapshot,
  type Variants,
} from "./types.ts";
import { DEFAULT_VARIANTS, variantsPatch } from "./variants.ts";
import type { WebhookDispatcher } from "./webhooks.ts";

export interface AdminDeps {
  platform: PlatformState;
  faults: FaultBook;
  calls: CallCounter;
  webhooks: WebhookDispatcher;
  eventFaults: EventFaultBook;
  variants: { current: Variants };
  log: (line: Record<string, unknown>) => void;
}

const killBody = z.union([
  z.strictObject({ apiKey: z.string().min(1) }),
  z.strictObject({ session: z.string().min(1) }),
]);

/** The simulator's own control API, under /__admin/ so it never shadows a platform route. */
export function createAdmin(deps: AdminDeps) {
  const events = createEventsAdmin(deps);
  return async (req: Request, url: URL): Promise<Response> => {
    const path = url.pathname.replace(/\/+$/, "");
    const key = `${req.method} ${path}`;
    const handled = await events(req, url, path);
    if (handled) return handled;
    const session = /^\/__admin\/sessions\/([^/]+)\/(scan|disconnect)$/.exec(path);
    if (session && req.method === "POST") {
      return sessionAction(deps, decodeURIComponent(session[1]), session[2]);
    }
    switch (key) {
      case "GET /__admin/state":
        return json(200, snapshot(deps, url.searchParams.get("reveal") === "1"));
      case "GET /__admin/calls":
        return json(200, deps.calls.snapshot());
      case "POST /__admin/reset":
        deps.platform.reset();
        deps.faults.clear();
        deps.eventFaults.clear();
        deps.calls.reset();
        deps.webhooks.reset();
        deps.variants.current = { ...DEFAULT_VARIANTS };
        return json(200, { reset: true });
      case "POST /__admin/tokens/expire":
        return json(200, { expired: deps.platform.expireTokens() });
      case "POST /__admin/api-keys/kill":
        return killApiKey(deps, await readBody(req));
      case "GET /__admin/variants":
        return json(200, deps.variants.current);
      case "POST /__admin/variants": {
        const patch = variantsPatch.safeParse(await readBody(req));
        if (!patch.success) return invalid(patch.error);
        deps.variants.current = { ...deps.variants.current, ...dropUndefined(patch.data) };
        return json(200, deps.variants.current);
      }
      case "GET /__admin/faults":
        return json(200, deps.faults.list());
      case "POST /__admin/faults": {
        const spec = faultSpec.safeParse(await readBody(req));
        if (!spec.success) return invalid(spec.error);
        return json(201, deps.faults.add(dropUndefined(spec.data)));
      }
      case "DELETE /__admin/faults": {
        const op = url.searchParams.get("op");
        if (op !== null && !OPERATIONS.includes(op as Operation)) {
          return json(400, { error: `unknown op ${op}` });
        }
        return json(200, { cleared: deps.faults.clear(op === null ? undefined : op as Operation) });
      }
      default:
        return json(404, { error: `no admin route ${key}` });
    }
  };
}

function sessionAction(deps: AdminDeps, id: string, action: string): Response {
  if (action === "scan") {
    const result = deps.platform.scan(id);
    if (result === "unknown") return json(404, { error: "unknown session" });
    if (result === "no_qr") return json(409, { error: "session shows no QR to scan" });
  } else if (!deps.platform.disconnect(id)) {
    return json(404, { error: "unknown session" });
  }
  return json(200, sessionView(deps, id, false));
}

function killApiKey(deps: AdminDeps, body: unknown): Response {
  const parsed = killBody.safeParse(body);
  if (!parsed.success) return json(400, { error: "body must be {apiKey} or {session}" });
  const apiKey = "apiKey" in parsed.data
    ? parsed.data.apiKey
    : deps.platform.sessions.get(parsed.data.session)?.apiKey;
  const killed = apiKey !== undefined && deps.platform.killApiKey(apiKey);
  return killed ? json(200, { killed: 1 }) : json(404, { error: "unknown apiKey or session" });
}

function snapshot(deps: AdminDeps, reveal: boolean): SimulatorSnapshot {
  const now = Date.now();
  return {
    revealed: reveal,
    sessions: [...deps.platform.sessions.keys()].map((id) => sessionView(deps, id, reveal)),
    tokens: [...deps.platform.tokens.values()].map((t) => ({
      token: reveal ? t.token : mask(t.token),
      session: t.session,
      expiresAt: t.expiresAt,
      expired: t.expiresAt <= now,
    })),
    variants: deps.variants.current,
    faults: deps.faults.list(),
    eventFaults: deps.eventFaults.list(),
    deliveries: deps.webhooks.deliveries,
  };
}

function sessionView(deps: AdminDeps, id: string, reveal: boolean): SessionView {
  const s = deps.platform.sessions.get(id)!;
  return {
    session: s.id,
    organizationId: s.organizationId,
    state: s.state,
    qr: s.qr,
    webhookUrl: s.webhookUrl === null || reveal ? s.webhookUrl : maskUrl(s.webhookUrl),
    apiKey: reveal ? s.apiKey : mask(s.apiKey),
    apiKeyKilled: deps.platform.clients.get(s.apiKey)?.killed ?? false,
    createdAt: s.createdAt,
  };
}

// Local dev tool or not, state dumps end up in terminals and CI logs: mask unless asked.
function mask(value: string): string {
  return value.length < 12 ? "***" : `${value.slice(0, 6)}••••••${value.slice(-4)}`;
}

/** A webhook URL carries the receiver's secret somewhere in its path or query. */
function maskUrl(value: string): string {
  try {
    return `${new URL(value).origin}/***`;
  } catch {
    return "***";
  }
}
