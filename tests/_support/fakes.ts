// In-memory stand-ins for what a function's handler is given (HandlerDeps): a WppStore and a
// PlatformPort that answer from scripts and record every call, a clock that only moves when the
// code sleeps, real HS256 token verification with a test secret. Unit tests of wpp-create,
// wpp-qr, wpp-disconnect, wpp-status (and wpp-webhook's store) drive every branch with them,
// without a network, a database or a platform.
//
// Shared by several test folders: extend it additively (new defaults, new helpers), never change
// what an existing default answers.
import * as jose from "jose";
import { type ConfigResult, parseConfig } from "../../supabase/functions/_shared/config.ts";
import { createTokenVerifier } from "../../supabase/functions/_shared/http/auth.ts";
import type { HandlerDeps } from "../../supabase/functions/_shared/deps.ts";
import type {
  PlatformFactory,
  PlatformPort,
  SessionPort,
} from "../../supabase/functions/_shared/wpp/port.ts";
import type {
  BeginResult,
  CallerContext,
  CompleteResult,
  CreateDecision,
  DisconnectResult,
  IdempotencyClaim,
  Integration,
  RefreshBegin,
  StoreFactory,
  WebhookEventResult,
  WppStore,
} from "../../supabase/functions/_shared/db/store.ts";
import type {
  AccountStatus,
  CallOptions,
  CreatedClient,
  SessionInput,
  StartResult,
  WppCallEvent,
  WppOperation,
  WppToken,
} from "../../supabase/functions/_shared/wpp/mod.ts";

// ---------------------------------------------------------------------------------------------
// Fixed values

/** A fixed instant far from the real clock, so nothing passes by reading Date.now(). */
export const T0 = Date.UTC(2031, 4, 6, 7, 8, 9);

export const REQUEST_ID = "11111111-2222-4333-8444-555555555555";
export const USER_ID = "7d3c1b9e-0a4f-4c2e-9b8d-2f6e5a4c3b21";
export const ORG_ID = "c0ffee00-1234-4abc-8def-0123456789ab";
export const OTHER_ORG_ID = "0ddba11a-1234-4abc-8def-0123456789ab";
export const INTEGRATION_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
export const LEASE_ID = "0badf00d-0000-4000-8000-00000000cafe";
export const REFRESH_LEASE_ID = "0badf00d-0000-4000-8000-00000000beef";
export const CLAIM_ID = "0badf00d-0000-4000-8000-00000000c1a1";

export const STORED_SESSION = "0000000000007";
export const STORED_API_KEY = "stored-apikey-QWERTY-0001";
export const STORED_JWT = "eyJstored.jwt-token-in-the-row.sig0001";
export const NEW_SESSION = "0000000000042";
export const NEW_API_KEY = "fresh-apikey-ZXCVBN-0042";
export const NEW_JWT = "eyJfresh.jwt-token-from-platform.sig0042";
export const WEBHOOK_SECRET = "whsec-Zm9vYmFyYmF6cXV4LXRlc3Qtc2VjcmV0LTAwMDE";
export const QR = "2@pairing-string-for-the-qr-code,AbCdEf==";

export const JWT_SECRET = "a-test-secret-that-is-long-enough-123456";
export const WPP_SECRET = "wpp-secret-abcdef-0001";
export const SERVICE_ROLE_KEY = "service-role-key-0123456789-abcdef";

/** The environment a function would be given; override per test. */
export const BASE_ENV: Record<string, string | undefined> = {
  SUPABASE_URL: "http://127.0.0.1:54321",
  SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
  JWT_SECRET,
  WPP_BASE_URL: "http://127.0.0.1:9",
  WPP_SECRET,
  WPP_BUSY_WAIT_MS: "1000",
  WPP_REQUEST_DEADLINE_MS: "8000",
  WPP_LEASE_SECONDS: "30",
  WPP_FRESH_KEY_GRACE_MS: "120000",
};

