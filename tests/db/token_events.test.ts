// wpp_store_token (the platform token cached in the CRM's settings, only for the session it was
// minted for) and wpp_record_event (audit events the functions write, secrets stripped).
import assert from "node:assert/strict";
import {
  eventsOf,
  insertLiveRow,
  insertRow,
  newSession,
  rowOf,
  rpc,
  rpcFails,
  withTenant,
} from "./_fixtures.ts";

Deno.test("store_token: merged into settings while the session is still stored; refused for a replaced one", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId);
    const stored = await rpc("wpp_store_token", {
      p_integration_id: live.id,
      p_session: ` ${live.session} `,
      p_token: "jwt-new",
      p_expires_at: 4102444900000,
    });
    assert.equal(stored, true);
    assert.deepEqual((await rowOf(sql, live.id))!.settings, {
      ...live.settings,
      wppJwtToken: "jwt-new",
      wppJwtExpiresAt: 4102444900000,
    }, "a merge of two keys; the others untouched");

    // A token fetched for a session replaced meanwhile is not attached to the new one.
    const replaced = await rpc("wpp_store_token", {
      p_integration_id: live.id,
      p_session: newSession(),
      p_token: "jwt-of-another-session",
      p_expires_at: 1,
    });
    assert.equal(replaced, false);
    assert.equal((await rowOf(sql, live.id))!.settings.wppJwtToken, "jwt-new");
    // Without an expiry the old expiry goes with the old token.
    await rpc("wpp_store_token", {
      p_integration_id: live.id,
      p_session: live.session,
      p_token: "jwt-3",
      p_expires_at: null as unknown as number,
    });
    const settings = (await rowOf(sql, live.id))!.settings;
    assert.equal(settings.wppJwtToken, "jwt-3");
    assert.equal("wppJwtExpiresAt" in settings, false);
    const e = await rpcFails("wpp_store_token", {
      p_integration_id: live.id,
      p_session: live.session,
      p_token: " ",
      p_expires_at: 1,
    });
    assert.equal(e.code, "WP400");
  });
});

Deno.test("record_event: known actions of the organisation's own integrations, secret-looking keys stripped", async () => {
  await withTenant(async (sql, t) => {
    await withTenant(async (_sql, other) => {
      const mine = await insertRow(sql, t.orgId, { settings: {} });
      const foreign = await insertRow(sql, other.orgId, { settings: {} });
      await rpc("wpp_record_event", {
        p_organization_id: t.orgId,
        p_integration_id: mine,
        p_actor: t.admin,
        p_action: "stop_failed",
        p_details: {
          status: 502,
          apiKey: "k",
          nested: { wppJwtToken: "t", keep: 1 },
          webhook_url: "https://x/functions/v1/wpp-webhook/secret",
        },
      });
      assert.deepEqual(await eventsOf(sql, t.orgId), [{
        action: "stop_failed",
        details: { status: 502, nested: { keep: 1 } },
        actor_user_id: t.admin,
        integration_id: mine,
      }]);
      for (
        const [args, code] of [
          [{ p_integration_id: foreign, p_action: "failed" }, "WP422"],
          [{ p_integration_id: mine, p_action: "made_up" }, "WP422"],
          [{ p_integration_id: null, p_action: null }, "WP400"],
        ] as const
      ) {
        const e = await rpcFails("wpp_record_event", {
          p_organization_id: t.orgId,
          p_actor: t.admin,
          ...args,
        } as never);
        assert.equal(e.code, code, JSON.stringify(args));
      }
      assert.equal((await eventsOf(sql, t.orgId)).length, 1);
      assert.equal((await eventsOf(sql, other.orgId)).length, 0);
    }, "Events other");
  });
});
