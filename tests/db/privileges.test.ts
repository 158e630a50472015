// Who may read and write what, through PostgREST as the browser and the functions reach it: anon,
// signed-in users of two organisations (roles from user_roles, several per user), users outside
// any organisation, and service_role. A refused write is also checked in the database, so "no
// error but nothing happened" cannot pass for "refused", and every answer a browser gets is
// scanned for the secrets the rows hold.
import assert from "node:assert/strict";
import type { SupabaseClient } from "@supabase/supabase-js";
import { anonClient } from "../_support/stack.ts";
import {
  clientAs,
  createLoner,
  createOrphan,
  createTenant,
  dropTenants,
  insertRow,
  openDb,
  rpc,
  type RpcName,
  service,
  type Sql,
  type Tenant,
  usersOf,
} from "./_fixtures.ts";

type Kind =
  | "anon"
  | "a_owner"
  | "a_admin"
  | "a_member"
  | "a_teacher"
  | "a_owner_admin"
  | "b_admin"
  | "loner"
  | "orphan";

interface Actor {
  label: string;
  kind: Kind;
  userId: string | null;
  client: SupabaseClient;
}

/** Secrets the fixture rows carry: none may reach a browser. */
const SECRETS = {
  apiKey: `sk-live-${crypto.randomUUID()}`,
  jwt: `jwt-${crypto.randomUUID()}`,
  webhookSecret: `whsec-${crypto.randomUUID()}`,
  snakeKey: `snake-${crypto.randomUUID()}`,
  nested: `nested-${crypto.randomUUID()}`,
  botToken: `bot-${crypto.randomUUID()}`,
  legacyKey: `legacy-${crypto.randomUUID()}`,
  bKey: `b-key-${crypto.randomUUID()}`,
};

function secretSettings(session: string, apiKey = SECRETS.apiKey): Record<string, unknown> {
  return {
    wppAccountNumber: session,
    wppApiKey: apiKey,
    wppJwtToken: SECRETS.jwt,
    wppJwtExpiresAt: 4102444800000,
    wppWebhookSecret: SECRETS.webhookSecret,
    api_key: SECRETS.snakeKey,
    greeting: "Hello from the CRM",
    limits: { daily: 500, providerToken: SECRETS.nested },
  };
}

interface World {
  sql: Sql;
  a: Tenant;
  b: Tenant;
  loner: string;
  orphan: string;
  rows: {
    live: string;
    legacy: string;
    off: string;
    stale: string;
    telegram: string;
    b: string;
  };
  events: { a: number; b: number };
  actors: Actor[];
}

async function world(): Promise<World> {
  const sql = openDb();
  const a = await createTenant(sql, "Privileges A");
  const b = await createTenant(sql, "Privileges B");
  const loner = await createLoner(sql);
  const orphan = await createOrphan(sql);
  const liveSession = `5500${Date.now() % 1e8}`;
  const live = await insertRow(sql, a.orgId, {
    primary: true,
    settings: secretSettings(liveSession),
  });
  await sql`insert into public.wpp_integration_state
              (integration_id, organization_id, session, connection, connection_at, checked_at)
            values (${live}, ${a.orgId}, ${liveSession}, 'connected', now(), now())`;
  const legacy = await insertRow(sql, a.orgId, {
    settings: { wppAccountNumber: "client_system", wppApiKey: SECRETS.legacyKey, greeting: "hi" },
    ageSeconds: 100,
  });
  const offSession = `5501${Date.now() % 1e8}`;
  const off = await insertRow(sql, a.orgId, {
    active: false,
    settings: secretSettings(offSession),
    ageSeconds: 200,
  });
  await sql`insert into public.wpp_integration_state
              (integration_id, organization_id, session, connection, disconnected_at)
            values (${off}, ${a.orgId}, ${offSession}, 'offline', now())`;
  const stale = await insertRow(sql, a.orgId, {
    settings: secretSettings(`5502${Date.now() % 1e8}`),
    ageSeconds: 300,
  });
  // The state describes an older session than the one the CRM's row now holds.
  await sql`insert into public.wpp_integration_state
              (integration_id, organization_id, session, connection, checked_at)
            values (${stale}, ${a.orgId}, 'an-older-session', 'connected', now())`;
  const telegram = await insertRow(sql, a.orgId, {
    provider: "telegram",
    messengerType: "telegram",
    primary: true,
    settings: { botToken: SECRETS.botToken, chatId: 42 },
  });
  const bRow = await insertRow(sql, b.orgId, {
    primary: true,
    settings: secretSettings(`5503${Date.now() % 1e8}`, SECRETS.bKey),
  });
  const [ea] = await sql<{ id: number }[]>`
    insert into public.wpp_integration_events (organization_id, integration_id, action, details)
    values (${a.orgId}, ${live}, 'created', '{"session": "x"}') returning id`;
  const [eb] = await sql<{ id: number }[]>`
    insert into public.wpp_integration_events (organization_id, integration_id, action, details)
    values (${b.orgId}, ${bRow}, 'failed', '{"reason": "timeout"}') returning id`;
  const actor = async (label: string, kind: Kind, userId: string): Promise<Actor> => ({
    label,
    kind,
    userId,
    client: await clientAs(userId),
  });
  return {
    sql,
    a,
    b,
    loner,
    orphan,
    rows: { live, legacy, off, stale, telegram, b: bRow },
    events: { a: Number(ea.id), b: Number(eb.id) },
    actors: [
      { label: "anon", kind: "anon", userId: null, client: anonClient() },
      await actor("owner of A", "a_owner", a.owner),
      await actor("admin (+teacher) of A", "a_admin", a.admin),
      await actor("manager of A", "a_member", a.member),
      await actor("teacher+accountant of A", "a_teacher", a.teacher),
      await actor("admin+owner of A", "a_owner_admin", a.ownerAdmin),
      await actor("admin of B", "b_admin", b.admin),
      await actor("user without profile", "loner", loner),
      await actor("admin whose profile has no organisation", "orphan", orphan),
    ],
  };
}

