import assert from "node:assert/strict";
import { WppPlatformClient } from "../../supabase/functions/_shared/wpp/mod.ts";
import { rejectsWith, simTest } from "./helpers.ts";

simTest("create: answers session, apiKey and status", async ({ client }) => {
  const { client: c } = client();
  const created = await c.createClient("org-1");
  assert.equal(created.session, "0000000000001");
  assert.ok(created.apiKey.length >= 32);
  assert.equal(created.status, "starting");
});

simTest("create: a missing status means starting", async ({ client, admin }) => {
  await admin.setVariants({ createStatus: false });
  const created = await client().client.createClient("org-1");
  assert.equal(created.status, "starting");
});

simTest("create: each call makes a new session, numbered in sequence", async ({ client }) => {
  const { client: c } = client();
  const first = await c.createClient("org-1");
  const second = await c.createClient("org-1");
  assert.equal(first.session, "0000000000001");
  assert.equal(second.session, "0000000000002");
  assert.notEqual(first.apiKey, second.apiKey);
});

simTest("create: a wrong secret is platform_unauthorized", async ({ client, admin }) => {
  const e = await rejectsWith(
    client({ secret: "not-the-right-secret" }).client.createClient("org-1"),
    "platform_unauthorized",
  );
  assert.equal(e.status, 401);
  assert.equal(e.op, "create");
  assert.equal(e.platformMessage, "Invalid token");
  assert.equal((await admin.calls()).create, 1);
});

simTest("create: without a secret the client refuses to call", async ({ sim, admin }) => {
  const c = new WppPlatformClient({ baseUrl: sim.url });
  await assert.rejects(c.createClient("org-1"), TypeError);
  assert.equal((await admin.calls()).create, 0);
});

simTest("create: an answer without apiKey is malformed", async ({ client, admin }) => {
  await admin.setFault({ op: "create", kind: "missing_field", times: 1 });
  await rejectsWith(client().client.createClient("org-1"), "platform_malformed");
  // The platform did create it: the caller has to live with an orphan it cannot see.
  assert.equal((await admin.state()).sessions.length, 1);
});

simTest("create: an answer without session is malformed", async ({ client, admin }) => {
  await admin.setFault({ op: "create", kind: "missing_field", field: "session" });
  await rejectsWith(client().client.createClient("org-1"), "platform_malformed");
});
