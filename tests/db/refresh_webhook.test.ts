// What the database learns about a session, and in which order: the refresh lease (one platform
// refresh at a time), the refresh's observation, and the platform's webhook events found by the
// hash of the URL's secret.
import assert from "node:assert/strict";
import {
  type Answer,
  byteaHex,
  insertLiveRow,
  newSession,
  rpc,
  sha256,
  type Sql,
  stateOf,
  type Tenant,
  UUID,
  withTenant,
} from "./_fixtures.ts";

function refreshBegin(id: string, session: string, extra: Record<string, unknown> = {}) {
  return rpc("wpp_refresh_begin", { p_integration_id: id, p_session: session, ...extra });
}

function refreshEnd(
  id: string,
  lease: string,
  session: string,
  extra: { connection?: string; qr?: string; at?: Date; registered?: boolean } = {},
): Promise<Answer> {
  return rpc("wpp_refresh_end", {
    p_integration_id: id,
    p_refresh_lease_id: lease,
    p_session: session,
    p_connection: extra.connection,
    p_qr: extra.qr,
    p_observed_at: extra.at?.toISOString(),
    p_webhook_registered: extra.registered ?? false,
  });
}

async function webhook(
  secretOrHash: string | Uint8Array,
  extra: { account?: string; connection?: string; qr?: string; at?: Date } = {},
): Promise<Answer> {
  const hash = typeof secretOrHash === "string" ? await sha256(secretOrHash) : secretOrHash;
  return await rpc("wpp_webhook_event", {
    p_secret_hash: byteaHex(hash),
    p_account: extra.account,
    p_connection: extra.connection,
    p_qr: extra.qr,
    p_event_at: extra.at?.toISOString(),
  });
}

const ago = (s: number) => new Date(Date.now() - s * 1000);

Deno.test("refresh_begin: one refresh at a time, with the webhook secret for its holder", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, { connection: "qr", checkedAgoSeconds: 600 });
    const state = await stateOf(sql, live.id);
    const granted = await refreshBegin(live.id, live.session, { p_lease_seconds: 20 });
    assert.equal(granted.granted, true);
    assert.match(granted.refresh_lease_id, UUID);
    assert.equal(granted.webhook_secret, state!.webhook_secret);
    assert.equal(granted.session, live.session);
    const held = await stateOf(sql, live.id);
    assert.equal(held!.refresh_lease_id, granted.refresh_lease_id);
    const left = new Date(held!.refresh_lease_expires_at!).getTime() - Date.now();
    assert.ok(left > 15_000 && left <= 20_000, `${left} ms`);

    const second = await refreshBegin(live.id, live.session);
    assert.deepEqual([second.granted, second.reason], [false, "in_flight"]);
    assert.equal(second.webhook_secret, undefined, "only the holder gets the secret");
    assert.equal(second.refresh_lease_id, undefined);

    const ended = await refreshEnd(live.id, crypto.randomUUID(), live.session);
    assert.deepEqual(ended, { released: false, applied: false }, "another lease releases nothing");
    assert.deepEqual(await refreshEnd(live.id, granted.refresh_lease_id, live.session), {
      released: true,
      applied: false,
    });
    assert.equal((await stateOf(sql, live.id))!.refresh_lease_id, null);
    assert.equal((await refreshBegin(live.id, live.session)).granted, true, "free again");
  });
});