async function teardown(w: World) {
  try {
    await dropTenants(w.sql, [w.a.orgId, w.b.orgId], [
      ...usersOf(w.a),
      ...usersOf(w.b),
      w.loner,
      w.orphan,
    ]);
  } finally {
    await w.sql.end({ timeout: 5 });
  }
}

function refused(res: { error: { code?: string } | null; status: number }, what: string) {
  assert.equal(
    res.error?.code,
    "42501",
    `${what}: expected a permission error, got ${res.status} ${JSON.stringify(res.error)}`,
  );
}

function sorted(data: unknown, key = "id"): string[] {
  return ((data ?? []) as Record<string, unknown>[]).map((r) => String(r[key])).sort();
}

function assertNoSecrets(value: unknown, what: string) {
  const text = JSON.stringify(value);
  for (const [name, secret] of Object.entries(SECRETS)) {
    assert.ok(!text.includes(secret), `${what} leaks ${name}`);
  }
}

const inA = (k: Kind) => k.startsWith("a_");

Deno.test("the CRM's tables (stand-ins): members read their organisation's rows; nobody but service_role writes", async () => {
  const w = await world();
  try {
    const { a, b } = w;
    const aUsers = usersOf(a).sort();
    const bUsers = usersOf(b).sort();
    const everyone = [...aUsers, ...bUsers, w.loner, w.orphan];
    for (const { label, client, kind, userId } of w.actors) {
      const orgs = await client.from("organizations").select("id, name").in("id", [
        a.orgId,
        b.orgId,
      ]);
      const profiles = await client.from("profiles").select("id, organization_id").in(
        "id",
        everyone,
      );
      const roles = await client.from("user_roles").select("user_id, role").in("user_id", everyone);
      if (kind === "anon") {
        refused(orgs, `${label} reads organizations`);
        refused(profiles, `${label} reads profiles`);
        refused(roles, `${label} reads user_roles`);
      } else {
        assert.equal(orgs.error, null, `${label}: ${JSON.stringify(orgs.error)}`);
        assert.deepEqual(
          sorted(orgs.data),
          inA(kind) ? [a.orgId] : kind === "b_admin" ? [b.orgId] : [],
          `${label} reads organizations`,
        );
        assert.deepEqual(
          sorted(profiles.data),
          inA(kind) ? aUsers : kind === "b_admin" ? bUsers : kind === "orphan"
            ? [w.orphan] // their own profile
            : [],
          `${label} reads profiles`,
        );
        assert.deepEqual(
          [...new Set(sorted(roles.data, "user_id"))],
          kind === "loner" ? [] : [userId!],
          `${label} reads only their own roles`,
        );
      }
      // Writes: a new organisation, a promotion, a profile moved to another organisation.
      refused(await client.from("organizations").insert({ name: `planted by ${label}` }), label);
      refused(
        await client.from("organizations").update({ name: "renamed" }).eq("id", a.orgId),
        label,
      );
      refused(await client.from("organizations").delete().eq("id", b.orgId), label);
      refused(
        await client.from("user_roles").insert({ user_id: userId ?? a.member, role: "owner" }),
        `${label} grants a role`,
      );
      refused(
        await client.from("user_roles").update({ role: "owner" }).eq("user_id", a.member),
        `${label} promotes`,
      );
      refused(await client.from("user_roles").delete().eq("user_id", a.owner), label);
      refused(
        await client.from("profiles").update({ organization_id: b.orgId }).eq("id", a.member),
        `${label} moves a profile`,
      );
      refused(
        await client.from("profiles").insert({ id: w.loner, organization_id: a.orgId }),
        label,
      );
      refused(await client.from("profiles").delete().eq("id", a.owner), label);
    }
    const [counts] = await w.sql`
      select (select count(*)::int from public.organizations where name like 'planted by %') as planted,
             (select array_agg(name order by name) from public.organizations
               where id in ${w.sql([a.orgId, b.orgId])}) as names,
             (select array_agg(distinct role::text order by role::text) from public.user_roles
               where user_id = ${a.member}) as member_roles,
             (select organization_id from public.profiles where id = ${a.member}) as member_org,
             (select count(*)::int from public.profiles where id = ${w.loner}) as loner_profile`;
    assert.deepEqual({ ...counts }, {
      planted: 0,
      names: ["Privileges A", "Privileges B"],
      member_roles: ["manager"],
      member_org: a.orgId,
      loner_profile: 0,
    });

    const all = await service.from("organizations").select("id").in("id", [a.orgId, b.orgId]);
    assert.deepEqual(sorted(all.data), [a.orgId, b.orgId].sort(), "service_role reads every org");
  } finally {
    await teardown(w);
  }
});

