import assert from "node:assert/strict";
import { isWppError, maskSecret } from "../../supabase/functions/_shared/wpp/mod.ts";
import { assertNoSecrets, rejectsWith, simTest } from "./helpers.ts";

Deno.test("maskSecret: keeps 6 + 4 characters of long values, nothing of short ones", () => {
  assert.equal(maskSecret("abcdefghijklmnopqrstuvwxyz"), "abcdef••••••wxyz");
  assert.equal(maskSecret("abcdefghijkl"), "abcdef••••••ijkl");
  assert.equal(maskSecret("abcdefghijk"), "***");
  assert.equal(maskSecret(""), "***");
});

simTest("secrets: a full connection logs no credential", async (h) => {
  const { session, logs, apiKey, id } = await h.newSession();
  await session.startAccount();
  await h.admin.scan(id);
  await h.admin.expireTokens();
  await session.accountStatus();
  const token = session.newToken()!.token;
  const lines = logs.map((l) => JSON.stringify(l));
  assert.ok(lines.length >= 5, "the client should have logged its calls");
  assert.ok(lines.some((l) => l.includes("wpp.token_refresh")));
  assertNoSecrets(lines, [h.sim.secret, apiKey, token]);
});

simTest("secrets: platform text echoing a credential is scrubbed", async (h) => {
  const { client, session, logs, apiKey, id } = await h.newSession({ retry: { attempts: 1 } });
  const token = (await session.getToken()).token;
  const otherToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzb21lb25lIn0.c29tZS1zaWduYXR1cmUtdGV4dA";
  const errors: unknown[] = [];
  const collect = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      errors.push(e);
    }
  };

  await h.admin.setFault({
    op: "create",
    kind: "status",
    status: 401,
    message: `Invalid token ${h.sim.secret}`,
    times: 1,
  });
  await collect(client.createClient("org"));
  await h.admin.setFault({
    op: "status",
    kind: "status",
    status: 400,
    message: `bad Authorization: Bearer ${token} for key ${apiKey}`,
    times: 1,
  });
  await collect(session.accountStatus());
  await h.admin.setFault({
    op: "qr",
    kind: "status",
    status: 400,
    message: `token ${token} or ${otherToken} refused`,
    times: 1,
  });
  await collect(session.getQr());
  await h.admin.killApiKey({ session: id });
  await h.admin.expireTokens();
  await h.admin.setVariants({ errorBody: "text" });
  await collect(session.startAccount());

  assert.equal(errors.length, 4);
  const texts: string[] = logs.map((l) => JSON.stringify(l));
  for (const e of errors) {
    assert.ok(isWppError(e));
    texts.push(e.message, e.platformMessage ?? "", String(e), e.stack ?? "");
  }
  assertNoSecrets(texts, [h.sim.secret, apiKey, token, otherToken]);
  // Scrubbed, not dropped: the errors still say what happened.
  const [createError] = errors;
  assert.ok(isWppError(createError));
  assert.match(createError.platformMessage ?? "", /^Invalid token (\*\*\*|\S+••••••\S+)$/);
});

simTest("secrets: error messages never carry the request's credentials", async (h) => {
  const { session, apiKey } = await h.newSession({ timeoutMs: 200, retry: { attempts: 1 } });
  const token = (await session.getToken()).token;
  const messages: string[] = [];
  for (const kind of ["close", "hang", "malformed"] as const) {
    await h.admin.setFault({ op: "status", kind, times: 1 });
    try {
      await session.accountStatus();
    } catch (e) {
      assert.ok(isWppError(e));
      messages.push(e.message, String(e.cause ?? ""));
    }
  }
  await h.admin.setFault({ op: "create", kind: "missing_field", field: "session", times: 1 });
  const e = await rejectsWith(h.client().client.createClient("org"), "platform_malformed");
  messages.push(e.message);
  assert.equal(messages.length, 7);
  assertNoSecrets(messages, [h.sim.secret, apiKey, token]);
});
