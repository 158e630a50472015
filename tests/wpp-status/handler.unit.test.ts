// wpp-status's handler driven directly with fakes of the database and the platform (see
// tests/_support/fakes.ts): validation, who sees a QR, when the platform is asked and what, and
// every status the panel can be shown. The caller's token is verified for real (HS256).
import assert from "node:assert/strict";
import { createHandler } from "../../supabase/functions/wpp-status/handler.ts";
import {
  WppInvalidApiKeyError,
  WppServerError,
  WppTimeoutError,
} from "../../supabase/functions/_shared/wpp/mod.ts";
import type { Integration } from "../../supabase/functions/_shared/db/store.ts";
import {
  callerContext,
  emptyIntegration,
  fakeDeps,
  functionRequest,
  type Harness,
  integration,
  INTEGRATION_ID,
  invoke,
  type Invoked,
  QR,
  REFRESH_LEASE_ID,
  refreshRefused,
  REQUEST_ID,
  STORED_SESSION,
  T0,
  testConfig,
  USER_ID,
  userToken,
  WEBHOOK_SECRET,
} from "../_support/fakes.ts";

const FN = "wpp-status";
const SECOND_SESSION = "0000000000008";
const SECOND_INTEGRATION = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e";
const NEW_QR = "2@a-new-pairing-string-after-start,XyZ==";

type Role = "owner" | "admin" | "member";

async function setup(
  opts: { role?: Role; integration?: Partial<Integration>; env?: Record<string, string> } = {},
) {
  const h = fakeDeps();
  h.store.context = callerContext({
    role: opts.role ?? "admin",
    integration: integration(opts.integration ?? {}),
  });
  const handler = createHandler(testConfig(opts.env), h.deps);
  const token = await userToken();
  const call = (
    body?: unknown,
    o: { method?: string; headers?: Record<string, string>; query?: Record<string, string> } = {},
  ): Promise<Invoked> =>
    invoke(
      handler,
      h,
      functionRequest(FN, {
        method: o.method ?? "POST",
        body,
        token,
        headers: o.headers,
        query: o.query,
      }),
    );
  return { h, handler, call, token };
}

/** What the panel reads is always there, in the panel's types. */
function assertPanelShape(r: Invoked): void {
  assert.equal(r.status, 200, r.text);
  for (const f of ["success", "status", "qrcode", "last_qr_at", "account_number", "message"]) {
    assert.ok(f in r.json, `the panel reads ${f}`);
  }
  assert.equal(r.json.success, true);
  assert.ok(
    ["connected", "qr_issued", "qr_pending", "disconnected"].includes(r.json.status as string),
    `a status the panel knows: ${r.json.status}`,
  );
  assert.ok(r.json.qrcode === null || typeof r.json.qrcode === "string");
  assert.ok(r.json.last_qr_at === null || !Number.isNaN(Date.parse(r.json.last_qr_at as string)));
  assert.equal(typeof r.json.message, "string");
  assert.equal(r.json.request_id, REQUEST_ID);
}

function platformOps(h: Harness): string[] {
  return h.platform.calls.map((c) => c.op);
}

// --- validation -------------------------------------------------------------------------------

Deno.test("the panel's body and the GET query are accepted; the session is looked up by name", async () => {
  const { h, call } = await setup({ integration: { connection: "connected", qr: null } });
  for (
    const [body, query, method] of [
      [{ session_name: STORED_SESSION, force: false }, undefined, "POST"],
      [{ session_name: ` ${STORED_SESSION} `, force: true }, undefined, "POST"],
      [undefined, { session_name: STORED_SESSION, force: "true" }, "GET"],
    ] as const
  ) {
    const r = await call(body, { method, query });
    assertPanelShape(r);
    assert.equal(r.json.status, "connected");
  }
  assert.deepEqual(
    h.store.of("context").map(([user, target]) => [user, target?.session]),
    [[USER_ID, STORED_SESSION], [USER_ID, STORED_SESSION], [USER_ID, STORED_SESSION]],
    "the session the panel named is what the database is asked about (trimmed)",
  );
  // No body at all, `{}` and a plain GET ask about the organisation's number.
  for (const [body, method] of [[undefined, "POST"], [{}, "POST"], [undefined, "GET"]] as const) {
    assertPanelShape(await call(body, { method }));
  }
  assert.deepEqual(h.store.of("context").slice(3).map(([, t]) => t?.session), [
    undefined,
    undefined,
    undefined,
  ]);
});