Deno.test("messenger_integrations: members read their organisation's rows by naming columns; settings never", async () => {
  const w = await world();
  try {
    const aRows = [w.rows.live, w.rows.legacy, w.rows.off, w.rows.stale, w.rows.telegram].sort();
    const columns = "id, organization_id, name, messenger_type, provider, is_active, is_primary, " +
      "priority, webhook_key, created_at, updated_at";
    for (const { label, client, kind } of w.actors) {
      const named = await client.from("messenger_integrations").select(columns);
      if (kind === "anon") refused(named, `${label} reads named columns`);
      else {
        assert.equal(named.error, null, `${label}: ${JSON.stringify(named.error)}`);
        const ids = sorted(named.data).filter((id) => [...aRows, w.rows.b].includes(id));
        assert.deepEqual(
          ids,
          inA(kind) ? aRows : kind === "b_admin" ? [w.rows.b] : [],
          `${label} reads messenger_integrations`,
        );
        assertNoSecrets(named.data, `${label}'s named columns`);
      }
      // `select('*')` (the CRM's old browser hook), settings itself, a JSON path into it, and
      // filters or orderings that would probe it: all refused, for every browser role.
      refused(await client.from("messenger_integrations").select("*"), `${label} select=*`);
      refused(await client.from("messenger_integrations").select("id, settings"), label);
      refused(await client.from("messenger_integrations").select("id, settings->wppApiKey"), label);
      refused(
        await client.from("messenger_integrations").select("id").eq(
          "settings->>wppApiKey",
          SECRETS.apiKey,
        ),
        `${label} filters on settings`,
      );
      refused(
        await client.from("messenger_integrations").select("id").order("settings"),
        `${label} orders by settings`,
      );
      // Writes.
      refused(
        await client.from("messenger_integrations").insert({
          organization_id: w.a.orgId,
          messenger_type: "whatsapp",
          provider: "wpp",
          name: "planted",
          settings: { wppAccountNumber: "x", wppApiKey: "mine" },
        }),
        `${label} inserts`,
      );
      refused(
        await client.from("messenger_integrations").update({ name: "hijacked" }).eq(
          "id",
          w.rows.live,
        ),
        `${label} renames`,
      );
      refused(
        await client.from("messenger_integrations").update({ settings: { wppApiKey: "mine" } })
          .eq("id", w.rows.live),
        `${label} overwrites settings`,
      );
      refused(await client.from("messenger_integrations").delete().eq("id", w.rows.b), label);
    }
    const rows = await w.sql<{ id: string; name: string; key: string | null }[]>`
      select id, name, settings ->> 'wppApiKey' as key from public.messenger_integrations
       where organization_id in ${w.sql([w.a.orgId, w.b.orgId])}`;
    assert.equal(rows.length, 6, "nothing planted, nothing deleted");
    assert.equal(rows.find((r) => r.id === w.rows.live)?.name, "WhatsApp");
    assert.equal(rows.find((r) => r.id === w.rows.live)?.key, SECRETS.apiKey);

    // The CRM's service-role functions (wpp-send, ...) still read and write settings.
    const seen = await service.from("messenger_integrations").select("id, settings")
      .in("id", [w.rows.live, w.rows.b]);
    assert.equal(seen.error, null);
    const byId = new Map(
      (seen.data ?? []).map((r) => [r.id, r.settings as Record<string, unknown>]),
    );
    assert.equal(byId.get(w.rows.live)?.wppApiKey, SECRETS.apiKey);
    assert.equal(byId.get(w.rows.b)?.wppApiKey, SECRETS.bKey);
    const star = await service.from("messenger_integrations").select("*").eq("id", w.rows.live);
    assert.equal(star.error, null, "service_role's select=* works");
  } finally {
    await teardown(w);
  }
});

