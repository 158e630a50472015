// What the CRM's own code reaches through the gateway once wpp-connect is installed, in both
// passes (stand-in tables, and the CRM's tables with its own policies): its service-role functions
// read and write settings; a browser's select('*') is refused, named columns and
// messenger_integrations_public work, for the caller's organisation only and without secrets.
import assert from "node:assert/strict";
import { mintUserToken, serviceClient, userClient } from "../_support/stack.ts";
import { createOrg, sql } from "../_support/wpp.ts";
import { crmUser, ROW } from "../fixtures/brownfield/mod.ts";

const brownfield = Deno.env.get("STACK_DB_SHAPE") === "brownfield";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

test("the CRM's browser and service role around messenger_integrations, through the gateway", async () => {
  const org = await createOrg("admin");
  const other = await createOrg("admin");
  const member = await org.addUser("member");
  const apiKey = `api-key-${crypto.randomUUID()}`;
  const token = `jwt-${crypto.randomUUID()}`;
  const botToken = `bot-${crypto.randomUUID()}`;
  const [wpp] = await sql<{ id: string }[]>`
    insert into public.messenger_integrations
      (organization_id, name, messenger_type, provider, is_active, is_primary, webhook_key, settings)
    values (${org.orgId}, 'WhatsApp', 'whatsapp', 'wpp', true, true, ${crypto.randomUUID()},
            ${
    sql.json({
      wppAccountNumber: "5511000000001",
      wppApiKey: apiKey,
      wppJwtToken: token,
      greeting: "hi",
    })
  })
    returning id`;
  const [tg] = await sql<{ id: string }[]>`
    insert into public.messenger_integrations
      (organization_id, name, messenger_type, provider, is_active, is_primary, webhook_key, settings)
    values (${org.orgId}, 'Telegram', 'telegram', 'telegram', true, true, ${crypto.randomUUID()},
            ${sql.json({ botToken, chatId: 7 })})
    returning id`;
  await sql`
    insert into public.messenger_integrations
      (organization_id, name, messenger_type, provider, is_active, is_primary, webhook_key, settings)
    values (${other.orgId}, 'WhatsApp', 'whatsapp', 'wpp', true, true, ${crypto.randomUUID()},
            ${sql.json({ wppAccountNumber: "5511000000002", wppApiKey: "other-key" })})`;

  const service = serviceClient();
  const read = await service.from("messenger_integrations").select("id, settings").eq("id", wpp.id)
    .single();
  assert.equal(read.error, null);
  assert.equal(read.data!.settings.wppApiKey, apiKey, "wpp-send reads the apiKey");
  const written = await service.from("messenger_integrations")
    .update({ settings: { ...read.data!.settings, wppJwtToken: "refreshed" } })
    .eq("id", wpp.id).select("settings").single();
  assert.equal(written.data?.settings.wppJwtToken, "refreshed", "and writes its token back");

  for (const user of [member, org.user]) {
    const browser = userClient(user.token);
    const star = await browser.from("messenger_integrations").select("*");
    assert.equal(star.error?.code, "42501", `select('*'): ${JSON.stringify(star)}`);
    const named = await browser.from("messenger_integrations")
      .select("id, name, provider, is_active, is_primary, webhook_key").order("id");
    assert.equal(named.error, null, JSON.stringify(named.error));
    assert.deepEqual(named.data!.map((r) => r.id), [wpp.id, tg.id].sort());
    const view = await browser.from("messenger_integrations_public").select("*").order("id");
    assert.equal(view.error, null, JSON.stringify(view.error));
    assert.deepEqual(view.data!.map((r) => r.id), [wpp.id, tg.id].sort());
    const text = JSON.stringify([named.data, view.data]);
    for (const s of [apiKey, "refreshed", botToken, "other-key"]) {
      assert.ok(!text.includes(s), "no secret reaches the browser");
    }
    const w = view.data!.find((r) => r.id === wpp.id)!;
    assert.deepEqual(w.public_settings, { wppAccountNumber: "5511000000001", greeting: "hi" });
    assert.equal(w.session, "5511000000001");
  }
});

Deno.test({
  name: "brownfield: the CRM's fixture users through the gateway",
  ignore: !brownfield,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const manager = crmUser(3, "manager");
    const browser = userClient(await mintUserToken(manager.id, { email: manager.email }));
    assert.equal((await browser.from("messenger_integrations").select("*")).error?.code, "42501");
    const view = await browser.from("messenger_integrations_public")
      .select("id, connection, public_settings").order("id");
    assert.deepEqual(view.data?.map((r) => [r.id, r.connection]), [
      [ROW.w3, "unknown"],
      [ROW.w4, "not_configured"],
      [ROW.telegram3, null],
    ]);
    assert.ok(!JSON.stringify(view.data).includes("real-w3-api-key"));
    // The CRM's own tables and policies are untouched: its session cache, its roles.
    const sessions = await browser.from("whatsapp_sessions").select("session_name");
    assert.deepEqual(sessions.data, [{ session_name: "wpp_5511999990003" }]);
    const roles = await browser.rpc("get_user_roles", { _user_id: manager.id });
    assert.deepEqual(roles.data, ["manager"]);
  },
});