/** Strings that must never reach a response body or a log line. */
export const SECRETS: readonly string[] = [
  SERVICE_ROLE_KEY,
  JWT_SECRET,
  WPP_SECRET,
  STORED_API_KEY,
  STORED_JWT,
  NEW_API_KEY,
  NEW_JWT,
  WEBHOOK_SECRET,
];

export function testConfig(
  env: Record<string, string | undefined> = {},
  required: readonly ("WPP_BASE_URL" | "WPP_SECRET")[] = ["WPP_BASE_URL"],
): ConfigResult {
  return parseConfig({ ...BASE_ENV, ...env }, required);
}

// ---------------------------------------------------------------------------------------------
// Clock

/** Time moves only when the code under test sleeps (or a test calls advance), and a sleep returns at once. */
export class FakeClock {
  readonly sleeps: number[] = [];
  constructor(public t = T0) {}
  now = (): number => this.t;
  sleep = (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.t += ms;
    return Promise.resolve();
  };
  advance(ms: number): void {
    this.t += ms;
  }
}

// ---------------------------------------------------------------------------------------------
// What the database answers

/** A usable, active, primary integration with a fresh stored QR; override what a test needs. */
export function integration(over: Partial<Integration> = {}): Integration {
  return {
    integration_id: INTEGRATION_ID,
    organization_id: ORG_ID,
    name: "WhatsApp",
    is_active: true,
    is_primary: true,
    session: STORED_SESSION,
    api_key: STORED_API_KEY,
    jwt_token: STORED_JWT,
    jwt_expires_at: T0 + 600_000,
    platform_org_id: ORG_ID,
    valid: true,
    placeholder: false,
    session_state: "ok",
    provisioning: false,
    cooldown: false,
    cooldown_until: null,
    refreshing: false,
    connection: "qr",
    connection_at: T0 - 5_000,
    fresh: true,
    qr: QR,
    qr_at: T0 - 5_000,
    ever_connected: false,
    disconnected: false,
    stop_pending: false,
    webhook_current: true,
    // Older than the fresh-key grace period: a refused key on it is a dead key.
    session_created_at: T0 - 3_600_000,
    ...over,
  };
}

/** The state of an integration as it is when nothing is stored yet (a first click). */
export function emptyIntegration(over: Partial<Integration> = {}): Integration {
  return integration({
    session: null,
    api_key: null,
    jwt_token: null,
    jwt_expires_at: null,
    valid: false,
    connection: "unknown",
    connection_at: null,
    fresh: false,
    qr: null,
    qr_at: null,
    webhook_current: false,
    session_created_at: null,
    ...over,
  });
}

export function callerContext(over: Partial<CallerContext> = {}): CallerContext {
  return {
    organization_id: ORG_ID,
    role: "owner",
    found: true,
    replaced: false,
    integration: integration(),
    ...over,
  };
}

export function reuseDecision(
  over: Partial<Integration> & { reason?: string } = {},
): BeginResult {
  return { ...integration(over), decision: "reuse", reason: over.reason ?? "valid_session" };
}

export function createDecision(
  over: Partial<Omit<CreateDecision, "decision">> = {},
): CreateDecision {
  return {
    ...emptyIntegration(),
    decision: "create",
    reason: "no_integration",
    lease_id: LEASE_ID,
    old_session: null,
    old_api_key: null,
    old_jwt_token: null,
    old_jwt_expires_at: null,
    ...over,
  };
}

export function busyDecision(
  retryAfterSeconds: number | null = 2,
  reason = "lease_held",
): BeginResult {
  return {
    ...integration({ provisioning: true }),
    decision: "busy",
    reason,
    retry_after_seconds: retryAfterSeconds,
  };
}

export function cooldownDecision(retryAfterSeconds: number | null = 17): BeginResult {
  return {
    ...emptyIntegration({ cooldown: true }),
    decision: "cooldown",
    retry_after_seconds: retryAfterSeconds,
  };
}

export function limitDecision(count = 10, max = 10): BeginResult {
  return { decision: "limit", count, max };
}

export function notFoundDecision(): BeginResult {
  return { decision: "not_found" };
}