Deno.test("unknown keys, wrong types and bad JSON: 400 before the database is asked", async () => {
  const { h, call } = await setup();
  const cases: [unknown, string, RegExp][] = [
    [{ session_name: STORED_SESSION, force: true, add_new: true }, "invalid_body", /add_new/],
    [{ force_recreate: true }, "invalid_body", /force_recreate/],
    [{ force: "true" }, "invalid_body", /force/],
    [{ force: 1 }, "invalid_body", /force/],
    [{ session_name: 42 }, "invalid_body", /session_name/],
    [{ session_name: "" }, "invalid_body", /session_name/],
    [{ session_name: "   " }, "invalid_body", /session_name/],
    [{ session_name: "x".repeat(129) }, "invalid_body", /session_name/],
    [{ session_name: null }, "invalid_body", /session_name/],
    ["[1]", "invalid_body", /object/],
    ["null", "invalid_body", /object/],
    ["{", "invalid_json", /JSON/],
  ];
  for (const [body, code, message] of cases) {
    const r = await call(body, { headers: { origin: "http://crm.example.test" } });
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.code, code);
    assert.equal(r.json.success, false);
    assert.equal(r.json.status, "error", "the panel's error status");
    assert.match(String(r.json.error), message);
    assert.equal(r.headers.get("access-control-allow-origin"), "*");
  }
  const queries: Record<string, string>[] = [
    { force: "yes" },
    { force: "1" },
    { session: STORED_SESSION },
    { session_name: "" },
  ];
  for (const query of queries) {
    const r = await call(undefined, { method: "GET", query });
    assert.equal(r.status, 400, `${JSON.stringify(query)}: ${r.text}`);
    assert.equal(r.json.code, "invalid_body");
  }
  const repeated = await invoke(
    createHandler(testConfig(), h.deps),
    h,
    new Request(`http://127.0.0.1/${FN}?force=true&force=false`, {
      headers: { authorization: `Bearer ${await userToken()}` },
    }),
  );
  assert.equal(repeated.status, 400, repeated.text);
  assert.match(String(repeated.json.error), /repeated/);
  assert.equal(h.store.calls.length, 0, "nothing reached the database");
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("methods, paths, preflight and tokens: 405, 404, 204 and 401, all with CORS", async () => {
  const { h, handler, call } = await setup();
  const put = await call({}, { method: "PUT" });
  assert.equal(put.status, 405, put.text);
  assert.deepEqual(
    new Set(put.headers.get("allow")?.split(/,\s*/)),
    new Set(["GET", "POST", "OPTIONS"]),
  );

  const other = await invoke(
    handler,
    h,
    new Request(`http://127.0.0.1/${FN}/extra`, {
      method: "POST",
      headers: { authorization: `Bearer ${await userToken()}` },
      body: "{}",
    }),
  );
  assert.equal(other.status, 404, other.text);
  assert.equal(other.json.code, "not_found");

  const preflight = await invoke(
    handler,
    h,
    new Request(`http://127.0.0.1/${FN}`, {
      method: "OPTIONS",
      headers: { origin: "http://crm.example.test", "access-control-request-method": "POST" },
    }),
  );
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
  assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /apikey/);

  for (
    const authorization of [
      null,
      "Basic abc",
      `Bearer ${await userToken({ secret: "another-secret-that-is-long-enough-0000" })}`,
      `Bearer ${await userToken({ expiresInSeconds: false })}`,
      `Bearer ${await userToken({ claims: { role: "anon" } })}`,
    ]
  ) {
    const r = await invoke(
      handler,
      h,
      new Request(`http://127.0.0.1/${FN}`, {
        method: "POST",
        headers: { origin: "http://crm.example.test", ...(authorization ? { authorization } : {}) },
        body: "{}",
      }),
    );
    assert.equal(r.status, 401, `${authorization}: ${r.text}`);
    assert.equal(r.json.code, "unauthorized");
    assert.equal(r.headers.get("access-control-allow-origin"), "*");
  }
  assert.equal(h.store.calls.length, 0);
});

// --- who sees what ------------------------------------------------------------------------------

Deno.test("a member gets the status without the QR, even when the store hands one", async () => {
  const { h, call } = await setup({ role: "member" });
  const r = await call({ session_name: STORED_SESSION, force: true });
  assertPanelShape(r);
  assert.equal(r.json.status, "qr_issued");
  assert.equal(r.json.qrcode, null, "only owners and admins see the QR");
  assert.ok(!r.text.includes(QR));
  assert.deepEqual(platformOps(h), [], "fresh state: the platform is not asked");
  assert.equal(r.log.role, "member");
});