Deno.test("refresh_begin refuses: replaced, inactive, provisioning, fresh, not_found", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, {
      connection: "connected",
      checkedAgoSeconds: 1,
    });
    const reason = async (session = live.session, extra: Record<string, unknown> = {}) => {
      const r = await refreshBegin(live.id, session, extra);
      assert.equal(r.granted, false, JSON.stringify(r));
      return r.reason;
    };
    assert.equal(await reason(), "fresh", "connected and heard from a second ago");
    assert.equal(await reason(live.session, { p_fresh_seconds: 30 }), "fresh");
    assert.equal(await reason("5500000000000"), "replaced", "not the stored session");
    await sql`update public.wpp_integration_state set qr = 'Q', connection = 'qr' where integration_id = ${live.id}`;
    assert.equal(await reason(), "fresh", "a fresh QR is the answer too");
    const withQr = await refreshBegin(live.id, live.session, { p_with_qr: true });
    assert.equal(withQr.qr, "Q");
    assert.equal((await refreshBegin(live.id, live.session)).qr, null, "no QR unless asked");

    await sql`update public.wpp_integration_state
                 set lease_id = gen_random_uuid(), lease_expires_at = now() + interval '1 minute',
                     checked_at = now() - interval '1 hour'
               where integration_id = ${live.id}`;
    assert.equal(await reason(), "provisioning");
    await sql`update public.wpp_integration_state set lease_id = null, lease_expires_at = null
               where integration_id = ${live.id}`;
    await sql`update public.messenger_integrations set is_active = false where id = ${live.id}`;
    assert.equal(await reason(), "inactive");
    await sql`update public.messenger_integrations set is_active = true where id = ${live.id}`;
    await sql`update public.wpp_integration_state set session_state = 'needs_new_session'
               where integration_id = ${live.id}`;
    assert.equal(await reason(), "replaced", "a session marked unusable is never refreshed");
    await sql`update public.wpp_integration_state set session_state = 'ok', connection = 'starting',
                     checked_at = now() where integration_id = ${live.id}`;
    assert.equal(
      (await refreshBegin(live.id, live.session)).granted,
      true,
      "fresh but only starting: it needs the start",
    );
    assert.deepEqual(await refreshBegin(crypto.randomUUID(), "x"), {
      granted: false,
      reason: "not_found",
    });
  });
});

Deno.test("refresh_end stores what was observed, in the platform's order, for the stored session only", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, {
      connection: "starting",
      checkedAgoSeconds: 600,
    });
    await sql`update public.wpp_integration_state set ever_connected_at = null, connection_at = now() - interval '10 minutes'
               where integration_id = ${live.id}`;
    // Each observation is a refresh of its own, of state gone stale meanwhile.
    const lease = async () => {
      await sql`update public.wpp_integration_state set checked_at = now() - interval '1 hour'
                 where integration_id = ${live.id}`;
      const r = await refreshBegin(live.id, live.session);
      assert.equal(r.granted, true, JSON.stringify(r));
      return r.refresh_lease_id as string;
    };

    const t1 = ago(60);
    let r = await refreshEnd(live.id, await lease(), live.session, {
      connection: "qr",
      qr: "QR-1",
      at: t1,
    });
    assert.deepEqual(r, { released: true, applied: true });
    let s = await stateOf(sql, live.id);
    assert.deepEqual([s!.connection, s!.qr], ["qr", "QR-1"]);
    assert.equal(new Date(s!.qr_at!).getTime(), t1.getTime());
    assert.ok(Date.now() - new Date(s!.checked_at!).getTime() < 5000, "checked now, not at t1");
    assert.equal(new Date(s!.connection_at!).getTime(), t1.getTime(), "ordered by t1");

    // Older than what is stored: ignored, and the lease is still released.
    r = await refreshEnd(live.id, await lease(), live.session, {
      connection: "offline",
      at: ago(120),
    });
    assert.deepEqual(r, { released: true, applied: false });
    // A QR without its payload says nothing; an unknown word neither.
    for (const [connection, qr] of [["qr", " "], ["pairing", undefined]] as const) {
      r = await refreshEnd(live.id, await lease(), live.session, { connection, qr, at: ago(1) });
      assert.equal(r.applied, false, connection);
    }
    // Another session's observation (a replaced one, another account) is never stored.
    r = await refreshEnd(live.id, await lease(), "5500000000000", {
      connection: "connected",
      at: ago(1),
    });
    assert.deepEqual(r, { released: true, applied: false });
    s = await stateOf(sql, live.id);
    assert.deepEqual([s!.connection, s!.qr, s!.session], ["qr", "QR-1", live.session]);

    const t2 = ago(30);
    r = await refreshEnd(live.id, await lease(), live.session, { connection: "connected", at: t2 });
    assert.equal(r.applied, true);
    s = await stateOf(sql, live.id);
    assert.deepEqual([s!.connection, s!.qr, s!.qr_at], ["connected", null, null]);
    assert.equal(new Date(s!.ever_connected_at!).getTime(), t2.getTime());
    // A QR at the same instant as the link: the QR came first.
    r = await refreshEnd(live.id, await lease(), live.session, {
      connection: "qr",
      qr: "QR-2",
      at: t2,
    });
    assert.equal(r.applied, false);
    assert.equal((await stateOf(sql, live.id))!.connection, "connected");
    // Later, the phone unlinks: offline, and the first link is remembered.
    r = await refreshEnd(live.id, await lease(), live.session, {
      connection: "offline",
      at: ago(10),
    });
    assert.equal(r.applied, true);
    s = await stateOf(sql, live.id);
    assert.equal(s!.connection, "offline");
    assert.equal(new Date(s!.ever_connected_at!).getTime(), t2.getTime());
  });
});

