// The Idempotency-Key of wpp-create (claim, replay, in flight, mismatch, take-over, a 5xx frees
// the key) and the disconnect of a number (marked, already, busy, not_found, the platform stop).
import assert from "node:assert/strict";
import {
  type Answer,
  eventsOf,
  insertLiveRow,
  insertRow,
  PLACEHOLDER,
  rowOf,
  rpc,
  rpcFails,
  stateOf,
  type Tenant,
  UUID,
  withTenant,
} from "./_fixtures.ts";

function claim(t: Tenant, key: string, fingerprint = "fp-1", extra: Record<string, unknown> = {}) {
  return rpc("wpp_idempotency_claim", {
    p_user_id: t.admin,
    p_organization_id: t.orgId,
    p_key: key,
    p_fingerprint: fingerprint,
    ...extra,
  });
}

function finish(t: Tenant, key: string, claimId: string, status: number, response: Answer = {}) {
  return rpc("wpp_idempotency_finish", {
    p_user_id: t.admin,
    p_key: key,
    p_claim_id: claimId,
    p_http_status: status,
    p_response: response,
  });
}

Deno.test("idempotency: claimed, in flight, replayed with the first answer, mismatch for another request", async () => {
  await withTenant(async (sql, t) => {
    const key = `key-${crypto.randomUUID()}`;
    const first = await claim(t, key, "fp-1", { p_claim_seconds: 40, p_ttl_seconds: 600 });
    assert.equal(first.state, "claimed");
    assert.match(first.claim_id, UUID);
    const [row] =
      await sql`select state, expires_at, claim_expires_at from public.wpp_idempotency_keys
                             where user_id = ${t.admin} and key = ${key}`;
    assert.equal(row.state, "in_flight");
    assert.ok(Math.abs(new Date(row.expires_at).getTime() - (Date.now() + 600_000)) < 5000);

    const again = await claim(t, key);
    assert.equal(again.state, "in_flight");
    assert.ok(again.retry_after_seconds >= 38 && again.retry_after_seconds <= 40);
    assert.deepEqual(await claim(t, key, "fp-2"), { state: "mismatch" }, "another body");

    const answer = { success: true, session: "5500000000001", created: true };
    await finish(t, key, first.claim_id, 200, answer);
    assert.deepEqual(await claim(t, key), { state: "replay", http_status: 200, response: answer });
    assert.deepEqual(await claim(t, key, "fp-2"), { state: "mismatch" });
    // The same key of another organisation's request, or of another user, is not this one.
    await withTenant(async (_sql, other) => {
      assert.deepEqual(
        await claim(t, key, "fp-1", { p_organization_id: other.orgId }),
        { state: "mismatch" },
      );
      assert.equal(
        (await claim(t, key, "fp-1", { p_user_id: other.admin, p_organization_id: other.orgId }))
          .state,
        "claimed",
        "keys are per user",
      );
    }, "Idempotency other");

    // A refusal (4xx) is an answer too: replayed.
    const key2 = `key-${crypto.randomUUID()}`;
    const c2 = await claim(t, key2);
    await finish(t, key2, c2.claim_id, 409, { success: false, code: "create_cooldown" });
    assert.deepEqual(await claim(t, key2), {
      state: "replay",
      http_status: 409,
      response: { success: false, code: "create_cooldown" },
    });
  });
});

Deno.test("idempotency: a dead claim is taken over, a 5xx frees the key, an expired key starts afresh", async () => {
  await withTenant(async (sql, t) => {
    const key = `key-${crypto.randomUUID()}`;
    const first = await claim(t, key);
    await sql`update public.wpp_idempotency_keys set claim_expires_at = now() - interval '1 second'
               where user_id = ${t.admin} and key = ${key}`;
    const second = await claim(t, key);
    assert.equal(second.state, "claimed", "the first request died: this one takes over");
    assert.notEqual(second.claim_id, first.claim_id);
    // The first request's late finish is not the answer any more.
    await finish(t, key, first.claim_id, 200, { from: "first" });
    assert.equal((await claim(t, key)).state, "in_flight");
    await finish(t, key, second.claim_id, 200, { from: "second" });
    assert.deepEqual((await claim(t, key)).response, { from: "second" });

    const key5 = `key-${crypto.randomUUID()}`;
    const c5 = await claim(t, key5);
    await finish(t, key5, c5.claim_id, 503, { code: "database_busy" });
    const [{ n }] = await sql`select count(*)::int as n from public.wpp_idempotency_keys
                               where user_id = ${t.admin} and key = ${key5}`;
    assert.equal(n, 0, "a 5xx is not an answer worth replaying");
    assert.equal((await claim(t, key5)).state, "claimed", "the retry runs");

    await sql`update public.wpp_idempotency_keys set expires_at = now() - interval '1 second'
               where user_id = ${t.admin} and key = ${key}`;
    assert.equal((await claim(t, key, "a-new-body")).state, "claimed", "expired: a new request");

    for (const bad of ["", "k".repeat(256)]) {
      const e = await rpcFails("wpp_idempotency_claim", {
        p_user_id: t.admin,
        p_organization_id: t.orgId,
        p_key: bad,
        p_fingerprint: "f",
      });
      assert.equal(e.code, "WP400");
    }
  });
});

