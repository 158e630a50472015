// wpp-status through the gateway, against the database and the platform simulator: what each
// state of a connection reads as, and that a read never creates or replaces anything.
import assert from "node:assert/strict";
import {
  closeDb,
  createOrg,
  createUser,
  events,
  integrations,
  platformApiKey,
  sim,
  sql,
} from "../_support/wpp.ts";
import { connect, connectedSession, platformCallsDuring, status, test } from "./_helpers.ts";

const NO_CALLS = { create: 0, token: 0, start: 0, status: 0, qr: 0, webhook: 0, stop: 0 };

test("a new organisation reads as not_configured, and reading creates no row", async () => {
  const org = await createOrg("admin");
  const [res, calls] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.success, true);
  assert.equal(res.json.status, "not_configured");
  assert.equal(res.json.reason, "no_integration");
  assert.equal(res.json.session, undefined);
  assert.equal(res.json.error, undefined, "a fresh organisation is a state, not a problem");
  assert.match(String(res.json.request_id), /^[0-9a-f-]{36}$/);
  assert.deepEqual({ ...calls, unknown: 0 }, { ...NO_CALLS, unknown: 0 });
  assert.equal((await integrations(org.orgId)).length, 0, "wpp_provision_begin would insert one");
  assert.equal((await events(org.orgId)).length, 0);
});

test("after wpp-create the same session reads as qr_issued with a fresh QR", async () => {
  const org = await createOrg("admin");
  const created = await connect(org.user.token);
  assert.equal(created.status, 200, created.text);
  assert.equal(created.json.status, "qr_issued");

  const [res, calls] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, "qr_issued");
  assert.equal(res.json.session, created.json.session);
  assert.equal(res.json.integration_id, created.json.integration_id);
  assert.equal(typeof res.json.qrcode, "string");
  assert.ok((res.json.qrcode as string).length > 10);
  assert.equal(calls.create, 0, "a status read never creates a platform client");
  assert.equal(calls.token, 0, "wpp-create cached a token; the read reuses it");
  assert.equal(calls.status, 1);
  assert.equal(calls.qr, 1);
  assert.equal(calls.start, 0, "a QR was there to fetch: no need to start the account");

  const apiKey = await platformApiKey(created.json.session as string);
  assert.ok(!res.text.includes(apiKey), "the apiKey never reaches the browser");
});

test("after the scan the session reads as connected, with no QR", async () => {
  const org = await createOrg("admin");
  const session = await connectedSession(org.user.token);
  const [res, calls] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, "connected");
  assert.equal(res.json.session, session);
  assert.equal(res.json.qrcode, undefined);
  assert.deepEqual([calls.status, calls.qr, calls.start, calls.create], [1, 0, 0, 0]);
});

test("members and owners may read; the answer is the same as the admin's", async () => {
  const org = await createOrg("admin");
  const member = await org.addUser("member");
  const owner = await org.addUser("owner");
  const session = await connectedSession(org.user.token);
  for (const user of [member, owner]) {
    const res = await status(user.token);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.status, "connected");
    assert.equal(res.json.session, session);
  }
});

test("a user outside any organisation gets 403 no_organization", async () => {
  const org = await createOrg("admin");
  const loner = await createUser(null, "member");
  const res = await status(loner.token);
  assert.equal(res.status, 403, res.text);
  assert.equal(res.json.code, "no_organization");
  assert.equal(res.json.success, false);
  // Another organisation's data is not reachable either way.
  assert.equal((await status(org.user.token)).json.status, "not_configured");
});

test("a phone that unlinked reads as disconnected and the account is not restarted", async () => {
  const org = await createOrg("admin");
  const session = await connectedSession(org.user.token);
  await sim.disconnect(session);
  const [res, calls] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, "disconnected");
  assert.equal(res.json.session, session);
  assert.deepEqual([calls.start, calls.qr, calls.create], [0, 0, 0]);
});

test("no QR yet: the existing account is started to get one, never a new client", async () => {
  const org = await createOrg("admin");
  // The start call of wpp-create fails, leaving a stored session that never issued a QR.
  await sim.setFault({ op: "start", kind: "status", status: 500, times: 3 });
  let created;
  try {
    created = await connect(org.user.token);
  } finally {
    await sim.clearFaults("start");
  }
  assert.equal(created.status, 502, created.text);
  const [row] = await integrations(org.orgId);
  const session = row.settings.wppAccountNumber as string;
  assert.equal((await sim.state()).sessions.find((s) => s.session === session)?.state, "starting");

  const [res, calls] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, "qr_issued");
  assert.equal(res.json.session, session);
  assert.equal(typeof res.json.qrcode, "string");
  assert.deepEqual([calls.status, calls.qr, calls.start, calls.create], [1, 1, 1, 0]);
});

