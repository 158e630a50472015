// The legacy repair that replaces the manual DELETE, the one-primary rule, and the seed.
import assert from "node:assert/strict";
import { serviceClient } from "../_support/stack.ts";
import {
  createTenant,
  dropTenants,
  eventsOf,
  insertIntegration,
  openDb,
  secretSettings,
  snapshot,
  type Sql,
} from "./_fixtures.ts";

const service = serviceClient();

async function repair(): Promise<number> {
  const { data, error } = await service.rpc("wpp_repair_legacy_sessions");
  assert.equal(error, null, error?.message);
  return data as number;
}

async function repairedEventCount(sql: Sql): Promise<number> {
  const [{ n }] = await sql`select count(*)::int as n from public.integration_events
                            where action = 'repaired'`;
  return n;
}

/**
 * The repair works on the whole shared database, so it may also mark rows of the seed or of
 * other tests. Those are put back as they were afterwards.
 */
async function foreignCandidates(sql: Sql, mine: string[]) {
  const rows = await sql<{ id: string }[]>`
    select id from public.messenger_integrations i
    where provider = 'wpp' and session_state <> 'needs_new_session'
      and not public.wpp_session_is_valid(settings, session_state)
      and not (provision_lease_id is not null and provision_lease_expires_at > clock_timestamp())
      and id not in ${sql(mine)}`;
  const [{ max }] = await sql`select coalesce(max(id), 0)::bigint as max
                              from public.integration_events`;
  return { ids: rows.map((r) => r.id), lastEventId: max as string };
}

async function restoreForeign(sql: Sql, foreign: { ids: string[]; lastEventId: string }) {
  if (!foreign.ids.length) return;
  await sql`update public.messenger_integrations set session_state = 'ok'
            where id in ${sql(foreign.ids)}`;
  await sql`delete from public.integration_events
            where action = 'repaired' and id > ${foreign.lastEventId}
              and integration_id in ${sql(foreign.ids)}`;
}

Deno.test("client_system is repaired in place, once, and then gets a new session in the same row", async () => {
  const sql = openDb();
  const t = await createTenant(sql, "Legacy tenant");
  const other = await createTenant(sql, "Legacy neighbours");
  let foreign = { ids: [] as string[], lastEventId: "0" };
  try {
    const legacy = await insertIntegration(sql, t.orgId, {
      wppAccountNumber: "client_system",
      wppApiKey: "legacy-key-0000000000",
      greeting: "hi",
    });
    const keyless = await insertIntegration(sql, other.orgId, {
      wppAccountNumber: "0000000000070",
    });
    const healthy = await insertIntegration(
      sql,
      other.orgId,
      secretSettings("0000000000071"),
      { isPrimary: false },
    );
    const notWpp = await insertIntegration(sql, other.orgId, {}, { provider: "greenapi" });

    const valid = await service.rpc("wpp_session_is_valid", {
      settings: (await snapshot(sql, legacy)).settings,
      session_state: "ok",
    });
    assert.equal(valid.data, false, "a placeholder session is never valid");

    foreign = await foreignCandidates(sql, [legacy, keyless, healthy, notWpp]);
    const before = { healthy: await snapshot(sql, healthy), notWpp: await snapshot(sql, notWpp) };

    const changed = await repair();
    assert.equal(changed, 2 + foreign.ids.length, "the placeholder row and the keyless row");
    assert.equal((await snapshot(sql, legacy)).session_state, "needs_new_session");
    assert.equal((await snapshot(sql, keyless)).session_state, "needs_new_session");
    assert.deepEqual(await snapshot(sql, healthy), before.healthy, "a valid row is left alone");
    assert.deepEqual(await snapshot(sql, notWpp), before.notWpp, "other providers are left alone");
    assert.deepEqual(
      (await snapshot(sql, legacy)).settings,
      { wppAccountNumber: "client_system", wppApiKey: "legacy-key-0000000000", greeting: "hi" },
      "nothing is deleted",
    );
    assert.deepEqual((await eventsOf(sql, legacy)).map((e) => [e.action, e.details]), [
      ["repaired", {
        reason: "placeholder_session",
        previous_account_number: "client_system",
        session_state: "needs_new_session",
      }],
    ]);
    assert.deepEqual((await eventsOf(sql, keyless)).map((e) => [e.action, e.details]), [
      ["repaired", { reason: "missing_credentials", session_state: "needs_new_session" }],
    ]);

    const repairedBefore = await repairedEventCount(sql);
    const legacyBefore = await snapshot(sql, legacy);
    assert.equal(await repair(), 0, "a second run changes nothing");
    assert.equal(await repairedEventCount(sql), repairedBefore, "and records nothing");
    assert.deepEqual(await snapshot(sql, legacy), legacyBefore);

    const b = await service.rpc("wpp_provision_begin", { p_organization_id: t.orgId });
    assert.equal(b.error, null);
    assert.equal(b.data.decision, "create");
    assert.equal(b.data.integration_id, legacy, "the same row, not a new one");
    assert.equal(b.data.reason, "placeholder_session");
    assert.equal(b.data.session, "client_system");

    const done = await service.rpc("wpp_provision_complete", {
      p_integration_id: legacy,
      p_lease_id: b.data.lease_id,
      p_session: "0000000000072",
      p_api_key: "real-key-72",
    });
    assert.equal(done.error, null);
    const fixed = await snapshot(sql, legacy);
    assert.equal(fixed.session_state, "ok");
    const { wppSessionCreatedAt, ...fixedSettings } = fixed.settings;
    assert.equal(
      typeof wppSessionCreatedAt,
      "number",
      "complete records when the session was made",
    );
    assert.deepEqual(fixedSettings, {
      wppAccountNumber: "0000000000072",
      wppApiKey: "real-key-72",
      greeting: "hi",
    });
    const recreated = (await eventsOf(sql, legacy)).at(-1);
    assert.equal(recreated?.action, "recreated");
    assert.equal(recreated?.details.previous_session, "client_system");
    assert.equal(recreated?.details.reason, "placeholder_session");

    assert.equal(await repair(), 0, "a repaired and reconnected row stays out of the repair");
    const [{ n }] = await sql`select count(*)::int as n from public.messenger_integrations
                              where organization_id = ${t.orgId}`;
    assert.equal(n, 1);
  } finally {
    await restoreForeign(sql, foreign);
    await dropTenants(sql, [t, other]);
    await sql.end();
  }
});

