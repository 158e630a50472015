// wpp-create's handler driven directly with fakes of the database and the platform (see
// tests/_support/fakes.ts): every branch an end-to-end run cannot force on demand (a timeout at a
// given step, a store failure after a create, a session replaced mid-request) is forced here.
// The caller's token is verified for real (HS256 with a test secret).
import assert from "node:assert/strict";
import { createHandler } from "../../supabase/functions/wpp-create/handler.ts";
import { AppError } from "../../supabase/functions/_shared/errors.ts";
import type { BeginResult } from "../../supabase/functions/_shared/db/store.ts";
import {
  WppInvalidApiKeyError,
  WppMalformedError,
  WppRejectedError,
  WppServerError,
  WppTimeoutError,
  WppUnauthorizedError,
  WppUnreachableError,
} from "../../supabase/functions/_shared/wpp/mod.ts";
import { maskSecret } from "../../supabase/functions/_shared/wpp/mask.ts";
import {
  BASE_ENV,
  busyDecision,
  callerContext,
  CLAIM_ID,
  cooldownDecision,
  createDecision,
  emptyIntegration,
  fakeDeps,
  functionRequest,
  type Harness,
  integration,
  INTEGRATION_ID,
  invoke,
  LEASE_ID,
  limitDecision,
  NEW_API_KEY,
  NEW_JWT,
  NEW_SESSION,
  notFoundDecision,
  ORG_ID,
  QR,
  REFRESH_LEASE_ID,
  refreshRefused,
  REQUEST_ID,
  reuseDecision,
  STORED_API_KEY,
  STORED_JWT,
  STORED_SESSION,
  T0,
  testConfig,
  USER_ID,
  userToken,
  WEBHOOK_SECRET,
  WPP_SECRET,
} from "../_support/fakes.ts";

const FN = "wpp-create";
const OTHER_INTEGRATION = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e";

async function setup(
  opts: { env?: Record<string, string>; issuer?: string } = {},
): Promise<
  Harness & {
    handler: (req: Request) => Promise<Response>;
    token: string;
    post: (
      body?: unknown,
      init?: { headers?: Record<string, string>; token?: string | null; method?: string },
    ) => ReturnType<typeof invoke>;
  }
> {
  const h = fakeDeps({ issuer: opts.issuer });
  const handler = createHandler(testConfig(opts.env, ["WPP_BASE_URL", "WPP_SECRET"]), h.deps);
  const token = await userToken(opts.issuer ? { issuer: opts.issuer } : {});
  const post = (
    body: unknown = {},
    init: { headers?: Record<string, string>; token?: string | null; method?: string } = {},
  ) =>
    invoke(
      handler,
      h,
      functionRequest(FN, {
        method: init.method ?? "POST",
        body,
        token: init.token === undefined ? token : init.token,
        headers: init.headers,
      }),
    );
  return { ...h, handler, token, post };
}

function assertError(
  r: { status: number; json: Record<string, unknown>; headers: Headers },
  status: number,
  code: string,
): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.success, false);
  assert.equal(r.json.status, "error");
  assert.equal(r.json.code, code);
  assert.equal(typeof r.json.error, "string");
  assert.equal(r.json.request_id, REQUEST_ID);
  assert.equal(r.headers.get("access-control-allow-origin"), "*", "CORS on every answer");
}

/** The organisation has no usable number yet: the click goes to wpp_provision_begin. */
function firstClick(h: Harness, decision: BeginResult = createDecision()): void {
  h.store.context = callerContext({ found: false, integration: null });
  h.store.begins = [decision];
}

// ---------------------------------------------------------------------------------------------
// Method, CORS, caller

Deno.test("create unit: OPTIONS is the CORS preflight and touches nothing", async () => {
  const h = await setup();
  const r = await invoke(h.handler, h, functionRequest(FN, { method: "OPTIONS" }));
  assert.equal(r.status, 204);
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
  assert.match(r.headers.get("access-control-allow-headers") ?? "", /idempotency-key/);
  assert.match(r.headers.get("access-control-allow-methods") ?? "", /POST/);
  assert.equal(h.store.calls.length + h.platform.calls.length, 0);
});

Deno.test("create unit: GET is 405 with Allow, and another path is 404", async () => {
  const h = await setup();
  const get = await h.post(undefined, { method: "GET" });
  assertError(get, 405, "method_not_allowed");
  assert.equal(get.headers.get("allow"), "POST, OPTIONS");
  const other = await invoke(
    h.handler,
    h,
    functionRequest(`${FN}/extra`, { token: h.token, body: {} }),
  );
  assertError(other, 404, "not_found");
  assert.equal(h.store.calls.length + h.platform.calls.length, 0);
});

