import assert from "node:assert/strict";
import { eventTest, receivedAtLeast, texts } from "./_receiver.ts";

eventTest("burst: everything delivered within the concurrency, with percentiles", async (t) => {
  t.rx.respond = async () => {
    await t.rx.sleep(5);
    return new Response("ok");
  };
  const report = await t.admin.burst({ session: t.id, count: 200, concurrency: 8 });
  assert.deepEqual(
    [report.count, report.deliveries, report.delivered, report.failed, report.attempts],
    [200, 200, 200, 0, 200],
  );
  assert.deepEqual([report.dropped, report.errors], [0, {}]);
  const { p50, p90, p99, max } = report.latencyMs;
  assert.ok(p50! >= 5 && p50! <= p90! && p90! <= p99! && p99! <= max!, JSON.stringify(report));
  assert.ok(report.durationMs > 0 && report.perSecond > 0);
  // The burst answers once all is settled: nothing is still on its way.
  assert.equal(t.rx.received.length, 200);
  const ids = new Set(t.rx.received.map((r) => r.body.messageId));
  assert.equal(ids.size, 200, "distinct events");
  assert.ok(t.rx.maxInFlight <= 8, `in flight ${t.rx.maxInFlight}`);
  assert.ok(t.rx.maxInFlight >= 2, "the concurrency is used");
  const records = await t.admin.deliveries({ session: t.id });
  assert.equal(records.length, 200);
  assert.ok(records.every((r) => r.ok && r.type === "message"));
});

eventTest("burst: one at a time, shuffled and duplicated", async (t) => {
  const report = await t.admin.burst({
    session: t.id,
    count: 10,
    concurrency: 1,
    duplicate: 2,
    reorder: true,
  });
  assert.deepEqual([report.deliveries, report.delivered], [20, 20]);
  assert.equal(t.rx.maxInFlight, 1);
  const order = texts(t.rx.received);
  const produced = Array.from({ length: 10 }, (_, i) => `burst ${i}`);
  // Each event's copies go out back to back; the events themselves in a shuffled order.
  const events = order.filter((_, i) => i % 2 === 0);
  assert.deepEqual(order, events.flatMap((e) => [e, e]));
  assert.deepEqual([...events].sort(), [...produced].sort());
  assert.notDeepEqual(events, produced);
  const records = await t.admin.deliveries();
  assert.equal(records.filter((r) => r.duplicate).length, 10);
  assert.ok(records.some((r) => r.reordered));
});

eventTest("burst: event types in turn", async (t) => {
  await t.admin.burst({ session: t.id, count: 6, types: ["delivery", "ready", "qr"] });
  const bodies = (await receivedAtLeast(t.rx, 6)).map((r) => r.body);
  const count = (type: string) => bodies.filter((b) => b.type === type).length;
  assert.deepEqual([count("delivery"), count("ready"), count("qr")], [2, 2, 2]);
  for (const b of bodies.filter((b) => b.type === "delivery")) {
    assert.ok(["sent", "delivered", "read"].includes(b.status!));
    assert.ok(b.messageId);
  }
  assert.ok(bodies.filter((b) => b.type === "qr").every((b) => b.qr?.startsWith("2@")));
});

eventTest("burst: failures are counted by status", async (t) => {
  t.rx.respond = (n) => new Response(null, { status: n % 3 === 0 ? 500 : 200 });
  const report = await t.admin.burst({ session: t.id, count: 30, concurrency: 4 });
  assert.deepEqual([report.delivered, report.failed, report.errors], [20, 10, { "500": 10 }]);
  assert.equal(report.latencyMs.p50 !== null, true);
});

eventTest("burst: the admin API refuses bad bursts", async (t) => {
  const other = await t.newSession();
  await assert.rejects(t.admin.burst({ session: other.id, count: 1 }), /409/);
  await assert.rejects(t.admin.burst({ session: "0000000000099", count: 1 }), /404/);
  for (
    const spec of [
      { session: t.id, count: 0 },
      { session: t.id, count: 10_001 },
      { session: t.id, count: 1, concurrency: 0 },
      { session: t.id, count: 1, types: ["nope"] },
      { session: t.id, count: 1, duplicate: 0 },
      { count: 1 },
    ]
  ) {
    await assert.rejects(
      t.admin.burst(spec as unknown as { session: string; count: number }),
      /400/,
      JSON.stringify(spec),
    );
  }
  assert.equal(t.rx.received.length, 0);
});