Deno.test("the repair leaves a row alone while its lease is live", async () => {
  const sql = openDb();
  const t = await createTenant(sql, "Leased tenant");
  let foreign = { ids: [] as string[], lastEventId: "0" };
  try {
    const b = await service.rpc("wpp_provision_begin", { p_organization_id: t.orgId });
    assert.equal(b.data.decision, "create");
    foreign = await foreignCandidates(sql, [b.data.integration_id]);
    const before = await snapshot(sql, b.data.integration_id);
    await repair();
    assert.deepEqual(await snapshot(sql, b.data.integration_id), before);
    assert.deepEqual(await eventsOf(sql, b.data.integration_id), []);
  } finally {
    await restoreForeign(sql, foreign);
    await dropTenants(sql, [t]);
    await sql.end();
  }
});

Deno.test("one active primary WhatsApp/WPP integration per organisation", async () => {
  const sql = openDb();
  const t = await createTenant(sql, "Primary tenant");
  const other = await createTenant(sql, "Primary neighbour");
  try {
    const row = (orgId: string, extra: Record<string, unknown> = {}) => ({
      organization_id: orgId,
      messenger_type: "whatsapp",
      provider: "wpp",
      name: "WhatsApp",
      is_primary: true,
      ...extra,
    });
    const first = await service.from("messenger_integrations").insert(row(t.orgId));
    assert.equal(first.error, null);
    const second = await service.from("messenger_integrations").insert(row(t.orgId));
    assert.equal(second.error?.code, "23505", "a second active primary is refused");
    assert.match(second.error!.message, /messenger_integrations_one_primary_wpp/);

    const allowed = [
      row(t.orgId, { is_active: false }),
      row(t.orgId, { is_primary: false }),
      row(t.orgId, { provider: "greenapi" }),
      row(t.orgId, { messenger_type: "telegram", provider: "telegram_bot" }),
      row(other.orgId),
    ];
    for (const r of allowed) {
      const res = await service.from("messenger_integrations").insert(r);
      assert.equal(res.error, null, JSON.stringify(r));
    }
    const reactivate = await service.from("messenger_integrations").update({ is_active: true })
      .eq("organization_id", t.orgId).eq("provider", "wpp").eq("is_active", false);
    assert.equal(reactivate.error?.code, "23505", "reactivating a second primary is refused too");

    const [{ n }] = await sql`select count(*)::int as n from public.messenger_integrations
                              where organization_id = ${t.orgId} and provider = 'wpp'
                                and is_active and is_primary and messenger_type = 'whatsapp'`;
    assert.equal(n, 1);
  } finally {
    await dropTenants(sql, [t, other]);
    await sql.end();
  }
});

Deno.test("seed: the demo users, organisations and the legacy row are in place", async () => {
  const sql = openDb();
  try {
    const users = await sql`
      select u.id, u.email, p.organization_id, p.role
      from auth.users u left join public.profiles p on p.id = u.id
      where u.email in ('owner@demo.local', 'admin@demo.local', 'member@demo.local',
                        'admin@other.local', 'loner@demo.local')
      order by u.email`;
    const demo = "11111111-1111-4111-8111-111111111111";
    const otherOrg = "22222222-2222-4222-8222-222222222222";
    assert.deepEqual(users.map((u) => [u.email, u.id, u.organization_id, u.role]), [
      ["admin@demo.local", "a0000000-0000-4000-8000-000000000002", demo, "admin"],
      ["admin@other.local", "b0000000-0000-4000-8000-000000000001", otherOrg, "admin"],
      ["loner@demo.local", "c0000000-0000-4000-8000-000000000001", null, null],
      ["member@demo.local", "a0000000-0000-4000-8000-000000000003", demo, "member"],
      ["owner@demo.local", "a0000000-0000-4000-8000-000000000001", demo, "owner"],
    ]);
    const orgs = await sql`select id, name from public.organizations
                           where id in ${sql([demo, otherOrg])} order by name`;
    assert.deepEqual(orgs.map((o) => o.name), ["Demo CRM", "Other CRM"]);

    // Other tests may reconnect Other CRM, so the row is checked as the seed wrote it.
    const [legacy] = await sql`select id, organization_id from public.messenger_integrations
                               where id = '33333333-3333-4333-8333-333333333333'`;
    assert.equal(legacy?.organization_id, otherOrg);
    const valid = await service.rpc("wpp_session_is_valid", {
      settings: {
        wppAccountNumber: "client_system",
        wppApiKey: "legacy-key-0000000000",
        greeting: "hi",
      },
      session_state: "ok",
    });
    assert.equal(valid.error, null);
    assert.equal(valid.data, false, "the seeded legacy session is rejected without any repair");
  } finally {
    await sql.end();
  }
});
