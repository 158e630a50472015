// wpp-disconnect's handler driven directly with fakes of the database and the platform: who may
// disconnect what, the platform stop and its retry by a repeat, waiting for a refresh in flight.
import assert from "node:assert/strict";
import { createHandler } from "../../supabase/functions/wpp-disconnect/handler.ts";
import { WppInvalidApiKeyError, WppServerError } from "../../supabase/functions/_shared/wpp/mod.ts";
import type { DisconnectResult } from "../../supabase/functions/_shared/db/store.ts";
import {
  callerContext,
  disconnectMarked,
  fakeDeps,
  functionRequest,
  INTEGRATION_ID,
  invoke,
  ORG_ID,
  REQUEST_ID,
  STORED_API_KEY,
  STORED_JWT,
  STORED_SESSION,
  testConfig,
  USER_ID,
  userToken,
} from "../_support/fakes.ts";

const FN = "wpp-disconnect";
const FOREIGN_ID = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e";

async function setup() {
  const h = fakeDeps();
  const handler = createHandler(testConfig(), h.deps);
  const token = await userToken();
  const post = (body: unknown = { integration_id: INTEGRATION_ID }) =>
    invoke(handler, h, functionRequest(FN, { body, token }));
  return { ...h, handler, token, post };
}

function assertError(
  r: { status: number; json: Record<string, unknown>; headers: Headers },
  status: number,
  code: string,
) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.success, false);
  assert.equal(r.json.code, code);
  assert.equal(typeof r.json.error, "string");
  assert.equal(r.json.request_id, REQUEST_ID);
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
}

const SUCCESS = {
  success: true,
  integration_id: INTEGRATION_ID,
  status: "disconnected",
  request_id: REQUEST_ID,
};

Deno.test("disconnect unit: marks the row, stops the session with its credentials", async () => {
  const h = await setup();
  const r = await h.post();
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, SUCCESS);
  assert.deepEqual(h.store.of("disconnect")[0], [INTEGRATION_ID, ORG_ID, USER_ID]);
  assert.deepEqual(h.platform.ops(), [`stop:${STORED_SESSION}`]);
  assert.equal(h.platform.calls[0].apiKey, STORED_API_KEY);
  assert.equal(h.platform.calls[0].storedToken, STORED_JWT);
  const [stopped] = h.store.inputs("disconnectStopped");
  assert.deepEqual(stopped, {
    integrationId: INTEGRATION_ID,
    session: STORED_SESSION,
    ok: true,
    details: {},
    actor: USER_ID,
  });
  assert.deepEqual(h.journal, [
    "db:context",
    "db:disconnect",
    `wpp:stop:${STORED_SESSION}`,
    "db:disconnectStopped",
  ]);
  assert.equal(r.log.outcome, "disconnected");
  assert.equal(r.log.stop, "stopped");
});

Deno.test("disconnect unit: a repeat answers success without a platform call", async () => {
  const h = await setup();
  h.store.script("disconnect", disconnectMarked({ stop_needed: false }, "already"));
  const r = await h.post();
  assert.deepEqual(r.json, SUCCESS);
  assert.equal(h.platform.calls.length, 0);
  assert.equal(h.store.count("disconnectStopped"), 0);
  assert.equal(r.log.outcome, "already_disconnected");
});

Deno.test("disconnect unit: a failed stop is 502, and a repeat retries the stop", async () => {
  const h = await setup();
  h.platform.failNext("stop", new WppServerError({ op: "stop", message: "x", status: 503 }));
  const first = await h.post();
  assertError(first, 502, "platform_error");
  const [failed] = h.store.inputs("disconnectStopped");
  assert.equal(failed.ok, false);
  assert.deepEqual(failed.details, { code: "platform_error", op: "stop", http_status: 503 });
  assert.equal(first.log.stop, "failed");

  // The database kept the stop pending: the repeat is told to stop again.
  h.store.script("disconnect", disconnectMarked({ stop_needed: true }, "already"));
  const second = await h.post();
  assert.equal(second.status, 200, second.text);
  assert.deepEqual(second.json, SUCCESS);
  assert.equal(h.platform.count("stop"), 2);
  assert.equal(h.store.inputs("disconnectStopped")[1].ok, true);
});

