// wpp-create end to end, one click at a time: through the gateway into the function's Deno
// processes, against PostgreSQL/PostgREST and the platform simulator. What a click creates,
// reuses, repairs, replaces and refuses, and what the platform is asked meanwhile.
import assert from "node:assert/strict";
import { createOrg, events, integrations, platformApiKey, sim, snapshot } from "../_support/wpp.ts";
import { mintUserToken, stack } from "../_support/stack.ts";
import * as jose from "jose";
import { crmHelper } from "../_support/crm-helper.ts";
import { maskSecret } from "../../supabase/functions/_shared/wpp/mask.ts";
import {
  ageSessions,
  call,
  eventsDelivered,
  fakeKey,
  insertWppRow,
  logLineOf,
  makeStale,
  pick,
  platformCallsDuring,
  scanAndWait,
  SecretBook,
  SESSION_RE,
  stateOf,
  test,
} from "./_e2e.ts";

const book = new SecretBook();

/** Forget the platform's state (numbering, counts, faults) after noting its secrets. */
async function freshPlatform(): Promise<void> {
  await book.harvest();
  await sim.reset();
}

async function newOrg(role: "owner" | "admin" = "admin") {
  const org = await createOrg(role);
  book.secret(org.user.token);
  return org;
}

function click(token: string, body: Record<string, unknown> = { add_new: false }) {
  return call(book, token, { body });
}

/** An organisation whose first number is created and linked (so add_new makes a new one). */
async function orgWithConnectedNumber() {
  const org = await newOrg();
  const first = await click(org.user.token);
  assert.equal(first.status, 200, first.text);
  const integrationId = String(first.json.integration_id);
  await scanAndWait(String(first.json.session), integrationId);
  return { org, first, integrationId, session: String(first.json.session) };
}

test("create e2e: the first click creates the number, stores it and registers the webhook", async () => {
  await freshPlatform();
  const org = await newOrg();
  const [res, calls] = await platformCallsDuring(() => click(org.user.token));
  assert.equal(res.status, 200, res.text);
  const body = res.json;
  assert.equal(body.success, true);
  assert.equal(body.created, true);
  assert.match(String(body.session), SESSION_RE);
  assert.equal(body.status, "qr_issued");
  assert.ok(typeof body.qrcode === "string" && body.qrcode.length > 10);
  assert.match(String(body.request_id), /^[0-9a-f-]{36}$/);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");

  const apiKey = await platformApiKey(String(body.session));
  assert.equal(body.apiKey, maskSecret(apiKey), "the apiKey is shown masked");
  assert.ok(!res.text.includes(apiKey));

  const rows = await integrations(org.orgId);
  assert.equal(rows.length, 1);
  const [row] = rows;
  assert.equal(row.id, body.integration_id);
  assert.equal(row.is_active, true);
  assert.equal(row.is_primary, true);
  assert.equal(row.settings.wppAccountNumber, body.session);
  assert.equal(row.settings.wppApiKey, apiKey);
  assert.equal(typeof row.settings.wppJwtToken, "string");
  assert.ok(Number(row.settings.wppJwtExpiresAt) > Date.now());
  assert.equal(row.lease_id, null, "the lease is released");

  const state = await stateOf(row.id);
  assert.equal(state.session, body.session);
  assert.equal(state.refresh_lease_id, null);
  const platform = (await sim.state({ reveal: true })).sessions.find((s) =>
    s.session === body.session
  )!;
  assert.equal(
    platform.webhookUrl,
    `${stack.url}/functions/v1/wpp-webhook/${encodeURIComponent(state.webhook_secret)}`,
  );
  assert.equal(platform.organizationId, org.orgId);
  assert.deepEqual(pick(calls, "create", "token", "webhook", "start", "status", "stop"), {
    create: 1,
    token: 1,
    webhook: 1,
    start: 1,
    status: 0,
    stop: 0,
  });
  const audit = await events(org.orgId);
  assert.deepEqual(audit.map((e) => e.action), ["created"]);
  assert.equal(audit[0].details.session, body.session);

  // One log line for the request, whose outcome is the audit's action.
  const line = await logLineOf("wpp-create", String(body.request_id));
  assert.equal(line.outcome, audit[0].action);
  assert.equal(line.status, 200);
  assert.equal(line.organization_id, org.orgId);
  assert.equal(line.session, body.session);
  assert.deepEqual((line.platform_calls as { op: string }[]).map((c) => c.op), [
    "create",
    "token",
    "webhook",
    "start",
  ]);
  assert.equal(typeof line.ms, "number");
});

