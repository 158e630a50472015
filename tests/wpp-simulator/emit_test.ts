import assert from "node:assert/strict";
import { SESSION_EVENT_WORDS } from "../../dev/wpp-simulator/types.ts";
import { eventually } from "../wpp-client/helpers.ts";
import { eventTest, receivedAtLeast, settle, startReceiver } from "./_receiver.ts";

eventTest("emit: any session event word, sent as given, without a state change", async (t) => {
  const { qr } = await t.session.startAccount();
  await receivedAtLeast(t.rx, 1);
  for (const [i, word] of SESSION_EVENT_WORDS.entries()) {
    const answer = await t.admin.emitEvent(t.id, { type: word });
    assert.equal(answer.type, word);
    assert.equal(answer.session, t.id);
    assert.match(answer.eventId, /^evt_\d+$/);
    await receivedAtLeast(t.rx, i + 2);
  }
  const words = t.rx.received.slice(1).map((r) => r.body.type);
  assert.deepEqual(words, [...SESSION_EVENT_WORDS]);
  // A qr event without a QR of its own repeats the one on show.
  assert.equal(t.rx.received[1].body.qr, qr);
  assert.equal((await t.session.accountStatus()).status, "qr");

  await t.admin.emitEvent(t.id, { type: "qr", qr: "2@given,qr" });
  const [last] = (await receivedAtLeast(t.rx, SESSION_EVENT_WORDS.length + 2)).slice(-1);
  assert.equal(last.body.qr, "2@given,qr");
  assert.equal((await t.admin.state()).sessions[0].qr, qr);
});

eventTest("emit: answers 202, 404 for an unknown session, 409 without a webhook", async (t) => {
  const post = (path: string, body: unknown) =>
    fetch(`${t.sim.url}/__admin/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", connection: "close" },
      body: JSON.stringify(body),
    }).then(async (r) => [r.status, await r.json()]);

  const [ok, answer] = await post(`sessions/${t.id}/message`, { from: "5511", text: "x" });
  assert.equal(ok, 202);
  assert.equal(answer.type, "message");
  assert.equal(answer.dropped, false);
  assert.deepEqual((await post("sessions/0000000000099/message", { from: "1" }))[0], 404);
  const other = { session: (await t.newSession()).id };
  assert.deepEqual(await post(`sessions/${other.session}/events`, { type: "ready" }), [
    409,
    { error: "session has no webhook URL" },
  ]);
  assert.equal((await post(`sessions/${other.session}/message`, { from: "1" }))[0], 409);

  const bad: [string, unknown][] = [
    ["message", { text: "no sender" }],
    ["message", { from: "1", colour: "red" }],
    ["message", { from: "1", media: "not an object" }],
    ["events", { type: "bogus" }],
    ["events", { type: "delivery", messageId: "m", status: "seen" }],
    ["events", { type: "delivery", status: "read" }],
    ["events", { type: "ready", qr: "only qr events carry one" }],
    ["events", undefined],
  ];
  for (const [route, body] of bad) {
    const [status] = await post(`sessions/${t.id}/${route}`, body);
    assert.equal(status, 400, `${route} ${JSON.stringify(body)}`);
  }
  await receivedAtLeast(t.rx, 1);
  await settle();
  assert.equal(t.rx.received.length, 1);
});

eventTest("emit: every delivery is recorded, never with the URL or a QR", async (t) => {
  const { qr } = await t.session.startAccount();
  await receivedAtLeast(t.rx, 1);
  const message = await t.admin.sendMessage(t.id, { from: "5511", text: "hello" });
  await receivedAtLeast(t.rx, 2);

  // A second session whose receiver is gone: a failed delivery is recorded too.
  const dead = startReceiver();
  await dead.close();
  const other = await t.newSession();
  await other.session.registerWebhook(dead.url);
  const { qr: otherQr } = await other.session.startAccount();

  const records = await eventually(async () => {
    const all = await t.admin.deliveries();
    return all.length === 3 ? all : undefined;
  }, "three delivery records");
  const [shown, inbound] = records;
  assert.deepEqual(shown, {
    eventId: shown.eventId,
    type: "qr",
    session: t.id,
    at: shown.at,
    ok: true,
    status: 200,
    attempt: 1,
    copy: 1,
    duplicate: false,
    reordered: false,
    dropped: false,
    ms: shown.ms,
  });
  assert.equal(inbound.type, "message");
  assert.equal(inbound.eventId, message.eventId);
  const failed = await t.admin.deliveries({ session: other.id });
  assert.equal(failed.length, 1);
  assert.equal(failed[0].ok, false);
  assert.equal(failed[0].status, undefined);
  assert.ok(failed[0].error, "a refused connection is named");
  assert.deepEqual((await t.admin.deliveries({ type: "message" })).map((d) => d.eventId), [
    message.eventId,
  ]);

  const dumps = [
    JSON.stringify(records),
    JSON.stringify((await t.admin.state()).deliveries),
    JSON.stringify((await t.admin.state({ reveal: true })).deliveries),
  ];
  for (const dump of dumps) {
    for (const secret of [t.rx.secret, dead.secret, qr!, otherQr!, "127.0.0.1"]) {
      assert.ok(!dump.includes(secret), `${secret} leaked into ${dump}`);
    }
  }
  assert.equal(await t.admin.clearDeliveries(), 3);
  assert.deepEqual(await t.admin.deliveries(), []);
});
