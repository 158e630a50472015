import assert from "node:assert/strict";
import { assertBetween, rejectsWith, simTest, timed } from "./helpers.ts";

simTest("timeout: a hanging create fails after timeoutMs", async (h) => {
  const { client } = h.client({ timeoutMs: 300 });
  await h.admin.setFault({ op: "create", kind: "hang" });
  const [e, ms] = await timed(() => rejectsWith(client.createClient("org"), "platform_timeout"));
  assertBetween(ms, 300, 1_500, "create gave up after");
  assert.equal(e.op, "create");
});

simTest("timeout: each retry of a read has its own timeout", async (h) => {
  const { session } = await h.newSession({
    timeoutMs: 200,
    retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 10 },
  });
  await session.getToken();
  await h.admin.setFault({ op: "status", kind: "hang" });
  const [, ms] = await timed(() => rejectsWith(session.accountStatus(), "platform_timeout"));
  assertBetween(ms, 600, 2_000, "three attempts took");
  assert.equal((await h.admin.calls()).status, 3);
});

simTest("timeout: a slow body counts against the attempt", async (h) => {
  // The answer's headers arrive at once but the body stalls forever.
  const stalling: typeof fetch = async (input, init) => {
    await fetch(input, init).then((r) => r.body?.cancel());
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        init?.signal?.addEventListener("abort", () => controller.error(init.signal?.reason));
      },
    });
    return new Response(body, { status: 200 });
  };
  const slow = h.client({ timeoutMs: 300, fetch: stalling }).client;
  const [, ms] = await timed(() => rejectsWith(slow.createClient("org"), "platform_timeout"));
  assertBetween(ms, 300, 1_500, "gave up after");
});

simTest("deadline: the whole call stops at the deadline", async (h) => {
  const { session } = await h.newSession({
    timeoutMs: 5_000,
    retry: { attempts: 5, baseDelayMs: 10, maxDelayMs: 10 },
  });
  await session.getToken();
  await h.admin.setFault({ op: "status", kind: "hang" });
  const [e, ms] = await timed(() =>
    rejectsWith(session.accountStatus({ deadline: Date.now() + 400 }), "platform_timeout")
  );
  assertBetween(ms, 390, 1_500, "deadline hit after");
  assert.match(e.message, /deadline/);
  assert.equal((await h.admin.calls()).status, 1);
});

simTest("deadline: an expired deadline sends nothing", async (h) => {
  const { session } = await h.newSession();
  await rejectsWith(session.accountStatus({ deadline: Date.now() - 1 }), "platform_timeout");
  assert.equal((await h.admin.calls()).token, 0);
});

simTest("deadline: no backoff wait that would overrun it", async (h) => {
  const { session } = await h.newSession({
    retry: { attempts: 5, baseDelayMs: 2_000, maxDelayMs: 2_000 },
  });
  await session.getToken();
  await h.admin.setFault({ op: "qr", kind: "status", status: 503 });
  const [, ms] = await timed(() =>
    rejectsWith(session.getQr({ deadline: Date.now() + 500 }), "platform_error")
  );
  assert.ok(ms < 1_500, `waited ${ms} ms for a retry that could not fit (backoff is 2 s)`);
  assert.equal((await h.admin.calls()).qr, 1);
});

simTest("deadline: covers the token fetch of a bearer call", async (h) => {
  const { session } = await h.newSession({ timeoutMs: 5_000 });
  await h.admin.setFault({ op: "token", kind: "hang" });
  const [, ms] = await timed(() =>
    rejectsWith(session.startAccount({ deadline: Date.now() + 300 }), "platform_timeout")
  );
  assertBetween(ms, 290, 1_500, "gave up after");
  assert.equal((await h.admin.calls()).start, 0);
});

simTest("signal: aborting rejects with the signal's reason", async (h) => {
  const { session } = await h.newSession({ timeoutMs: 5_000 });
  await session.getToken();
  await h.admin.setFault({ op: "status", kind: "hang" });
  const controller = new AbortController();
  const reason = new Error("caller went away");
  setTimeout(() => controller.abort(reason), 100);
  const [, ms] = await timed(() =>
    assert.rejects(session.accountStatus({ signal: controller.signal }), (e) => e === reason)
  );
  assertBetween(ms, 90, 1_000, "aborted after");
});