test("create e2e: an ES256 access token is verified against the project's JWKS", async () => {
  const org = await newOrg();
  const es256 = await mintUserToken(org.user.userId, { signing: "es256" });
  book.secret(es256);
  const res = await click(es256);
  assert.equal(res.status, 200, res.text);
  // The same key's token with another user in it fails the signature check.
  const [h, p, sig] = es256.split(".");
  const claims = JSON.parse(new TextDecoder().decode(jose.base64url.decode(p)));
  const forged = `${h}.${
    jose.base64url.encode(JSON.stringify({ ...claims, sub: crypto.randomUUID() }))
  }.${sig}`;
  book.secret(forged);
  const refused = await click(forged);
  assert.equal(refused.status, 401, refused.text);
  assert.equal(refused.json.code, "unauthorized");
});

test("create e2e: another organisation's integration_id is 404 and its row is untouched", async () => {
  const a = await newOrg();
  const b = await newOrg();
  const resA = await click(a.user.token);
  const rowA = (await integrations(a.orgId))[0];
  const [res, calls] = await platformCallsDuring(() =>
    click(b.user.token, { force_recreate: true, integration_id: resA.json.integration_id })
  );
  assert.equal(res.status, 404, res.text);
  assert.equal(res.json.code, "not_found");
  assert.deepEqual(Object.values(calls).filter((n) => n !== 0), []);
  assert.deepEqual((await integrations(a.orgId))[0], rowA);
  assert.equal((await integrations(b.orgId)).length, 0, "nor was a row made for b");
});

test("create e2e: a second click reuses: nothing asked while fresh, one status read once stale", async () => {
  await freshPlatform();
  const org = await newOrg("owner");
  const first = await click(org.user.token);
  assert.equal(first.status, 200, first.text);

  const [second, whileFresh] = await platformCallsDuring(() => click(org.user.token));
  assert.equal(second.status, 200, second.text);
  assert.equal(second.json.created, false);
  assert.equal(second.json.session, first.json.session);
  assert.equal(second.json.integration_id, first.json.integration_id);
  assert.equal(second.json.status, "qr_issued");
  assert.equal(typeof second.json.qrcode, "string");
  assert.deepEqual(Object.values(whileFresh).filter((n) => n !== 0), [], "zero platform calls");

  // Stale and not linked: one status read, then the QR is re-issued (webhook + start).
  await eventsDelivered(String(first.json.session), 1);
  await makeStale(org.orgId);
  const [third, whileStale] = await platformCallsDuring(() => click(org.user.token));
  assert.equal(third.status, 200, third.text);
  assert.equal(third.json.session, first.json.session);
  assert.deepEqual(pick(whileStale, "create", "token", "status", "webhook", "start"), {
    create: 0,
    token: 0,
    status: 1,
    webhook: 1,
    start: 1,
  });

  // Stale and linked: the status read is the only call.
  await scanAndWait(String(first.json.session), String(first.json.integration_id));
  await eventsDelivered(String(first.json.session), 3);
  await makeStale(org.orgId);
  const [fourth, whileLinked] = await platformCallsDuring(() => click(org.user.token));
  assert.equal(fourth.json.status, "connected");
  assert.equal("qrcode" in fourth.json, false);
  assert.deepEqual(Object.entries(whileLinked).filter(([, n]) => n !== 0), [["status", 1]]);
  assert.equal((await integrations(org.orgId)).length, 1);
  assert.deepEqual((await events(org.orgId)).map((e) => e.action), ["created"]);
});