Deno.test("refresh_end records the registered webhook only for the session it was registered for", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, { checkedAgoSeconds: 600 });
    const current = async () =>
      (await rpc("wpp_context", { p_user_id: t.admin })).integration.webhook_current;
    assert.equal(await current(), false);
    let lease = (await refreshBegin(live.id, live.session)).refresh_lease_id;
    await refreshEnd(live.id, lease, "5500000000000", { registered: true });
    assert.equal((await stateOf(sql, live.id))!.webhook_registered_hash, null);
    lease = (await refreshBegin(live.id, live.session)).refresh_lease_id;
    await refreshEnd(live.id, lease, live.session, { registered: true });
    const s = await stateOf(sql, live.id);
    assert.deepEqual(s!.webhook_registered_hash, s!.webhook_secret_hash);
    assert.equal(await current(), true);
  });
});

/** Every row of this project's state and the CRM's rows, and the event count: "no write" means equal. */
async function everything(sql: Sql): Promise<string> {
  const [r] = await sql`
    select (select jsonb_agg(to_jsonb(s) order by s.integration_id) from public.wpp_integration_state s) as state,
           (select jsonb_agg(to_jsonb(m) order by m.id) from public.messenger_integrations m) as rows,
           (select count(*) from public.wpp_integration_events) as events,
           (select max(id) from public.wpp_integration_events) as last_event`;
  return JSON.stringify(r);
}

async function liveWithSecret(sql: Sql, t: Tenant, connection = "qr") {
  const live = await insertLiveRow(sql, t.orgId, { connection, checkedAgoSeconds: 600 });
  await sql`update public.wpp_integration_state set connection_at = now() - interval '10 minutes',
                   ever_connected_at = null where integration_id = ${live.id}`;
  const secret = (await stateOf(sql, live.id))!.webhook_secret;
  return { ...live, secret };
}

Deno.test("webhook_event: an unknown secret finds nothing and writes nothing", async () => {
  await withTenant(async (sql, t) => {
    const live = await liveWithSecret(sql, t);
    const before = await everything(sql);
    for (
      const hash of [
        await sha256("not-a-secret-of-ours"),
        await sha256(live.secret + "x"),
        new Uint8Array(32),
        new Uint8Array([1]),
      ]
    ) {
      assert.deepEqual(
        await webhook(hash, { account: live.session, connection: "connected", at: new Date() }),
        { found: false },
      );
      assert.deepEqual(await webhook(hash), { found: false }, "a message neither");
    }
    // The secret itself instead of its hash is just as unknown.
    assert.deepEqual(
      await webhook(new TextEncoder().encode(live.secret), { connection: "connected" }),
      { found: false },
    );
    assert.equal(await everything(sql), before, "no row, state or event changed");
  });
});

