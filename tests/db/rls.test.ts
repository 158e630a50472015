// Every table's policies, both ways, through PostgREST: who reads which rows, and that nobody but
// service_role writes. A refused write is also checked in the database, so "no error but nothing
// happened" and "refused" cannot be confused with "done".
import assert from "node:assert/strict";
import type { SupabaseClient } from "@supabase/supabase-js";
import { anonClient, serviceClient } from "../_support/stack.ts";
import {
  clientAs,
  createLoner,
  createTenant,
  dropTenants,
  insertEvent,
  insertIntegration,
  openDb,
  secretSettings,
  type Sql,
  type Tenant,
} from "./_fixtures.ts";

interface World {
  sql: Sql;
  a: Tenant;
  b: Tenant;
  loner: string;
  /** Everyone who is not service_role, with the client they act through. */
  actors: { label: string; client: SupabaseClient; kind: ActorKind }[];
}

type ActorKind = "anon" | "a_owner" | "a_admin" | "a_member" | "b_admin" | "loner";

async function world(): Promise<World> {
  const sql = openDb();
  const a = await createTenant(sql, "RLS tenant A");
  const b = await createTenant(sql, "RLS tenant B");
  const loner = await createLoner(sql);
  return {
    sql,
    a,
    b,
    loner,
    actors: [
      { label: "anon", client: anonClient(), kind: "anon" },
      { label: "owner of A", client: await clientAs(a.owner), kind: "a_owner" },
      { label: "admin of A", client: await clientAs(a.admin), kind: "a_admin" },
      { label: "member of A", client: await clientAs(a.member), kind: "a_member" },
      { label: "admin of B", client: await clientAs(b.admin), kind: "b_admin" },
      { label: "user without organisation", client: await clientAs(loner), kind: "loner" },
    ],
  };
}

async function teardown(w: World) {
  try {
    await dropTenants(w.sql, [w.a, w.b], [w.loner]);
  } finally {
    await w.sql.end();
  }
}

function refused(res: { error: { code?: string } | null; status: number }, what: string) {
  assert.equal(res.error?.code, "42501", `${what}: expected a permission error, got ${res.status}`);
}

function ids(data: unknown): string[] {
  return ((data ?? []) as { id: string }[]).map((r) => r.id).sort();
}

Deno.test("organizations: members read their own organisation only; only service_role writes", async () => {
  const w = await world();
  try {
    const { a, b } = w;
    const expected: Record<ActorKind, string[] | "refused"> = {
      anon: "refused",
      a_owner: [a.orgId],
      a_admin: [a.orgId],
      a_member: [a.orgId],
      b_admin: [b.orgId],
      loner: [],
    };
    for (const { label, client, kind } of w.actors) {
      const read = await client.from("organizations").select("id, name").in("id", [
        a.orgId,
        b.orgId,
      ]);
      if (expected[kind] === "refused") refused(read, `${label} reads organizations`);
      else assert.deepEqual(ids(read.data), expected[kind], `${label} reads organizations`);

      refused(
        await client.from("organizations").insert({ name: `intruder ${label}` }),
        `${label} inserts`,
      );
      refused(
        await client.from("organizations").update({ name: "renamed" }).eq("id", a.orgId),
        `${label} updates`,
      );
      refused(await client.from("organizations").delete().eq("id", b.orgId), `${label} deletes`);
    }
    const rows = await w.sql`select id, name from public.organizations
                             where id in ${w.sql([a.orgId, b.orgId])} or name like 'intruder %'`;
    assert.deepEqual(
      rows.map((r) => r.name).sort(),
      ["RLS tenant A", "RLS tenant B"],
      "refused writes changed nothing",
    );

    const service = serviceClient();
    const all = await service.from("organizations").select("id").in("id", [a.orgId, b.orgId]);
    assert.deepEqual(ids(all.data), [a.orgId, b.orgId].sort());
    const created = await service.from("organizations").insert({ name: "made by service" })
      .select("id").single();
    assert.equal(created.error, null);
    const renamed = await service.from("organizations").update({ name: "renamed by service" })
      .eq("id", created.data!.id).select("name").single();
    assert.equal(renamed.data?.name, "renamed by service");
    const deleted = await service.from("organizations").delete().eq("id", created.data!.id)
      .select("id");
    assert.equal(deleted.data?.length, 1);
  } finally {
    await teardown(w);
  }
});

