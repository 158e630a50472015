// wpp-create's handler driven directly, with fakes for the caller's token, the database, the
// platform and the clock: the branches an end-to-end run cannot reach on demand (timeouts at a
// given step, a lost lease, a busy lease that never frees) are forced here one by one.
import assert from "node:assert/strict";
import * as jose from "jose";
import { createHandler } from "../../supabase/functions/wpp-create/handler.ts";
import { type ConfigResult, parseConfig } from "../../supabase/functions/_shared/config.ts";
import { createTokenVerifier, type TokenVerifier } from "../../supabase/functions/_shared/auth.ts";
import { AppError } from "../../supabase/functions/_shared/errors.ts";
import {
  WppInvalidApiKeyError,
  WppMalformedError,
  WppServerError,
  WppTimeoutError,
  WppUnauthorizedError,
} from "../../supabase/functions/_shared/wpp/mod.ts";
import {
  BASE_ENV,
  busyDecision,
  createDecision,
  FakeClock,
  FakePlatform,
  FakeStore,
  fakeVerifier,
  INTEGRATION_ID,
  LEASE_ID,
  NEW_API_KEY,
  NEW_JWT,
  NEW_SESSION,
  OLD_API_KEY,
  OLD_SESSION,
  ORG_ID,
  QR,
  REFRESHED_JWT,
  REQUEST_ID,
  reuseDecision,
  SECRETS,
  STORED_API_KEY,
  STORED_JWT,
  STORED_SESSION,
  T0,
  USER_ID,
  WEBHOOK_KEY,
} from "./_fakes.ts";

const USER_TOKEN = "eyJhbGciOiJIUzI1NiJ9.caller-access-token-payload.caller-signature-xyz";
const SUCCESS_KEYS = [
  "apiKey",
  "created",
  "integration_id",
  "request_id",
  "session",
  "status",
  "success",
];
const ERROR_KEYS = ["code", "error", "request_id", "status", "success"];
const DEFAULT_WEBHOOK = `http://127.0.0.1:54321/functions/v1/wpp-webhook/${WEBHOOK_KEY}`;

interface SendInit {
  method?: string;
  path?: string;
  /** Serialised as the body; ignored when `raw` is given. */
  json?: unknown;
  raw?: BodyInit | null;
  /** The Authorization header; the fake caller's bearer token by default, null for none. */
  authorization?: string | null;
  headers?: Record<string, string>;
}

interface Sent {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown>;
  log: Record<string, unknown>;
}

interface Harness {
  config: ConfigResult;
  clock: FakeClock;
  store: FakeStore;
  platform: FakePlatform;
  logs: Record<string, unknown>[];
  /** Authorization headers the fake verifier saw; empty when the real verifier is used. */
  verified: (string | null)[];
  send(init?: SendInit): Promise<Sent>;
}

interface HarnessOptions {
  env?: Record<string, string | undefined>;
  /** Use the real jose verifier, on the fake clock, instead of the pass-through fake. */
  realAuth?: boolean;
}

function harness(opts: HarnessOptions = {}): Harness {
  const config = parseConfig({ ...BASE_ENV, ...opts.env });
  const clock = new FakeClock();
  const journal: string[] = [];
  const store = new FakeStore(journal);
  const platform = new FakePlatform(journal);
  const logs: Record<string, unknown>[] = [];
  const verified: (string | null)[] = [];
  let verifyToken: TokenVerifier = fakeVerifier(verified);
  if (opts.realAuth) {
    assert.ok(config.ok, "real auth needs a valid config");
    verifyToken = createTokenVerifier({
      jwtSecret: config.config.JWT_SECRET,
      jwksUrl: config.config.jwksUrl,
      now: clock.now,
    });
  }
  const handler = createHandler(config, {
    verifyToken,
    store: store.factory,
    platform: platform.factory,
    now: clock.now,
    sleep: clock.sleep,
    requestId: () => REQUEST_ID,
    log: (line) => logs.push(line),
  });

  const send = async (init: SendInit = {}): Promise<Sent> => {
    const headers = new Headers(init.headers);
    const authorization = init.authorization === undefined
      ? `Bearer ${USER_TOKEN}`
      : init.authorization;
    if (authorization !== null) headers.set("authorization", authorization);
    const method = init.method ?? "POST";
    let body: BodyInit | null = null;
    if (init.raw !== undefined) body = init.raw;
    else if (init.json !== undefined) body = JSON.stringify(init.json);
    const req = new Request(`http://edge.local${init.path ?? "/wpp-create"}`, {
      method,
      headers,
      body: method === "GET" || method === "HEAD" ? null : body,
    });
    const logsBefore = logs.length;
    const res = await handler(req);
    const text = await res.text();
    assert.equal(logs.length, logsBefore + 1, "exactly one log line per request");
    const log = logs[logs.length - 1];
    const sent: Sent = {
      status: res.status,
      headers: res.headers,
      text,
      body: text ? JSON.parse(text) : {},
      log,
    };
    checkInvariants(config, sent, authorization);
    return sent;
  };

  return { config, clock, store, platform, logs, verified, send };
}

/** What must hold for every response, whatever the branch: checked on each send. */
function checkInvariants(config: ConfigResult, sent: Sent, authorization: string | null): void {
  assert.equal(sent.headers.get("x-request-id"), REQUEST_ID);
  if (!config.ok || config.config.corsOrigins === "*") {
    assert.equal(sent.headers.get("access-control-allow-origin"), "*", `on ${sent.status}`);
  }
  assert.equal(sent.log.request_id, REQUEST_ID);
  assert.equal(sent.log.status, sent.status);

  const logText = JSON.stringify(sent.log);
  const callerToken = authorization?.replace(/^\S+\s+/, "").trim();
  const secrets = [...SECRETS, ...(callerToken && callerToken.length > 8 ? [callerToken] : [])];
  for (const secret of secrets) {
    assert.ok(!logText.includes(secret), `log line leaks ${secret}: ${logText}`);
    assert.ok(!sent.text.includes(secret), `response leaks ${secret}: ${sent.text}`);
  }

  if (sent.status >= 400) {
    assert.deepEqual(Object.keys(sent.body).sort(), ERROR_KEYS, sent.text);
    assert.equal(sent.body.success, false);
    assert.equal(sent.body.status, "error");
    assert.equal(sent.body.request_id, REQUEST_ID);
    assert.equal(typeof sent.body.error, "string");
    assert.equal(sent.log.error_code, sent.body.code);
  }
}