Deno.test("webhook_event: applies session events in order; another account is neither applied nor forwarded", async () => {
  await withTenant(async (sql, t) => {
    const live = await liveWithSecret(sql, t);
    const base = {
      found: true,
      integration_id: live.id,
      organization_id: t.orgId,
      session: live.session,
    };

    const before = await stateOf(sql, live.id);
    const other = await webhook(live.secret, { account: "5500000000000", connection: "connected" });
    assert.deepEqual(other, { ...base, applied: false, forward: false, reason: "other_account" });
    assert.deepEqual(await stateOf(sql, live.id), before, "nothing stored for another account");

    const tQr = ago(20);
    assert.deepEqual(
      await webhook(live.secret, { account: live.session, connection: "qr", qr: "QR-A", at: tQr }),
      { ...base, applied: true, forward: true },
    );
    let s = await stateOf(sql, live.id);
    assert.deepEqual([s!.connection, s!.qr], ["qr", "QR-A"]);

    // No account in the event: it is the URL's integration's own.
    const tLink = ago(10);
    assert.equal(
      (await webhook(live.secret, { connection: "connected", at: tLink })).applied,
      true,
    );
    s = await stateOf(sql, live.id);
    assert.equal(s!.connection, "connected");
    assert.equal(new Date(s!.ever_connected_at!).getTime(), tLink.getTime());

    // Delivered late: an older QR does not bring the QR back.
    const late = await webhook(live.secret, { connection: "qr", qr: "QR-OLD", at: tQr });
    assert.deepEqual(late, { ...base, applied: false, forward: true }, "still forwarded");
    assert.equal((await stateOf(sql, live.id))!.connection, "connected");
  });
});

Deno.test("webhook_event: a message keeps a connected state fresh and changes nothing else", async () => {
  await withTenant(async (sql, t) => {
    const live = await liveWithSecret(sql, t, "connected");
    const before = await stateOf(sql, live.id);
    const r = await webhook(live.secret, { account: live.session });
    assert.deepEqual(r, {
      found: true,
      integration_id: live.id,
      organization_id: t.orgId,
      session: live.session,
      applied: false,
      forward: true,
    });
    const after = await stateOf(sql, live.id);
    assert.ok(Date.now() - new Date(after!.checked_at!).getTime() < 5000, "freshness renewed");
    assert.deepEqual(
      { ...after, checked_at: null, updated_at: null },
      { ...before, checked_at: null, updated_at: null },
      "only the freshness moved",
    );
    // Not connected: a message is no news about the connection.
    await sql`update public.wpp_integration_state set connection = 'qr', qr = 'Q', checked_at = now() - interval '1 hour'
               where integration_id = ${live.id}`;
    const qrBefore = await stateOf(sql, live.id);
    assert.equal((await webhook(live.secret, { account: live.session })).forward, true);
    assert.deepEqual(await stateOf(sql, live.id), qrBefore, "no write at all");
  });
});

Deno.test("webhook_event: after a new session the previous URL's secret is unknown", async () => {
  await withTenant(async (sql, t) => {
    const live = await liveWithSecret(sql, t);
    await sql`update public.wpp_integration_state set session_created_at = now() - interval '1 hour'
               where integration_id = ${live.id}`;
    const lease = await rpc("wpp_provision_begin", {
      p_organization_id: t.orgId,
      p_actor: t.admin,
      p_mode: "recreate",
    });
    const done = await rpc("wpp_provision_complete", {
      p_integration_id: live.id,
      p_lease_id: lease.lease_id,
      p_session: newSession(),
      p_api_key: "k2",
    });
    assert.deepEqual(await webhook(live.secret, { connection: "connected" }), { found: false });
    assert.equal((await webhook(done.webhook_secret, { connection: "starting" })).found, true);
  });
});