export function refreshGranted(over: Partial<Integration> = {}): RefreshBegin {
  return {
    ...integration(over),
    granted: true,
    refresh_lease_id: REFRESH_LEASE_ID,
    webhook_secret: WEBHOOK_SECRET,
  };
}

export function refreshRefused(
  reason: "fresh" | "inactive" | "in_flight" | "provisioning" | "replaced" | "not_found",
  over: Partial<Integration> = {},
): RefreshBegin {
  if (reason === "not_found") return { granted: false, reason };
  return { ...integration(over), granted: false, reason };
}

export function disconnectMarked(
  over: Partial<Integration> & { stop_needed?: boolean } = {},
  outcome: "marked" | "already" = "marked",
): DisconnectResult {
  const { stop_needed, ...rest } = over;
  return {
    ...integration({ is_active: false, disconnected: true, connection: "offline", ...rest }),
    outcome,
    stop_needed: stop_needed ?? outcome === "marked",
  };
}

// ---------------------------------------------------------------------------------------------
// Store

export type StoreOp = keyof WppStore;
type Handlers = { [K in StoreOp]: WppStore[K] };
type InputOf<K extends StoreOp> = Parameters<WppStore[K]>;

export interface StoreCall {
  op: StoreOp;
  args: unknown[];
}

/**
 * A database that answers from scripts. Each operation has a default answer (see `defaults`);
 * `script(op, ...answers)` queues answers (a value, an Error to reject with, or a function of the
 * call's arguments), consumed one per call, after which the default answers again;
 * `handle(op, fn)` replaces the default. Every call is recorded, in order, in `calls` and in the
 * journal it shares with a FakePlatform.
 */
export class FakeStore {
  readonly calls: StoreCall[] = [];
  /** The deadline of each store the factory built (one per request). */
  readonly deadlines: number[] = [];
  /** Decisions `begin` answers in turn; the last one repeats. */
  begins: BeginResult[] = [reuseDecision()];
  /** What `context` answers unless scripted. */
  context: CallerContext = callerContext();
  readonly #queues = new Map<StoreOp, unknown[]>();
  readonly #handlers: Handlers;

  constructor(readonly journal: string[] = []) {
    this.#handlers = this.defaults();
  }

  /** The default answer of each operation. */
  defaults(): Handlers {
    return {
      context: () => Promise.resolve(structuredClone(this.context)),
      begin: () => {
        if (this.begins.length === 0) throw new Error("FakeStore: no begin decision scripted");
        const next = this.begins.length > 1 ? this.begins.shift()! : this.begins[0];
        return Promise.resolve(structuredClone(next));
      },
      complete: (i) =>
        Promise.resolve(
          {
            integration_id: i.integrationId,
            session: i.session,
            action: "created",
            webhook_secret: WEBHOOK_SECRET,
            refresh_lease_id: REFRESH_LEASE_ID,
          } satisfies CompleteResult,
        ),
      fail: () => Promise.resolve(),
      // The lease comes with the integration as the context shows it.
      refreshBegin: () => Promise.resolve(refreshGranted(this.context.integration ?? {})),
      refreshEnd: () => Promise.resolve(),
      webhookEvent: () => Promise.resolve({ found: false } satisfies WebhookEventResult),
      storeToken: () => Promise.resolve(true),
      disconnect: () => Promise.resolve(disconnectMarked()),
      disconnectStopped: () => Promise.resolve(),
      idempotencyClaim: () =>
        Promise.resolve({ state: "claimed", claim_id: CLAIM_ID } satisfies IdempotencyClaim),
      idempotencyFinish: () => Promise.resolve(),
      recordEvent: () => Promise.resolve(),
    };
  }

  /** Queues answers for the next calls of `op`. */
  script<K extends StoreOp>(
    op: K,
    ...answers: (
      | Awaited<ReturnType<WppStore[K]>>
      | Error
      | ((...args: InputOf<K>) => ReturnType<WppStore[K]> | Awaited<ReturnType<WppStore[K]>>)
    )[]
  ): this {
    const q = this.#queues.get(op) ?? [];
    q.push(...answers);
    this.#queues.set(op, q);
    return this;
  }