function assertError(sent: Sent, status: number, code: string, mentions?: string): void {
  assert.equal(sent.status, status, sent.text);
  assert.equal(sent.body.code, code, sent.text);
  if (mentions) assert.match(String(sent.body.error), new RegExp(mentions), sent.text);
}

function assertUntouched(h: Harness): void {
  assert.equal(h.store.factoryCalls, 0, "store built");
  assert.deepEqual(h.store.calls, []);
  assert.equal(h.platform.factoryCalls, 0, "platform built");
  assert.deepEqual(h.platform.calls, []);
  assert.deepEqual(h.platform.sessionInputs, []);
}

/** The store was asked who the caller is, and nothing else. */
function assertOnlyCallerContext(h: Harness): void {
  assert.deepEqual(h.store.calls.map((c) => c.op), ["callerContext"]);
  assert.deepEqual(h.platform.calls, []);
}

const timeout = (op: "create" | "token" | "status" | "start" | "webhook" | "stop") =>
  new WppTimeoutError({ op, message: `${op} took too long` });

// ---------------------------------------------------------------------------------------------
// Methods, routes and CORS

Deno.test("OPTIONS answers 204 with CORS headers and reaches neither auth, store nor platform", async () => {
  const h = harness();
  const res = await h.send({ method: "OPTIONS", authorization: null });
  assert.equal(res.status, 204);
  assert.equal(res.text, "");
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.match(res.headers.get("access-control-allow-methods") ?? "", /POST/);
  assert.match(res.headers.get("access-control-allow-headers") ?? "", /authorization/);
  assert.match(res.headers.get("access-control-allow-headers") ?? "", /apikey/);
  assert.deepEqual(h.verified, []);
  assertUntouched(h);
});

Deno.test("methods other than POST and OPTIONS answer 405 with an Allow header", async () => {
  const h = harness();
  for (const method of ["GET", "PUT", "PATCH", "DELETE"]) {
    const res = await h.send({ method, json: {} });
    assertError(res, 405, "method_not_allowed", method);
    assert.equal(res.headers.get("allow"), "POST, OPTIONS");
  }
  assert.deepEqual(h.verified, []);
  assertUntouched(h);
});

Deno.test("an unknown path answers 404 not_found", async () => {
  const h = harness();
  for (const path of ["/wpp-create/extra", "/wpp-created", "/other"]) {
    assertError(await h.send({ path, json: {} }), 404, "not_found");
  }
  assert.deepEqual(h.verified, []);
  assertUntouched(h);
});

Deno.test("the function's own path is accepted with or without a trailing slash", async () => {
  const h = harness();
  h.platform.status = { connected: true, status: "connected" };
  assert.equal((await h.send({ path: "/wpp-create/" })).status, 200);
  assert.equal((await h.send({ path: "/wpp-create" })).status, 200);
});

Deno.test("Access-Control-Allow-Origin is on every response, errors included", async () => {
  const h = harness();
  h.platform.status = { connected: true, status: "connected" };
  const statuses = new Set<number>();
  // The invariant checked on each send asserts the header; this only collects what was covered.
  statuses.add((await h.send({ method: "OPTIONS" })).status);
  statuses.add((await h.send({})).status);
  statuses.add((await h.send({ raw: "{" })).status);
  statuses.add((await h.send({ raw: "x".repeat(17_000) })).status);
  statuses.add((await h.send({ method: "DELETE" })).status);
  statuses.add((await h.send({ path: "/nope" })).status);
  h.store.context = { organization_id: ORG_ID, role: "member" };
  statuses.add((await h.send({})).status);
  h.store.context = { organization_id: ORG_ID, role: "owner" };
  h.store.begins = [busyDecision()];
  statuses.add((await h.send({ json: { force_recreate: true } })).status);
  h.store.begins = [createDecision()];
  h.platform.failWith = (c) => c.op === "create" ? timeout("create") : undefined;
  statuses.add((await h.send({})).status);
  h.store.errors.callerContext = new Error("db down");
  statuses.add((await h.send({})).status);
  assert.deepEqual([...statuses].sort(), [200, 204, 400, 403, 404, 405, 409, 413, 500, 504]);

  const bad = harness({ env: { WPP_SECRET: undefined } });
  assert.equal((await bad.send({})).status, 500);
});

Deno.test("configured origins: a listed origin is echoed, others get no allow-origin", async () => {
  const h = harness({
    env: { CORS_ALLOWED_ORIGINS: "https://crm.example.com, https://admin.example.com" },
  });
  h.platform.status = { connected: true, status: "connected" };
  const listed = { origin: "https://admin.example.com" };
  const unlisted = { origin: "https://evil.example.net" };

  const ok = await h.send({ headers: listed });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("access-control-allow-origin"), "https://admin.example.com");
  assert.match(ok.headers.get("vary") ?? "", /Origin/i);

  const preflight = await h.send({ method: "OPTIONS", headers: listed });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "https://admin.example.com");

  const err = await h.send({ raw: "{", headers: listed });
  assert.equal(err.status, 400);
  assert.equal(err.headers.get("access-control-allow-origin"), "https://admin.example.com");

  for (const init of [{ headers: unlisted }, { method: "OPTIONS", headers: unlisted }, {}]) {
    const res = await h.send(init);
    assert.equal(res.headers.get("access-control-allow-origin"), null, `${init.method ?? "POST"}`);
    assert.match(res.headers.get("vary") ?? "", /Origin/i);
  }
});

// ---------------------------------------------------------------------------------------------
// Configuration

