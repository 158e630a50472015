import assert from "node:assert/strict";
import type { Variants, WebhookPayload } from "../../dev/wpp-simulator/types.ts";
import { eventTest, receivedAtLeast } from "./_receiver.ts";

const EVENT_DEFAULTS: Partial<Variants> = {
  eventTypeField: "type",
  eventAccountField: "account",
  eventQrField: "qr",
  eventQrFormat: "raw",
  connectedEvent: "connected",
  offlineEvent: "disconnected",
  messageTextField: "text",
  eventTimestamp: true,
};

eventTest("events: by default today's shapes plus a timestamp", async (t) => {
  const before = Date.now();
  // Each step waits for its event: concurrent sends could otherwise arrive out of order.
  const { qr } = await t.session.startAccount();
  await receivedAtLeast(t.rx, 1);
  await t.admin.scan(t.id);
  await receivedAtLeast(t.rx, 2);
  await t.session.stop();
  const [shown, linked, gone] = (await receivedAtLeast(t.rx, 3)).map((r) => r.body);
  const after = Date.now();
  for (const body of [shown, linked, gone]) {
    assert.ok(body.timestamp! >= before && body.timestamp! <= after, `timestamp ${body.timestamp}`);
  }
  assert.deepEqual(shown, { type: "qr", account: t.id, qr, timestamp: shown.timestamp });
  assert.deepEqual(linked, { type: "connected", account: t.id, timestamp: linked.timestamp });
  assert.deepEqual(gone, { type: "disconnected", account: t.id, timestamp: gone.timestamp });
});

eventTest("events: type, account and QR fields follow the variants", async (t) => {
  const cases: [Partial<Variants>, (body: WebhookPayload, qr: string) => void][] = [
    [{ eventTypeField: "event" }, (b, qr) => {
      assert.equal(b.event, "qr");
      assert.ok(!("type" in b));
      assert.equal(b.qr, qr);
    }],
    [{ eventAccountField: "data.account" }, (b, qr) => {
      assert.deepEqual(b.data, { account: t.id });
      assert.ok(!("account" in b));
      assert.equal(b.qr, qr);
    }],
    [{ eventQrField: "qrcode" }, (b, qr) => {
      assert.equal(b.qrcode, qr);
      assert.ok(!("qr" in b));
    }],
    [{ eventQrField: "data.qr", eventAccountField: "data.account" }, (b, qr) => {
      assert.deepEqual(b.data, { account: t.id, qr });
      assert.ok(!("qr" in b) && !("account" in b));
    }],
    [{ eventQrFormat: "data-url" }, (b, qr) => {
      assert.equal(b.qr, `data:image/png;base64,${btoa(qr)}`);
    }],
    [{ eventTimestamp: false }, (b) => {
      assert.ok(!("timestamp" in b));
      assert.equal(b.type, "qr");
    }],
  ];
  for (const [variants, check] of cases) {
    await t.admin.setVariants({ ...EVENT_DEFAULTS, ...variants });
    const n = t.rx.received.length;
    // Each start on an unlinked session shows (and announces) a new QR.
    const { qr } = await t.session.startAccount();
    const [latest] = (await receivedAtLeast(t.rx, n + 1)).slice(n);
    check(latest.body, qr!);
  }
});

eventTest("events: the connected and offline words follow the variants", async (t) => {
  const words: string[] = [];
  const offline = ["offline", "disconnected", "logout"] as const;
  for (const [i, offlineEvent] of offline.entries()) {
    const connectedEvent = i % 2 ? "connected" : "ready";
    await t.admin.setVariants({ connectedEvent, offlineEvent });
    await t.session.startAccount();
    await receivedAtLeast(t.rx, words.push("qr"));
    await t.admin.scan(t.id);
    await receivedAtLeast(t.rx, words.push(connectedEvent));
    // Both ways of going offline: the integration stops it, or the phone unlinks.
    if (i % 2) await t.session.stop();
    else await t.admin.disconnect(t.id);
    await receivedAtLeast(t.rx, words.push(offlineEvent));
  }
  assert.deepEqual(t.rx.received.map((r) => r.body.type), words);
});

eventTest("events: inbound messages carry the documented fields", async (t) => {
  const sent = await t.admin.sendMessage(t.id, { from: "5511999990000", text: "hi" });
  const [plain] = (await receivedAtLeast(t.rx, 1)).map((r) => r.body);
  assert.deepEqual(plain, {
    account: t.id,
    from: "5511999990000",
    raw_from: "5511999990000@c.us",
    text: "hi",
    type: "chat",
    messageId: sent.messageId,
    fromMe: false,
    timestamp: plain.timestamp,
  });
  assert.match(sent.messageId!, /^3EB0[0-9A-F]{20}$/);

  await t.admin.setVariants({
    messageTextField: "body",
    eventAccountField: "data.account",
    eventTypeField: "event",
    eventTimestamp: false,
  });
  const media = { mimetype: "image/jpeg", url: "https://media.example/x.jpg", caption: "look" };
  await t.admin.sendMessage(t.id, {
    from: "5511988887777@c.us",
    text: "see attached",
    type: "image",
    messageId: "ABC123",
    fromMe: true,
    media,
  });
  const [, shaped] = (await receivedAtLeast(t.rx, 2)).map((r) => r.body);
  assert.deepEqual(shaped, {
    from: "5511988887777",
    raw_from: "5511988887777@c.us",
    body: "see attached",
    type: "image",
    messageId: "ABC123",
    fromMe: true,
    media,
    data: { account: t.id },
  });
});

eventTest("events: delivery statuses", async (t) => {
  const statuses = ["sent", "delivered", "read", "deleted"] as const;
  for (const status of statuses) await t.admin.emitDelivery(t.id, "MSG-1", status);
  await receivedAtLeast(t.rx, 4);
  await t.admin.setVariants({ eventTypeField: "event" });
  await t.admin.emitDelivery(t.id, "MSG-2", "read");
  const bodies = (await receivedAtLeast(t.rx, 5)).map((r) => r.body);
  // Fire-and-forget sends may arrive in any order, so compare as sets.
  const seen = bodies.slice(0, 4).map((b) => b.status).sort();
  assert.deepEqual(seen, [...statuses].sort());
  for (const b of bodies.slice(0, 4)) {
    assert.deepEqual(Object.keys(b).sort(), [
      "account",
      "messageId",
      "status",
      "timestamp",
      "type",
    ]);
    assert.equal(b.type, "delivery");
    assert.equal(b.messageId, "MSG-1");
  }
  assert.equal(bodies[4].event, "delivery");
  assert.ok(!("type" in bodies[4]));
});