test("create e2e: a legacy non-primary client_system row is fixed in place, other keys kept", async () => {
  await freshPlatform();
  const org = await newOrg();
  const legacyKey = fakeKey("legacy-apikey");
  const legacyId = await insertWppRow(org.orgId, {
    isPrimary: false,
    settings: {
      wppAccountNumber: "client_system",
      wppApiKey: legacyKey,
      wppBaseUrl: "https://wpp.example.test",
      greeting: "Здравствуйте",
      routing: { branch: "north" },
    },
  });
  book.secret(legacyKey);
  const [res, calls] = await platformCallsDuring(() => click(org.user.token));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.created, true);
  assert.equal(res.json.integration_id, legacyId, "the row id survives");
  const rows = await integrations(org.orgId);
  assert.equal(rows.length, 1, "nothing deleted, nothing duplicated");
  const s = rows[0].settings;
  assert.equal(s.wppAccountNumber, res.json.session);
  assert.equal(s.wppApiKey, await platformApiKey(String(res.json.session)));
  assert.equal(s.greeting, "Здравствуйте");
  assert.equal(s.wppBaseUrl, "https://wpp.example.test");
  assert.deepEqual(s.routing, { branch: "north" });
  assert.equal(rows[0].is_primary, true, "the organisation's only WhatsApp row becomes primary");
  assert.equal(calls.create, 1);
  assert.equal(calls.stop, 0, "a placeholder is not a session to stop");
  const actions = (await events(org.orgId)).map((e) => e.action);
  assert.ok(actions.includes("created") && !actions.includes("recreated"), actions.join());
});

test("create e2e: force_recreate past the repeat window replaces the session in place", async () => {
  await freshPlatform();
  const org = await newOrg();
  const first = await click(org.user.token);
  const oldSession = String(first.json.session);
  const integrationId = String(first.json.integration_id);
  const oldState = await stateOf(integrationId);
  await ageSessions(org.orgId, "2 minutes");

  const [res, calls] = await platformCallsDuring(() =>
    click(org.user.token, { add_new: false, force_recreate: true })
  );
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.created, true);
  assert.notEqual(res.json.session, oldSession);
  assert.equal(res.json.integration_id, integrationId);
  const [row] = await integrations(org.orgId);
  assert.equal(row.settings.wppAccountNumber, res.json.session);
  assert.equal(row.settings.wppApiKey, await platformApiKey(String(res.json.session)));
  const platform = await sim.state();
  assert.equal(platform.sessions.find((s) => s.session === oldSession)?.state, "offline");
  assert.deepEqual(pick(calls, "create", "stop"), { create: 1, stop: 1 });
  const state = await stateOf(integrationId);
  assert.deepEqual(state.replaced_sessions, [oldSession]);
  assert.notEqual(state.webhook_secret, oldState.webhook_secret, "the webhook secret rotates");
  const audit = await events(org.orgId);
  const recreated = audit.find((e) => e.action === "recreated");
  assert.equal(recreated?.details.previous_session, oldSession);
  assert.ok(audit.some((e) => e.action === "session_stopped" && e.details.session === oldSession));
});

test("create e2e: force_recreate repeated within the window gets the same session", async () => {
  await freshPlatform();
  const org = await newOrg();
  const first = await click(org.user.token);
  // Moments after a create, a recreate is a repeat of it (the panel's retry, a double click).
  const early = await click(org.user.token, { force_recreate: true });
  assert.equal(early.status, 200, early.text);
  assert.equal(early.json.session, first.json.session);
  assert.equal(early.json.created, false);

  await ageSessions(org.orgId, "2 minutes");
  const forced = await click(org.user.token, { force_recreate: true });
  const [again, calls] = await platformCallsDuring(() =>
    click(org.user.token, { force_recreate: true })
  );
  assert.equal(forced.json.created, true);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.session, forced.json.session);
  assert.equal(again.json.created, false);
  assert.deepEqual(pick(calls, "create", "stop"), { create: 0, stop: 0 });
  assert.equal((await sim.calls()).create, 2);
});

test("create e2e: add_new makes a non-primary row with its own platform organisation", async () => {
  await freshPlatform();
  const { org, integrationId } = await orgWithConnectedNumber();
  const before = (await integrations(org.orgId))[0];
  const res = await click(org.user.token, { add_new: true });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.created, true);
  assert.notEqual(res.json.integration_id, integrationId);
  const rows = await integrations(org.orgId);
  assert.equal(rows.length, 2);
  const added = rows.find((r) => r.id === res.json.integration_id)!;
  assert.equal(added.is_primary, false);
  assert.equal(added.is_active, true);
  assert.equal(added.settings.wppAccountNumber, res.json.session);
  const subOrg = String(added.settings.wppSubOrgId);
  assert.match(subOrg, new RegExp(`^${org.orgId}__wpp__[0-9a-f]{8}$`));
  const platform = (await sim.state()).sessions.find((s) => s.session === res.json.session)!;
  assert.equal(platform.organizationId, subOrg, "the platform knows the number by wppSubOrgId");
  const first = rows.find((r) => r.id === integrationId)!;
  assert.deepEqual(first.settings, before.settings, "the first number is untouched");
  assert.equal(first.is_primary, true);
});