Deno.test("profiles: members read their organisation's profiles; nobody promotes themselves", async () => {
  const w = await world();
  try {
    const { a, b } = w;
    const aUsers = [a.owner, a.admin, a.member].sort();
    const bUsers = [b.owner, b.admin, b.member].sort();
    const everyone = [...aUsers, ...bUsers, w.loner];
    const expected: Record<ActorKind, string[] | "refused"> = {
      anon: "refused",
      a_owner: aUsers,
      a_admin: aUsers,
      a_member: aUsers,
      b_admin: bUsers,
      loner: [],
    };
    for (const { label, client, kind } of w.actors) {
      const read = await client.from("profiles").select("id, role").in("id", everyone);
      if (expected[kind] === "refused") refused(read, `${label} reads profiles`);
      else assert.deepEqual(ids(read.data), expected[kind], `${label} reads profiles`);

      refused(
        await client.from("profiles").insert({
          id: w.loner,
          organization_id: a.orgId,
          role: "owner",
        }),
        `${label} inserts a profile`,
      );
      refused(
        await client.from("profiles").update({ role: "owner" }).eq("id", a.member),
        `${label} promotes the member`,
      );
      refused(await client.from("profiles").delete().eq("id", a.owner), `${label} deletes`);
    }
    const rows = await w.sql`select id, role from public.profiles where id in ${w.sql(everyone)}`;
    assert.equal(rows.length, 6, "no profile was added or removed");
    assert.equal(
      rows.find((r) => r.id === a.member)?.role,
      "member",
      "the member is still a member",
    );

    const service = serviceClient();
    const promoted = await service.from("profiles").update({ role: "admin" }).eq("id", a.member)
      .select("role").single();
    assert.equal(promoted.data?.role, "admin", "service_role may change roles");
    const added = await service.from("profiles").insert({ id: w.loner, organization_id: b.orgId });
    assert.equal(added.error, null);
    const removed = await service.from("profiles").delete().eq("id", w.loner).select("id");
    assert.equal(removed.data?.length, 1);
  } finally {
    await teardown(w);
  }
});

Deno.test("messenger_integrations and its view: members read their organisation's rows only", async () => {
  const w = await world();
  try {
    const { a, b } = w;
    const ia = await insertIntegration(w.sql, a.orgId, secretSettings("0000000000101"));
    const ib = await insertIntegration(w.sql, b.orgId, secretSettings("0000000000102"));
    const expected: Record<ActorKind, string[] | "refused"> = {
      anon: "refused",
      a_owner: [ia],
      a_admin: [ia],
      a_member: [ia],
      b_admin: [ib],
      loner: [],
    };
    for (const { label, client, kind } of w.actors) {
      for (const relation of ["messenger_integrations", "messenger_integrations_public"]) {
        const read = await client.from(relation).select("id, organization_id, name")
          .in("id", [ia, ib]);
        if (expected[kind] === "refused") refused(read, `${label} reads ${relation}`);
        else assert.deepEqual(ids(read.data), expected[kind], `${label} reads ${relation}`);

        refused(
          await client.from(relation).insert({
            organization_id: a.orgId,
            messenger_type: "whatsapp",
            provider: "wpp",
            name: "planted",
          }),
          `${label} inserts into ${relation}`,
        );
        refused(
          await client.from(relation).update({ name: "hijacked", is_active: false }).eq("id", ia),
          `${label} updates ${relation}`,
        );
        refused(await client.from(relation).delete().eq("id", ib), `${label} deletes ${relation}`);
      }
      refused(
        await client.from("messenger_integrations").update({ settings: { wppApiKey: "mine" } })
          .eq("id", ia),
        `${label} overwrites settings`,
      );
    }
    const rows = await w.sql`
      select id, name, is_active, settings ->> 'wppApiKey' as key
      from public.messenger_integrations where organization_id in ${w.sql([a.orgId, b.orgId])}`;
    assert.equal(rows.length, 2, "nothing was planted or deleted");
    for (const r of rows) {
      assert.equal(r.name, "WhatsApp");
      assert.equal(r.is_active, true);
      assert.equal(r.key, secretSettings().wppApiKey);
    }

    const service = serviceClient();
    const seen = await service.from("messenger_integrations").select("id, settings")
      .in("id", [ia, ib]);
    assert.deepEqual(ids(seen.data), [ia, ib].sort(), "service_role reads every organisation");
    const made = await service.from("messenger_integrations").insert({
      organization_id: a.orgId,
      messenger_type: "telegram",
      provider: "telegram_bot",
      name: "Telegram",
    }).select("id, webhook_key").single();
    assert.equal(made.error, null);
    assert.match(made.data!.webhook_key, /^[0-9a-f]{48}$/, "a webhook key is generated");
    const renamed = await service.from("messenger_integrations").update({ name: "TG" })
      .eq("id", made.data!.id).select("name").single();
    assert.equal(renamed.data?.name, "TG");
    const gone = await service.from("messenger_integrations").delete().eq("id", made.data!.id)
      .select("id");
    assert.equal(gone.data?.length, 1);
  } finally {
    await teardown(w);
  }
});