function disconnect(t: Tenant, id: string, org = t.orgId) {
  return rpc("wpp_disconnect", { p_integration_id: id, p_organization_id: org, p_actor: t.admin });
}

Deno.test("disconnect: marked inactive and offline, nothing deleted; already; the platform stop recorded", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, { connection: "qr" });
    await sql`update public.wpp_integration_state set qr = 'Q' where integration_id = ${live.id}`;
    const first = await disconnect(t, live.id);
    assert.equal(first.outcome, "marked");
    assert.equal(first.stop_needed, true);
    assert.equal(first.session, live.session);
    assert.equal(first.api_key, live.settings.wppApiKey, "the caller stops the session with it");
    assert.equal(first.disconnected, true);
    const row = await rowOf(sql, live.id);
    assert.equal(row!.is_active, false);
    assert.deepEqual(row!.settings, live.settings, "settings kept: nothing deleted");
    let state = await stateOf(sql, live.id);
    assert.deepEqual([state!.connection, state!.qr, state!.stop_pending], ["offline", null, true]);
    assert.ok(state!.disconnected_at);

    const again = await disconnect(t, live.id);
    assert.deepEqual([again.outcome, again.stop_needed], ["already", true], "the stop is pending");

    await rpc("wpp_disconnect_stopped", {
      p_integration_id: live.id,
      p_session: live.session,
      p_ok: false,
      p_details: { platform_status: 502 },
    });
    assert.equal((await stateOf(sql, live.id))!.stop_pending, true, "a failed stop stays pending");
    await rpc("wpp_disconnect_stopped", {
      p_integration_id: live.id,
      p_session: live.session,
      p_ok: true,
      p_actor: t.admin,
    });
    state = await stateOf(sql, live.id);
    assert.equal(state!.stop_pending, false);
    const third = await disconnect(t, live.id);
    assert.deepEqual([third.outcome, third.stop_needed], ["already", false]);

    const trail = await eventsOf(sql, t.orgId);
    assert.deepEqual(trail.map((e) => e.action), [
      "disconnected",
      "stop_failed",
      "session_stopped",
    ]);
    assert.equal(trail[0].details.session, live.session);
    assert.deepEqual(trail[1].details, {
      platform_status: 502,
      session: live.session,
      reason: "disconnect",
    });
    assert.equal(trail[2].actor_user_id, t.admin);
    // A stop for an integration without state records nothing.
    await rpc("wpp_disconnect_stopped", {
      p_integration_id: crypto.randomUUID(),
      p_session: "x",
      p_ok: true,
    });
    assert.equal((await eventsOf(sql, t.orgId)).length, 3);

    // A later click brings the number back: the row is reactivated and its session reused.
    const back = await rpc("wpp_provision_begin", { p_organization_id: t.orgId, p_actor: t.admin });
    assert.deepEqual([back.decision, back.integration_id, back.is_active, back.disconnected], [
      "reuse",
      live.id,
      true,
      false,
    ]);
    assert.equal((await eventsOf(sql, t.orgId)).at(-1)?.action, "reactivated");
  });
});

Deno.test("disconnect: a placeholder row needs no stop; busy while a create or a start runs; not_found elsewhere", async () => {
  await withTenant(async (sql, t) => {
    const legacy = await insertRow(sql, t.orgId, { primary: true, settings: PLACEHOLDER });
    const r = await disconnect(t, legacy);
    assert.deepEqual([r.outcome, r.stop_needed], ["marked", false]);
    assert.equal((await stateOf(sql, legacy))!.stop_pending, false);

    const live = await insertLiveRow(sql, t.orgId, { primary: false });
    await sql`update public.wpp_integration_state
                 set lease_id = gen_random_uuid(), lease_expires_at = now() + interval '20 seconds'
               where integration_id = ${live.id}`;
    const busy = await disconnect(t, live.id);
    assert.equal(busy.outcome, "busy");
    assert.equal(busy.reason, "provisioning");
    assert.ok(busy.retry_after_seconds >= 18 && busy.retry_after_seconds <= 20);
    await sql`update public.wpp_integration_state
                 set lease_id = null, lease_expires_at = null,
                     refresh_lease_id = gen_random_uuid(), refresh_lease_expires_at = now() + interval '20 seconds'
               where integration_id = ${live.id}`;
    assert.deepEqual(await disconnect(t, live.id), {
      outcome: "busy",
      reason: "refresh_in_flight",
      retry_after_seconds: 1,
    });
    assert.equal((await rowOf(sql, live.id))!.is_active, true, "busy changed nothing");

    await withTenant(async (_sql, other) => {
      const foreign = await insertLiveRow(sql, other.orgId);
      const telegram = await insertRow(sql, t.orgId, {
        provider: "telegram",
        messengerType: "telegram",
      });
      for (const id of [foreign.id, telegram, crypto.randomUUID()]) {
        assert.deepEqual(await disconnect(t, id), { outcome: "not_found" });
      }
      assert.equal((await rowOf(sql, foreign.id))!.is_active, true);
      assert.equal((await rowOf(sql, telegram))!.is_active, true);
    }, "Disconnect other");
  });
});
