import assert from "node:assert/strict";
import type { Operation } from "../../dev/wpp-simulator/types.ts";
import { rejectsWith, simTest } from "./helpers.ts";

simTest("retry: create is never retried, whatever the failure", async (h) => {
  const { client } = h.client({ timeoutMs: 300 });
  await h.admin.setFault({ op: "create", kind: "status", status: 503, times: 1 });
  await rejectsWith(client.createClient("org"), "platform_error");
  await h.admin.setFault({ op: "create", kind: "close", times: 1 });
  await rejectsWith(client.createClient("org"), "platform_unreachable");
  await h.admin.setFault({ op: "create", kind: "hang", times: 1 });
  await rejectsWith(client.createClient("org"), "platform_timeout");
  assert.equal((await h.admin.calls()).create, 3);
});

const RETRIED: Operation[] = ["start", "status", "qr", "webhook", "stop"];

for (const op of RETRIED) {
  simTest(`retry: ${op} is retried on 5xx, close and timeout`, async (h) => {
    // Four attempts: a connection cut while kept alive may be re-sent by fetch itself (these
    // calls are safe to repeat, see perform.ts), so the cut costs the client one attempt or none.
    const { session, events } = await h.newSession({
      timeoutMs: 300,
      retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 },
    });
    await session.getToken();
    await h.admin.setFault({ op, kind: "status", status: 503, times: 1 });
    await h.admin.setFault({ op, kind: "close", times: 1 });
    await h.admin.setFault({ op, kind: "hang", times: 1 });
    const run = {
      start: () => session.startAccount(),
      status: () => session.accountStatus(),
      qr: () => session.getQr(),
      webhook: () => session.registerWebhook("https://hooks.example.test/w"),
      stop: () => session.stop(),
    }[op as Exclude<Operation, "create" | "token">];
    await run();
    // Every fault was met, and the call still went through.
    assert.equal((await h.admin.calls())[op], 4);
    assert.deepEqual((await h.admin.faults()).filter((f) => f.op === op), []);
    const mine = events.filter((e) => e.op === op);
    assert.deepEqual(mine.at(-1)?.ok, true);
    const codes = mine.filter((e) => !e.ok).map((e) => e.code);
    assert.equal(codes[0], "platform_error");
    assert.ok(codes.includes("platform_timeout"), codes.join());
    assert.ok(codes.every((c) => c !== undefined && c !== "platform_rejected"), codes.join());
  });

  simTest(`retry: ${op} gives up after its attempts`, async (h) => {
    const { session } = await h.newSession();
    await session.getToken();
    await h.admin.setFault({ op, kind: "status", status: 503 });
    const run = {
      start: () => session.startAccount(),
      status: () => session.accountStatus(),
      qr: () => session.getQr(),
      webhook: () => session.registerWebhook("https://hooks.example.test/w"),
      stop: () => session.stop(),
    }[op as Exclude<Operation, "create" | "token">];
    await rejectsWith(run(), "platform_error");
    assert.equal((await h.admin.calls())[op], 3);
  });
}

simTest("retry: reads recover within the attempts", async (h) => {
  const { session, events } = await h.newSession();
  await session.getToken();
  await h.admin.setFault({ op: "status", kind: "status", status: 500, times: 2 });
  assert.equal((await session.accountStatus()).status, "starting");
  assert.equal((await h.admin.calls()).status, 3);
  const statusEvents = events.filter((e) => e.op === "status");
  assert.deepEqual(statusEvents.map((e) => [e.attempt, e.ok, e.status, e.code]), [
    [1, false, 500, "platform_error"],
    [2, false, 500, "platform_error"],
    [3, true, 200, undefined],
  ]);
});

simTest("retry: 4xx answers are not retried", async (h) => {
  const { session } = await h.newSession();
  await session.getToken();
  await h.admin.setFault({ op: "qr", kind: "status", status: 404 });
  await rejectsWith(session.getQr(), "platform_rejected");
  assert.equal((await h.admin.calls()).qr, 1);
});

simTest("retry: malformed answers are not retried", async (h) => {
  const { session } = await h.newSession();
  await session.getToken();
  await h.admin.setFault({ op: "status", kind: "malformed" });
  await rejectsWith(session.accountStatus(), "platform_malformed");
  assert.equal((await h.admin.calls()).status, 1);
});

simTest("retry: backoff waits grow and are logged", async (h) => {
  const { session, logs } = await h.newSession({
    retry: { attempts: 4, baseDelayMs: 40, maxDelayMs: 100 },
  });
  await session.getToken();
  await h.admin.setFault({ op: "status", kind: "status", status: 502 });
  const started = performance.now();
  await rejectsWith(session.accountStatus(), "platform_error");
  const waits = logs.filter((l) => l.event === "wpp.retry").map((l) => l.delayMs as number);
  assert.equal(waits.length, 3);
  // Equal jitter: each wait is between half and all of min(max, base * 2^n).
  [40, 80, 100].forEach((ceiling, i) => {
    assert.ok(waits[i] >= ceiling / 2 && waits[i] <= ceiling, `wait ${i}: ${waits[i]}`);
  });
  assert.ok(performance.now() - started >= waits.reduce((a, b) => a + b, 0) - 5);
});