Deno.test("messenger_integrations_public: the caller's organisation only, secrets stripped, the connection shown", async () => {
  const w = await world();
  try {
    const aRows = [w.rows.live, w.rows.legacy, w.rows.off, w.rows.stale, w.rows.telegram].sort();
    for (const { label, client, kind } of w.actors) {
      const res = await client.from("messenger_integrations_public").select("*");
      if (kind === "anon") {
        refused(res, `${label} reads the view`);
        continue;
      }
      assert.equal(res.error, null, `${label}: ${JSON.stringify(res.error)}`);
      // The view filters by itself: no row of another organisation, even unfiltered.
      assert.deepEqual(
        sorted(res.data).filter((id) => [...aRows, w.rows.b].includes(id)),
        inA(kind) ? aRows : kind === "b_admin" ? [w.rows.b] : [],
        `${label} reads the view`,
      );
      const orgs = new Set((res.data ?? []).map((r) => r.organization_id));
      assert.ok(
        orgs.size <= 1 && (kind === "loner" || kind === "orphan" ? orgs.size === 0 : true),
        `${label} sees one organisation at most`,
      );
      assertNoSecrets(res.data, `${label}'s view`);
      for (const r of res.data ?? []) assert.equal("settings" in r, false);
      // Naming another organisation does not reach it either.
      const probe = await client.from("messenger_integrations_public").select("id").eq(
        "organization_id",
        kind === "b_admin" ? w.a.orgId : w.b.orgId,
      );
      assert.deepEqual(probe.data, [], `${label} probes another organisation`);
      // A join is not an updatable view, whatever the privileges: either refusal will do.
      for (
        const write of [
          client.from("messenger_integrations_public").update({ name: "x" }).eq("id", w.rows.live),
          client.from("messenger_integrations_public").delete().eq("id", w.rows.live),
          client.from("messenger_integrations_public").insert({ name: "x" }),
        ]
      ) {
        const res = await write;
        assert.ok(
          ["42501", "55000"].includes(res.error?.code ?? ""),
          `${label} writes through the view: ${JSON.stringify(res.error)}`,
        );
      }
    }

    const member = w.actors.find((x) => x.kind === "a_member")!;
    const { data } = await member.client.from("messenger_integrations_public")
      .select("id, session, connection, public_settings, provider");
    const view = new Map((data ?? []).map((r) => [r.id, r]));
    const live = view.get(w.rows.live)!;
    assert.equal(live.connection, "connected");
    assert.match(live.session, /^5500/);
    assert.deepEqual(live.public_settings, {
      wppAccountNumber: live.session,
      wppJwtExpiresAt: 4102444800000,
      greeting: "Hello from the CRM",
      limits: { daily: 500 },
    }, "secret-looking keys are stripped, at any depth; the rest is kept");
    assert.equal(view.get(w.rows.legacy)!.connection, "not_configured", "a placeholder");
    assert.equal(view.get(w.rows.off)!.connection, "disconnected");
    assert.equal(view.get(w.rows.stale)!.connection, "unknown", "state of an older session");
    const tg = view.get(w.rows.telegram)!;
    assert.equal(tg.connection, null);
    assert.equal(tg.session, null);
    assert.deepEqual(tg.public_settings, { chatId: 42 });
    // The view reads this project's state as it is now.
    await w
      .sql`update public.wpp_integration_state set connection = 'qr' where integration_id = ${w.rows.live}`;
    const again = await member.client.from("messenger_integrations_public").select("connection")
      .eq("id", w.rows.live).single();
    assert.equal(again.data?.connection, "qr");
  } finally {
    await teardown(w);
  }
});

