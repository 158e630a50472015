// wpp-qr's handler driven directly with fakes of the database and the platform: who may see a QR,
// which session's, and when the platform is asked for one.
import assert from "node:assert/strict";
import { createHandler } from "../../supabase/functions/wpp-qr/handler.ts";
import {
  WppInvalidApiKeyError,
  WppServerError,
  WppTimeoutError,
} from "../../supabase/functions/_shared/wpp/mod.ts";
import {
  BASE_ENV,
  callerContext,
  fakeDeps,
  functionRequest,
  type Harness,
  integration,
  INTEGRATION_ID,
  invoke,
  QR,
  REFRESH_LEASE_ID,
  refreshRefused,
  REQUEST_ID,
  STORED_SESSION,
  testConfig,
  USER_ID,
  userToken,
  WEBHOOK_SECRET,
} from "../_support/fakes.ts";

const FN = "wpp-qr";

async function setup(env: Record<string, string> = {}) {
  const h = fakeDeps();
  const handler = createHandler(testConfig(env), h.deps);
  const token = await userToken();
  const get = (query: Record<string, string> = { session: STORED_SESSION }, t = token) =>
    invoke(handler, h, functionRequest(FN, { method: "GET", query, token: t }));
  const post = (body: unknown = { session: STORED_SESSION }, t = token) =>
    invoke(handler, h, functionRequest(FN, { body, token: t }));
  return { ...h, handler, token, get, post };
}

function assertError(
  r: { status: number; json: Record<string, unknown>; headers: Headers },
  status: number,
  code: string,
) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.success, false);
  assert.equal(r.json.code, code);
  assert.equal(r.json.request_id, REQUEST_ID);
  assert.equal(r.headers.get("access-control-allow-origin"), "*", "CORS on every answer");
}

function stale(h: Harness, over = {}) {
  h.store.context = callerContext({
    integration: integration({ fresh: false, qr: null, connection: "starting", ...over }),
  });
}

Deno.test("qr unit: GET ?session= with a fresh stored QR answers it with zero platform calls", async () => {
  const h = await setup();
  const r = await h.get();
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { success: true, qr: QR, request_id: REQUEST_ID });
  assert.equal(h.platform.calls.length, 0);
  assert.deepEqual(h.store.ops(), ["context"]);
  assert.deepEqual(h.store.of("context")[0], [USER_ID, { session: STORED_SESSION }]);
  assert.equal(r.log.source, "stored");
  assert.equal(r.log.has_qr, true);
});

Deno.test("qr unit: POST {session} is the same request", async () => {
  const h = await setup();
  const r = await h.post();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.qr, QR);
  assert.deepEqual(h.store.of("context")[0], [USER_ID, { session: STORED_SESSION }]);
});

Deno.test("qr unit: without a session the organisation's number is meant", async () => {
  const h = await setup();
  const r = await h.post({});
  assert.equal(r.json.qr, QR);
  assert.deepEqual(h.store.of("context")[0], [USER_ID, { session: undefined }]);
});