  /** Replaces the default answer of `op` (scripted answers still come first). */
  handle<K extends StoreOp>(op: K, fn: WppStore[K]): this {
    this.#handlers[op] = fn;
    return this;
  }

  /** Every call of `op` fails with `error` (a rejected promise, as the real RPCs do). */
  failAlways(op: StoreOp, error: unknown): this {
    // deno-lint-ignore no-explicit-any
    (this.#handlers as any)[op] = () => Promise.reject(error);
    return this;
  }

  readonly factory: StoreFactory = ({ deadline }) => {
    this.deadlines.push(deadline);
    return this.port;
  };

  readonly port: WppStore = new Proxy({} as WppStore, {
    get: (_t, prop) => {
      const op = prop as StoreOp;
      if (!(op in this.#handlers)) return undefined;
      return (...args: unknown[]) => this.#call(op, args);
    },
  });

  #call(op: StoreOp, args: unknown[]): Promise<unknown> {
    this.calls.push({ op, args: structuredClone(args) });
    this.journal.push(`db:${op}`);
    try {
      const q = this.#queues.get(op);
      if (q && q.length > 0) {
        const next = q.shift();
        if (next instanceof Error) return Promise.reject(next);
        if (typeof next === "function") return Promise.resolve(next(...args));
        return Promise.resolve(structuredClone(next));
      }
      // deno-lint-ignore no-explicit-any
      return Promise.resolve((this.#handlers[op] as any)(...args));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The arguments of every call of `op`, in order. */
  of<K extends StoreOp>(op: K): InputOf<K>[] {
    return this.calls.filter((c) => c.op === op).map((c) => c.args as InputOf<K>);
  }

  /** The first argument of every call of `op` (the input object of most operations). */
  inputs<K extends StoreOp>(op: K): InputOf<K>[0][] {
    return this.of(op).map((a) => a[0]);
  }

  count(op: StoreOp): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  ops(): StoreOp[] {
    return this.calls.map((c) => c.op);
  }
}

// ---------------------------------------------------------------------------------------------
// Platform

export interface PlatformCall {
  op: WppOperation;
  /** The session the call was made for; null for create. */
  session: string | null;
  apiKey: string | null;
  /** create: the organizationId; webhook: the URL. */
  arg?: string;
  opts?: CallOptions;
  /** The token a session client was built with, if any. */
  storedToken?: string;
}

type Answer<T> = T | Error | ((call: PlatformCall) => T | Promise<T>);

/**
 * A platform that answers from fields (the default answers) and per-operation queues
 * (`script(op, ...answers)`, each a value, an Error to reject with, or a function of the call).
 * `before(call)` runs before each answer (e.g. to change the store mid-request). Every call is
 * recorded and reported to the request log like the real client's calls.
 */
export class FakePlatform {
  readonly calls: PlatformCall[] = [];
  readonly sessionInputs: SessionInput[] = [];
  created: CreatedClient = { session: NEW_SESSION, apiKey: NEW_API_KEY, status: "starting" };
  status: AccountStatus = { connected: false, status: "qr" };
  start: StartResult = { state: "qr", qr: QR, raw: "qr" };
  qr: string | null = QR;
  token: WppToken = { token: NEW_JWT, expiresAt: T0 + 900_000 };
  /** Whether session clients report a token fetched during the request (then the one above). */
  reportsNewToken = true;
  before: (call: PlatformCall) => void | Promise<void> = () => {};
  readonly #queues = new Map<WppOperation, unknown[]>();

  constructor(readonly journal: string[] = []) {}

  script<T>(op: WppOperation, ...answers: Answer<T>[]): this {
    const q = this.#queues.get(op) ?? [];
    q.push(...answers);
    this.#queues.set(op, q);
    return this;
  }

  /** The next `times` calls of `op` fail with `error`. */
  failNext(op: WppOperation, error: Error, times = 1): this {
    return this.script(op, ...Array.from({ length: times }, () => error));
  }

  readonly factory: PlatformFactory = (onCall) => this.#port(onCall);

  #port(onCall: (e: WppCallEvent) => void): PlatformPort {
    const run = async <T>(call: PlatformCall, fallback: () => T): Promise<T> => {
      this.calls.push(call);
      this.journal.push(call.session ? `wpp:${call.op}:${call.session}` : `wpp:${call.op}`);
      let ok = false;
      try {
        await this.before(call);
        const q = this.#queues.get(call.op);
        let value: T;
        if (q && q.length > 0) {
          const next = q.shift() as Answer<T>;
          if (next instanceof Error) throw next;
          value = typeof next === "function"
            ? await (next as (c: PlatformCall) => T | Promise<T>)(call)
            : structuredClone(next);
        } else {
          value = fallback();
        }
        ok = true;
        return value;
      } finally {
        onCall({ op: call.op, ms: 0, ok, attempt: 1 });
      }
    };
    const session = (input: SessionInput): SessionPort => {
      this.sessionInputs.push(structuredClone(input));
      let fetched: WppToken | null = null;
      const at = (op: WppOperation, opts?: CallOptions, arg?: string): PlatformCall => ({
        op,
        session: input.session,
        apiKey: input.apiKey,
        opts,
        ...(arg === undefined ? {} : { arg }),
        ...(input.storedToken ? { storedToken: input.storedToken.token } : {}),
      });
      // A bearer call without a usable stored token fetches one first, as the real client does.
      const needToken = async () => {
        if (input.storedToken || fetched) return;
        fetched = await run(at("token"), () => structuredClone(this.token));
      };
      const bearer = async <T>(
        op: WppOperation,
        opts: CallOptions | undefined,
        f: () => T,
        arg?: string,
      ) => {
        await needToken();
        return await run(at(op, opts, arg), f);
      };
      return {
        // A stored token is used as it is (the real client checks its expiry; tests pass live ones).
        getToken: async (opts) => {
          if (input.storedToken) return { ...input.storedToken };
          fetched = await run(at("token", opts), () => structuredClone(this.token));
          return fetched;
        },
        startAccount: (opts) => bearer("start", opts, () => structuredClone(this.start)),
        accountStatus: (opts) => bearer("status", opts, () => structuredClone(this.status)),
        getQr: (opts) => bearer("qr", opts, () => this.qr),
        registerWebhook: (url, opts) => bearer("webhook", opts, () => undefined, url),
        stop: (opts) => bearer("stop", opts, () => undefined),
        newToken: () => (this.reportsNewToken && fetched ? { ...fetched } : null),
      };
    };
    return {
      createClient: (organizationId, opts) =>
        run(
          { op: "create", session: null, apiKey: null, arg: organizationId, opts },
          () => structuredClone(this.created),
        ),
      forSession: session,
    };
  }

  /** `op` or `op:session` for every call, in order. */
  ops(): string[] {
    return this.calls.map((c) => c.session ? `${c.op}:${c.session}` : c.op);
  }

  count(op: WppOperation): number {
    return this.calls.filter((c) => c.op === op).length;
  }
}

// ---------------------------------------------------------------------------------------------
// Tokens, requests, deps

/** A Supabase-shaped HS256 user access token signed with JWT_SECRET. */
export async function userToken(
  opts: {
    sub?: string;
    claims?: Record<string, unknown>;
    /** false: no exp claim at all. */
    expiresInSeconds?: number | false;
    secret?: string;
    issuer?: string;
  } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: jose.JWTPayload = {
    sub: opts.sub ?? USER_ID,
    aud: "authenticated",
    role: "authenticated",
    iat: now,
    ...(opts.expiresInSeconds === false ? {} : { exp: now + (opts.expiresInSeconds ?? 3600) }),
    ...(opts.issuer ? { iss: opts.issuer } : {}),
    ...opts.claims,
  };
  return await new jose.SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET));
}

/** A request as the gateway hands it to a function (path `/<fn>`). */
export function functionRequest(
  fn: string,
  opts: {
    method?: string;
    body?: unknown;
    token?: string | null;
    headers?: Record<string, string>;
    query?: Record<string, string>;
  } = {},
): Request {
  const method = opts.method ?? "POST";
  const headers = new Headers(opts.headers);
  if (opts.token) headers.set("authorization", `Bearer ${opts.token}`);
  let body: string | undefined;
  if (method !== "GET" && method !== "HEAD" && method !== "OPTIONS" && opts.body !== undefined) {
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  const qs = opts.query ? `?${new URLSearchParams(opts.query)}` : "";
  return new Request(`http://127.0.0.1/${fn}${qs}`, { method, headers, body });
}

export interface Harness {
  deps: HandlerDeps;
  store: FakeStore;
  platform: FakePlatform;
  clock: FakeClock;
  /** Every log line the handler wrote, in order. */
  logs: Record<string, unknown>[];
  /** Store and platform calls interleaved, in order. */
  journal: string[];
}

/**
 * HandlerDeps built from fakes: the real token verifier (HS256, JWT_SECRET, optional issuer),
 * the fake store and platform, the fake clock, a fixed request id, and a log kept in memory.
 */
export function fakeDeps(opts: { issuer?: string; clock?: FakeClock } = {}): Harness {
  const journal: string[] = [];
  const store = new FakeStore(journal);
  const platform = new FakePlatform(journal);
  const clock = opts.clock ?? new FakeClock();
  const logs: Record<string, unknown>[] = [];
  const deps: HandlerDeps = {
    verifyToken: createTokenVerifier({
      jwtSecret: JWT_SECRET,
      // Never fetched: HS256 tokens are checked against the secret.
      jwksUrl: "http://127.0.0.1:9/auth/v1/.well-known/jwks.json",
      issuer: opts.issuer,
    }),
    store: store.factory,
    platform: platform.factory,
    now: clock.now,
    sleep: clock.sleep,
    requestId: () => REQUEST_ID,
    log: (line) => logs.push(structuredClone(line)),
  };
  return { deps, store, platform, clock, logs, journal };
}

/** A handler's answer, read once. */
export interface Answered {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

export async function answer(response: Response | Promise<Response>): Promise<Answered> {
  const r = await response;
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch { /* not JSON: json stays empty, text tells */ }
  return { status: r.status, headers: r.headers, text, json };
}

/** Fails naming the secret and where it leaked, if any text contains any secret. */
export function assertNoSecrets(
  texts: readonly string[],
  secrets: readonly string[] = SECRETS,
): void {
  for (const secret of secrets) {
    if (!secret) throw new Error("assertNoSecrets: an empty secret proves nothing");
    for (const text of texts) {
      if (text.includes(secret)) {
        throw new Error(`a secret (${secret.slice(0, 4)}…) leaked into: ${text.slice(0, 300)}`);
      }
    }
  }
}

export interface Invoked extends Answered {
  /** The one log line the request wrote. */
  log: Record<string, unknown>;
}

/**
 * Runs one request through a handler and checks what every request must satisfy: exactly one
 * log line, and no secret (nor the caller's own access token) in the answer or that line.
 */
export async function invoke(
  handler: (req: Request) => Promise<Response>,
  h: Pick<Harness, "logs">,
  req: Request,
  secrets: readonly string[] = SECRETS,
): Promise<Invoked> {
  const before = h.logs.length;
  const bearer = req.headers.get("authorization")?.replace(/^Bearer\s+/i, "");
  const answered = await answer(handler(req));
  const lines = h.logs.slice(before);
  if (lines.length !== 1) {
    throw new Error(`expected exactly one log line per request, got ${lines.length}`);
  }
  assertNoSecrets(
    [answered.text, JSON.stringify(lines[0]), ...answered.headers.values()],
    bearer && bearer.length > 20 ? [...secrets, bearer] : secrets,
  );
  return { ...answered, log: lines[0] };
}