test("a stored token is reused; a fetched one is cached for the next read", async () => {
  const org = await createOrg("admin");
  await connect(org.user.token);
  const [, first] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(first.token, 0, "the token wpp-create stored is used");

  await sql`
    update public.messenger_integrations
       set settings = settings - 'wppJwtToken' - 'wppJwtExpiresAt'
     where organization_id = ${org.orgId}`;
  const [res, second] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(res.json.status, "qr_issued", res.text);
  assert.equal(second.token, 1, "no token stored: one is fetched");
  const [row] = await integrations(org.orgId);
  assert.equal(typeof row.settings.wppJwtToken, "string", "and cached");
  assert.ok(Number(row.settings.wppJwtExpiresAt) > Date.now());

  const [, third] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(third.token, 0, "the cached token is used by the next read");
});

test("an expired token is replaced once and the read succeeds", async () => {
  const org = await createOrg("admin");
  await connectedSession(org.user.token);
  await sim.expireTokens();
  const [res, calls] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, "connected");
  assert.equal(calls.token, 1);
});

/** Kills the session's apiKey on the platform and drops the cached token that would hide it. */
async function killKey(orgId: string, session: string, createdAgoMs: number): Promise<void> {
  await sim.killApiKey({ session });
  await sql`
    update public.messenger_integrations
       set settings = (settings - 'wppJwtToken' - 'wppJwtExpiresAt')
         || jsonb_build_object('wppSessionCreatedAt', ${Date.now() - createdAgoMs}::bigint)
     where organization_id = ${orgId}`;
}

test("a dead apiKey reads as not_configured with a hint, and the row is left as it was", async () => {
  const org = await createOrg("admin");
  const created = await connect(org.user.token);
  const session = created.json.session as string;
  await killKey(org.orgId, session, 3_600_000);
  const [before] = await integrations(org.orgId);
  const eventsBefore = (await events(org.orgId)).length;

  const [res, calls] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, "not_configured");
  assert.equal(res.json.reason, "dead_key");
  assert.equal(res.json.session, session);
  assert.match(String(res.json.error), /connect WhatsApp again/);
  assert.equal(calls.create, 0, "replacing the session is wpp-create's job");
  const [after] = await integrations(org.orgId);
  assert.deepEqual(after, before, "a read marks nothing");
  assert.equal((await events(org.orgId)).length, eventsBefore);
});

test("a refused key of a session created moments ago reads as starting, not dead", async () => {
  const org = await createOrg("admin");
  const created = await connect(org.user.token);
  await killKey(org.orgId, created.json.session as string, 5_000);
  const res = await status(org.user.token);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, "starting");
  assert.equal(res.json.reason, "activating");
  assert.equal(res.json.error, undefined);
});

test("an unusable stored session reads as not_configured without a platform call", async () => {
  const org = await createOrg("admin");
  await sql`
    insert into public.messenger_integrations
      (organization_id, messenger_type, provider, is_active, is_primary, settings)
    values (${org.orgId}, 'whatsapp', 'wpp', true, true,
            ${sql.json({ wppAccountNumber: "client_system", wppApiKey: "legacy-key-000000" })})`;
  const [res, calls] = await platformCallsDuring(() => status(org.user.token));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, "not_configured");
  assert.equal(res.json.reason, "needs_new_session");
  assert.equal(res.json.session, undefined, "a placeholder is not shown as a session");
  assert.equal(typeof res.json.error, "string");
  assert.equal(Object.values(calls).reduce((a, b) => a + b, 0), 0);
});

test("while wpp-create holds the lease the connection reads as starting", async () => {
  const org = await createOrg("admin");
  await sql`
    insert into public.messenger_integrations
      (organization_id, messenger_type, provider, is_active, is_primary, settings,
       provision_lease_id, provision_lease_expires_at, provision_lease_reason)
    values (${org.orgId}, 'whatsapp', 'wpp', true, true, '{}'::jsonb,
            gen_random_uuid(), now() + interval '30 seconds', 'no_integration')`;
  const res = await status(org.user.token);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, "starting");
  assert.equal(res.json.reason, "provisioning");
  assert.equal(res.json.error, undefined);
});

test("platform outages answer 502 and 504 like wpp-create, with CORS headers", async () => {
  const org = await createOrg("admin");
  await connectedSession(org.user.token);
  const origin = "http://crm.example.test";
  try {
    await sim.setFault({ op: "status", kind: "status", status: 503 });
    const down = await status(org.user.token, { headers: { origin } });
    assert.equal(down.status, 502, down.text);
    assert.equal(down.json.code, "platform_error");
    assert.equal(down.headers.get("access-control-allow-origin"), "*");
    assert.equal(down.headers.get("x-request-id"), down.json.request_id);
    await sim.clearFaults("status");

    await sim.setFault({ op: "status", kind: "hang" });
    const slow = await status(org.user.token);
    assert.equal(slow.status, 504, slow.text);
    assert.equal(slow.json.code, "platform_timeout");
  } finally {
    await sim.clearFaults();
  }
  assert.equal((await status(org.user.token)).json.status, "connected", "and back once it is up");
});

test("teardown: close the database connection", async () => {
  await closeDb();
});