test("create e2e: a double-clicked add_new makes one new number", async () => {
  await freshPlatform();
  const { org } = await orgWithConnectedNumber();
  const [results, calls] = await platformCallsDuring(() =>
    Promise.all([
      click(org.user.token, { add_new: true }),
      click(org.user.token, { add_new: true }),
    ])
  );
  for (const r of results) assert.equal(r.status, 200, r.text);
  assert.equal(results[0].json.session, results[1].json.session);
  assert.equal(results[0].json.integration_id, results[1].json.integration_id);
  assert.deepEqual(results.map((r) => r.json.created).sort(), [false, true]);
  assert.equal(calls.create, 1);
  assert.equal((await integrations(org.orgId)).length, 2);
});

test("create e2e: an add_new the panel retries after a 502 makes one new number", async () => {
  await freshPlatform();
  const { org } = await orgWithConnectedNumber();
  const panel = crmHelper({ token: org.user.token });

  // The platform refuses the create outright (no client made): the retry fills the same row.
  await sim.setFault({ op: "create", kind: "status", status: 404, times: 1 });
  const refused = await panel.post("wpp-create", { add_new: true });
  book.text(JSON.stringify(refused.attempts));
  assert.deepEqual(refused.attempts.map((a) => a.status), [502, 200]);
  assert.equal(refused.attempts[0].body?.code, "platform_rejected");
  assert.equal(refused.data?.created, true);
  let rows = await integrations(org.orgId);
  assert.equal(rows.length, 2, "the failed add_new's row is filled, not a third added");
  assert.equal(rows[1].id, refused.data?.integration_id);

  // A number waiting for its first scan is what add_new answers: link this one first.
  await scanAndWait(String(refused.data?.session), rows[1].id);
  // The create worked, the webhook registration did not: the retry gets the stored number.
  await sim.setFault({ op: "webhook", kind: "status", status: 500, times: 3 });
  const [late, calls] = await platformCallsDuring(() =>
    panel.post("wpp-create", { add_new: true })
  );
  book.text(JSON.stringify(late.attempts));
  assert.deepEqual(late.attempts.map((a) => a.status), [502, 200]);
  assert.equal(late.attempts[0].body?.code, "platform_error");
  assert.equal(late.data?.created, false, "the retry reuses the number the 502 made");
  assert.equal(calls.create, 1);
  rows = await integrations(org.orgId);
  assert.equal(rows.length, 3);
  assert.equal(rows[2].settings.wppAccountNumber, late.data?.session);
});

test("create e2e: add_new past the organisation's cap is 409, inactive rows not counted", async () => {
  await freshPlatform();
  const { org } = await orgWithConnectedNumber();
  const extra: string[] = [];
  for (let i = 0; i < 9; i++) {
    const key = fakeKey("cap-apikey");
    book.secret(key);
    extra.push(
      await insertWppRow(org.orgId, {
        settings: { wppAccountNumber: `00000009000${String(i).padStart(2, "0")}`, wppApiKey: key },
      }),
    );
  }
  const [res, calls] = await platformCallsDuring(() => click(org.user.token, { add_new: true }));
  assert.equal(res.status, 409, res.text);
  assert.equal(res.json.code, "number_limit_reached");
  assert.match(String(res.json.error), /10 WhatsApp numbers/);
  assert.deepEqual(Object.values(calls).filter((n) => n !== 0), []);
  assert.equal((await integrations(org.orgId)).length, 10);

  // WPP_MAX_NUMBERS counts active numbers: a disconnected one frees a place.
  const off = await call(book, org.user.token, {
    fn: "wpp-disconnect",
    body: { integration_id: extra[0] },
  });
  assert.equal(off.status, 200, off.text);
  const added = await click(org.user.token, { add_new: true });
  assert.equal(added.status, 200, added.text);
  assert.equal(added.json.created, true);
  assert.equal((await integrations(org.orgId)).length, 11);
});