Deno.test("qr unit: a member gets 403 and no QR", async () => {
  const h = await setup();
  h.store.context = callerContext({ role: "member" });
  const r = await h.get();
  assertError(r, 403, "forbidden");
  assert.ok(!r.text.includes(QR));
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("qr unit: a session of another organisation is 404 with CORS", async () => {
  const h = await setup({ CORS_ALLOWED_ORIGINS: "https://crm.example.test" });
  h.store.context = callerContext({ found: false, integration: null });
  const r = await invoke(
    h.handler,
    h,
    functionRequest(FN, {
      method: "GET",
      query: { session: "0000000000999" },
      token: h.token,
      headers: { origin: "https://crm.example.test" },
    }),
  );
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.code, "not_found");
  assert.equal(r.headers.get("access-control-allow-origin"), "https://crm.example.test");
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("qr unit: a replaced session's QR is never handed out", async () => {
  const h = await setup();
  h.store.context = callerContext({ found: false, replaced: true, integration: null });
  const r = await h.get({ session: "0000000000001" });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { success: true, qr: null, reason: "replaced", request_id: REQUEST_ID });
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("qr unit: a session replaced while asking answers qr null", async () => {
  const h = await setup();
  stale(h);
  h.store.script("refreshBegin", refreshRefused("replaced"));
  const r = await h.get();
  assert.deepEqual(r.json, { success: true, qr: null, reason: "replaced", request_id: REQUEST_ID });
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("qr unit: connected answers qr null with reason connected", async () => {
  const h = await setup();
  h.store.context = callerContext({
    integration: integration({ connection: "connected", qr: null, qr_at: null }),
  });
  const r = await h.get();
  assert.deepEqual(r.json, {
    success: true,
    qr: null,
    reason: "connected",
    request_id: REQUEST_ID,
  });
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("qr unit: stale state asks the platform for the QR only, and stores it", async () => {
  const h = await setup();
  stale(h);
  h.platform.qr = "2@fresh-from-platform";
  const r = await h.get();
  assert.equal(r.json.qr, "2@fresh-from-platform");
  assert.deepEqual(h.platform.ops(), [`qr:${STORED_SESSION}`], "no start, no status");
  const [end] = h.store.inputs("refreshEnd");
  assert.equal(end.leaseId, REFRESH_LEASE_ID);
  assert.equal(end.connection, "qr");
  assert.equal(end.qr, "2@fresh-from-platform");
  assert.equal(h.store.of("refreshBegin")[0][2], true, "owners and admins read the QR");
  assert.equal(r.log.source, "platform");
});

Deno.test("qr unit: a session whose webhook is not ours yet gets it registered", async () => {
  const h = await setup();
  stale(h, { webhook_current: false });
  const r = await h.get();
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(h.platform.ops(), [`qr:${STORED_SESSION}`, `webhook:${STORED_SESSION}`]);
  assert.equal(
    h.platform.calls[1].arg,
    `${BASE_ENV.SUPABASE_URL}/functions/v1/wpp-webhook/${WEBHOOK_SECRET}`,
  );
  assert.equal(h.store.inputs("refreshEnd")[0].webhookRegistered, true);
});

Deno.test("qr unit: no QR on the platform yet is qr null, nothing stored as a QR", async () => {
  const h = await setup();
  stale(h);
  h.platform.qr = null;
  const r = await h.get();
  assert.deepEqual(r.json, { success: true, qr: null, request_id: REQUEST_ID });
  assert.equal(h.store.inputs("refreshEnd")[0].connection, undefined);
});

Deno.test("qr unit: another request's refresh is waited for", async () => {
  const h = await setup();
  stale(h);
  h.store.script("refreshBegin", refreshRefused("in_flight"));
  h.store.script(
    "context",
    callerContext({ integration: integration({ fresh: false, qr: null, connection: "starting" }) }),
    callerContext({ integration: integration({ qr: "2@from-the-other-request" }) }),
  );
  const r = await h.get();
  assert.equal(r.json.qr, "2@from-the-other-request");
  assert.equal(h.platform.calls.length, 0);
  assert.equal(r.log.source, "waited");
});

Deno.test("qr unit: no usable session (legacy, disconnected, none) is qr null, no platform call", async () => {
  for (
    const ctx of [
      callerContext({ integration: integration({ valid: false, session: "client_system" }) }),
      callerContext({ integration: integration({ disconnected: true, is_active: false }) }),
      callerContext({ found: false, integration: null }),
    ]
  ) {
    const h = await setup();
    h.store.context = ctx;
    const r = await h.post({});
    assert.deepEqual(r.json, {
      success: true,
      qr: null,
      reason: "no_session",
      request_id: REQUEST_ID,
    });
    assert.equal(h.platform.calls.length, 0);
  }
});

Deno.test("qr unit: a refused key is qr null with reason dead_key, not an error", async () => {
  const h = await setup();
  stale(h, { jwt_token: null, jwt_expires_at: null });
  h.platform.failNext(
    "token",
    new WppInvalidApiKeyError({ op: "token", message: "k", status: 403 }),
  );
  const r = await h.get();
  assert.deepEqual(r.json, { success: true, qr: null, reason: "dead_key", request_id: REQUEST_ID });
});

Deno.test("qr unit: platform failures are 502/504 (the panel's poll retries them)", async () => {
  for (
    const [error, status, code] of [
      [new WppServerError({ op: "qr", message: "x", status: 500 }), 502, "platform_error"],
      [new WppTimeoutError({ op: "qr", message: "x" }), 504, "platform_timeout"],
    ] as const
  ) {
    const h = await setup();
    stale(h);
    h.platform.failNext("qr", error);
    const r = await h.get();
    assertError(r, status, code);
    assert.equal(h.store.count("refreshEnd"), 1, "the refresh lease is released");
  }
});

Deno.test("qr unit: bad requests are 400/401/405 and reach nothing", async () => {
  const h = await setup();
  assertError(await h.get({ session: STORED_SESSION, extra: "1" }), 400, "invalid_body");
  assertError(await h.get({ session: "" }), 400, "invalid_body");
  assertError(await h.post({ session: 7 }), 400, "invalid_body");
  assertError(await h.post({ session_name: STORED_SESSION }), 400, "invalid_body");
  assertError(await h.get({ session: STORED_SESSION }, ""), 401, "unauthorized");
  const put = await invoke(
    h.handler,
    h,
    functionRequest(FN, { method: "PUT", body: {}, token: h.token }),
  );
  assertError(put, 405, "method_not_allowed");
  assert.equal(put.headers.get("allow"), "GET, POST, OPTIONS");
  assert.equal(h.store.calls.length + h.platform.calls.length, 0);
});

Deno.test("qr unit: a user of no organisation gets 403", async () => {
  const h = await setup();
  h.store.context = callerContext({
    organization_id: null,
    role: null,
    found: false,
    integration: null,
  });
  assertError(await h.get(), 403, "no_organization");
  assert.equal(h.platform.calls.length, 0);
  assert.equal(INTEGRATION_ID.length, 36);
});