Deno.test("WPP_SECRET missing: every request answers 500 not_configured naming it, touching nothing", async () => {
  const h = harness({ env: { WPP_SECRET: undefined } });
  assert.equal(h.config.ok, false);
  for (const init of [{}, { json: { force_recreate: true } }, { method: "GET" }, { path: "/x" }]) {
    const res = await h.send(init);
    assertError(res, 500, "not_configured", "WPP_SECRET");
    assert.equal(res.log.level, "error");
  }
  assert.deepEqual(h.verified, []);
  assertUntouched(h);
});

Deno.test("WPP_BASE_URL that is not a URL: 500 not_configured naming it", async () => {
  const h = harness({ env: { WPP_BASE_URL: "not a url" } });
  const res = await h.send({});
  assertError(res, 500, "not_configured", "WPP_BASE_URL");
  assert.deepEqual(h.verified, []);
  assertUntouched(h);
});

Deno.test("an out-of-range WPP_BUSY_WAIT_MS: 500 not_configured naming it", async () => {
  const h = harness({ env: { WPP_BUSY_WAIT_MS: "999999" } });
  assertError(await h.send({}), 500, "not_configured", "WPP_BUSY_WAIT_MS");
  assertUntouched(h);
});

Deno.test("invalid config still answers CORS preflights with 204", async () => {
  const h = harness({ env: { SUPABASE_SERVICE_ROLE_KEY: undefined } });
  const res = await h.send({ method: "OPTIONS" });
  assert.equal(res.status, 204);
  assertUntouched(h);
});

// ---------------------------------------------------------------------------------------------
// The request body

Deno.test("body: an empty body is {} and follows the normal flow", async () => {
  const h = harness();
  h.platform.status = { connected: true, status: "connected" };
  for (const raw of [null, "", "  \n "]) {
    const res = await h.send({ raw });
    assert.equal(res.status, 200, res.text);
  }
  assert.deepEqual(h.store.beginInputs().map((b) => b.force), [false, false, false]);
});

Deno.test("body: invalid JSON answers 400 invalid_json and reaches nothing", async () => {
  const h = harness();
  for (const raw of ["{", "{'force_recreate': true}", "force_recreate=true"]) {
    assertError(await h.send({ raw }), 400, "invalid_json");
  }
  assertError(await h.send({ raw: new Uint8Array([0x7b, 0xff, 0x7d]) }), 400, "invalid_json");
  assertUntouched(h);
});

Deno.test("body: force_recreate as a string answers 400 invalid_body naming it", async () => {
  const h = harness();
  const res = await h.send({ json: { force_recreate: "true" } });
  assertError(res, 400, "invalid_body", "force_recreate");
  assertUntouched(h);
});

Deno.test("body: an unknown key answers 400 invalid_body naming the key", async () => {
  const h = harness();
  const res = await h.send({ json: { force_recreate: true, organization_id: ORG_ID } });
  assertError(res, 400, "invalid_body", "organization_id");
  assertUntouched(h);
});

Deno.test("body: an array, null or a scalar answers 400 invalid_body", async () => {
  const h = harness();
  for (const raw of ["[]", '[{"force_recreate":true}]', "null", "42", '"{}"', "true"]) {
    assertError(await h.send({ raw }), 400, "invalid_body", "object");
  }
  assertUntouched(h);
});

Deno.test("body: over 16 KiB with a content-length answers 413", async () => {
  const h = harness();
  const raw = JSON.stringify({ force_recreate: true, pad: "x".repeat(16 * 1024) });
  const res = await h.send({ raw, headers: { "content-length": String(raw.length) } });
  assertError(res, 413, "payload_too_large");
  // A short body declaring a long one: only the declared length can refuse it.
  const declared = await h.send({ raw: "{}", headers: { "content-length": "16385" } });
  assertError(declared, 413, "payload_too_large");
  assertUntouched(h);
});

Deno.test("body: over 16 KiB streamed without a content-length answers 413", async () => {
  const h = harness();
  const chunk = new TextEncoder().encode(" ".repeat(4096));
  let chunks = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      // Five chunks of 4 KiB: only the last one crosses the cap.
      if (chunks++ < 5) controller.enqueue(chunk);
      else controller.close();
    },
  });
  const res = await h.send({ raw: body });
  assertError(res, 413, "payload_too_large");
  assertUntouched(h);
});

Deno.test("body: exactly 16 KiB is still read", async () => {
  const h = harness();
  h.platform.status = { connected: true, status: "connected" };
  const raw = '{"force_recreate":false}'.padEnd(16 * 1024, " ");
  assert.equal(new TextEncoder().encode(raw).byteLength, 16 * 1024);
  assert.equal((await h.send({ raw })).status, 200);
});

Deno.test("body: add_new true answers 400 not_supported naming add_new", async () => {
  const h = harness();
  const res = await h.send({ json: { add_new: true } });
  assertError(res, 400, "not_supported", "add_new");
  assertUntouched(h);
});

