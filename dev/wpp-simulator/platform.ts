import type { PlatformState, SessionRecord, TokenRecord } from "./platform-state.ts";
import type { FaultBook } from "./faults.ts";
import { json, platformError } from "./responses.ts";
import type { RouteMatch } from "./routes.ts";
import type { Operation, Variants } from "./types.ts";
import { qrBody, startWord, stateBody } from "./variants.ts";

export interface PlatformContext {
  platform: PlatformState;
  faults: FaultBook;
  variants: () => Variants;
  secret: string;
  tokenTtlSeconds: number;
}

type Handler = (ctx: PlatformContext, req: Request, match: RouteMatch) => Promise<Response>;

/** The platform's behaviour per route, faults aside (the pipeline applies those). */
export const HANDLERS: Record<Operation, Handler> = {
  create: async (ctx, req) => {
    const v = ctx.variants();
    if (req.headers.get("authorization") !== `Bearer ${ctx.secret}`) {
      return platformError(v, 401, "Invalid token");
    }
    const body = await readJson(req);
    const organizationId = body?.organizationId;
    if (typeof organizationId !== "string" || organizationId.trim() === "") {
      return platformError(v, 400, "organizationId is required");
    }
    const client = ctx.platform.createClient(organizationId, ctx.faults.takeFreshKeyRefusal());
    const answer: Record<string, unknown> = { session: client.session, apiKey: client.apiKey };
    if (v.createStatus) answer.status = "starting";
    return json(200, answer);
  },

  token: async (ctx, req) => {
    const v = ctx.variants();
    const body = await readJson(req);
    const apiKey = body?.apiKey;
    if (typeof apiKey !== "string" || apiKey === "") {
      return platformError(v, 400, "apiKey is required");
    }
    const record = ctx.platform.issueToken(apiKey, ctx.tokenTtlSeconds);
    if (!record) return platformError(v, v.invalidKeyStatus, "Invalid API key");
    const answer: Record<string, unknown> = { token: record.token };
    if (v.expiresIn) answer.expiresIn = ctx.tokenTtlSeconds;
    return json(200, answer);
  },

  start: async (ctx, req) => {
    const v = ctx.variants();
    const token = bearer(ctx, req);
    if (!token) return platformError(v, 401, "Invalid token");
    const body = await readJson(req);
    const number = body?.number;
    if (typeof number !== "string" || number === "") {
      return platformError(v, 400, "number is required");
    }
    if (token.session !== number) return platformError(v, 403, "Forbidden");
    const session = ctx.platform.start(number);
    if (!session) return platformError(v, 404, "Session not found");
    if (session.state === "connected") return json(200, stateBody(v, "connected"));
    if (v.startAnswer === "qr" && session.qr) return json(200, qrBody(v, session.qr));
    return json(200, { [v.stateField]: startWord(v) });
  },

  status: (ctx, req, match) =>
    owned(ctx, req, match, (session) => json(200, stateBody(ctx.variants(), session.state))),

  qr: (ctx, req, match) =>
    owned(ctx, req, match, (session) => {
      const v = ctx.variants();
      // No QR yet (or no longer): the state alone, which a client must read as "none".
      return json(200, session.qr ? qrBody(v, session.qr) : stateBody(v, session.state));
    }),

  webhook: (ctx, req, match) =>
    owned(ctx, req, match, async (session) => {
      const v = ctx.variants();
      const url = (await readJson(req))?.url;
      if (typeof url !== "string" || !isHttpUrl(url)) return platformError(v, 400, "Invalid url");
      ctx.platform.setWebhook(session.id, url);
      return json(200, { success: true });
    }),

  stop: (ctx, req, match) =>
    owned(ctx, req, match, (session) => {
      ctx.platform.stop(session.id);
      return json(200, { success: true });
    }),
};

/**
 * Bearer routes on a session. Whether the real platform checks that the token belongs to the
 * session is unknown; the simulator does (403 otherwise), so code that mixes sessions up fails
 * here rather than in production.
 */
async function owned(
  ctx: PlatformContext,
  req: Request,
  match: RouteMatch,
  then: (session: SessionRecord) => Response | Promise<Response>,
): Promise<Response> {
  const v = ctx.variants();
  const token = bearer(ctx, req);
  if (!token) return platformError(v, 401, "Invalid token");
  if (token.session !== match.session) return platformError(v, 403, "Forbidden");
  const session = ctx.platform.sessions.get(token.session);
  if (!session) return platformError(v, 404, "Session not found");
  return await then(session);
}

function bearer(ctx: PlatformContext, req: Request): TokenRecord | undefined {
  const header = req.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  return m ? ctx.platform.validToken(m[1]) : undefined;
}

async function readJson(req: Request): Promise<Record<string, unknown> | undefined> {
  try {
    const body = await req.json();
    return body !== null && typeof body === "object" ? body as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === "https:" || url.protocol === "http:";
  } catch {
    return false;
  }
}
