import assert from "node:assert/strict";
import { eventually } from "../wpp-client/helpers.ts";
import { eventTest, receivedAtLeast, settle, texts } from "./_receiver.ts";

eventTest("event faults: drop the next N events", async (t) => {
  const fault = await t.admin.setEventFault({ kind: "drop", times: 2 });
  assert.equal(fault.remaining, 2);
  const answers = [];
  for (const text of ["one", "two", "three"]) {
    answers.push(await t.admin.sendMessage(t.id, { from: "5511", text }));
  }
  await receivedAtLeast(t.rx, 1);
  await settle();
  assert.deepEqual(texts(t.rx.received), ["three"]);
  assert.deepEqual(answers.map((a) => a.dropped), [true, true, false]);
  const records = await t.admin.deliveries();
  assert.deepEqual(records.map((r) => [r.dropped, r.attempt, r.ok]), [
    [true, 0, false],
    [true, 0, false],
    [false, 1, true],
  ]);
  assert.deepEqual(await t.admin.eventFaults(), [], "spent");
});

eventTest("event faults: a drop scoped to a type and session spares the rest", async (t) => {
  await t.admin.setEventFault({ kind: "drop", types: ["message"], session: t.id });
  const other = await t.newSession();
  await other.session.registerWebhook(t.rx.url);
  await t.admin.sendMessage(t.id, { from: "5511", text: "dropped" });
  await t.admin.emitDelivery(t.id, "M1", "read");
  await t.admin.sendMessage(other.id, { from: "5511", text: "other session" });
  await receivedAtLeast(t.rx, 2);
  await settle();
  const got = t.rx.received.map((r) => r.body.type === "delivery" ? "delivery" : r.body.text);
  assert.deepEqual(got.sort(), ["delivery", "other session"]);
  assert.equal((await t.admin.eventFaults()).length, 1, "lasts until cleared");
});

eventTest("event faults: drop with a probability", async (t) => {
  await t.admin.setEventFault({ kind: "drop", probability: 0.5 });
  const report = await t.admin.burst({ session: t.id, count: 200, concurrency: 16 });
  // Both bounds fail only with probability 2^-199.
  assert.ok(report.dropped > 0 && report.dropped < 200, `dropped ${report.dropped}`);
  assert.equal(report.delivered, 200 - report.dropped);
  await receivedAtLeast(t.rx, 200 - report.dropped);
  assert.equal(t.rx.received.length, 200 - report.dropped);
});

eventTest("event faults: a fixed delay holds each event", async (t) => {
  await t.admin.setEventFault({ kind: "delay", ms: 300, times: 1 });
  const started = performance.now();
  await t.admin.sendMessage(t.id, { from: "5511", text: "late" });
  assert.ok(performance.now() - started < 250, "the emission itself is not held");
  await t.admin.sendMessage(t.id, { from: "5511", text: "on time" });
  const [first, second] = await receivedAtLeast(t.rx, 2);
  assert.deepEqual(texts([first, second]), ["on time", "late"]);
  // timestamp is when the platform produced the event, so it shows the lag.
  assert.ok(second.at - second.body.timestamp! >= 290, `lag ${second.at - second.body.timestamp!}`);
  assert.ok(first.at - first.body.timestamp! < 250);
});

eventTest("event faults: random jitter spreads events out", async (t) => {
  await t.admin.setEventFault({ kind: "delay", jitterMs: 300, forMs: 10_000 });
  for (let i = 0; i < 20; i++) await t.admin.sendMessage(t.id, { from: "5511", text: `${i}` });
  const lags = (await receivedAtLeast(t.rx, 20)).map((r) => r.at - r.body.timestamp!);
  assert.ok(Math.max(...lags) <= 300 + 250, `lags ${lags}`);
  // Twenty uniform draws over 300 ms all within 30 ms of each other: about 20 * 0.1^19.
  assert.ok(Math.max(...lags) - Math.min(...lags) > 30, `lags ${lags}`);
});

eventTest("event faults: duplicate sends the same body k times", async (t) => {
  await t.admin.setEventFault({ kind: "duplicate", copies: 3, times: 1 });
  const twice = await t.admin.sendMessage(t.id, { from: "5511", text: "thrice" });
  await receivedAtLeast(t.rx, 3);
  await t.admin.sendMessage(t.id, { from: "5511", text: "once" });
  await receivedAtLeast(t.rx, 4);
  await settle();
  assert.deepEqual(texts(t.rx.received), ["thrice", "thrice", "thrice", "once"]);
  const [a, b, c] = t.rx.received.map((r) => r.body);
  assert.deepEqual(a, b);
  assert.deepEqual(b, c);
  const copies = await t.admin.deliveries({ eventId: twice.eventId });
  assert.deepEqual(copies.map((r) => [r.copy, r.duplicate]).sort(), [
    [1, false],
    [2, true],
    [3, true],
  ]);
});