Deno.test("this project's tables: state, idempotency keys and placeholders unreadable by browsers; events only for owners and admins", async () => {
  const w = await world();
  try {
    await w.sql`insert into public.wpp_idempotency_keys
                  (user_id, key, organization_id, fingerprint, state, expires_at)
                values (${w.a.admin}, 'k-1', ${w.a.orgId}, 'fp', 'done', now() + interval '1 day')`;
    for (const { label, client, kind } of w.actors) {
      for (
        const [table, column] of [
          ["wpp_integration_state", "webhook_secret"],
          ["wpp_idempotency_keys", "key"],
          ["wpp_session_placeholders", "value"],
        ]
      ) {
        refused(await client.from(table).select("*"), `${label} reads ${table}`);
        refused(await client.from(table).select(column).limit(1), `${label} reads ${table}`);
        refused(await client.from(table).delete().neq(column, "-"), `${label} empties ${table}`);
      }
      refused(
        await client.from("wpp_integration_state").update({ session_state: "ok" }).eq(
          "integration_id",
          w.rows.legacy,
        ),
        `${label} clears a repair mark`,
      );
      refused(
        await client.from("wpp_session_placeholders").insert({ value: "0000000000001" }),
        `${label} marks a real session as a placeholder`,
      );
      refused(
        await client.from("wpp_session_placeholders").delete().eq("value", "client_system"),
        `${label} deletes the placeholder`,
      );

      const events = await client.from("wpp_integration_events").select("id, action");
      if (kind === "anon") refused(events, `${label} reads events`);
      else {
        assert.equal(events.error, null, `${label}: ${JSON.stringify(events.error)}`);
        const mine = sorted(events.data).filter((id) =>
          [String(w.events.a), String(w.events.b)].includes(id)
        );
        const expected = ["a_owner", "a_admin", "a_owner_admin"].includes(kind)
          ? [String(w.events.a)]
          : kind === "b_admin"
          ? [String(w.events.b)]
          : []; // members of A (manager, teacher), and users outside any organisation
        assert.deepEqual(mine, expected, `${label} reads events`);
      }
      refused(
        await client.from("wpp_integration_events").insert({
          organization_id: w.a.orgId,
          action: "created",
        }),
        `${label} forges an event`,
      );
      refused(
        await client.from("wpp_integration_events").update({ action: "failed" }).eq(
          "id",
          w.events.a,
        ),
        `${label} rewrites history`,
      );
      refused(await client.from("wpp_integration_events").delete().eq("id", w.events.a), label);
    }
    const [after] = await w.sql`
      select (select count(*)::int from public.wpp_integration_events
               where organization_id in ${w.sql([w.a.orgId, w.b.orgId])}) as events,
             (select array_agg(value order by value) from public.wpp_session_placeholders
               where value in ('client_system', '0000000000001')) as placeholders,
             (select count(*)::int from public.wpp_idempotency_keys where user_id = ${w.a.admin}) as keys,
             (select count(*)::int from public.wpp_integration_state
               where organization_id = ${w.a.orgId}) as states`;
    assert.deepEqual({ ...after }, {
      events: 2,
      placeholders: ["client_system"],
      keys: 1,
      states: 3,
    }, "every refused write left the tables as they were");

    for (
      const table of [
        "wpp_integration_state",
        "wpp_idempotency_keys",
        "wpp_session_placeholders",
        "wpp_integration_events",
      ] as const
    ) {
      const r = await service.from(table).select("*").limit(1);
      assert.equal(r.error, null, `service_role reads ${table}`);
    }
  } finally {
    await teardown(w);
  }
});