Deno.test("a member's stale read asks the status only: never a QR, a start or a webhook", async () => {
  for (
    const [platformStatus, expected] of [
      [{ connected: false, status: "qr" }, "qr_pending"],
      [{ connected: false, status: "starting" }, "qr_pending"],
      [{ connected: false, status: "offline" }, "disconnected"],
      [{ connected: true, status: "connected" }, "connected"],
    ] as const
  ) {
    for (const connection of ["qr", "starting", "unknown"] as const) {
      const { h, call } = await setup({
        role: "member",
        integration: { connection, fresh: false, qr: connection === "qr" ? QR : null },
      });
      h.platform.status = { ...platformStatus };
      h.platform.qr = QR;
      const r = await call({ session_name: STORED_SESSION, force: true });
      assertPanelShape(r);
      assert.equal(r.json.status, expected, `${connection} → ${platformStatus.status}`);
      assert.equal(r.json.qrcode, null);
      assert.deepEqual(platformOps(h), ["status"], `${connection} → ${platformStatus.status}`);
      const [, , withQr] = h.store.of("refreshBegin")[0];
      assert.equal(withQr, false, "the refresh lease is asked for without the QR");
    }
  }
});

Deno.test("an admin's poll: status, then the QR; a start only when there is none", async () => {
  const stale = { connection: "starting", fresh: false, qr: null, qr_at: null } as const;

  // The platform shows a QR: status and qr, no start.
  let s = await setup({ integration: stale });
  s.h.platform.status = { connected: false, status: "qr" };
  let r = await s.call({ session_name: STORED_SESSION, force: true });
  assertPanelShape(r);
  assert.equal(r.json.status, "qr_issued");
  assert.equal(r.json.qrcode, QR);
  assert.equal(r.json.last_qr_at, new Date(T0).toISOString(), "the time it was seen");
  assert.deepEqual(s.h.journal, [
    "db:context",
    "db:refreshBegin",
    `wpp:status:${STORED_SESSION}`,
    `wpp:qr:${STORED_SESSION}`,
    "db:refreshEnd",
  ]);
  const [end] = s.h.store.inputs("refreshEnd");
  assert.deepEqual(
    { ...end },
    {
      integrationId: INTEGRATION_ID,
      leaseId: REFRESH_LEASE_ID,
      session: STORED_SESSION,
      connection: "qr",
      qr: QR,
      observedAt: T0,
      webhookRegistered: false,
    },
  );
  assert.equal(r.log.source, "platform");

  // No QR yet: the webhook is registered and the account started, which issues one.
  s = await setup({ integration: stale });
  s.h.platform.qr = null;
  s.h.platform.start = { state: "qr", qr: NEW_QR, raw: "qr" };
  r = await s.call({ session_name: STORED_SESSION, force: true });
  assertPanelShape(r);
  assert.equal(r.json.status, "qr_issued");
  assert.equal(r.json.qrcode, NEW_QR);
  assert.deepEqual(platformOps(s.h), ["status", "qr", "webhook", "start"]);
  assert.equal(
    s.h.platform.calls.find((c) => c.op === "webhook")?.arg,
    `http://127.0.0.1:54321/functions/v1/wpp-webhook/${WEBHOOK_SECRET}`,
  );
  assert.equal(s.h.store.inputs("refreshEnd")[0].webhookRegistered, true);

  // The start says "starting": still waiting for the platform's QR.
  s = await setup({ integration: stale });
  s.h.platform.qr = null;
  s.h.platform.start = { state: "starting", raw: "starting" };
  r = await s.call({ session_name: STORED_SESSION, force: true });
  assertPanelShape(r);
  assert.equal(r.json.status, "qr_pending");
  assert.equal(r.json.qrcode, null);

  // Linked meanwhile: one status call.
  s = await setup({ integration: stale });
  s.h.platform.status = { connected: true, status: "connected" };
  r = await s.call({ session_name: STORED_SESSION, force: true });
  assertPanelShape(r);
  assert.equal(r.json.status, "connected");
  assert.equal(r.json.qrcode, null);
  assert.deepEqual(platformOps(s.h), ["status"]);

  // The phone unlinked: reported, not relinked (that is a click's decision).
  s = await setup({ integration: { ...stale, connection: "connected", ever_connected: true } });
  s.h.platform.status = { connected: false, status: "offline" };
  r = await s.call({ session_name: STORED_SESSION, force: true });
  assertPanelShape(r);
  assert.equal(r.json.status, "disconnected");
  assert.equal(r.json.reason, "offline");
  assert.deepEqual(platformOps(s.h), ["status"]);
  assert.equal(s.h.store.inputs("refreshEnd")[0].connection, "offline");
});