test("create e2e: force_recreate with integration_id recreates that number only", async () => {
  await freshPlatform();
  const { org, integrationId, session } = await orgWithConnectedNumber();
  const second = await click(org.user.token, { add_new: true });
  assert.equal(second.status, 200, second.text);
  const before = await integrations(org.orgId);
  await ageSessions(org.orgId);

  const res = await click(org.user.token, {
    force_recreate: true,
    integration_id: second.json.integration_id,
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.integration_id, second.json.integration_id);
  assert.equal(res.json.created, true);
  assert.notEqual(res.json.session, second.json.session);
  const after = await integrations(org.orgId);
  const firstBefore = before.find((r) => r.id === integrationId)!;
  const firstAfter = after.find((r) => r.id === integrationId)!;
  assert.deepEqual(firstAfter.settings, firstBefore.settings, "the other number is untouched");
  const secondAfter = after.find((r) => r.id === second.json.integration_id)!;
  assert.equal(secondAfter.settings.wppAccountNumber, res.json.session);
  assert.equal(
    secondAfter.settings.wppSubOrgId,
    before.find((r) => r.id === second.json.integration_id)!.settings.wppSubOrgId,
    "the number keeps its platform organisation",
  );
  const platform = await sim.state();
  assert.equal(platform.sessions.find((s) => s.session === session)?.state, "connected");
  assert.equal(
    platform.sessions.find((s) => s.session === second.json.session)?.state,
    "offline",
  );
});

test("create e2e: a member's add_new is 403 and changes nothing", async () => {
  await freshPlatform();
  const { org } = await orgWithConnectedNumber();
  const member = await org.addUser("member");
  book.secret(member.token);
  const before = await snapshot();
  for (const body of [{ add_new: true }, { add_new: false }, { force_recreate: true }]) {
    const res = await click(member.token, body);
    assert.equal(res.status, 403, res.text);
    assert.equal(res.json.code, "forbidden");
    assert.equal(res.json.success, false);
  }
  assert.equal(await snapshot(), before);
});

test("create e2e: a dead apiKey: a young session is reported, an old one self-heals; a 503 neither", async () => {
  await freshPlatform();
  const org = await newOrg();
  const first = await click(org.user.token);
  const oldSession = String(first.json.session);
  const integrationId = String(first.json.integration_id);
  await eventsDelivered(oldSession, 1);

  // A platform failure is transient: reported, and the session stays.
  await makeStale(org.orgId);
  await sim.setFault({ op: "status", kind: "status", status: 503, times: 3 });
  const transient = await click(org.user.token);
  assert.equal(transient.status, 502, transient.text);
  assert.equal(transient.json.code, "platform_error");
  assert.equal((await stateOf(integrationId)).session, oldSession);

  await sim.killApiKey({ session: oldSession });
  await sim.expireTokens();
  await makeStale(org.orgId);

  // Within the grace period a refused key is the platform's activation delay, not death.
  const young = await click(org.user.token);
  assert.equal(young.status, 502, young.text);
  assert.equal(young.json.code, "platform_rejected");
  assert.equal((await sim.calls()).create, 1, "a young session is never replaced");

  await ageSessions(org.orgId);
  const [healed, calls] = await platformCallsDuring(() => click(org.user.token));
  assert.equal(healed.status, 200, healed.text);
  assert.equal(healed.json.created, true);
  assert.notEqual(healed.json.session, oldSession);
  assert.equal(healed.json.integration_id, integrationId);
  assert.equal(calls.create, 1);
  const actions = (await events(org.orgId)).map((e) => e.action);
  const dead = actions.indexOf("dead_key_detected");
  assert.ok(dead > 0 && actions.indexOf("recreated") > dead, actions.join());
  assert.equal((await stateOf(integrationId)).session, healed.json.session);
});

test("create e2e: no secret reached an answer or a function log line in this file", async () => {
  const scanned = await book.assertNoneLeaked();
  assert.ok(scanned.secrets >= 20, JSON.stringify(scanned));
});