Deno.test("body: add_new false follows the normal flow", async () => {
  const h = harness();
  h.platform.status = { connected: true, status: "connected" };
  const res = await h.send({ json: { add_new: false } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.status, "connected");
  assert.equal(h.store.beginInputs().length, 1);
});

// ---------------------------------------------------------------------------------------------
// Who the caller is

Deno.test("caller without an organisation answers 403 no_organization", async () => {
  const h = harness();
  h.store.context = { organization_id: null, role: null };
  assertError(await h.send({}), 403, "no_organization");
  assertOnlyCallerContext(h);
  assert.deepEqual(h.store.of("callerContext"), [[USER_ID]]);
});

Deno.test("a member, or a member with no role, answers 403 forbidden", async () => {
  const h = harness();
  for (const role of ["member", null] as const) {
    h.store.calls.length = 0;
    h.store.context = { organization_id: ORG_ID, role };
    const res = await h.send({ json: { force_recreate: true } });
    assertError(res, 403, "forbidden", "owner or an admin");
    assertOnlyCallerContext(h);
  }
});

Deno.test("owners and admins may provision", async () => {
  for (const role of ["owner", "admin"] as const) {
    const h = harness();
    h.store.context = { organization_id: ORG_ID, role };
    h.platform.status = { connected: true, status: "connected" };
    const res = await h.send({});
    assert.equal(res.status, 200, `${role}: ${res.text}`);
    assert.equal(res.log.role, role);
    assert.equal(res.log.organization_id, ORG_ID);
    assert.deepEqual(h.store.beginInputs(), [{
      organizationId: ORG_ID,
      force: false,
      actor: USER_ID,
      leaseSeconds: 60,
    }]);
  }
});

// ---------------------------------------------------------------------------------------------
// Authentication, with the real verifier and tokens signed here

const enc = new TextEncoder();
const NOW_S = Math.floor(T0 / 1000);
const USER_CLAIMS = {
  sub: "7D3C1B9E-0A4F-4C2E-9B8D-2F6E5A4C3B21",
  role: "authenticated",
  aud: "authenticated",
  email: "owner@example.test",
};

async function hs256(
  claims: jose.JWTPayload,
  opts: { secret?: string; exp?: number | null } = {},
): Promise<string> {
  const jwt = new jose.SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(NOW_S - 60);
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? NOW_S + 3600);
  return await jwt.sign(enc.encode(opts.secret ?? BASE_ENV.JWT_SECRET!));
}

async function assertRefused(
  h: Harness,
  authorization: string | null,
  mentions: string,
): Promise<void> {
  const res = await h.send({ authorization, json: {} });
  assertError(res, 401, "unauthorized", mentions);
  assertUntouched(h);
}

Deno.test("auth: a valid user token passes and the store sees the user id in lower case", async () => {
  const h = harness({ realAuth: true });
  h.platform.status = { connected: true, status: "connected" };
  const res = await h.send({ authorization: `Bearer ${await hs256(USER_CLAIMS)}` });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(h.store.of("callerContext"), [[USER_ID]]);
  assert.equal(res.log.user_id, USER_ID);
});

Deno.test("auth: a missing Authorization header answers 401", async () => {
  await assertRefused(harness({ realAuth: true }), null, "missing Authorization");
});

Deno.test("auth: a malformed Authorization header answers 401", async () => {
  const token = await hs256(USER_CLAIMS);
  for (const header of [token, `Token ${token}`, "Bearer", "Bearer ", `Bearer ${token} extra`]) {
    await assertRefused(harness({ realAuth: true }), header, "malformed");
  }
  await assertRefused(harness({ realAuth: true }), "Bearer not-a-jwt", "not a JWT");
});

Deno.test("auth: an expired token answers 401", async () => {
  const token = await hs256(USER_CLAIMS, { exp: NOW_S - 1 });
  await assertRefused(harness({ realAuth: true }), `Bearer ${token}`, "expired");
});

Deno.test("auth: a token signed with another secret answers 401", async () => {
  const token = await hs256(USER_CLAIMS, { secret: "another-secret-that-is-also-long-0987654" });
  await assertRefused(harness({ realAuth: true }), `Bearer ${token}`, "signature");
});

Deno.test("auth: an unsigned token (alg none) answers 401", async () => {
  const token = new jose.UnsecuredJWT(USER_CLAIMS).setIssuedAt(NOW_S - 60)
    .setExpirationTime(NOW_S + 3600).encode();
  await assertRefused(harness({ realAuth: true }), `Bearer ${token}`, "'none'");
});

Deno.test("auth: the anon key answers 401", async () => {
  // Shaped like Supabase's anon key: no aud, no sub.
  const anon = await hs256({ iss: "supabase", ref: "local", role: "anon" }, { exp: NOW_S + 1e8 });
  await assertRefused(harness({ realAuth: true }), `Bearer ${anon}`, "not a user token");
  const anonWithAud = await hs256({ role: "anon", aud: "authenticated", sub: USER_ID });
  await assertRefused(harness({ realAuth: true }), `Bearer ${anonWithAud}`, "API key");
});

Deno.test("auth: the service_role key answers 401", async () => {
  const key = await hs256({ iss: "supabase", role: "service_role" }, { exp: NOW_S + 1e8 });
  await assertRefused(harness({ realAuth: true }), `Bearer ${key}`, "not a user token");
  const withAud = await hs256({ role: "service_role", aud: "authenticated", sub: USER_ID });
  await assertRefused(harness({ realAuth: true }), `Bearer ${withAud}`, "API key");
});

Deno.test("auth: a user token without aud answers 401", async () => {
  const { aud: _aud, ...claims } = USER_CLAIMS;
  const token = await hs256(claims);
  await assertRefused(harness({ realAuth: true }), `Bearer ${token}`, "aud");
});

Deno.test("auth: a user token without a uuid sub answers 401", async () => {
  const token = await hs256({ ...USER_CLAIMS, sub: "not-a-uuid" });
  await assertRefused(harness({ realAuth: true }), `Bearer ${token}`, "no user id");
});

Deno.test("auth: HS256 is refused when no JWT_SECRET is configured", async () => {
  const h = harness({ realAuth: true, env: { JWT_SECRET: undefined } });
  assert.ok(h.config.ok);
  await assertRefused(h, `Bearer ${await hs256(USER_CLAIMS)}`, "HS256");
});

// ---------------------------------------------------------------------------------------------
// Another request holds the lease

Deno.test("busy: a plain click waits WPP_BUSY_WAIT_MS, then answers 409 with Retry-After", async () => {
  const h = harness();
  h.store.begins = [busyDecision(2)];
  const res = await h.send({});
  assertError(res, 409, "provisioning_in_progress");
  assert.equal(res.headers.get("retry-after"), "2");
  const waited = h.clock.t - T0;
  assert.ok(waited >= 1000 && waited <= 1200, `waited ${waited} ms`);
  assert.ok(h.clock.sleeps.every((ms) => ms > 0 && ms <= 1000), String(h.clock.sleeps));
  assert.equal(h.store.beginInputs().length, h.clock.sleeps.length + 1);
  assert.ok(h.store.beginInputs().every((b) => !b.force && b.deadSession === undefined));
  assert.deepEqual(h.platform.calls, []);
  assert.deepEqual(h.store.events(), []);
});

