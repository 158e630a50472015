// wpp-status's HTTP contract through the gateway: who may call, how, the error model, CORS and
// the one log line per request.
import assert from "node:assert/strict";
import { closeDb, createOrg, functionLogLines, sim } from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import { connect, status, test } from "./_helpers.ts";

test("no token, a malformed one, or the anon key as bearer: 401 with CORS headers", async () => {
  const origin = "http://crm.example.test";
  for (
    const authorization of [undefined, "Basic abc", `Bearer ${stack.anonKey}`, "Bearer not.a.jwt"]
  ) {
    const res = await status(null, {
      headers: { origin, ...(authorization ? { authorization } : {}) },
    });
    assert.equal(res.status, 401, `${authorization}: ${res.text}`);
    assert.equal(res.json.code, "unauthorized");
    assert.equal(res.json.success, false);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  }
});

test("GET and POST {} both read; POST refuses fields and bad JSON", async () => {
  const org = await createOrg("member");
  for (const method of ["GET", "POST"]) {
    const res = await status(org.user.token, { method });
    assert.equal(res.status, 200, `${method}: ${res.text}`);
    assert.equal(res.json.status, "not_configured");
  }
  const forced = await status(org.user.token, { method: "POST", body: { force_recreate: true } });
  assert.equal(forced.status, 400, forced.text);
  assert.equal(forced.json.code, "invalid_body");
  assert.match(String(forced.json.error), /force_recreate/);
  const broken = await status(org.user.token, { method: "POST", body: "{" });
  assert.equal(broken.status, 400);
  assert.equal(broken.json.code, "invalid_json");
});

test("other methods: 405 naming the allowed ones", async () => {
  const org = await createOrg("admin");
  for (const method of ["PUT", "DELETE", "PATCH"]) {
    const res = await status(org.user.token, { method, body: {} });
    assert.equal(res.status, 405, `${method}: ${res.text}`);
    assert.equal(res.json.code, "method_not_allowed");
    assert.equal(res.headers.get("allow"), "GET, POST, OPTIONS");
  }
});

test("a CORS preflight from another origin is answered without a token", async () => {
  const res = await fetch(`${stack.url}/functions/v1/wpp-status`, {
    method: "OPTIONS",
    headers: {
      origin: "http://localhost:5173",
      "access-control-request-method": "GET",
      "access-control-request-headers": "authorization, apikey, x-client-info",
    },
  });
  await res.body?.cancel();
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.match(res.headers.get("access-control-allow-methods") ?? "", /GET/);
  const allowed = res.headers.get("access-control-allow-headers") ?? "";
  for (const h of ["authorization", "apikey", "x-client-info", "content-type"]) {
    assert.ok(allowed.includes(h), `${h} is allowed`);
  }
});

test("one JSON log line per request, with no secret in it", async () => {
  const org = await createOrg("admin");
  const created = await connect(org.user.token);
  assert.equal(created.status, 200, created.text);
  const res = await status(org.user.token);
  assert.equal(res.status, 200, res.text);
  const refused = await status(null);

  // The function's output reaches its log file asynchronously.
  let mine: Record<string, unknown>[] = [];
  for (let i = 0; i < 50; i++) {
    const lines = (await functionLogLines("wpp-status"))
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    mine = lines.filter((l) =>
      l.request_id === res.json.request_id || l.request_id === refused.json.request_id
    );
    if (mine.length === 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(mine.length, 2, "each request logged exactly once");
  const ok = mine.find((l) => l.request_id === res.json.request_id)!;
  assert.equal(ok.fn, "wpp-status");
  assert.equal(ok.status, 200);
  assert.equal(ok.connection, "qr_issued");
  assert.equal(ok.organization_id, org.orgId);
  assert.equal(ok.role, "admin");
  assert.equal(ok.session, created.json.session);
  assert.deepEqual((ok.platform_calls as { op: string }[]).map((c) => c.op), ["status", "qr"]);
  const bad = mine.find((l) => l.request_id === refused.json.request_id)!;
  assert.equal(bad.status, 401);
  assert.equal(bad.error_code, "unauthorized");

  const state = await sim.state({ reveal: true });
  const all = JSON.stringify(mine);
  for (
    const secret of [
      ...state.sessions.map((s) => s.apiKey),
      ...state.tokens.map((t) => t.token),
    ]
  ) {
    assert.ok(!all.includes(secret), "a platform credential reached the log");
  }
  assert.ok(!all.includes(org.user.token), "the caller's token reached the log");
});

test("teardown: close the database connection", async () => {
  await closeDb();
});