Deno.test("a poll sequence: the first stale poll refreshes, the next ones answer from the store", async () => {
  const { h, call } = await setup({
    integration: { connection: "starting", fresh: false, qr: null, qr_at: null },
  });
  h.platform.qr = QR;
  // What refresh_end stored is what the database answers from then on.
  h.store.handle("refreshEnd", (i) => {
    h.store.context = callerContext({
      role: "admin",
      integration: integration({
        connection: i.connection ?? "starting",
        qr: i.qr ?? null,
        qr_at: i.observedAt ?? null,
        fresh: true,
      }),
    });
    return Promise.resolve();
  });
  const answers = [];
  for (let tick = 0; tick < 3; tick++) {
    answers.push(await call({ session_name: STORED_SESSION, force: true }));
    h.clock.advance(2_000);
  }
  for (const r of answers) {
    assertPanelShape(r);
    assert.equal(r.json.status, "qr_issued");
    assert.equal(r.json.qrcode, QR);
  }
  assert.deepEqual(platformOps(h), ["status", "qr"], "one refresh for the three ticks");
  assert.deepEqual(answers.map((r) => r.log.source), ["platform", "stored", "stored"]);
});

// --- fresh and force ----------------------------------------------------------------------------

Deno.test("fresh stored state: zero platform calls and no refresh lease, for every role", async () => {
  for (const role of ["owner", "admin", "member"] as const) {
    for (
      const [over, expected] of [
        [{ connection: "connected", qr: null, qr_at: null }, "connected"],
        [{ connection: "qr" }, "qr_issued"],
        [{ connection: "offline", qr: null, qr_at: null }, "disconnected"],
      ] as const
    ) {
      const { h, call } = await setup({ role, integration: { ...over, fresh: true } });
      const r = await call({ session_name: STORED_SESSION, force: true });
      assertPanelShape(r);
      assert.equal(r.json.status, expected, `${role}, ${over.connection}`);
      assert.equal(r.json.qrcode, expected === "qr_issued" && role !== "member" ? QR : null);
      assert.deepEqual(platformOps(h), []);
      assert.deepEqual(h.store.ops(), ["context"], "one database call, read-only");
      assert.equal(r.log.source, "stored");
    }
  }
});

Deno.test("force:false answers what is stored however old; unknown or unregistered still asks", async () => {
  for (const role of ["admin", "member"] as const) {
    const { h, call } = await setup({
      role,
      integration: { connection: "connected", fresh: false, qr: null, qr_at: null },
    });
    h.platform.status = { connected: false, status: "offline" };
    const r = await call({ session_name: STORED_SESSION, force: false });
    assertPanelShape(r);
    assert.equal(r.json.status, "connected", "the stored answer, not the platform's");
    assert.deepEqual(platformOps(h), []);
    // The same with force:true asks.
    const forced = await call({ session_name: STORED_SESSION, force: true });
    assert.equal(forced.json.status, "disconnected");
    assert.deepEqual(platformOps(h), ["status"]);
  }

  // Nothing known yet: even force:false has to ask once.
  let s = await setup({ integration: { connection: "unknown", fresh: false, qr: null } });
  s.h.platform.status = { connected: true, status: "connected" };
  let r = await s.call({ session_name: STORED_SESSION, force: false });
  assert.equal(r.json.status, "connected");
  assert.deepEqual(platformOps(s.h), ["status"]);

  // The platform still posts this session's events elsewhere: the read points them here.
  s = await setup({
    integration: { connection: "connected", fresh: true, qr: null, webhook_current: false },
  });
  s.h.platform.status = { connected: true, status: "connected" };
  r = await s.call({ session_name: STORED_SESSION, force: false });
  assert.equal(r.json.status, "connected");
  assert.deepEqual(platformOps(s.h), ["status", "webhook"]);
  assert.equal(s.h.store.inputs("refreshEnd")[0].webhookRegistered, true);

  // Without `force` (an older panel's plain call) the platform is asked unless fresh.
  s = await setup({ integration: { connection: "connected", fresh: false, qr: null } });
  s.h.platform.status = { connected: true, status: "connected" };
  await s.call({ session_name: STORED_SESSION });
  assert.deepEqual(platformOps(s.h), ["status"]);
});

