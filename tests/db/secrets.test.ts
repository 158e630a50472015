// The credentials in messenger_integrations.settings must never reach a browser, however the
// request is phrased, while the harmless settings (wppAccountNumber above all) stay readable.
// Each refusal is checked twice: the expected error, and the absence of every secret value from
// whatever came back.
import assert from "node:assert/strict";
import type { SupabaseClient } from "@supabase/supabase-js";
import { anonClient, mintUserToken, serviceClient, stack } from "../_support/stack.ts";
import {
  clientAs,
  createTenant,
  dropTenants,
  insertIntegration,
  openDb,
  SECRET_VALUES,
  secretSettings,
  type Sql,
  type Tenant,
} from "./_fixtures.ts";

const ACCOUNT = "0000000000777";

/** public_settings as the UI should see it: every secret gone, everything else kept. */
const EXPECTED_PUBLIC = {
  wppAccountNumber: ACCOUNT,
  wppJwtExpiresAt: 4102444800000,
  greeting: "Hello from the CRM",
  limits: { daily: 500 },
};

function assertNoSecret(value: unknown, what: string) {
  const text = JSON.stringify(value) ?? "";
  for (const secret of SECRET_VALUES) {
    assert.ok(!text.includes(secret), `${what}: leaked ${secret}`);
  }
}

async function setUp(): Promise<{
  sql: Sql;
  a: Tenant;
  b: Tenant;
  integrationId: string;
  webhookKey: string;
  readers: { label: string; client: SupabaseClient; sameOrg: boolean }[];
}> {
  const sql = openDb();
  const a = await createTenant(sql, "Secrets tenant A");
  const b = await createTenant(sql, "Secrets tenant B");
  const integrationId = await insertIntegration(sql, a.orgId, secretSettings(ACCOUNT));
  const [{ webhook_key }] = await sql`select webhook_key from public.messenger_integrations
                                      where id = ${integrationId}`;
  return {
    sql,
    a,
    b,
    integrationId,
    webhookKey: webhook_key,
    readers: [
      { label: "owner", client: await clientAs(a.owner), sameOrg: true },
      { label: "admin", client: await clientAs(a.admin), sameOrg: true },
      { label: "member", client: await clientAs(a.member), sameOrg: true },
      { label: "admin of another org", client: await clientAs(b.admin), sameOrg: false },
    ],
  };
}

async function tearDown(sql: Sql, tenants: Tenant[]) {
  try {
    await dropTenants(sql, tenants);
  } finally {
    await sql.end();
  }
}

Deno.test("the fixture really holds secrets: service_role reads them", async () => {
  const s = await setUp();
  try {
    const res = await serviceClient().from("messenger_integrations").select("settings, webhook_key")
      .eq("id", s.integrationId).single();
    assert.equal(res.error, null);
    assert.equal((res.data!.settings as Record<string, unknown>).wppApiKey, SECRET_VALUES[0]);
    assert.equal(res.data!.webhook_key, s.webhookKey);
  } finally {
    await tearDown(s.sql, [s.a, s.b]);
  }
});

Deno.test("no select= a signed-in user sends returns settings, webhook_key or lease columns", async () => {
  const s = await setUp();
  try {
    const forbidden = [
      "settings",
      "settings->wppApiKey",
      "settings->>wppApiKey",
      "key:settings->>wppApiKey",
      "*",
      "id,settings",
      "id,settings->limits->providerToken",
      "webhook_key",
      "provision_lease_id",
      "last_provision_error",
    ];
    for (const { label, client } of s.readers) {
      for (const select of forbidden) {
        const res = await client.from("messenger_integrations").select(select)
          .eq("id", s.integrationId);
        assert.equal(res.error?.code, "42501", `${label} select=${select}`);
        assert.equal(res.status, 403, `${label} select=${select}`);
        assert.equal(res.data, null);
        assertNoSecret(res, `${label} select=${select}`);
      }
    }
  } finally {
    await tearDown(s.sql, [s.a, s.b]);
  }
});

