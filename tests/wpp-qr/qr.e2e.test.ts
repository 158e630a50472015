// wpp-qr end to end, as the CRM's panel calls it (GET ?session= and POST {session}) through its
// HTTP helper: the organisation's own session's QR for owners and admins, nothing for members or
// for another organisation's session, null once the phone is linked or the session replaced.
import assert from "node:assert/strict";
import { callFunction, createOrg, sim, snapshot } from "../_support/wpp.ts";
import { crmHelper } from "../_support/crm-helper.ts";
import {
  ageSessions,
  call,
  eventsDelivered,
  makeStale,
  platformCallsDuring,
  scanAndWait,
  SecretBook,
  test,
} from "../wpp-create/_e2e.ts";

const book = new SecretBook();

async function orgWithNumber(role: "owner" | "admin" = "admin") {
  const org = await createOrg(role);
  book.secret(org.user.token);
  const first = await call(book, org.user.token, { body: { add_new: false } });
  assert.equal(first.status, 200, first.text);
  const session = String(first.json.session);
  await eventsDelivered(session, 1);
  return {
    org,
    session,
    qrcode: String(first.json.qrcode),
    integrationId: String(first.json.integration_id),
  };
}

function panel(token: string) {
  const helper = crmHelper({ token });
  const record = <T extends { attempts: unknown; data: unknown }>(r: T) => {
    book.text(JSON.stringify(r));
    return r;
  };
  return {
    get: async (session: string) => record(await helper.get("wpp-qr", { session })),
    post: async (session: string) => record(await helper.post("wpp-qr", { session })),
  };
}

test("qr e2e: GET ?session= and POST {session} answer the stored QR without the platform", async () => {
  await book.harvest();
  await sim.reset();
  const { org, session, qrcode } = await orgWithNumber();
  const p = panel(org.user.token);
  const [[byGet, byPost], calls] = await platformCallsDuring(() =>
    Promise.all([p.get(session), p.post(session)])
  );
  for (const r of [byGet, byPost]) {
    assert.equal(r.status, 200, JSON.stringify(r.data));
    assert.equal(r.data?.success, true);
    assert.equal(r.data?.qr, qrcode, "the QR the click showed");
  }
  assert.deepEqual(Object.values(calls).filter((n) => n !== 0), [], "zero platform calls");

  // Stale: the platform is asked for the QR, and only for it.
  await makeStale(org.orgId);
  const [stale, staleCalls] = await platformCallsDuring(() => p.get(session));
  assert.equal(stale.data?.qr, qrcode);
  assert.deepEqual(Object.entries(staleCalls).filter(([, n]) => n !== 0), [["qr", 1]]);
});

test("qr e2e: another organisation's session is 404, with CORS so the browser can read it", async () => {
  const mine = await orgWithNumber();
  const theirs = await orgWithNumber();
  const before = await snapshot();
  const res = await callFunction(mine.org.user.token, {
    fn: `wpp-qr?session=${theirs.session}`,
    method: "GET",
    headers: { origin: "https://crm.example.test" },
  });
  book.text(res.text);
  assert.equal(res.status, 404, res.text);
  assert.equal(res.json.code, "not_found");
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.ok(!res.text.includes(theirs.qrcode));
  const post = await callFunction(mine.org.user.token, {
    fn: "wpp-qr",
    body: { session: theirs.session },
  });
  book.text(post.text);
  assert.equal(post.status, 404, post.text);
  assert.equal(await snapshot(), before, "nothing asked, nothing written");
});

test("qr e2e: a member gets 403 and no QR", async () => {
  const { org, session, qrcode } = await orgWithNumber("owner");
  const member = await org.addUser("member");
  book.secret(member.token);
  const r = await panel(member.token).get(session);
  assert.equal(r.status, 403);
  assert.equal(r.data?.code, "forbidden");
  assert.deepEqual(r.attempts.map((a) => a.status), [403], "the panel does not retry a 403");
  assert.ok(!JSON.stringify(r).includes(qrcode));
});

test("qr e2e: qr is null once the phone is linked", async () => {
  const { org, session, integrationId } = await orgWithNumber();
  await scanAndWait(session, integrationId);
  const [r, calls] = await platformCallsDuring(() => panel(org.user.token).get(session));
  assert.equal(r.status, 200);
  assert.equal(r.data?.qr, null);
  assert.equal(r.data?.reason, "connected");
  assert.equal(calls.qr, 0);
});

test("qr e2e: a replaced session's QR is never handed out", async () => {
  const { org, session } = await orgWithNumber();
  await ageSessions(org.orgId);
  const recreated = await call(book, org.user.token, { body: { force_recreate: true } });
  assert.equal(recreated.status, 200, recreated.text);
  const p = panel(org.user.token);
  const [old, calls] = await platformCallsDuring(() => p.get(session));
  assert.equal(old.status, 200);
  assert.equal(old.data?.qr, null);
  assert.equal(old.data?.reason, "replaced");
  assert.equal(calls.qr + calls.start, 0);
  const current = await p.get(String(recreated.json.session));
  assert.equal(current.data?.qr, recreated.json.qrcode);
});

test("qr e2e: no secret reached an answer or a function log line in this file", async () => {
  const scanned = await book.assertNoneLeaked();
  assert.ok(scanned.secrets >= 10, JSON.stringify(scanned));
});