Deno.test("another request refreshing: wait for its result instead of asking again", async () => {
  const { h, call } = await setup({
    integration: { connection: "starting", fresh: false, qr: null, qr_at: null },
  });
  h.store.script("refreshBegin", refreshRefused("in_flight", { refreshing: true }));
  // The first re-read still sees the refresh running, the second sees its result.
  h.store.script(
    "context",
    callerContext({
      role: "admin",
      integration: integration({ connection: "starting", fresh: false, qr: null }),
    }),
    callerContext({
      role: "admin",
      integration: integration({ connection: "starting", refreshing: true, qr: null }),
    }),
    callerContext({ role: "admin", integration: integration({ connection: "qr", qr: QR }) }),
  );
  const r = await call({ session_name: STORED_SESSION, force: true });
  assertPanelShape(r);
  assert.equal(r.json.status, "qr_issued");
  assert.equal(r.json.qrcode, QR);
  assert.equal(r.log.source, "waited");
  assert.deepEqual(platformOps(h), [], "the other request's platform calls are the answer");
  assert.deepEqual(h.store.ops(), ["context", "refreshBegin", "context", "context"]);
  assert.ok(h.clock.sleeps.length >= 2);
});

// --- sessions that cannot be answered for ---------------------------------------------------------

Deno.test("a dead key on an old session reads as disconnected; on a young one as activating", async () => {
  const refused = () =>
    new WppInvalidApiKeyError({
      op: "token",
      message: "the platform refused the apiKey",
      status: 403,
    });
  for (
    const [createdAgo, status, reason] of [
      [3_600_000, "disconnected", "dead_key"],
      [119_000, "qr_pending", "activating"],
      [5_000, "qr_pending", "activating"],
    ] as const
  ) {
    const { h, call } = await setup({
      integration: {
        connection: "qr",
        fresh: false,
        jwt_token: null,
        jwt_expires_at: null,
        session_created_at: T0 - createdAgo,
      },
    });
    h.platform.failNext("token", refused());
    const r = await call({ session_name: STORED_SESSION, force: true });
    assertPanelShape(r);
    assert.equal(r.json.status, status, `created ${createdAgo} ms ago`);
    assert.equal(r.json.reason, reason);
    assert.match(
      String(r.json.message),
      reason === "dead_key" ? /connect WhatsApp again/ : /activat/,
    );
    assert.deepEqual(platformOps(h), ["token"]);
    // A read stays a read: no new session, no audit event, the refresh lease given back.
    assert.deepEqual(h.store.ops(), ["context", "refreshBegin", "refreshEnd"]);
    assert.equal(h.platform.count("create"), 0);
  }
});

Deno.test("replaced sessions: by name, and when replaced during the refresh", async () => {
  // The panel still polls the session a recreate replaced.
  let s = await setup();
  s.h.store.context = callerContext({
    role: "admin",
    found: false,
    replaced: true,
    integration: null,
  });
  let r = await s.call({ session_name: "0000000000003", force: true });
  assertPanelShape(r);
  assert.equal(r.json.status, "disconnected");
  assert.equal(r.json.reason, "replaced");
  assert.equal(r.json.qrcode, null);
  assert.equal(r.json.session, null);
  assert.deepEqual(platformOps(s.h), []);

  // Replaced between the read and the refresh lease.
  s = await setup({ integration: { connection: "qr", fresh: false } });
  s.h.store.script("refreshBegin", refreshRefused("replaced"));
  r = await s.call({ session_name: STORED_SESSION, force: true });
  assertPanelShape(r);
  assert.equal(r.json.status, "disconnected");
  assert.equal(r.json.reason, "replaced");
  assert.equal(r.json.qrcode, null, "a replaced session's QR is never shown");
  assert.deepEqual(platformOps(s.h), []);
});

Deno.test("a session not of the caller's organisation: 404 with CORS, no platform call", async () => {
  for (const origins of ["*", "http://crm.example.test,https://crm.example.com"]) {
    const { h, call } = await setup({ env: { CORS_ALLOWED_ORIGINS: origins } });
    h.store.context = callerContext({
      role: "admin",
      found: false,
      replaced: false,
      integration: null,
    });
    const r = await call({ session_name: SECOND_SESSION, force: true }, {
      headers: { origin: "http://crm.example.test" },
    });
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.code, "not_found");
    assert.equal(r.json.success, false);
    assert.equal(typeof r.json.error, "string");
    assert.equal(
      r.headers.get("access-control-allow-origin"),
      origins === "*" ? "*" : "http://crm.example.test",
    );
    assert.equal(r.headers.get("x-request-id"), REQUEST_ID);
    assert.deepEqual(platformOps(h), []);
    assert.deepEqual(h.store.ops(), ["context"]);
  }
});

