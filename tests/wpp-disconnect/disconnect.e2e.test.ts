// wpp-disconnect end to end, as the CRM's panel calls it (POST {integration_id}): the platform
// session is stopped, the row kept but inactive, the audit trail kept; a repeat succeeds, a failed
// stop is retried by the repeat, and a later click brings the number back with a new QR.
import assert from "node:assert/strict";
import { createOrg, events, integrations, sim, snapshot } from "../_support/wpp.ts";
import { crmHelper } from "../_support/crm-helper.ts";
import {
  call,
  eventsDelivered,
  platformCallsDuring,
  scanAndWait,
  SecretBook,
  stateOf,
  test,
} from "../wpp-create/_e2e.ts";

const book = new SecretBook();

async function orgWithLinkedNumber(role: "owner" | "admin" = "admin") {
  const org = await createOrg(role);
  book.secret(org.user.token);
  const first = await call(book, org.user.token, { body: { add_new: false } });
  assert.equal(first.status, 200, first.text);
  const session = String(first.json.session);
  const integrationId = String(first.json.integration_id);
  await scanAndWait(session, integrationId);
  await eventsDelivered(session, 2);
  return { org, session, integrationId, qrcode: String(first.json.qrcode) };
}

async function disconnect(token: string, integrationId: string) {
  const r = await crmHelper({ token }).post("wpp-disconnect", { integration_id: integrationId });
  book.text(JSON.stringify(r));
  return r;
}

async function platformState(session: string) {
  return (await sim.state()).sessions.find((s) => s.session === session)?.state;
}

test("disconnect e2e: stops the platform session, keeps the row inactive and the audit", async () => {
  await book.harvest();
  await sim.reset();
  const { org, session, integrationId } = await orgWithLinkedNumber();
  const before = (await integrations(org.orgId))[0];
  const [r, calls] = await platformCallsDuring(() => disconnect(org.user.token, integrationId));
  assert.equal(r.status, 200, JSON.stringify(r.data));
  assert.equal(r.data?.success, true);
  assert.equal(r.data?.status, "disconnected");
  assert.equal(calls.stop, 1);
  assert.equal(await platformState(session), "offline");

  const rows = await integrations(org.orgId);
  assert.equal(rows.length, 1, "nothing deleted");
  assert.equal(rows[0].is_active, false);
  assert.deepEqual(rows[0].settings, before.settings, "the credentials stay in the row");
  const state = await stateOf(integrationId);
  assert.equal(state.connection, "offline");
  assert.ok(state.disconnected_at instanceof Date);
  assert.equal(state.stop_pending, false);
  const actions = (await events(org.orgId)).map((e) => e.action);
  assert.deepEqual(actions.slice(0, 1), ["created"], "the earlier audit is kept");
  assert.ok(
    actions.includes("disconnected") && actions.includes("session_stopped"),
    actions.join(),
  );

  // A repeat (a double click, the panel's retry) is a success that asks nothing.
  const [again, againCalls] = await platformCallsDuring(() =>
    disconnect(org.user.token, integrationId)
  );
  assert.equal(again.status, 200);
  assert.equal(again.data?.success, true);
  assert.deepEqual(Object.values(againCalls).filter((n) => n !== 0), []);
});

test("disconnect e2e: a failed stop answers 502; the repeat stops it", async () => {
  const { org, session, integrationId } = await orgWithLinkedNumber();
  // Every attempt of the function's stop fails, and so does the panel's first retry.
  await sim.setFault({ op: "stop", kind: "status", status: 500, times: 6 });
  const panel = crmHelper({
    token: org.user.token,
    policy: { attempts: 2, baseDelayMs: 50, maxDelayMs: 50, jitter: 0 },
  });
  const failed = await panel.post("wpp-disconnect", { integration_id: integrationId });
  book.text(JSON.stringify(failed));
  assert.deepEqual(failed.attempts.map((a) => a.status), [502, 502]);
  assert.equal(failed.data?.code, "platform_error");
  assert.equal(await platformState(session), "connected", "the platform still runs it");
  assert.equal((await stateOf(integrationId)).stop_pending, true);
  assert.equal((await integrations(org.orgId))[0].is_active, false, "marked all the same");

  const [ok, calls] = await platformCallsDuring(() => disconnect(org.user.token, integrationId));
  assert.equal(ok.status, 200, JSON.stringify(ok.data));
  assert.equal(calls.stop, 1);
  assert.equal(await platformState(session), "offline");
  assert.equal((await stateOf(integrationId)).stop_pending, false);
  const actions = (await events(org.orgId)).map((e) => e.action);
  assert.ok(actions.indexOf("stop_failed") < actions.indexOf("session_stopped"), actions.join());
});

test("disconnect e2e: an unknown or another organisation's integration_id is 404", async () => {
  const mine = await orgWithLinkedNumber();
  const theirs = await orgWithLinkedNumber();
  const before = await snapshot();
  for (const id of [crypto.randomUUID(), theirs.integrationId]) {
    const r = await disconnect(mine.org.user.token, id);
    assert.equal(r.status, 404, JSON.stringify(r.data));
    assert.equal(r.data?.code, "not_found");
    assert.deepEqual(r.attempts.map((a) => a.status), [404]);
  }
  assert.equal(await snapshot(), before, "nothing stopped, nothing written");
  assert.equal(await platformState(theirs.session), "connected");
});

test("disconnect e2e: a member gets 403", async () => {
  const { org, session, integrationId } = await orgWithLinkedNumber("owner");
  const member = await org.addUser("member");
  book.secret(member.token);
  const before = await snapshot();
  const r = await disconnect(member.token, integrationId);
  assert.equal(r.status, 403);
  assert.equal(r.data?.code, "forbidden");
  assert.equal(await snapshot(), before);
  assert.equal(await platformState(session), "connected");
});

test("disconnect e2e: a later click reactivates the same row and shows a new QR", async () => {
  const { org, session, integrationId, qrcode } = await orgWithLinkedNumber();
  const off = await disconnect(org.user.token, integrationId);
  assert.equal(off.status, 200);
  const [back, calls] = await platformCallsDuring(() =>
    call(book, org.user.token, { body: { add_new: false } })
  );
  assert.equal(back.status, 200, back.text);
  assert.equal(back.json.integration_id, integrationId, "the same row");
  assert.equal(back.json.session, session, "its session is started again, not replaced");
  assert.equal(back.json.created, false);
  assert.equal(back.json.status, "qr_issued");
  assert.ok(typeof back.json.qrcode === "string" && back.json.qrcode !== qrcode, "a new QR");
  assert.equal(calls.create, 0);
  assert.equal(calls.start, 1);
  const rows = await integrations(org.orgId);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].is_active, true);
  assert.equal((await stateOf(integrationId)).disconnected_at, null);
  assert.ok((await events(org.orgId)).some((e) => e.action === "reactivated"));
  assert.equal(await platformState(session), "qr");
});

test("disconnect e2e: no secret reached an answer or a function log line in this file", async () => {
  const scanned = await book.assertNoneLeaked();
  assert.ok(scanned.secrets >= 10, JSON.stringify(scanned));
});
