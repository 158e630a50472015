import assert from "node:assert/strict";
import { DEFAULT_TOKEN_TTL_MS } from "../../supabase/functions/_shared/wpp/answers.ts";
import { assertBetween, rejectsWith, simTest, timed } from "./helpers.ts";

const TTL_SECONDS = 120;

simTest("token: expiry comes from expiresIn", async ({ newSession }) => {
  const { session } = await newSession();
  const before = Date.now();
  const token = await session.getToken();
  const took = Date.now() - before;
  assert.ok(token.token.length > 20);
  // The expiry counts from when the request left, somewhere inside [before, before + took].
  assertBetween(
    token.expiresAt - before,
    TTL_SECONDS * 1000 - 1000,
    TTL_SECONDS * 1000 + took,
    "ttl",
  );
}, { tokenTtlSeconds: TTL_SECONDS });

simTest("token: without expiresIn, 15 minutes are assumed", async ({ newSession, admin }) => {
  await admin.setVariants({ expiresIn: false });
  const { session } = await newSession();
  const before = Date.now();
  const token = await session.getToken();
  const took = Date.now() - before;
  assertBetween(
    token.expiresAt - before,
    DEFAULT_TOKEN_TTL_MS - 1000,
    DEFAULT_TOKEN_TTL_MS + took,
    "ttl",
  );
}, { tokenTtlSeconds: TTL_SECONDS });

simTest("token: cached until the safety margin", async ({ newSession, admin }) => {
  const { session } = await newSession({ tokenSafetyMarginMs: 1_000 });
  const first = await session.getToken();
  const second = await session.getToken();
  await session.accountStatus();
  assert.equal(second.token, first.token);
  assert.equal((await admin.calls()).token, 1);
  assert.deepEqual(session.newToken(), first);
});

simTest("token: inside the safety margin a new one is fetched", async ({ newSession, admin }) => {
  // TTL 120 s with a 200 s margin: every token is already "too old" to reuse.
  const { session } = await newSession({ tokenSafetyMarginMs: 200_000 });
  const first = await session.getToken();
  const second = await session.getToken();
  assert.notEqual(second.token, first.token);
  assert.equal((await admin.calls()).token, 2);
}, { tokenTtlSeconds: TTL_SECONDS });

simTest("token: a stored token is reused without a token call", async ({ newSession, admin }) => {
  const { client, session, apiKey, id } = await newSession();
  const stored = await session.getToken();
  const later = client.forSession({ apiKey, session: id, storedToken: stored });
  const status = await later.accountStatus();
  assert.equal(status.status, "starting");
  assert.equal((await admin.calls()).token, 1);
  assert.equal(later.newToken(), null);
  assert.deepEqual(await later.getToken(), stored);
});

simTest("token: a stored token about to expire is replaced", async ({ newSession, admin }) => {
  const { client, apiKey, id } = await newSession({ tokenSafetyMarginMs: 60_000 });
  const stale = {
    token: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
    expiresAt: Date.now() + 30_000,
  };
  const later = client.forSession({ apiKey, session: id, storedToken: stale });
  await later.accountStatus();
  assert.equal((await admin.calls()).token, 1);
  const fresh = later.newToken();
  assert.ok(fresh && fresh.token !== stale.token);
});

simTest("token: an expired token is refreshed once and the call repeated", async (h) => {
  const { session } = await h.newSession();
  const first = await session.getToken();
  await h.admin.expireTokens();
  const status = await session.accountStatus();
  assert.equal(status.connected, false);
  const calls = await h.admin.calls();
  assert.equal(calls.token, 2);
  assert.equal(calls.status, 2);
  assert.notEqual(session.newToken()?.token, first.token);
});

simTest("token: a stored token the platform refuses is replaced", async (h) => {
  const { client, session, apiKey, id } = await h.newSession();
  const stored = await session.getToken();
  await h.admin.expireTokens();
  const later = client.forSession({ apiKey, session: id, storedToken: stored });
  await later.startAccount();
  assert.equal((await h.admin.calls()).token, 2);
  assert.ok(later.newToken());
});