Deno.test("create unit: a function without its configuration answers 500 not_configured", async () => {
  const h = fakeDeps();
  const handler = createHandler(
    testConfig({ WPP_SECRET: undefined }, ["WPP_BASE_URL", "WPP_SECRET"]),
    h.deps,
  );
  const r = await invoke(handler, h, functionRequest(FN, { token: await userToken(), body: {} }));
  assertError(r, 500, "not_configured");
  assert.match(String(r.json.error), /WPP_SECRET is not set/);
  assert.equal(h.store.calls.length, 0);
});

Deno.test("create unit: callers without a valid user token get 401 and reach nothing", async () => {
  const iss = "https://auth.crm.test/auth/v1";
  const h = await setup({ issuer: iss });
  const cases: [string, string | null, RegExp][] = [
    ["no token", null, /missing Authorization/],
    ["not a JWT", "not-a-jwt", /not a JWT/],
    ["bad signature", await userToken({ issuer: iss, secret: "x".repeat(40) }), /signature/],
    ["no exp", await userToken({ issuer: iss, expiresInSeconds: false }), /no exp claim/],
    ["expired", await userToken({ issuer: iss, expiresInSeconds: -60 }), /expired/],
    ["wrong issuer", await userToken({ issuer: "https://evil.test" }), /iss claim/],
    // Shaped like Supabase's anon key: role, iss, exp; no aud, no sub.
    [
      "anon API key",
      await userToken({ issuer: iss, claims: { role: "anon", aud: undefined, sub: undefined } }),
      /aud claim/,
    ],
    [
      "service_role key with a user's audience",
      await userToken({ issuer: iss, claims: { role: "service_role" } }),
      /API key is not a user token/,
    ],
    ["no user id", await userToken({ issuer: iss, sub: "not-a-uuid" }), /no user id/],
  ];
  for (const [name, token, message] of cases) {
    const r = await h.post({}, { token });
    assertError(r, 401, "unauthorized");
    assert.match(String(r.json.error), message, name);
  }
  assert.equal(h.store.calls.length, 0, "the database is never asked");
  assert.equal(h.platform.calls.length, 0);
  // The issuer's proper token passes: the refusals above are about the tokens, not the setup.
  const ok = await h.post({}, { token: await userToken({ issuer: iss }) });
  assert.equal(ok.status, 200, ok.text);
});

// ---------------------------------------------------------------------------------------------
// Body and header validation