Deno.test("busy: Retry-After is clamped between 1 and 5 seconds", async () => {
  for (const [given, expected] of [[60, "5"], [null, "1"], [0, "1"], [3, "3"]] as const) {
    const h = harness({ env: { WPP_BUSY_WAIT_MS: "0" } });
    h.store.begins = [busyDecision(given)];
    const res = await h.send({});
    assertError(res, 409, "provisioning_in_progress");
    assert.equal(res.headers.get("retry-after"), expected, `retry_after_seconds ${given}`);
  }
});

Deno.test("busy: WPP_BUSY_WAIT_MS=0 answers 409 after one begin and no sleep", async () => {
  const h = harness({ env: { WPP_BUSY_WAIT_MS: "0" } });
  h.store.begins = [busyDecision()];
  assertError(await h.send({}), 409, "provisioning_in_progress");
  assert.equal(h.store.beginInputs().length, 1);
  assert.deepEqual(h.clock.sleeps, []);
});

Deno.test("busy: force_recreate answers 409 at once, after exactly one begin", async () => {
  const h = harness();
  h.store.begins = [busyDecision(4)];
  const res = await h.send({ json: { force_recreate: true } });
  assertError(res, 409, "provisioning_in_progress");
  assert.equal(res.headers.get("retry-after"), "4");
  assert.deepEqual(h.store.beginInputs().map((b) => b.force), [true]);
  assert.deepEqual(h.clock.sleeps, []);
  assert.deepEqual(h.platform.calls, []);
});

Deno.test("busy, then reuse: the click joins the stored session with created false", async () => {
  const h = harness();
  h.store.begins = [busyDecision(), busyDecision(), reuseDecision()];
  h.platform.status = { connected: true, status: "connected" };
  const res = await h.send({});
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.created, false);
  assert.equal(res.body.session, STORED_SESSION);
  assert.equal(res.body.status, "connected");
  assert.equal(h.store.beginInputs().length, 3);
  assert.equal(h.clock.sleeps.length, 2);
  assert.equal(res.headers.get("retry-after"), null);
});

// ---------------------------------------------------------------------------------------------
// Reusing the stored session

Deno.test("reuse: a connected session answers connected and is not started again", async () => {
  const h = harness();
  h.platform.status = { connected: true, status: "connected" };
  const res = await h.send({});
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.status, "connected");
  assert.equal(res.body.created, false);
  assert.equal("qrcode" in res.body, false);
  assert.deepEqual(h.platform.ops(), [`status:${STORED_SESSION}`]);
  assert.deepEqual(h.platform.sessionInputs, [{
    apiKey: STORED_API_KEY,
    session: STORED_SESSION,
    storedToken: { token: STORED_JWT, expiresAt: T0 + 600_000 },
  }]);
  assert.deepEqual(h.store.calls.map((c) => c.op), ["callerContext", "begin"]);
  assert.equal(res.log.outcome, "reused");
});

Deno.test("reuse: a disconnected session gets its webhook, then a start that issues a QR", async () => {
  const h = harness();
  const res = await h.send({});
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(h.platform.ops(), [
    `status:${STORED_SESSION}`,
    `webhook:${STORED_SESSION}`,
    `start:${STORED_SESSION}`,
  ]);
  assert.equal(h.platform.calls[1].arg, DEFAULT_WEBHOOK);
  assert.equal(h.platform.calls[1].apiKey, STORED_API_KEY);
  assert.equal(res.body.status, "qr_issued");
  assert.equal(res.body.qrcode, QR);
  assert.equal(res.body.created, false);
});

Deno.test("reuse: the start's state maps to starting or connected", async () => {
  const cases = [
    [{ state: "starting", raw: "pending" }, "starting"],
    [{ state: "qr", raw: "qr" }, "starting"],
    [{ state: "connected", raw: "ready" }, "connected"],
  ] as const;
  for (const [start, expected] of cases) {
    const h = harness();
    h.platform.start = { ...start };
    const res = await h.send({});
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, expected, JSON.stringify(start));
    assert.equal("qrcode" in res.body, false);
  }
});

Deno.test("reuse: the webhook URL is built on SELF_HOSTED_URL when set, its key escaped", async () => {
  const h = harness({ env: { SELF_HOSTED_URL: "https://crm.example.com/" } });
  h.store.begins = [reuseDecision({ webhook_key: "k/ey+1" })];
  assert.equal((await h.send({})).status, 200);
  const hook = h.platform.calls.find((c) => c.op === "webhook");
  assert.equal(hook?.arg, "https://crm.example.com/functions/v1/wpp-webhook/k%2Fey%2B1");
});

Deno.test("reuse: a token fetched during the request is stored for that session", async () => {
  const h = harness();
  const fresh = { token: REFRESHED_JWT, expiresAt: T0 + 900_000 };
  h.platform.newTokenFor = (s) => s === STORED_SESSION ? fresh : null;
  const res = await h.send({});
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(h.store.of("storeToken"), [[
    INTEGRATION_ID,
    STORED_SESSION,
    REFRESHED_JWT,
    T0 + 900_000,
  ]]);
});

Deno.test("reuse: no token is stored when the stored one was good enough", async () => {
  const h = harness();
  assert.equal((await h.send({})).status, 200);
  assert.deepEqual(h.store.of("storeToken"), []);
});

Deno.test("reuse: without a stored token, the session client gets none", async () => {
  const h = harness();
  h.store.begins = [reuseDecision({ jwt_token: null, jwt_expires_at: null })];
  assert.equal((await h.send({})).status, 200);
  assert.deepEqual(h.platform.sessionInputs, [{
    apiKey: STORED_API_KEY,
    session: STORED_SESSION,
    storedToken: undefined,
  }]);
});