Deno.test("integration_events: owners and admins read their organisation's trail; nobody else", async () => {
  const w = await world();
  try {
    const { a, b } = w;
    const ia = await insertIntegration(w.sql, a.orgId, secretSettings());
    const ea = await insertEvent(w.sql, a.orgId, ia, "created", { session: "0000000000001" });
    const eb = await insertEvent(w.sql, b.orgId, null, "failed", { reason: "timeout" });
    const expected: Record<ActorKind, number[] | "refused"> = {
      anon: "refused",
      a_owner: [ea],
      a_admin: [ea],
      a_member: [],
      b_admin: [eb],
      loner: [],
    };
    for (const { label, client, kind } of w.actors) {
      const read = await client.from("integration_events").select("id, action").in("id", [ea, eb]);
      if (expected[kind] === "refused") refused(read, `${label} reads events`);
      else {
        assert.equal(read.error, null, `${label} reads events`);
        assert.deepEqual(
          (read.data ?? []).map((r) => Number(r.id)).sort(),
          expected[kind],
          `${label} reads events`,
        );
      }
      refused(
        await client.from("integration_events").insert({
          organization_id: a.orgId,
          action: "created",
        }),
        `${label} forges an event`,
      );
      refused(
        await client.from("integration_events").update({ action: "reused" }).eq("id", ea),
        `${label} rewrites history`,
      );
      refused(await client.from("integration_events").delete().eq("id", ea), `${label} erases`);
    }
    const rows = await w.sql`select id, action from public.integration_events
                             where organization_id in ${w.sql([a.orgId, b.orgId])} order by id`;
    assert.deepEqual(rows.map((r) => r.action), ["created", "failed"], "the trail is untouched");

    const service = serviceClient();
    const written = await service.from("integration_events")
      .insert({ organization_id: a.orgId, integration_id: ia, action: "session_stopped" })
      .select("id").single();
    assert.equal(written.error, null, "service_role writes events");
    const all = await service.from("integration_events").select("id")
      .in("organization_id", [a.orgId, b.orgId]);
    assert.equal(all.data?.length, 3);
    const erased = await service.from("integration_events").delete().eq("id", written.data!.id)
      .select("id");
    assert.equal(erased.data?.length, 1);
  } finally {
    await teardown(w);
  }
});

Deno.test("wpp_session_placeholders: service_role only", async () => {
  const w = await world();
  const value = `placeholder-${crypto.randomUUID()}`;
  try {
    for (const { label, client } of w.actors) {
      refused(await client.from("wpp_session_placeholders").select("value"), `${label} reads`);
      refused(
        await client.from("wpp_session_placeholders").insert({ value: "0000000000001" }),
        `${label} marks a real session as a placeholder`,
      );
      refused(
        await client.from("wpp_session_placeholders").update({ value: "x" }).eq(
          "value",
          "client_system",
        ),
        `${label} renames a placeholder`,
      );
      refused(
        await client.from("wpp_session_placeholders").delete().eq("value", "client_system"),
        `${label} deletes a placeholder`,
      );
    }
    const [{ n }] = await w.sql`select count(*)::int as n from public.wpp_session_placeholders
                               where value in ('client_system', '0000000000001')`;
    assert.equal(n, 1, "client_system is still listed and nothing was added");

    const service = serviceClient();
    const listed = await service.from("wpp_session_placeholders").select("value")
      .eq("value", "client_system");
    assert.deepEqual(listed.data, [{ value: "client_system" }]);
    assert.equal((await service.from("wpp_session_placeholders").insert({ value })).error, null);
    const updated = await service.from("wpp_session_placeholders").update({ note: "test" })
      .eq("value", value).select("note").single();
    assert.equal(updated.data?.note, "test");
    const deleted = await service.from("wpp_session_placeholders").delete().eq("value", value)
      .select("value");
    assert.equal(deleted.data?.length, 1);
  } finally {
    await w.sql`delete from public.wpp_session_placeholders where value = ${value}`;
    await teardown(w);
  }
});