/** Each RPC with arguments that would do something for organisation A if it were allowed. */
function rpcCalls(w: World): [RpcName, Record<string, unknown>][] {
  const someone = w.a.admin;
  return [
    ["wpp_context", { p_user_id: someone }],
    ["wpp_provision_begin", { p_organization_id: w.a.orgId, p_actor: someone, p_mode: "add_new" }],
    ["wpp_provision_complete", {
      p_integration_id: w.rows.legacy,
      p_lease_id: crypto.randomUUID(),
      p_session: "5599000000001",
      p_api_key: "planted-key",
    }],
    ["wpp_provision_fail", {
      p_integration_id: w.rows.live,
      p_lease_id: crypto.randomUUID(),
      p_reason: "x",
      p_outcome_unknown: true,
    }],
    ["wpp_refresh_begin", { p_integration_id: w.rows.live, p_session: "x" }],
    ["wpp_refresh_end", {
      p_integration_id: w.rows.live,
      p_refresh_lease_id: crypto.randomUUID(),
      p_session: "x",
    }],
    ["wpp_webhook_event", { p_secret_hash: "\\x00", p_connection: "connected" }],
    ["wpp_store_token", {
      p_integration_id: w.rows.live,
      p_session: "x",
      p_token: "planted-token",
      p_expires_at: 1,
    }],
    ["wpp_disconnect", {
      p_integration_id: w.rows.live,
      p_organization_id: w.a.orgId,
      p_actor: someone,
    }],
    ["wpp_disconnect_stopped", { p_integration_id: w.rows.live, p_session: "x", p_ok: true }],
    ["wpp_idempotency_claim", {
      p_user_id: someone,
      p_organization_id: w.a.orgId,
      p_key: "k-planted",
      p_fingerprint: "fp",
    }],
    ["wpp_idempotency_finish", {
      p_user_id: someone,
      p_key: "k-planted",
      p_claim_id: crypto.randomUUID(),
      p_http_status: 200,
      p_response: {},
    }],
    ["wpp_record_event", {
      p_organization_id: w.a.orgId,
      p_integration_id: null,
      p_actor: someone,
      p_action: "failed",
    }],
    ["wpp_repair_legacy_sessions", {}],
  ];
}

Deno.test("every wpp_* RPC is refused to anon and signed-in users, and changes nothing", async () => {
  const w = await world();
  try {
    const fingerprint = async () =>
      JSON.stringify(
        await w.sql`
        select (select jsonb_agg(to_jsonb(m) order by m.id) from public.messenger_integrations m
                 where m.organization_id = ${w.a.orgId}) as rows,
               (select jsonb_agg(to_jsonb(s) order by s.integration_id) from public.wpp_integration_state s
                 where s.organization_id = ${w.a.orgId}) as state,
               (select count(*) from public.wpp_integration_events e
                 where e.organization_id = ${w.a.orgId}) as events,
               (select count(*) from public.wpp_idempotency_keys k
                 where k.organization_id = ${w.a.orgId}) as keys`,
      );
    const before = await fingerprint();
    const calls = rpcCalls(w);
    for (const { label, client } of w.actors) {
      for (const [fn, args] of calls) {
        const res = await client.rpc(fn, args);
        refused(res, `${label} calls ${fn}`);
        assert.equal(res.data, null, `${label} gets no data from ${fn}`);
      }
    }
    assert.equal(await fingerprint(), before, "the refused calls changed nothing");
  } finally {
    await teardown(w);
  }
});