Deno.test("create unit: malformed bodies and headers are 400 before the database is asked", async () => {
  const h = await setup();
  const cases: [unknown, Record<string, string> | undefined, string, RegExp][] = [
    [{ foo: 1 }, undefined, "invalid_body", /unknown field\(s\): foo/],
    [{ add_new: "yes" }, undefined, "invalid_body", /add_new must be boolean/],
    [{ force_recreate: 1 }, undefined, "invalid_body", /force_recreate must be boolean/],
    [{ integration_id: "42" }, undefined, "invalid_body", /integration_id/],
    [
      { add_new: true, integration_id: OTHER_INTEGRATION },
      undefined,
      "invalid_body",
      /send one of them/,
    ],
    ["{not json", undefined, "invalid_json", /not valid JSON/],
    ["[1,2]", undefined, "invalid_body", /must be a JSON object/],
    [{}, { "idempotency-key": "has space" }, "invalid_header", /Idempotency-Key/],
    [{}, { "idempotency-key": "k".repeat(256) }, "invalid_header", /Idempotency-Key/],
  ];
  for (const [body, headers, code, message] of cases) {
    const r = await h.post(body, { headers });
    assertError(r, 400, code);
    assert.match(String(r.json.error), message, JSON.stringify(body));
  }
  assert.equal(h.store.calls.length, 0);
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("create unit: add_new together with force_recreate is an add_new", async () => {
  const h = await setup();
  h.store.begins = [reuseDecision({ reason: "pending_number" })];
  const r = await h.post({ add_new: true, force_recreate: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(h.store.inputs("begin")[0].mode, "add_new");
  assert.match(String(r.json.message), /still waiting for its first scan/);
});

// ---------------------------------------------------------------------------------------------
// Roles

Deno.test("create unit: a member gets 403 forbidden and nothing is provisioned", async () => {
  const h = await setup();
  h.store.context = callerContext({ role: "member" });
  const r = await h.post({});
  assertError(r, 403, "forbidden");
  assert.deepEqual(h.store.ops(), ["context"]);
  assert.equal(h.platform.calls.length, 0);
  assert.equal(r.log.role, "member");
});

Deno.test("create unit: a user of no organisation gets 403 no_organization", async () => {
  const h = await setup();
  h.store.context = callerContext({
    organization_id: null,
    role: null,
    found: false,
    integration: null,
  });
  const r = await h.post({ add_new: true });
  assertError(r, 403, "no_organization");
  assert.deepEqual(h.store.ops(), ["context"]);
});

Deno.test("create unit: an integration_id outside the organisation is 404", async () => {
  const h = await setup();
  h.store.context = callerContext({ found: false, integration: null });
  const r = await h.post({ force_recreate: true, integration_id: OTHER_INTEGRATION });
  assertError(r, 404, "not_found");
  assert.deepEqual(h.store.inputs("context"), [USER_ID]);
  assert.deepEqual(h.store.of("context")[0][1], { integrationId: OTHER_INTEGRATION });
  assert.equal(h.store.count("begin"), 0);
});

// ---------------------------------------------------------------------------------------------
// Begin decisions

Deno.test("create unit: a plain click on a usable session with a fresh QR asks nobody", async () => {
  const h = await setup();
  const r = await h.post({ add_new: false });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, {
    success: true,
    session: STORED_SESSION,
    apiKey: maskSecret(STORED_API_KEY),
    status: "qr_issued",
    qrcode: QR,
    integration_id: INTEGRATION_ID,
    created: false,
    request_id: REQUEST_ID,
  });
  assert.deepEqual(h.store.ops(), ["context"], "no begin: the context said it all");
  assert.equal(h.platform.calls.length, 0, "zero platform calls while the QR is fresh");
  assert.equal(r.log.outcome, "reused");
  assert.equal(r.log.reason, "valid_session");
});

Deno.test("create unit: a plain click on a connected session answers connected, no qrcode", async () => {
  const h = await setup();
  h.store.context = callerContext({
    integration: integration({ connection: "connected", qr: null, qr_at: null }),
  });
  const r = await h.post({});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, "connected");
  assert.equal("qrcode" in r.json, false);
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("create unit: a stale not-connected session is refreshed: status, webhook, start", async () => {
  const h = await setup();
  h.store.context = callerContext({
    integration: integration({ fresh: false, connection: "starting", qr: null }),
  });
  h.platform.start = { state: "qr", qr: "2@new-qr", raw: "qr" };
  const r = await h.post({});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, "qr_issued");
  assert.equal(r.json.qrcode, "2@new-qr");
  assert.deepEqual(h.platform.ops(), [
    `status:${STORED_SESSION}`,
    `webhook:${STORED_SESSION}`,
    `start:${STORED_SESSION}`,
  ]);
  assert.equal(h.platform.calls[0].storedToken, STORED_JWT, "the stored token is reused");
  const [end] = h.store.inputs("refreshEnd");
  assert.equal(end.leaseId, REFRESH_LEASE_ID);
  assert.equal(end.connection, "qr");
  assert.equal(end.qr, "2@new-qr");
  assert.equal(end.webhookRegistered, true);
  assert.equal(h.store.count("begin"), 0);
});

Deno.test("create unit: reuse decision (a repeated recreate) answers the stored session", async () => {
  const h = await setup();
  h.store.begins = [reuseDecision({ reason: "recently_created" })];
  const r = await h.post({ force_recreate: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, false);
  assert.equal(r.json.session, STORED_SESSION);
  assert.equal(h.platform.count("create"), 0);
  assert.equal(h.store.inputs("begin")[0].mode, "recreate");
  assert.equal(r.log.outcome, "reused");
  assert.equal(r.log.reason, "recently_created");
  // The curl user learns why nothing was replaced, and when asking again would.
  assert.match(String(r.json.message), /created less than 60 s ago.*send it again after that/);
});

Deno.test("create unit: a plain reuse carries no message", async () => {
  const h = await setup();
  h.store.begins = [reuseDecision({ reason: "valid_session" })];
  const r = await h.post({});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.message, undefined);
});

Deno.test("create unit: create decision: create, store, token, webhook, start, in that order", async () => {
  const h = await setup();
  h.store.context = callerContext({ found: false, integration: null });
  h.store.begins = [createDecision({ platform_org_id: `${ORG_ID}__wpp__0a1b2c3d` })];
  const r = await h.post({});
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, {
    success: true,
    session: NEW_SESSION,
    apiKey: maskSecret(NEW_API_KEY),
    status: "qr_issued",
    qrcode: QR,
    integration_id: INTEGRATION_ID,
    created: true,
    request_id: REQUEST_ID,
  });
  assert.deepEqual(h.journal, [
    "db:context",
    "db:begin",
    "wpp:create",
    "db:complete",
    `wpp:token:${NEW_SESSION}`,
    "db:storeToken",
    `wpp:webhook:${NEW_SESSION}`,
    `wpp:start:${NEW_SESSION}`,
    "db:refreshEnd",
  ]);
  assert.equal(h.platform.calls[0].arg, `${ORG_ID}__wpp__0a1b2c3d`, "the platform org id");
  assert.deepEqual(h.platform.calls[1].opts && "freshKey" in h.platform.calls[1].opts, true);
  const [complete] = h.store.inputs("complete");
  assert.equal(complete.leaseId, LEASE_ID);
  assert.equal(complete.session, NEW_SESSION);
  assert.equal(complete.apiKey, NEW_API_KEY);
  assert.deepEqual(h.store.of("storeToken")[0], [
    INTEGRATION_ID,
    NEW_SESSION,
    NEW_JWT,
    T0 + 900_000,
  ]);
  assert.equal(
    h.platform.calls.find((c) => c.op === "webhook")?.arg,
    `${BASE_ENV.SUPABASE_URL}/functions/v1/wpp-webhook/${WEBHOOK_SECRET}`,
  );
  const [end] = h.store.inputs("refreshEnd");
  assert.equal(end.leaseId, REFRESH_LEASE_ID);
  assert.equal(end.connection, "qr");
  assert.equal(end.webhookRegistered, true);
  assert.equal(r.log.outcome, "created");
  assert.equal(r.log.session, NEW_SESSION);
});

Deno.test("create unit: the log's outcome is the audit action: recreated", async () => {
  const h = await setup();
  h.store.begins = [
    createDecision({
      ...integration(),
      reason: "forced",
      old_session: STORED_SESSION,
      old_api_key: STORED_API_KEY,
      old_jwt_token: STORED_JWT,
      old_jwt_expires_at: T0 + 600_000,
    }),
  ];
  h.store.script("complete", (i) => ({
    integration_id: i.integrationId,
    session: i.session,
    action: "recreated" as const,
    webhook_secret: WEBHOOK_SECRET,
    refresh_lease_id: REFRESH_LEASE_ID,
  }));
  const r = await h.post({ force_recreate: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.session, NEW_SESSION);
  assert.equal(r.log.outcome, "recreated");
  assert.equal(r.log.reason, "forced");
  // The old session is stopped with its own credentials, and the stop is audited.
  const stop = h.platform.calls.find((c) => c.op === "stop")!;
  assert.equal(stop.session, STORED_SESSION);
  assert.equal(stop.apiKey, STORED_API_KEY);
  assert.equal(stop.storedToken, STORED_JWT);
  const events = h.store.inputs("recordEvent");
  assert.deepEqual(events.map((e) => [e.action, e.details.session]), [
    ["session_stopped", STORED_SESSION],
  ]);
  assert.equal(h.platform.calls.filter((c) => c.session === STORED_SESSION).length, 1);
});

Deno.test("create unit: a failed stop of the replaced session is audited, the answer stays 200", async () => {
  const h = await setup();
  h.store.begins = [
    createDecision({ reason: "forced", old_session: STORED_SESSION, old_api_key: STORED_API_KEY }),
  ];
  h.platform.failNext("stop", new WppServerError({ op: "stop", message: "x", status: 503 }));
  const r = await h.post({ force_recreate: true });
  assert.equal(r.status, 200, r.text);
  const [event] = h.store.inputs("recordEvent");
  assert.equal(event.action, "stop_failed");
  assert.equal(event.details.code, "platform_error");
  assert.equal(r.log.warning_stop_old_session, "platform_error");
});

Deno.test("create unit: busy waits for the other click, then answers 409 with Retry-After", async () => {
  const h = await setup();
  h.store.begins = [busyDecision(2)];
  const r = await h.post({ force_recreate: true });
  assertError(r, 409, "provisioning_in_progress");
  assert.equal(r.headers.get("retry-after"), "2");
  // WPP_BUSY_WAIT_MS = 1000, polled every 200 ms.
  assert.deepEqual(h.clock.sleeps, [200, 200, 200, 200, 200]);
  assert.equal(h.store.count("begin"), 6);
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("create unit: busy that clears within the wait gets the other click's session", async () => {
  const h = await setup();
  h.store.begins = [
    busyDecision(30),
    busyDecision(30),
    reuseDecision({ reason: "pending_number" }),
  ];
  const r = await h.post({ add_new: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.session, STORED_SESSION);
  assert.equal(r.json.created, false);
  assert.deepEqual(h.clock.sleeps, [200, 200]);
});

Deno.test("create unit: a long Retry-After is capped at 5 s (the panel ignores it anyway)", async () => {
  const h = await setup();
  firstClick(h, busyDecision(55));
  const r = await h.post({});
  assert.equal(r.headers.get("retry-after"), "5");
});

Deno.test("create unit: cooldown is 409 create_cooldown and never creates", async () => {
  const h = await setup();
  h.store.context = callerContext({ integration: emptyIntegration({ cooldown: true }) });
  h.store.begins = [cooldownDecision(17)];
  const r = await h.post({});
  assertError(r, 409, "create_cooldown");
  assert.equal(r.headers.get("retry-after"), "17");
  assert.equal(h.platform.calls.length, 0);
  assert.equal(h.store.count("fail"), 0);
});

Deno.test("create unit: limit is 409 number_limit_reached", async () => {
  const h = await setup();
  h.store.begins = [limitDecision(10, 10)];
  const r = await h.post({ add_new: true });
  assertError(r, 409, "number_limit_reached");
  assert.match(String(r.json.error), /already has 10 WhatsApp numbers/);
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("create unit: not_found from begin is 404", async () => {
  const h = await setup();
  h.store.begins = [notFoundDecision()];
  const r = await h.post({ force_recreate: true, integration_id: INTEGRATION_ID });
  assertError(r, 404, "not_found");
  assert.equal(h.store.inputs("begin")[0].integrationId, INTEGRATION_ID);
});

// ---------------------------------------------------------------------------------------------
// Create failures

const UNKNOWN_OUTCOMES: [string, Error, number, string][] = [
  ["timeout", new WppTimeoutError({ op: "create", message: "t" }), 504, "platform_timeout"],
  [
    "unreachable",
    new WppUnreachableError({ op: "create", message: "u" }),
    502,
    "platform_unreachable",
  ],
  [
    "5xx",
    new WppServerError({
      op: "create",
      message: "s",
      status: 503,
      platformMessage: "Service Unavailable",
    }),
    502,
    "platform_error",
  ],
  ["malformed", new WppMalformedError({ op: "create", message: "m" }), 502, "platform_malformed"],
];

for (const [name, error, status, code] of UNKNOWN_OUTCOMES) {
  Deno.test(`create unit: create ${name} is an unknown outcome: cooldown, ${status}`, async () => {
    const h = await setup();
    firstClick(h);
    h.platform.failNext("create", error);
    const r = await h.post({});
    assertError(r, status, code);
    const [fail] = h.store.inputs("fail");
    assert.equal(fail.outcomeUnknown, true);
    assert.equal(fail.reason, "create_outcome_unknown");
    assert.equal(fail.leaseId, LEASE_ID);
    assert.equal(fail.details.code, code);
    assert.equal(fail.details.op, "create");
    assert.equal(h.store.count("complete"), 0);
    assert.deepEqual(h.platform.ops(), ["create"], "never a second create in the same request");
  });
}

Deno.test("create unit: the platform's words on an unknown outcome reach the audit", async () => {
  const h = await setup();
  firstClick(h);
  h.platform.failNext(
    "create",
    new WppServerError({
      op: "create",
      message: "x",
      status: 503,
      platformMessage: "Service Unavailable",
    }),
  );
  await h.post({});
  const [fail] = h.store.inputs("fail");
  assert.equal(fail.details.http_status, 503);
  assert.equal(fail.details.platform_said, "Service Unavailable");
});

Deno.test("create unit: a malformed create naming a session audits the orphan", async () => {
  const h = await setup();
  firstClick(h);
  const e = new WppMalformedError({ op: "create", message: "no apiKey" });
  e.orphanSession = "0000000000099";
  h.platform.failNext("create", e);
  const r = await h.post({});
  assertError(r, 502, "platform_malformed");
  assert.equal(h.store.inputs("fail")[0].details.orphan_session, "0000000000099");
});

const DEFINITIVE: [string, Error, string][] = [
  [
    "400",
    new WppRejectedError({ op: "create", message: "r", status: 400 }),
    "platform_rejected",
  ],
  [
    "404 page",
    new WppRejectedError({ op: "create", message: "r", status: 404 }),
    "platform_rejected",
  ],
  [
    "401 secret",
    new WppUnauthorizedError({ op: "create", message: "u", status: 401 }),
    "platform_unauthorized",
  ],
];

for (const [name, error, code] of DEFINITIVE) {
  Deno.test(`create unit: create ${name} is definitive: no cooldown, 502 ${code}`, async () => {
    const h = await setup();
    firstClick(h);
    h.platform.failNext("create", error);
    const r = await h.post({});
    assertError(r, 502, code);
    const [fail] = h.store.inputs("fail");
    assert.equal(fail.outcomeUnknown, false);
    assert.equal(fail.reason, "create_failed");
  });
}

Deno.test("create unit: a store failure after the create names the orphan and cools down", async () => {
  const h = await setup();
  firstClick(h);
  h.store.script(
    "complete",
    new AppError("database_timeout", "the database did not answer", { retryAfterSeconds: 2 }),
  );
  const r = await h.post({});
  assertError(r, 503, "database_timeout");
  const [fail] = h.store.inputs("fail");
  assert.equal(fail.reason, "store_failed");
  assert.equal(fail.outcomeUnknown, true, "retries must not create a second client");
  assert.equal(fail.details.orphan_session, NEW_SESSION);
  assert.deepEqual(h.platform.ops(), ["create"], "nothing is done with an unstored session");
});

Deno.test("create unit: a lost lease at complete is 409, the orphan named", async () => {
  const h = await setup();
  firstClick(h);
  h.store.script("complete", new AppError("provisioning_conflict", "another request took over"));
  const r = await h.post({});
  assertError(r, 409, "provisioning_conflict");
  assert.equal(h.store.inputs("fail")[0].details.orphan_session, NEW_SESSION);
});

for (
  const [op, error, status] of [
    ["token", new WppServerError({ op: "token", message: "x", status: 503 }), 502],
    ["webhook", new WppServerError({ op: "webhook", message: "x", status: 500 }), 502],
    ["start", new WppTimeoutError({ op: "start", message: "x" }), 504],
  ] as const
) {
  Deno.test(`create unit: a ${op} failure after the store keeps the session, audits failed`, async () => {
    const h = await setup();
    firstClick(h);
    h.platform.failNext(op, error);
    const r = await h.post({});
    assert.equal(r.status, status, r.text);
    assert.equal(h.store.count("complete"), 1, "the new session was stored");
    assert.equal(h.store.count("fail"), 0, "a stored session is not a failed create");
    const [event] = h.store.inputs("recordEvent");
    assert.equal(event.action, "failed");
    assert.equal(event.details.stage, "after_store");
    assert.equal(event.details.session, NEW_SESSION);
    const [end] = h.store.inputs("refreshEnd");
    assert.equal(end.leaseId, REFRESH_LEASE_ID, "the refresh lease is released");
    assert.equal(end.connection, undefined, "nothing learned is stored");
    assert.equal(end.webhookRegistered, op === "start");
  });
}

// ---------------------------------------------------------------------------------------------
// Dead keys and replaced sessions

Deno.test("create unit: a dead key on an old session self-heals with a new session", async () => {
  const h = await setup();
  h.store.context = callerContext({
    integration: integration({ fresh: false, jwt_token: null, jwt_expires_at: null }),
  });
  h.platform.failNext(
    "token",
    new WppInvalidApiKeyError({ op: "token", message: "k", status: 403 }),
  );
  h.store.begins = [
    createDecision({
      reason: "dead_key",
      old_session: STORED_SESSION,
      old_api_key: STORED_API_KEY,
    }),
  ];
  const r = await h.post({});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, true);
  assert.equal(r.json.session, NEW_SESSION);
  const [begin] = h.store.inputs("begin");
  assert.equal(begin.deadSession, STORED_SESSION, "the database re-checks the condemned session");
  assert.equal(begin.integrationId, INTEGRATION_ID);
  assert.equal(begin.mode, "connect");
  assert.equal(h.platform.count("create"), 1);
});

Deno.test("create unit: a refused key on a young session is not dead: 502, no new session", async () => {
  const h = await setup();
  h.store.context = callerContext({
    // Stale: a fresh stored QR would answer without asking the platform at all.
    integration: integration({
      jwt_token: null,
      jwt_expires_at: null,
      session_created_at: T0 - 10_000,
      fresh: false,
    }),
  });
  h.platform.failNext(
    "token",
    new WppInvalidApiKeyError({ op: "token", message: "k", status: 403 }),
  );
  const r = await h.post({});
  assertError(r, 502, "platform_rejected");
  assert.equal(h.store.count("begin"), 0);
  assert.equal(h.platform.count("create"), 0);
  assert.equal(h.platform.calls[0].opts && "freshKey" in h.platform.calls[0].opts, true);
  const [event] = h.store.inputs("recordEvent");
  assert.equal(event.action, "failed");
  assert.equal(event.details.code, "invalid_api_key");
});

Deno.test("create unit: a young session's first token is waited for, then cached", async () => {
  const h = await setup();
  const young = integration({
    jwt_token: null,
    jwt_expires_at: null,
    session_created_at: T0 - 5,
    fresh: false,
  });
  h.store.context = callerContext({ integration: young });
  const r = await h.post({});
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(h.store.of("storeToken")[0], [
    INTEGRATION_ID,
    STORED_SESSION,
    NEW_JWT,
    T0 + 900_000,
  ]);
});

Deno.test("create unit: a transient failure on reuse never replaces the session", async () => {
  const h = await setup();
  h.store.context = callerContext({ integration: integration({ fresh: false }) });
  h.platform.failNext("status", new WppServerError({ op: "status", message: "x", status: 503 }));
  const r = await h.post({});
  assertError(r, 502, "platform_error");
  assert.equal(h.store.count("begin"), 0);
  assert.equal(h.platform.count("create"), 0);
});

Deno.test("create unit: a session replaced during a reuse answers with the new session", async () => {
  const h = await setup();
  h.store.context = callerContext({ integration: integration({ fresh: false }) });
  h.store.script("refreshBegin", refreshRefused("replaced"));
  // The re-read after the refusal sees the session the recreate stored.
  h.store.script(
    "context",
    callerContext({ integration: integration({ fresh: false }) }),
    callerContext({
      integration: integration({ session: NEW_SESSION, api_key: NEW_API_KEY, jwt_token: null }),
    }),
  );
  const r = await h.post({});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.session, NEW_SESSION);
  assert.equal(r.json.apiKey, maskSecret(NEW_API_KEY));
  assert.equal(r.json.qrcode, QR);
  assert.equal(
    h.platform.calls.filter((c) => c.session === STORED_SESSION).length,
    0,
    "the replaced session is never asked about, let alone started",
  );
});

Deno.test("create unit: replaced with nothing usable yet is 409, not a start", async () => {
  const h = await setup();
  h.store.script(
    "context",
    callerContext({ integration: integration({ fresh: false }) }),
    callerContext({ integration: emptyIntegration({ provisioning: true }) }),
  );
  h.store.script("refreshBegin", refreshRefused("replaced"));
  const r = await h.post({});
  assertError(r, 409, "provisioning_in_progress");
  assert.equal(h.platform.calls.length, 0);
});

Deno.test("create unit: a refresh in flight elsewhere is waited for, not repeated", async () => {
  const h = await setup();
  h.store.context = callerContext({ integration: integration({ fresh: false, qr: null }) });
  h.store.script("refreshBegin", refreshRefused("in_flight"));
  h.store.script(
    "context",
    callerContext({ integration: integration({ fresh: false, qr: null }) }),
    callerContext({ integration: integration({ fresh: false, refreshing: true, qr: null }) }),
    callerContext({ integration: integration({ qr: "2@qr-of-the-other-click" }) }),
  );
  const r = await h.post({});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.qrcode, "2@qr-of-the-other-click");
  assert.equal(h.platform.calls.length, 0);
  assert.deepEqual(h.clock.sleeps, [100, 100]);
});

// ---------------------------------------------------------------------------------------------
// Idempotency-Key

Deno.test("create unit: Idempotency-Key: the first answer is kept", async () => {
  const h = await setup();
  firstClick(h);
  const r = await h.post({ add_new: true }, { headers: { "Idempotency-Key": "click-1" } });
  assert.equal(r.status, 200, r.text);
  const [claim] = h.store.inputs("idempotencyClaim");
  assert.deepEqual(claim, {
    userId: USER_ID,
    organizationId: ORG_ID,
    key: "click-1",
    fingerprint: "add_new:",
  });
  const [finish] = h.store.inputs("idempotencyFinish");
  assert.equal(finish.claimId, CLAIM_ID);
  assert.equal(finish.httpStatus, 200);
  assert.deepEqual(finish.response, r.json);
  assert.equal(r.log.idempotency, "claimed");
});

Deno.test("create unit: Idempotency-Key: a repeat replays without provisioning", async () => {
  const h = await setup();
  const first = { success: true, session: NEW_SESSION, status: "qr_issued", created: true };
  h.store.script("idempotencyClaim", { state: "replay", http_status: 200, response: first });
  const r = await h.post({}, { headers: { "Idempotency-Key": "click-1" } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, first);
  assert.equal(r.headers.get("idempotency-replayed"), "true");
  assert.deepEqual(h.store.ops(), ["context", "idempotencyClaim"]);
  assert.equal(h.platform.calls.length, 0);
  assert.equal(r.log.outcome, "replayed");
});

Deno.test("create unit: Idempotency-Key: reuse for another request is 422", async () => {
  const h = await setup();
  h.store.script("idempotencyClaim", { state: "mismatch" });
  const r = await h.post(
    { force_recreate: true, integration_id: INTEGRATION_ID },
    { headers: { "Idempotency-Key": "click-1" } },
  );
  assertError(r, 422, "idempotency_key_reused");
  assert.equal(
    h.store.inputs("idempotencyClaim")[0].fingerprint,
    `recreate:${INTEGRATION_ID}`,
  );
  assert.equal(h.store.count("begin"), 0);
});

Deno.test("create unit: Idempotency-Key: while the first runs, 409 with a short Retry-After", async () => {
  const h = await setup();
  h.store.script("idempotencyClaim", { state: "in_flight", retry_after_seconds: 40 });
  const r = await h.post({}, { headers: { "Idempotency-Key": "click-1" } });
  assertError(r, 409, "idempotency_in_progress");
  assert.equal(r.headers.get("retry-after"), "5");
  assert.equal(h.store.count("begin"), 0);
});

Deno.test("create unit: Idempotency-Key: a 5xx is handed back for the key to be freed", async () => {
  const h = await setup();
  firstClick(h);
  h.platform.failNext("create", new WppTimeoutError({ op: "create", message: "t" }));
  const r = await h.post({}, { headers: { "Idempotency-Key": "click-2" } });
  assertError(r, 504, "platform_timeout");
  const [finish] = h.store.inputs("idempotencyFinish");
  assert.equal(finish.httpStatus, 504, "the store frees keys whose answer was a 5xx");
  assert.equal(finish.response.code, "platform_timeout");
});

Deno.test("create unit: Idempotency-Key: a 409 is kept like any answer", async () => {
  const h = await setup();
  firstClick(h, cooldownDecision(9));
  const r = await h.post({}, { headers: { "Idempotency-Key": "click-3" } });
  assertError(r, 409, "create_cooldown");
  const [finish] = h.store.inputs("idempotencyFinish");
  assert.equal(finish.httpStatus, 409);
});

Deno.test("create unit: Idempotency-Key: a failing finish does not fail the answer", async () => {
  const h = await setup();
  h.store.script("idempotencyFinish", new AppError("database_unavailable", "down"));
  const r = await h.post({}, { headers: { "Idempotency-Key": "click-4" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.log.warning_idempotency_finish, "database_unavailable");
});

// ---------------------------------------------------------------------------------------------
// Log line

Deno.test("create unit: the log line names the request, never a secret", async () => {
  const h = await setup();
  h.store.context = callerContext({ found: false, integration: null });
  firstClick(h);
  const r = await h.post({});
  // invoke() already proved: one line, no secret in it or in the answer.
  assert.equal(r.log.fn, "wpp-create");
  assert.equal(r.log.request_id, REQUEST_ID);
  assert.equal(r.log.user_id, USER_ID);
  assert.equal(r.log.organization_id, ORG_ID);
  assert.equal(r.log.status, 200);
  assert.equal(r.log.outcome, "created");
  assert.equal(r.log.mode, "connect");
  const platformCalls = r.log.platform_calls as { op: string }[];
  assert.deepEqual(platformCalls.map((c) => c.op), ["create", "token", "webhook", "start"]);
  const text = JSON.stringify(r.log);
  for (const s of [NEW_API_KEY, NEW_JWT, WEBHOOK_SECRET, WPP_SECRET, h.token]) {
    assert.ok(!text.includes(s));
  }
});

Deno.test("create unit: an unexpected exception is a 500 that names no internals", async () => {
  const h = await setup();
  h.store.script("context", new TypeError("boom at /secret/path with " + STORED_API_KEY));
  const r = await h.post({});
  assertError(r, 500, "internal_error");
  assert.equal(r.log.exception, "TypeError");
  assert.ok(!r.text.includes("boom"));
});