Deno.test("disconnect unit: a refused key on stop counts as stopped", async () => {
  const h = await setup();
  h.store.script("disconnect", disconnectMarked({ jwt_token: null, jwt_expires_at: null }));
  h.platform.failNext(
    "token",
    new WppInvalidApiKeyError({ op: "token", message: "k", status: 403 }),
  );
  const r = await h.post();
  assert.equal(r.status, 200, r.text);
  const [stopped] = h.store.inputs("disconnectStopped");
  assert.equal(stopped.ok, true);
  assert.equal(stopped.details.code, "invalid_api_key");
});

Deno.test("disconnect unit: a row without a usable session is marked, nothing to stop", async () => {
  const h = await setup();
  h.store.script(
    "disconnect",
    disconnectMarked({ stop_needed: false, session: "client_system", valid: false }),
  );
  const r = await h.post();
  assert.deepEqual(r.json, SUCCESS);
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("disconnect unit: a refresh in flight is waited for, then the stop runs", async () => {
  const h = await setup();
  const busy: DisconnectResult = {
    outcome: "busy",
    reason: "refresh_in_flight",
    retry_after_seconds: 1,
  };
  h.store.script("disconnect", busy, busy);
  const r = await h.post();
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(h.clock.sleeps, [200, 200]);
  assert.equal(h.store.count("disconnect"), 3);
  assert.equal(h.platform.count("stop"), 1);
});

Deno.test("disconnect unit: a refresh that never ends is 409 after the busy wait", async () => {
  const h = await setup();
  h.store.handle(
    "disconnect",
    () => Promise.resolve({ outcome: "busy", reason: "refresh_in_flight", retry_after_seconds: 1 }),
  );
  const r = await h.post();
  assertError(r, 409, "provisioning_in_progress");
  assert.equal(r.headers.get("retry-after"), "1");
  // WPP_BUSY_WAIT_MS = 1000 in the fakes' environment, polled every 200 ms.
  assert.equal(h.clock.sleeps.length, 5);
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("disconnect unit: a create in progress is 409 at once, no wait", async () => {
  const h = await setup();
  h.store.script("disconnect", {
    outcome: "busy",
    reason: "provisioning",
    retry_after_seconds: 25,
  });
  const r = await h.post();
  assertError(r, 409, "provisioning_in_progress");
  assert.equal(r.headers.get("retry-after"), "5");
  assert.deepEqual(h.clock.sleeps, []);
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("disconnect unit: an unknown or foreign integration_id is 404", async () => {
  const h = await setup();
  h.store.context = callerContext({ found: false, integration: null });
  const r = await h.post({ integration_id: FOREIGN_ID });
  assertError(r, 404, "not_found");
  assert.deepEqual(h.store.of("context")[0], [USER_ID, { integrationId: FOREIGN_ID }]);
  assert.equal(h.store.count("disconnect"), 0);
  // A row gone between the context and the disconnect is 404 too.
  const h2 = await setup();
  h2.store.script("disconnect", { outcome: "not_found" });
  assertError(await h2.post(), 404, "not_found");
  assert.equal(h2.platform.calls.length, 0);
});

Deno.test("disconnect unit: a member gets 403 and nothing is marked", async () => {
  const h = await setup();
  h.store.context = callerContext({ role: "member" });
  const r = await h.post();
  assertError(r, 403, "forbidden");
  assert.deepEqual(h.store.ops(), ["context"]);
});

Deno.test("disconnect unit: bad requests are refused before the database", async () => {
  const h = await setup();
  assertError(await h.post({}), 400, "invalid_body");
  assertError(await h.post({ integration_id: "42" }), 400, "invalid_body");
  assertError(await h.post({ integration_id: INTEGRATION_ID, force: true }), 400, "invalid_body");
  const get = await invoke(
    h.handler,
    h,
    functionRequest(FN, { method: "GET", token: h.token }),
  );
  assertError(get, 405, "method_not_allowed");
  const anon = await invoke(h.handler, h, functionRequest(FN, { body: {}, token: null }));
  assertError(anon, 401, "unauthorized");
  assert.equal(h.store.calls.length + h.platform.calls.length, 0);
});