Deno.test("every wpp_* function's EXECUTE: service_role only (the view's predicate aside), and each answers service_role", async () => {
  const w = await world();
  try {
    const grants = await w.sql<
      { name: string; anon: boolean; authenticated: boolean; service: boolean; public: boolean }[]
    >`
      select p.proname as name,
             has_function_privilege('anon', p.oid, 'execute') as anon,
             has_function_privilege('authenticated', p.oid, 'execute') as authenticated,
             has_function_privilege('service_role', p.oid, 'execute') as service,
             (p.proacl is null or exists (select 1 from aclexplode(p.proacl) a
                                           where a.grantee = 0 and a.privilege_type = 'EXECUTE'))
               as public
        from pg_proc p
       where p.pronamespace = 'public'::regnamespace and p.proname like 'wpp\\_%'
       order by p.proname`;
    const called = rpcCalls(w).map(([fn]) => fn as string).sort();
    // The view's predicate is harmless and browsers need it to read the view.
    const predicate = "wpp_session_is_valid";
    assert.deepEqual(
      grants.map((g) => g.name).filter((n) => n !== predicate),
      called,
      "every wpp_* function is covered by this test (add new RPCs to rpcCalls)",
    );
    for (const g of grants) {
      assert.equal(g.anon, false, `anon may execute ${g.name}`);
      assert.equal(g.public, false, `PUBLIC may execute ${g.name}`);
      assert.equal(g.service, true, `service_role may not execute ${g.name}`);
      assert.equal(g.authenticated, g.name === predicate, `authenticated and ${g.name}`);
    }
    // The private helpers are not reachable through the API at all.
    const priv = await w.sql<{ name: string; anon: boolean }[]>`
      select p.proname as name, has_function_privilege('anon', p.oid, 'execute') as anon
        from pg_proc p where p.pronamespace = 'private'::regnamespace`;
    assert.ok(priv.length > 5);
    for (const p of priv) assert.equal(p.anon, false, `anon may execute private.${p.name}`);
    const [usage] = await w.sql`select has_schema_privilege('anon', 'private', 'usage') as anon`;
    assert.equal(usage.anon, false);

    // service_role reaches each one through PostgREST. Harmless arguments (unknown ids, a key of
    // a user that does not exist); a WP-class answer is the RPC working, not refusing.
    const nobody = crypto.randomUUID();
    const harmless: [RpcName, Record<string, unknown>][] = [
      ["wpp_context", { p_user_id: nobody }],
      ["wpp_provision_begin", {
        p_organization_id: w.b.orgId,
        p_actor: nobody,
        p_mode: "recreate",
        p_integration_id: nobody,
      }],
      ["wpp_provision_complete", {
        p_integration_id: nobody,
        p_lease_id: nobody,
        p_session: "s",
        p_api_key: "k",
      }],
      ["wpp_provision_fail", { p_integration_id: nobody, p_lease_id: nobody, p_reason: "x" }],
      ["wpp_refresh_begin", { p_integration_id: nobody, p_session: "s" }],
      ["wpp_refresh_end", { p_integration_id: nobody, p_refresh_lease_id: nobody, p_session: "s" }],
      ["wpp_webhook_event", { p_secret_hash: "\\x00" }],
      ["wpp_store_token", {
        p_integration_id: nobody,
        p_session: "s",
        p_token: "t",
        p_expires_at: 1,
      }],
      ["wpp_disconnect", {
        p_integration_id: nobody,
        p_organization_id: w.b.orgId,
        p_actor: nobody,
      }],
      ["wpp_disconnect_stopped", { p_integration_id: nobody, p_session: "s", p_ok: true }],
      ["wpp_idempotency_claim", {
        p_user_id: nobody,
        p_organization_id: w.b.orgId,
        p_key: "k",
        p_fingerprint: "f",
      }],
      ["wpp_idempotency_finish", {
        p_user_id: nobody,
        p_key: "k",
        p_claim_id: nobody,
        p_http_status: 500,
        p_response: {},
      }],
      ["wpp_record_event", {
        p_organization_id: w.b.orgId,
        p_integration_id: null,
        p_actor: nobody,
        p_action: "failed",
        p_details: { reason: "privileges test" },
      }],
      ["wpp_repair_legacy_sessions", {}],
    ];
    assert.deepEqual(harmless.map(([fn]) => fn as string).sort(), called);
    const expected: Record<string, string> = {
      wpp_provision_complete: "WP409",
      wpp_provision_fail: "WP404",
    };
    for (const [fn, args] of harmless) {
      const res = await service.rpc(fn, args as never);
      assert.equal(
        res.error?.code,
        expected[fn],
        `service_role calls ${fn}: ${JSON.stringify(res.error)}`,
      );
    }
    const answers = {
      context: await rpc("wpp_context", { p_user_id: nobody }),
      begin: await rpc("wpp_provision_begin", {
        p_organization_id: w.b.orgId,
        p_actor: nobody,
        p_mode: "recreate",
        p_integration_id: nobody,
      }),
      webhook: await rpc("wpp_webhook_event", { p_secret_hash: "\\x00" }),
    };
    assert.deepEqual(answers, {
      context: {
        organization_id: null,
        role: null,
        found: false,
        replaced: false,
        integration: null,
      },
      begin: { decision: "not_found" },
      webhook: { found: false },
    });
  } finally {
    await teardown(w);
  }
});