Deno.test("reuse: failing to cache a new token is only a warning", async () => {
  const h = harness();
  h.platform.newTokenFor = () => ({ token: REFRESHED_JWT, expiresAt: T0 + 900_000 });
  h.store.errors.storeToken = new AppError("internal_error", "database call failed");
  const res = await h.send({});
  assert.equal(res.status, 200, res.text);
  assert.equal(res.log.warning_store_token, "internal_error");
});

// ---------------------------------------------------------------------------------------------
// A dead apiKey against a transient failure

Deno.test("dead key: a refused apiKey leads to a second begin naming the session, then a create", async () => {
  const h = harness();
  h.store.begins = [reuseDecision(), createDecision({ reason: "dead_key" })];
  h.platform.failWith = (c) =>
    c.session === STORED_SESSION
      ? new WppInvalidApiKeyError({ op: "token", message: "Invalid API key", status: 403 })
      : undefined;
  const res = await h.send({});
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.created, true);
  assert.equal(res.body.session, NEW_SESSION);
  assert.equal(res.body.status, "qr_issued");
  assert.deepEqual(h.store.beginInputs(), [
    { organizationId: ORG_ID, force: false, actor: USER_ID, leaseSeconds: 60 },
    {
      organizationId: ORG_ID,
      force: false,
      actor: USER_ID,
      leaseSeconds: 60,
      deadSession: STORED_SESSION,
    },
  ]);
  assert.equal(h.store.completes().length, 1);
  assert.equal(h.store.completes()[0].session, NEW_SESSION);
  assert.deepEqual(h.store.events().map((e) => e.action), []);
  assert.equal(res.log.outcome, "self_healed");
});

for (
  const [name, error, status, code] of [
    ["a timeout", timeout("status"), 504, "platform_timeout"],
    [
      "a 5xx",
      new WppServerError({ op: "status", message: "HTTP 503", status: 503 }),
      502,
      "platform_error",
    ],
  ] as const
) {
  Deno.test(`dead key: ${name} on the reuse path never replaces the session`, async () => {
    const h = harness();
    h.platform.failWith = (c) => c.op === "status" ? error : undefined;
    const res = await h.send({});
    assertError(res, status, code);
    assert.equal(h.store.beginInputs().length, 1);
    assert.deepEqual(h.store.completes(), []);
    assert.equal(h.platform.calls.filter((c) => c.op === "create").length, 0);
    const events = h.store.events();
    assert.equal(events.length, 1);
    assert.equal(events[0].action, "failed");
    assert.equal(events[0].integrationId, INTEGRATION_ID);
    assert.equal(events[0].actor, USER_ID);
    assert.deepEqual(events[0].details, {
      stage: "reuse",
      session: STORED_SESSION,
      code,
      op: "status",
      http_status: code === "platform_error" ? 503 : null,
    });
  });
}

Deno.test("dead key: busy on the second begin answers 409 with Retry-After", async () => {
  const h = harness();
  h.store.begins = [reuseDecision(), busyDecision(30)];
  h.platform.failWith = (c) =>
    c.op === "status" ? new WppInvalidApiKeyError({ op: "token", message: "refused" }) : undefined;
  const res = await h.send({});
  assertError(res, 409, "provisioning_in_progress");
  assert.equal(res.headers.get("retry-after"), "5");
  assert.equal(h.store.beginInputs().length, 2);
  assert.equal(h.platform.calls.filter((c) => c.op === "create").length, 0);
});

Deno.test("dead key: when another request already replaced the session, the click reuses it", async () => {
  const h = harness();
  const replacement = reuseDecision({
    session: NEW_SESSION,
    api_key: NEW_API_KEY,
    jwt_token: null,
  });
  h.store.begins = [reuseDecision(), replacement];
  h.platform.failWith = (c) =>
    c.session === STORED_SESSION
      ? new WppInvalidApiKeyError({ op: "token", message: "refused" })
      : undefined;
  h.platform.status = { connected: true, status: "connected" };
  const res = await h.send({});
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.created, false);
  assert.equal(res.body.session, NEW_SESSION);
  assert.equal(h.platform.calls.filter((c) => c.op === "create").length, 0);
});

Deno.test("dead key: a timeout while reusing another request's replacement session answers 504", async () => {
  // The replacement is a session created moments ago, exactly when the platform is known to be
  // slow or to refuse a fresh apiKey: its failure must map to a platform error like any other.
  const h = harness();
  const replacement = reuseDecision({
    session: NEW_SESSION,
    api_key: NEW_API_KEY,
    jwt_token: null,
  });
  h.store.begins = [reuseDecision(), replacement];
  h.platform.failWith = (c) => {
    if (c.session === STORED_SESSION) {
      return new WppInvalidApiKeyError({ op: "token", message: "refused" });
    }
    return c.session === NEW_SESSION ? timeout("status") : undefined;
  };
  const res = await h.send({});
  assertError(res, 504, "platform_timeout");
});

// ---------------------------------------------------------------------------------------------
// Creating a new platform client

Deno.test("create: stores the new client before asking for its token, then webhook and start", async () => {
  const h = harness();
  h.store.begins = [createDecision()];
  const res = await h.send({});
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(h.store.journal, [
    "db:callerContext",
    "db:begin",
    "wpp:create",
    "db:complete",
    "wpp:token",
    "db:storeToken",
    "wpp:webhook",
    "wpp:start",
  ]);
  assert.equal(h.platform.calls[0].arg, ORG_ID);
  assert.deepEqual(h.store.completes(), [{
    integrationId: INTEGRATION_ID,
    leaseId: LEASE_ID,
    session: NEW_SESSION,
    apiKey: NEW_API_KEY,
    actor: USER_ID,
    details: { reason: "no_integration", platform_status: "starting" },
  }]);
  const token = h.platform.calls.find((c) => c.op === "token")!;
  assert.equal(token.session, NEW_SESSION);
  assert.equal(token.apiKey, NEW_API_KEY);
  assert.equal((token.opts as { freshKey?: boolean }).freshKey, true);
  assert.deepEqual(h.store.of("storeToken"), [[
    INTEGRATION_ID,
    NEW_SESSION,
    NEW_JWT,
    T0 + 900_000,
  ]]);
  assert.equal(h.platform.calls.find((c) => c.op === "webhook")?.arg, DEFAULT_WEBHOOK);
  assert.deepEqual(h.store.fails(), []);
  assert.equal(res.body.created, true);
  assert.equal(res.body.session, NEW_SESSION);
  assert.equal(res.body.status, "qr_issued");
  assert.equal(res.body.qrcode, QR);
  assert.equal(res.log.outcome, "created");
});