simTest("token: a second 401 is not refreshed again", async ({ newSession, admin }) => {
  const { session } = await newSession();
  await session.getToken();
  await admin.setFault({ op: "status", kind: "status", status: 401 });
  const e = await rejectsWith(session.accountStatus(), "platform_rejected");
  assert.equal(e.status, 401);
  const calls = await admin.calls();
  assert.equal(calls.token, 2);
  assert.equal(calls.status, 2);
});

simTest("token: a killed key is invalid_api_key at once", async ({ newSession, admin }) => {
  const { session, id } = await newSession();
  await admin.killApiKey({ session: id });
  const e = await rejectsWith(session.getToken(), "invalid_api_key");
  assert.equal(e.status, 403);
  assert.equal(e.platformMessage, "Invalid API key");
  assert.equal((await admin.calls()).token, 1);
});

simTest("token: a 401 refusal (variant) is invalid_api_key too", async ({ newSession, admin }) => {
  await admin.setVariants({ invalidKeyStatus: 401, errorBody: "text" });
  const { session, apiKey } = await newSession();
  await admin.killApiKey({ apiKey });
  const e = await rejectsWith(session.getToken(), "invalid_api_key");
  assert.equal(e.status, 401);
  assert.equal(e.platformMessage, "Invalid API key");
});

simTest("token: transient failures are retried", async ({ newSession, admin }) => {
  const { session } = await newSession();
  await admin.setFault({ op: "token", kind: "status", status: 503, times: 2 });
  await session.getToken();
  assert.equal((await admin.calls()).token, 3);
});

simTest("token: retries stop after the configured attempts", async ({ newSession, admin }) => {
  const { session } = await newSession({ retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 10 } });
  await admin.setFault({ op: "token", kind: "status", status: 502 });
  const e = await rejectsWith(session.getToken(), "platform_error");
  assert.equal(e.status, 502);
  assert.equal((await admin.calls()).token, 4);
});

simTest("fresh key: a refusal right after create is waited out", async (h) => {
  await h.admin.setFault({ kind: "fresh_key_refusal", ms: 300 });
  const { session } = await h.newSession({
    freshKeyRetryMs: 3_000,
    retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 100 },
  });
  const [token, ms] = await timed(() => session.getToken({ freshKey: true }));
  assert.ok(token.token);
  assert.ok(ms >= 250, `recovered too early (${ms} ms): the refusal was not in force`);
  assert.ok((await h.admin.calls()).token >= 2);
});

simTest("fresh key: past the bound it is invalid_api_key", async (h) => {
  await h.admin.setFault({ kind: "fresh_key_refusal", ms: 10_000 });
  const { session, logs } = await h.newSession({
    freshKeyRetryMs: 400,
    retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 100 },
  });
  const [e, ms] = await timed(() =>
    rejectsWith(session.getToken({ freshKey: true }), "invalid_api_key")
  );
  assert.equal(e.status, 403);
  assertBetween(ms, 400, 1_500, "gave up after");
  assert.ok((await h.admin.calls()).token >= 3);
  assert.ok(logs.some((l) => l.event === "wpp.fresh_key_wait"));
});

simTest("fresh key: the caller's deadline cuts the wait short", async (h) => {
  await h.admin.setFault({ kind: "fresh_key_refusal", ms: 10_000 });
  const { session } = await h.newSession({
    freshKeyRetryMs: 10_000,
    retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 100 },
  });
  const [, ms] = await timed(() =>
    rejectsWith(session.getToken({ freshKey: true, deadline: Date.now() + 300 }), "invalid_api_key")
  );
  // It stops once the next wait would cross the deadline, so a little before it.
  assertBetween(ms, 190, 1_000, "gave up after");
});

simTest("fresh key: without freshKey a refusal is final", async (h) => {
  await h.admin.setFault({ kind: "fresh_key_refusal", ms: 10_000 });
  const { session } = await h.newSession();
  await rejectsWith(session.getToken(), "invalid_api_key");
  assert.equal((await h.admin.calls()).token, 1);
});