Deno.test("the number the database picked is the one answered for (a second number by name)", async () => {
  const { h, call } = await setup();
  h.store.context = callerContext({
    role: "owner",
    integration: integration({
      integration_id: SECOND_INTEGRATION,
      session: SECOND_SESSION,
      is_primary: false,
      connection: "qr",
      qr: NEW_QR,
    }),
  });
  const r = await call({ session_name: SECOND_SESSION, force: true });
  assertPanelShape(r);
  assert.equal(r.json.integration_id, SECOND_INTEGRATION);
  assert.equal(r.json.session, SECOND_SESSION);
  assert.equal(r.json.account_number, SECOND_SESSION);
  assert.equal(r.json.qrcode, NEW_QR);
});

Deno.test("no number, a disconnected one, an unusable one, one being created", async () => {
  const cases: [Partial<Integration> | null, string, string][] = [
    [null, "disconnected", "no_integration"],
    [
      { is_active: false, disconnected: true, connection: "offline", qr: null },
      "disconnected",
      "disconnected",
    ],
    [
      { valid: false, placeholder: true, session: "client_system" },
      "disconnected",
      "needs_new_session",
    ],
    [emptyIntegration({ provisioning: true }), "qr_pending", "provisioning"],
    [emptyIntegration(), "disconnected", "needs_new_session"],
  ];
  for (const [over, status, reason] of cases) {
    const { h, call } = await setup();
    h.store.context = callerContext({
      role: "admin",
      found: over !== null,
      integration: over === null ? null : integration(over),
    });
    const r = await call({});
    assertPanelShape(r);
    assert.equal(r.json.status, status, reason);
    assert.equal(r.json.reason, reason);
    assert.equal(r.json.qrcode, null);
    if (reason !== "disconnected") {
      assert.equal(r.json.account_number, null, "a placeholder is never shown as a session");
    }
    assert.deepEqual(platformOps(h), [], reason);
  }
});

Deno.test("no organisation: 403; platform outages: 502 and 504 like the other functions", async () => {
  let s = await setup();
  s.h.store.context = callerContext({
    organization_id: null,
    role: null,
    found: false,
    integration: null,
  });
  let r = await s.call({});
  assert.equal(r.status, 403, r.text);
  assert.equal(r.json.code, "no_organization");

  s = await setup({ integration: { connection: "connected", fresh: false, qr: null } });
  s.h.platform.failNext(
    "status",
    new WppServerError({ op: "status", message: "platform error", status: 503 }),
  );
  r = await s.call({ session_name: STORED_SESSION, force: true });
  assert.equal(r.status, 502, r.text);
  assert.equal(r.json.code, "platform_error");
  assert.equal(s.h.store.count("refreshEnd"), 1, "the refresh lease is given back");

  s = await setup({ integration: { connection: "connected", fresh: false, qr: null } });
  s.h.platform.failNext("status", new WppTimeoutError({ op: "status", message: "timeout" }));
  r = await s.call({ session_name: STORED_SESSION, force: true });
  assert.equal(r.status, 504, r.text);
  assert.equal(r.json.code, "platform_timeout");
});

Deno.test("the log line: one per request, what was answered and where from, no secret", async () => {
  const { h, call } = await setup({
    integration: { connection: "starting", fresh: false, qr: null, jwt_token: null },
  });
  const r = await call({ session_name: STORED_SESSION, force: true });
  assert.equal(r.log.fn, FN);
  assert.equal(r.log.status, 200);
  assert.equal(r.log.connection, "qr_issued");
  assert.equal(r.log.session, STORED_SESSION);
  assert.equal(r.log.integration_id, INTEGRATION_ID);
  assert.equal(r.log.source, "platform");
  assert.deepEqual(
    (r.log.platform_calls as { op: string }[]).map((c) => c.op),
    ["token", "status", "qr"],
  );
  assert.ok(!JSON.stringify(r.log).includes(QR), "no QR in the log");
  // The token fetched for the refresh is cached for the next request.
  assert.equal(h.store.count("storeToken"), 1);
});
