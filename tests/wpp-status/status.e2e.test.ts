// wpp-status through the gateway, against the database, the real wpp-webhook and the platform
// simulator, called the way the CRM's panel calls it: POST {session_name, force}. Which number
// it answers for, who sees a QR, and when it asks the platform at all.
import assert from "node:assert/strict";
import {
  callFunction,
  closeDb,
  createOrg,
  createUser,
  integrations,
  platformApiKey,
  sim,
} from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import {
  ageSession,
  connect,
  delivered,
  logLineOf,
  makeStale,
  NO_CALLS,
  platformCallsDuring,
  stateOf,
  status,
  test,
  waitFor,
} from "./_e2e.ts";

/** wpp-status's GET form (`?session_name=&force=`), as earlier versions of the panel read it. */
async function getStatus(token: string, query: string) {
  const res = await fetch(`${stack.url}/functions/v1/wpp-status${query ? `?${query}` : ""}`, {
    headers: { apikey: stack.anonKey, authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: JSON.parse(text) };
}

const PANEL_FIELDS = ["success", "status", "qrcode", "last_qr_at", "account_number", "message"];

function assertPanelShape(json: Record<string, unknown>): void {
  for (const field of PANEL_FIELDS) assert.ok(field in json, `the panel reads ${field}`);
  assert.equal(json.success, true);
  assert.equal(typeof json.message, "string");
  assert.match(String(json.request_id), /^[0-9a-f-]{36}$/);
}

/** A connected number: created, scanned, and its "connected" event stored through the webhook. */
async function connectedNumber(token: string, body: Record<string, unknown> = { add_new: false }) {
  const created = await connect(token, body);
  const session = created.json.session as string;
  const integrationId = created.json.integration_id as string;
  await sim.scan(session);
  await waitFor(
    "the connected event to be stored",
    async () => (await stateOf(integrationId)).connection === "connected" ? true : undefined,
  );
  return { session, integrationId, created };
}

test("the panel's POST for the SECOND number answers for that number, not the primary", async () => {
  const org = await createOrg("admin");
  const first = await connectedNumber(org.user.token);
  const second = await connect(org.user.token, { add_new: true });
  assert.equal(second.json.status, "qr_issued", second.text);
  const s2 = second.json.session as string;
  const i2 = second.json.integration_id as string;
  assert.notEqual(s2, first.session);
  assert.notEqual(i2, first.integrationId);
  const rows = await integrations(org.orgId);
  assert.equal(rows.length, 2);
  assert.equal(rows.find((r) => r.id === first.integrationId)?.is_primary, true);
  assert.equal(rows.find((r) => r.id === i2)?.is_primary, false, "the added number is not primary");

  const [answers, calls] = await platformCallsDuring(async () => ({
    second: await status(org.user.token, { session_name: s2, force: true }),
    first: await status(org.user.token, { session_name: first.session, force: true }),
    plain: await status(org.user.token, {}),
    get: await getStatus(org.user.token, ""),
    getSecond: await getStatus(org.user.token, `session_name=${s2}&force=true`),
  }));

  const a2 = answers.second;
  assert.equal(a2.status, 200, a2.text);
  assertPanelShape(a2.json);
  assert.equal(a2.json.status, "qr_issued", "the second number waits for its scan");
  assert.equal(a2.json.session, s2);
  assert.equal(a2.json.account_number, s2);
  assert.equal(a2.json.integration_id, i2);
  assert.equal(a2.json.qrcode, second.json.qrcode, "its own QR, the one wpp-create showed");
  assert.ok(!Number.isNaN(Date.parse(String(a2.json.last_qr_at))), "last_qr_at is a time");

  const a1 = answers.first;
  assert.equal(a1.status, 200, a1.text);
  assertPanelShape(a1.json);
  assert.equal(a1.json.status, "connected");
  assert.equal(a1.json.session, first.session);
  assert.equal(a1.json.integration_id, first.integrationId);
  assert.equal(a1.json.qrcode, null);
  assert.equal(a1.json.last_qr_at, null);

  // No session named: the organisation's primary number.
  for (const plain of [answers.plain, answers.get]) {
    assert.equal(plain.status, 200, plain.text);
    assert.equal(plain.json.integration_id, first.integrationId);
    assert.equal(plain.json.status, "connected");
  }
  assert.equal(answers.getSecond.status, 200, answers.getSecond.text);
  assert.equal(answers.getSecond.json.integration_id, i2, "GET ?session_name= names it too");
  assert.equal(answers.getSecond.json.status, "qr_issued");

  assert.deepEqual(calls, NO_CALLS, "both states were fresh: not one platform call");
  const apiKeys = [await platformApiKey(first.session), await platformApiKey(s2)];
  for (const a of [a1, a2, answers.plain, answers.get]) {
    for (const key of apiKeys) assert.ok(!a.text.includes(key), "an apiKey reached the browser");
  }
});

test("another organisation's session, or one nobody has: 404 with CORS, nothing asked", async () => {
  const mine = await createOrg("admin");
  const theirs = await createOrg("owner");
  const theirNumber = await connect(theirs.user.token);
  const theirSession = theirNumber.json.session as string;
  const member = await mine.addUser("member");
  const origin = "http://crm.example.test";

  const [answers, calls] = await platformCallsDuring(async () => [
    await status(mine.user.token, { session_name: theirSession, force: true }, {
      headers: { origin },
    }),
    await status(member.token, { session_name: theirSession, force: false }, {
      headers: { origin },
    }),
    await status(mine.user.token, { session_name: `wpp_${theirSession}`, force: true }, {
      headers: { origin },
    }),
    await status(mine.user.token, { session_name: "9999999999999", force: true }, {
      headers: { origin },
    }),
  ]);
  for (const res of answers) {
    assert.equal(res.status, 404, res.text);
    assert.equal(res.json.success, false);
    assert.equal(res.json.status, "error");
    assert.equal(res.json.code, "not_found");
    assert.equal(typeof res.json.error, "string", "the panel shows `error`");
    assert.equal(res.headers.get("access-control-allow-origin"), "*", "the browser may read it");
    assert.equal(res.headers.get("x-request-id"), res.json.request_id);
    assert.ok(!res.text.includes(theirSession), "nothing about the other organisation");
  }
  assert.deepEqual(calls, NO_CALLS);

  // The owner of that session does see it, under both spellings.
  for (const name of [theirSession, `wpp_${theirSession}`]) {
    const own = await status(theirs.user.token, { session_name: name, force: false });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.session, theirSession);
  }
  // A user outside any organisation is told so, before any lookup.
  const loner = await createUser(null, "admin");
  const refused = await status(loner.token, { session_name: theirSession, force: true });
  assert.equal(refused.status, 403, refused.text);
  assert.equal(refused.json.code, "no_organization");
});

test("a member sees the status without qrcode and never causes a QR or start call", async () => {
  const org = await createOrg("admin");
  const member = await org.addUser("member");
  const created = await connect(org.user.token);
  assert.equal(created.json.status, "qr_issued");
  const session = created.json.session as string;
  const integrationId = created.json.integration_id as string;
  // The start's QR event is on its way: once stored it would make the state fresh again.
  await delivered(session, "qr");

  // Fresh: from the stored state, without the QR.
  const [fresh, freshCalls] = await platformCallsDuring(() =>
    status(member.token, { session_name: session, force: true })
  );
  assert.equal(fresh.status, 200, fresh.text);
  assertPanelShape(fresh.json);
  assert.equal(fresh.json.status, "qr_issued");
  assert.equal(fresh.json.qrcode, null, "members never get the QR");
  assert.ok(!fresh.text.includes(created.json.qrcode as string));
  assert.deepEqual(freshCalls, NO_CALLS);

  // Stale: a member's force asks the platform for the status, and for nothing else.
  await makeStale(integrationId);
  const [stale, staleCalls] = await platformCallsDuring(() =>
    status(member.token, { session_name: session, force: true })
  );
  assert.equal(stale.status, 200, stale.text);
  assertPanelShape(stale.json);
  // The platform's status word does not say whether a QR is on show, and a member may not fetch
  // it: "waiting for a QR" is all a member's refresh can tell.
  assert.equal(stale.json.status, "qr_pending");
  assert.equal(stale.json.qrcode, null);
  assert.ok(!stale.text.includes(created.json.qrcode as string));
  assert.deepEqual(staleCalls, { ...NO_CALLS, status: 1 });
});

test("a session that never showed a QR: a member's poll only reads, an admin's starts it", async () => {
  const org = await createOrg("admin");
  const member = await org.addUser("member");
  // wpp-create's start fails: the session is stored, the platform still shows no QR.
  await sim.setFault({ op: "start", kind: "status", status: 500 });
  let failed;
  try {
    failed = await callFunction(org.user.token, { fn: "wpp-create", body: { add_new: false } });
  } finally {
    await sim.clearFaults("start");
  }
  assert.equal(failed.status, 502, failed.text);
  const [row] = await integrations(org.orgId);
  const session = row.settings.wppAccountNumber as string;
  assert.equal((await sim.state()).sessions.find((s) => s.session === session)?.state, "starting");
  await makeStale(row.id);

  for (const force of [true, false]) {
    const [res, calls] = await platformCallsDuring(() =>
      status(member.token, { session_name: session, force })
    );
    assert.equal(res.status, 200, res.text);
    assertPanelShape(res.json);
    assert.equal(res.json.status, "qr_pending");
    assert.equal(res.json.qrcode, null);
    assert.equal(calls.start, 0, `force:${force}: a member never starts the session`);
    assert.equal(calls.qr, 0, `force:${force}: a member never fetches a QR`);
    assert.equal(calls.create, 0);
  }
  assert.equal((await sim.state()).sessions.find((s) => s.session === session)?.state, "starting");

  const [admin, adminCalls] = await platformCallsDuring(() =>
    status(org.user.token, { session_name: session, force: true })
  );
  assert.equal(admin.status, 200, admin.text);
  assert.equal(admin.json.status, "qr_issued", "the admin's poll starts it and gets a QR");
  assert.equal(typeof admin.json.qrcode, "string");
  assert.deepEqual(
    [adminCalls.status, adminCalls.qr, adminCalls.start, adminCalls.create],
    [1, 1, 1, 0],
  );
});

test("force:false answers from the stored state, even when the platform knows better", async () => {
  const org = await createOrg("admin");
  const { session, integrationId } = await connectedNumber(org.user.token);
  // The phone unlinks, but the platform's event is lost on the way.
  await sim.setEventFault({ kind: "drop", session });
  try {
    await sim.disconnect(session);
    const records = await waitFor("the dropped disconnected event", async () => {
      const d = await sim.deliveries({ session, type: "disconnected" });
      return d.length ? d : undefined;
    });
    assert.ok(records.every((d) => d.dropped), "the event was dropped");
  } finally {
    await sim.clearEventFaults("drop");
  }
  await makeStale(integrationId);

  const [stored, storedCalls] = await platformCallsDuring(() =>
    status(org.user.token, { session_name: session, force: false })
  );
  assert.equal(stored.status, 200, stored.text);
  assert.equal(stored.json.status, "connected", "what is stored, however old");
  assert.deepEqual(storedCalls, NO_CALLS);

  const [forced, forcedCalls] = await platformCallsDuring(() =>
    status(org.user.token, { session_name: session, force: true })
  );
  assert.equal(forced.status, 200, forced.text);
  assertPanelShape(forced.json);
  assert.equal(forced.json.status, "disconnected");
  assert.equal(forced.json.reason, "offline");
  assert.deepEqual(forcedCalls, { ...NO_CALLS, status: 1 }, "one status call; no start, no QR");
  assert.equal((await stateOf(integrationId)).connection, "offline", "and it is stored");

  // What that refresh learned is fresh now: the next poll asks nobody.
  const [again, againCalls] = await platformCallsDuring(() =>
    status(org.user.token, { session_name: session, force: true })
  );
  assert.equal(again.json.status, "disconnected");
  assert.deepEqual(againCalls, NO_CALLS);
});

test("a replaced session reads as disconnected/replaced; the new one as itself", async () => {
  const org = await createOrg("admin");
  const first = await connect(org.user.token);
  const oldSession = first.json.session as string;
  const integrationId = first.json.integration_id as string;
  await ageSession(integrationId);
  const recreated = await connect(org.user.token, { force_recreate: true });
  const newSession = recreated.json.session as string;
  assert.notEqual(newSession, oldSession);
  assert.equal(recreated.json.integration_id, integrationId, "the same row holds it");

  const [old, oldCalls] = await platformCallsDuring(() =>
    status(org.user.token, { session_name: oldSession, force: true })
  );
  assert.equal(old.status, 200, old.text);
  assertPanelShape(old.json);
  assert.equal(old.json.status, "disconnected");
  assert.equal(old.json.reason, "replaced");
  assert.equal(old.json.qrcode, null, "a replaced session's QR is never shown");
  assert.deepEqual(oldCalls, NO_CALLS);

  const current = await status(org.user.token, { session_name: newSession, force: true });
  assert.equal(current.json.status, "qr_issued", current.text);
  assert.equal(current.json.session, newSession);
  assert.equal(current.json.qrcode, recreated.json.qrcode);
});

test("bad requests: unknown keys, wrong types, bad query values → 400; 401 and 405 with CORS", async () => {
  const org = await createOrg("admin");
  const origin = "http://crm.example.test";
  for (
    const body of [
      { session_name: "1", force: true, extra: 1 },
      { force: "true" },
      { session_name: 42 },
      { session_name: "" },
      "[]",
      "{",
    ]
  ) {
    const res = await status(org.user.token, body, { headers: { origin } });
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    assert.match(String(res.json.code), /^invalid_(body|json)$/);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  }
  for (const query of ["force=yes", "force=true&force=false", "session=1"]) {
    const res = await getStatus(org.user.token, query);
    assert.equal(res.status, 400, `${query}: ${res.text}`);
    assert.equal(res.json.code, "invalid_body");
  }
  for (const authorization of [undefined, `Bearer ${stack.anonKey}`, "Bearer not.a.jwt"]) {
    const res = await status(null, { force: false }, {
      headers: { origin, ...(authorization ? { authorization } : {}) },
    });
    assert.equal(res.status, 401, res.text);
    assert.equal(res.json.code, "unauthorized");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  }
  const put = await status(org.user.token, {}, { method: "PUT" });
  assert.equal(put.status, 405, put.text);
  assert.deepEqual(
    new Set(put.headers.get("allow")?.split(/,\s*/)),
    new Set(["GET", "POST", "OPTIONS"]),
  );
  const preflight = await fetch(`${stack.url}/functions/v1/wpp-status`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, apikey, content-type, x-client-info",
    },
  });
  await preflight.body?.cancel();
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
});