eventTest("event faults: reorder holds a window and sends it shuffled", async (t) => {
  await t.admin.setEventFault({ kind: "reorder", windowMs: 400, times: 6 });
  const sent = ["a", "b", "c", "d", "e", "f"];
  const ids = new Map<string | undefined, string>();
  const started = Date.now();
  for (const text of sent) {
    ids.set(text, (await t.admin.sendMessage(t.id, { from: "5511", text })).eventId);
  }
  const received = await receivedAtLeast(t.rx, 6);
  const order = texts(received);
  assert.deepEqual([...order].sort(), sent);
  assert.notDeepEqual(order, sent);
  assert.ok(received[0].at - started >= 390, "held for the window");
  // Held events go one at a time, so the records' order is the order the receiver saw, and
  // exactly those that moved are flagged.
  const records = await eventually(async () => {
    const r = await t.admin.deliveries();
    return r.length === 6 ? r : undefined;
  }, "six records");
  assert.deepEqual(records.map((r) => r.eventId), order.map((text) => ids.get(text)));
  assert.deepEqual(records.map((r) => r.reordered), order.map((text, i) => text !== sent[i]));
  assert.deepEqual(await t.admin.eventFaults(), [], "times counts events");
});

eventTest("event faults: one attempt by default, bounded retries when asked", async (t) => {
  t.rx.respond = () => new Response("busy", { status: 503 });
  await t.admin.sendMessage(t.id, { from: "5511", text: "no retry" });
  await receivedAtLeast(t.rx, 1);
  await settle();
  assert.equal(t.rx.received.length, 1);

  t.rx.received.length = 0;
  let calls = 0;
  t.rx.respond = () => new Response(null, { status: ++calls <= 2 ? 503 : 200 });
  await t.admin.setEventFault({ kind: "retry", attempts: 3, backoffMs: 50 });
  const retried = await t.admin.sendMessage(t.id, { from: "5511", text: "retried" });
  const got = await receivedAtLeast(t.rx, 3);
  assert.deepEqual(got[0].body, got[2].body, "a retry resends the same body");
  assert.ok(got[1].at - got[0].at >= 45, "backoff between attempts");
  const records = await eventually(async () => {
    const r = await t.admin.deliveries({ eventId: retried.eventId });
    return r.length === 3 ? r : undefined;
  }, "three attempts recorded");
  assert.deepEqual(records.map((r) => [r.attempt, r.status, r.ok]), [
    [1, 503, false],
    [2, 503, false],
    [3, 200, true],
  ]);

  t.rx.received.length = 0;
  t.rx.respond = () => new Response(null, { status: 500 });
  await t.admin.sendMessage(t.id, { from: "5511", text: "gives up" });
  await receivedAtLeast(t.rx, 3);
  await settle(300);
  assert.equal(t.rx.received.length, 3, "no more than the attempts allowed");
});

eventTest("event faults: a receiver slower than the timeout is cut", async (t) => {
  t.rx.respond = async () => {
    await t.rx.sleep(1_500);
    return new Response("too late");
  };
  await t.admin.setEventFault({ kind: "retry", timeoutMs: 150, attempts: 2 });
  const slow = await t.admin.sendMessage(t.id, { from: "5511", text: "slow" });
  const records = await eventually(async () => {
    const r = await t.admin.deliveries({ eventId: slow.eventId });
    return r.length === 2 ? r : undefined;
  }, "two timed-out attempts");
  for (const r of records) {
    assert.equal(r.error, "TimeoutError");
    assert.equal(r.ok, false);
    assert.ok(r.ms! >= 140 && r.ms! < 1_400, `attempt took ${r.ms}`);
  }
});

eventTest("event faults: they end by time, by DELETE and by reset", async (t) => {
  const timed = await t.admin.setEventFault({ kind: "drop", forMs: 150 });
  assert.ok(timed.until! > Date.now());
  await t.admin.setEventFault({ kind: "delay", ms: 10 });
  await t.admin.setEventFault({ kind: "duplicate", copies: 2 });
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual((await t.admin.eventFaults()).map((f) => f.kind), ["delay", "duplicate"]);
  assert.equal(await t.admin.clearEventFaults("delay"), 1);
  assert.deepEqual((await t.admin.eventFaults()).map((f) => f.kind), ["duplicate"]);
  await t.admin.sendMessage(t.id, { from: "5511", text: "twice" });
  await receivedAtLeast(t.rx, 2);
  assert.equal((await t.admin.state()).eventFaults.length, 1);

  await t.admin.setEventFault({ kind: "reorder", windowMs: 5_000 });
  await t.admin.sendMessage(t.id, { from: "5511", text: "held, then reset" });
  await t.admin.reset();
  const state = await t.admin.state();
  assert.deepEqual([state.eventFaults, state.deliveries], [[], []]);
  await settle(300);
  assert.equal(t.rx.received.length, 2, "a reset abandons what was held");
});

eventTest("event faults: the admin API refuses bad fault bodies", async (t) => {
  const bad = [
    { kind: "explode" },
    { kind: "delay" },
    { kind: "drop", ms: 5 },
    { kind: "duplicate" },
    { kind: "duplicate", copies: 1 },
    { kind: "reorder" },
    { kind: "retry" },
    { kind: "retry", attempts: 0 },
    { kind: "drop", probability: 0 },
    { kind: "drop", probability: 1.5 },
    { kind: "drop", types: ["nope"] },
    { kind: "drop", times: 0 },
    { kind: "drop", url: "x" },
  ];
  for (const body of bad) {
    await assert.rejects(
      t.admin.setEventFault(body as unknown as { kind: "drop" }),
      /400/,
      JSON.stringify(body),
    );
  }
  await assert.rejects(
    t.admin.clearEventFaults("nope" as unknown as "drop"),
    /400/,
  );
  assert.deepEqual(await t.admin.eventFaults(), []);
});