Deno.test("filters, ordering and embeds cannot probe the secret columns either", async () => {
  const s = await setUp();
  try {
    const member = s.readers.find((r) => r.label === "member")!.client;
    const probes = {
      "eq on settings->>wppApiKey": member.from("messenger_integrations").select("id")
        .eq("settings->>wppApiKey", SECRET_VALUES[0]),
      "like on settings->>wppApiKey": member.from("messenger_integrations").select("id")
        .like("settings->>wppApiKey", "sk-live%"),
      "order by settings": member.from("messenger_integrations").select("id")
        .order("settings->>wppApiKey"),
      "eq on webhook_key": member.from("messenger_integrations").select("id")
        .eq("webhook_key", s.webhookKey),
      "embedded settings": member.from("organizations").select(
        "id, messenger_integrations(settings)",
      )
        .eq("id", s.a.orgId),
      "embedded *": member.from("organizations").select("id, messenger_integrations(*)")
        .eq("id", s.a.orgId),
    };
    for (const [label, request] of Object.entries(probes)) {
      const res = await request;
      assert.equal(res.error?.code, "42501", label);
      assertNoSecret(res, label);
    }
  } finally {
    await tearDown(s.sql, [s.a, s.b]);
  }
});

Deno.test("members read public_settings, the view and embeds, stripped of every secret", async () => {
  const s = await setUp();
  try {
    for (const { label, client, sameOrg } of s.readers) {
      const table = await client.from("messenger_integrations")
        .select("id, name, public_settings, session_state").eq("id", s.integrationId);
      assert.equal(table.error, null, label);
      const view = await client.from("messenger_integrations_public").select("*")
        .eq("id", s.integrationId);
      assert.equal(view.error, null, label);
      const embed = await client.from("organizations")
        .select("id, messenger_integrations(id, public_settings)").eq("id", s.a.orgId);
      assert.equal(embed.error, null, label);
      const pick = await client.from("messenger_integrations")
        .select("account:public_settings->>wppAccountNumber, key:public_settings->>wppApiKey")
        .eq("id", s.integrationId);
      assert.equal(pick.error, null, label);
      for (const res of [table, view, embed, pick]) assertNoSecret(res.data, label);

      if (!sameOrg) {
        assert.deepEqual(table.data, [], `${label} sees no row of another organisation`);
        assert.deepEqual(view.data, [], label);
        assert.deepEqual(embed.data, [], label);
        continue;
      }
      assert.deepEqual(table.data, [{
        id: s.integrationId,
        name: "WhatsApp",
        public_settings: EXPECTED_PUBLIC,
        session_state: "ok",
      }], label);
      assert.equal(view.data?.length, 1);
      const row = view.data![0];
      assert.deepEqual(row.public_settings, EXPECTED_PUBLIC, label);
      for (const column of ["settings", "webhook_key", "provision_lease_id"]) {
        assert.ok(!(column in row), `${label}: the view has no ${column} column`);
      }
      assert.deepEqual(embed.data, [{
        id: s.a.orgId,
        messenger_integrations: [{ id: s.integrationId, public_settings: EXPECTED_PUBLIC }],
      }]);
      assert.deepEqual(pick.data, [{ account: ACCOUNT, key: null }], label);
    }
  } finally {
    await tearDown(s.sql, [s.a, s.b]);
  }
});

Deno.test("anon gets nothing from the table or the view", async () => {
  const s = await setUp();
  try {
    const anon = anonClient();
    for (const select of ["*", "settings", "settings->wppApiKey", "id, public_settings"]) {
      const res = await anon.from("messenger_integrations").select(select).eq(
        "id",
        s.integrationId,
      );
      assert.equal(res.error?.code, "42501", `anon select=${select}`);
      assert.equal(res.status, 401, "PostgREST answers 401 to anon");
      assertNoSecret(res, `anon select=${select}`);
    }
    const view = await anon.from("messenger_integrations_public").select("*");
    assert.equal(view.error?.code, "42501");
    assertNoSecret(view, "anon view");
  } finally {
    await tearDown(s.sql, [s.a, s.b]);
  }
});