test("one JSON log line per request, naming the source and no secret", async () => {
  const org = await createOrg("admin");
  const created = await connect(org.user.token);
  const session = created.json.session as string;
  await delivered(session, "qr");
  await makeStale(created.json.integration_id as string);
  const res = await status(org.user.token, { session_name: session, force: true });
  assert.equal(res.status, 200, res.text);
  const line = await logLineOf("wpp-status", res.json.request_id as string);
  assert.equal(line.fn, "wpp-status");
  assert.equal(line.status, 200);
  assert.equal(line.organization_id, org.orgId);
  assert.equal(line.role, "admin");
  assert.equal(line.session, session);
  assert.equal(line.connection, "qr_issued");
  assert.equal(line.source, "platform");
  assert.deepEqual((line.platform_calls as { op: string }[]).map((c) => c.op), ["status", "qr"]);

  const [state] = await integrations(org.orgId);
  const sim_ = await sim.state({ reveal: true });
  const text = JSON.stringify(line);
  const secrets = [
    await platformApiKey(session),
    ...sim_.tokens.filter((t) => t.session === session).map((t) => t.token),
    state.webhook_secret!,
    org.user.token,
    stack.functionEnv.WPP_SECRET,
  ];
  for (const secret of secrets) {
    assert.ok(secret && secret.length > 8, "a real secret to look for");
    assert.ok(!text.includes(secret), "a secret reached the log line");
  }
  assert.ok(!text.includes(res.json.qrcode as string), "no QR in the log either");
});

test("teardown: close the database connection", async () => {
  await closeDb();
});