for (
  const [name, error, status, code] of [
    ["timing out", timeout("create"), 504, "platform_timeout"],
    [
      "refused WPP_SECRET",
      new WppUnauthorizedError({ op: "create", message: "Invalid token", status: 401 }),
      502,
      "platform_unauthorized",
    ],
    [
      "a malformed answer",
      new WppMalformedError({ op: "create", message: "no apiKey" }),
      502,
      "platform_malformed",
    ],
  ] as const
) {
  Deno.test(`create: ${name} releases the lease and completes nothing`, async () => {
    const h = harness();
    h.store.begins = [createDecision()];
    h.platform.failWith = (c) => c.op === "create" ? error : undefined;
    const res = await h.send({});
    assertError(res, status, code);
    assert.deepEqual(h.store.completes(), []);
    assert.deepEqual(h.store.fails(), [{
      integrationId: INTEGRATION_ID,
      leaseId: LEASE_ID,
      reason: "create_failed",
      details: {
        stage: "create",
        code,
        op: "create",
        http_status: error.status ?? null,
      },
      actor: USER_ID,
    }]);
    assert.deepEqual(h.platform.ops(), ["create"]);
  });
}

Deno.test("create: a lease lost at complete answers 409 and names the orphaned session", async () => {
  const h = harness();
  h.store.begins = [createDecision()];
  h.store.errors.complete = new AppError("provisioning_conflict", "another request took over");
  const res = await h.send({});
  assertError(res, 409, "provisioning_conflict");
  assert.equal(h.store.completes().length, 1);
  const fails = h.store.fails();
  assert.equal(fails.length, 1);
  assert.equal(fails[0].leaseId, LEASE_ID);
  assert.equal(fails[0].reason, "store_failed");
  assert.deepEqual(fails[0].details, {
    stage: "store",
    orphan_session: NEW_SESSION,
    code: "provisioning_conflict",
  });
  assert.deepEqual(h.platform.ops(), ["create"]);
});

Deno.test("create: a database failure at complete answers 500 and names the orphaned session", async () => {
  const h = harness();
  h.store.begins = [createDecision()];
  h.store.errors.complete = new AppError("internal_error", "database call failed (08006)");
  const res = await h.send({});
  assertError(res, 500, "internal_error");
  assert.equal(h.store.fails()[0].details.orphan_session, NEW_SESSION);
  assert.deepEqual(h.platform.ops(), ["create"]);
});

for (
  const [name, error, status, code] of [
    [
      "refused",
      new WppInvalidApiKeyError({ op: "token", message: "Invalid API key", status: 403 }),
      502,
      "platform_rejected",
    ],
    ["timing out", timeout("token"), 504, "platform_timeout"],
  ] as const
) {
  Deno.test(`create: the token ${name} after the store keeps the session and records failed`, async () => {
    const h = harness();
    h.store.begins = [createDecision()];
    h.platform.failWith = (c) => c.op === "token" ? error : undefined;
    const res = await h.send({});
    assertError(res, status, code);
    assert.equal(h.store.completes().length, 1, "the created session was stored");
    assert.deepEqual(h.store.fails(), [], "the stored session is not released");
    assert.deepEqual(h.store.events(), [{
      organizationId: ORG_ID,
      integrationId: INTEGRATION_ID,
      actor: USER_ID,
      action: "failed",
      details: {
        stage: "after_store",
        session: NEW_SESSION,
        code: error.code,
        op: "token",
        http_status: error.status ?? null,
      },
    }]);
    assert.deepEqual(h.platform.ops(), ["create", `token:${NEW_SESSION}`]);
  });
}