Deno.test("the provisioning RPCs refuse anon and signed-in users and change nothing", async () => {
  const s = await setUp();
  try {
    const { a } = s;
    const before = await s.sql`select settings, provision_lease_id, session_state
                               from public.messenger_integrations where id = ${s.integrationId}`;
    const [{ n: eventsBefore }] = await s
      .sql`select count(*)::int as n from public.integration_events
                                             where organization_id = ${a.orgId}`;
    const lease = crypto.randomUUID();
    const calls: [string, Record<string, unknown>][] = [
      ["wpp_caller_context", { p_user_id: a.owner }],
      ["wpp_provision_begin", { p_organization_id: a.orgId }],
      ["wpp_provision_begin", { p_organization_id: a.orgId, p_force: true }],
      ["wpp_provision_complete", {
        p_integration_id: s.integrationId,
        p_lease_id: lease,
        p_session: "0000000000666",
        p_api_key: "attacker-key",
      }],
      ["wpp_provision_fail", {
        p_integration_id: s.integrationId,
        p_lease_id: lease,
        p_reason: "x",
      }],
      ["wpp_store_token", {
        p_integration_id: s.integrationId,
        p_session: ACCOUNT,
        p_token: "attacker-token",
        p_expires_at: 1,
      }],
      ["wpp_record_event", {
        p_organization_id: a.orgId,
        p_integration_id: s.integrationId,
        p_actor: a.owner,
        p_action: "session_stopped",
      }],
      ["wpp_repair_legacy_sessions", {}],
      ["wpp_session_is_valid", { settings: {}, session_state: "ok" }],
      ["strip_secret_settings", { p_settings: { wppApiKey: "x" } }],
    ];
    const callers = [
      { label: "anon", client: anonClient() },
      { label: "owner", client: await clientAs(a.owner) },
      { label: "member", client: await clientAs(a.member) },
    ];
    for (const { label, client } of callers) {
      for (const [fn, args] of calls) {
        const res = await client.rpc(fn, args);
        assert.equal(res.error?.code, "42501", `${label} calls ${fn}`);
        assert.equal(res.data, null, `${label} calls ${fn}`);
        assertNoSecret(res, `${label} calls ${fn}`);
      }
    }
    const after = await s.sql`select settings, provision_lease_id, session_state
                              from public.messenger_integrations where id = ${s.integrationId}`;
    assert.deepEqual(after, before, "no refused call touched the integration");
    const [{ n: eventsAfter }] = await s
      .sql`select count(*)::int as n from public.integration_events
                                            where organization_id = ${a.orgId}`;
    assert.equal(eventsAfter, eventsBefore, "no refused call wrote an event");
  } finally {
    await tearDown(s.sql, [s.a, s.b]);
  }
});

Deno.test("raw HTTP: select=settings->wppApiKey with a user's token is a 403 without the key", async () => {
  const s = await setUp();
  try {
    const token = await mintUserToken(s.a.owner);
    const res = await fetch(
      `${stack.url}/rest/v1/messenger_integrations?select=settings-%3EwppApiKey&id=eq.${s.integrationId}`,
      { headers: { apikey: stack.anonKey, authorization: `Bearer ${token}` } },
    );
    const body = await res.text();
    assert.equal(res.status, 403);
    assert.equal(JSON.parse(body).code, "42501");
    assertNoSecret(body, "raw response");
  } finally {
    await tearDown(s.sql, [s.a, s.b]);
  }
});

Deno.test("audit details lose secret-looking keys, whoever writes them", async () => {
  const s = await setUp();
  try {
    const recorded = await serviceClient().rpc("wpp_record_event", {
      p_organization_id: s.a.orgId,
      p_integration_id: s.integrationId,
      p_actor: s.a.admin,
      p_action: "webhook_registered",
      p_details: {
        session: ACCOUNT,
        apiKey: SECRET_VALUES[0],
        wppJwtToken: SECRET_VALUES[1],
        webhook_secret: SECRET_VALUES[2],
        webhookUrl: `https://crm.example/hook/${s.webhookKey}`,
        nested: { api_key: SECRET_VALUES[3], attempt: 2 },
      },
    });
    assert.equal(recorded.error, null);
    const direct = await serviceClient().from("integration_events").insert({
      organization_id: s.a.orgId,
      integration_id: s.integrationId,
      action: "stop_failed",
      details: { status: 500, accessToken: SECRET_VALUES[4] },
    });
    assert.equal(direct.error, null);

    const admin = s.readers.find((r) => r.label === "admin")!.client;
    const read = await admin.from("integration_events").select("action, details, actor_user_id")
      .eq("integration_id", s.integrationId).order("id");
    assert.equal(read.error, null);
    assert.deepEqual(read.data, [
      {
        action: "webhook_registered",
        details: { session: ACCOUNT, nested: { attempt: 2 } },
        actor_user_id: s.a.admin,
      },
      { action: "stop_failed", details: { status: 500 }, actor_user_id: null },
    ]);
    assert.ok(!JSON.stringify(read.data).includes(s.webhookKey), "the webhook key is not logged");
  } finally {
    await tearDown(s.sql, [s.a, s.b]);
  }
});