Deno.test("create: a forced recreate stops the old session with the old apiKey", async () => {
  const h = harness();
  h.store.begins = [
    createDecision({ reason: "forced", old_session: OLD_SESSION, old_api_key: OLD_API_KEY }),
  ];
  const res = await h.send({ json: { force_recreate: true } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.created, true);
  assert.equal(res.body.session, NEW_SESSION);
  assert.deepEqual(h.store.beginInputs().map((b) => b.force), [true]);
  const stops = h.platform.calls.filter((c) => c.op === "stop");
  assert.equal(stops.length, 1);
  assert.equal(stops[0].session, OLD_SESSION);
  assert.equal(stops[0].apiKey, OLD_API_KEY);
  assert.ok(
    !h.platform.calls.some((c) => c.session === NEW_SESSION && c.op === "stop"),
    "the new session is never stopped",
  );
  assert.deepEqual(h.store.events(), [{
    organizationId: ORG_ID,
    integrationId: INTEGRATION_ID,
    actor: USER_ID,
    action: "session_stopped",
    details: { session: OLD_SESSION, reason: "forced" },
  }]);
  assert.equal(res.log.outcome, "recreated");
  assert.equal(res.log.reason, "forced");
});

Deno.test("create: failing to stop the old session still answers 200 and records stop_failed", async () => {
  const h = harness();
  h.store.begins = [
    createDecision({ reason: "forced", old_session: OLD_SESSION, old_api_key: OLD_API_KEY }),
  ];
  h.platform.failWith = (c) => c.op === "stop" ? timeout("stop") : undefined;
  const res = await h.send({ json: { force_recreate: true } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.session, NEW_SESSION);
  assert.deepEqual(h.store.events().map((e) => [e.action, e.details]), [[
    "stop_failed",
    {
      session: OLD_SESSION,
      reason: "forced",
      code: "platform_timeout",
      op: "stop",
      http_status: null,
    },
  ]]);
  assert.equal(res.log.warning_stop_old_session, "platform_timeout");
});

Deno.test("create: no stop when the begin handed back no old session", async () => {
  const h = harness();
  h.store.begins = [createDecision({ reason: "missing_credentials" })];
  assert.equal((await h.send({ json: { force_recreate: true } })).status, 200);
  assert.equal(h.platform.calls.filter((c) => c.op === "stop").length, 0);
});

// ---------------------------------------------------------------------------------------------
// What the response and the log look like

Deno.test("response: a success has exactly the documented fields", async () => {
  const h = harness();
  const res = await h.send({});
  assert.equal(res.status, 200);
  assert.deepEqual(Object.keys(res.body).sort(), [...SUCCESS_KEYS, "qrcode"].sort());
  assert.deepEqual(res.body, {
    success: true,
    session: STORED_SESSION,
    apiKey: "stored••••••0001",
    status: "qr_issued",
    qrcode: QR,
    integration_id: INTEGRATION_ID,
    created: false,
    request_id: REQUEST_ID,
  });
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  assert.equal(res.headers.get("cache-control"), "no-store");

  h.platform.status = { connected: true, status: "connected" };
  const connected = await h.send({});
  assert.deepEqual(Object.keys(connected.body).sort(), SUCCESS_KEYS);
});

Deno.test("response: the apiKey is masked to its first 6 and last 4, or *** under 12", async () => {
  const cases = [
    [NEW_API_KEY, "fresh-••••••0042"],
    ["abcdefghijkl", "abcdef••••••ijkl"],
    ["abcdefghijk", "***"],
    ["short", "***"],
  ];
  for (const [apiKey, masked] of cases) {
    const h = harness();
    h.store.begins = [createDecision()];
    h.platform.created = { session: NEW_SESSION, apiKey, status: "starting" };
    const res = await h.send({});
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.apiKey, masked);
  }
});

Deno.test("response: an unexpected exception answers 500 internal_error and hides it", async () => {
  const boom = () => new Error("boom with secret-xyz");
  const setups: [string, (h: Harness) => void][] = [
    ["store", (h) => {
      h.store.errors.callerContext = boom();
    }],
    ["platform", (h) => {
      h.platform.failWith = () => boom();
    }],
    ["create", (h) => {
      h.store.begins = [createDecision()];
      h.platform.failWith = (c) => c.op === "create" ? boom() : undefined;
    }],
  ];
  for (const [where, setup] of setups) {
    const h = harness();
    setup(h);
    const res = await h.send({});
    assertError(res, 500, "internal_error");
    for (const needle of ["boom", "secret-xyz", "at ", ".ts:", "stack"]) {
      assert.ok(!res.text.includes(needle), `${where}: response shows ${needle}: ${res.text}`);
    }
    const logText = JSON.stringify(res.log);
    assert.ok(!logText.includes("boom") && !logText.includes("secret-xyz"), logText);
    assert.equal(res.log.exception, "Error");
    assert.equal(res.log.level, "error");
  }
});

Deno.test("log: one line per request with request_id and status, holding no secret", async () => {
  const h = harness({ realAuth: true });
  const token = await hs256(USER_CLAIMS);
  const authorization = `Bearer ${token}`;
  h.platform.newTokenFor = () => ({ token: REFRESHED_JWT, expiresAt: T0 + 900_000 });
  h.store.begins = [
    reuseDecision(),
    createDecision({ old_session: OLD_SESSION, old_api_key: OLD_API_KEY }),
  ];
  const first = await h.send({ authorization });
  const second = await h.send({ authorization, json: { force_recreate: true } });
  const third = await h.send({ authorization, raw: "{" });
  assert.deepEqual([first.status, second.status, third.status], [200, 200, 400]);
  assert.equal(h.logs.length, 3);
  const all = JSON.stringify(h.logs);
  for (const secret of [...SECRETS, token, "••••••"]) {
    assert.ok(!all.includes(secret), `log leaks ${secret}`);
  }
  assert.deepEqual(h.logs.map((l) => [l.request_id, l.status, l.level]), [
    [REQUEST_ID, 200, "info"],
    [REQUEST_ID, 200, "info"],
    [REQUEST_ID, 400, "warn"],
  ]);
  assert.equal(h.logs[0].fn, "wpp-create");
  assert.equal(h.logs[0].user_id, USER_ID);
  assert.equal(h.logs[1].session, NEW_SESSION);
});

// ---------------------------------------------------------------------------------------------
// The deadline handed to the platform

Deno.test("deadline: every create-path platform call gets now + WPP_REQUEST_DEADLINE_MS - 1000", async () => {
  const h = harness({ env: { WPP_REQUEST_DEADLINE_MS: "15000" } });
  h.store.begins = [
    createDecision({ reason: "forced", old_session: OLD_SESSION, old_api_key: OLD_API_KEY }),
  ];
  assert.equal((await h.send({ json: { force_recreate: true } })).status, 200);
  assert.deepEqual(h.platform.calls.map((c) => c.op).sort(), [
    "create",
    "start",
    "stop",
    "token",
    "webhook",
  ]);
  for (const c of h.platform.calls) {
    assert.equal(c.opts?.deadline, T0 + 15_000 - 1_000, c.op);
  }
});

Deno.test("deadline: reuse-path calls get it too, counted from before any busy wait", async () => {
  const h = harness();
  h.store.begins = [busyDecision(), reuseDecision()];
  assert.equal((await h.send({})).status, 200);
  assert.equal(h.clock.t, T0 + 200, "one busy poll happened");
  assert.deepEqual(h.platform.calls.map((c) => c.op), ["status", "webhook", "start"]);
  for (const c of h.platform.calls) {
    assert.equal(c.opts?.deadline, T0 + 20_000 - 1_000, c.op);
  }
});
