// wpp_context: who the caller is (organisation from profiles, role from user_roles) and which
// integration a request is about (by id, by session in either spelling, or by the pick rule),
// with its stored connection. Read-only: it never writes, not even a state row.
import assert from "node:assert/strict";
import {
  createLoner,
  createOrphan,
  createTenant,
  dropTenants,
  insertLiveRow,
  insertRow,
  MEMBER_KINDS,
  newSession,
  openDb,
  PLACEHOLDER,
  rpc,
  stateOf,
  usersOf,
  validSettings,
  withTenant,
} from "./_fixtures.ts";

Deno.test("wpp_context: the role comes from user_roles (owner > admin > member), the organisation from profiles", async () => {
  const sql = openDb();
  const t = await createTenant(sql, "Context roles");
  const loner = await createLoner(sql);
  const orphan = await createOrphan(sql);
  try {
    const expected: Record<(typeof MEMBER_KINDS)[number], string> = {
      owner: "owner",
      admin: "admin", // admin + teacher
      member: "member", // manager
      teacher: "member", // teacher + accountant
      ownerAdmin: "owner", // admin + owner
    };
    for (const kind of MEMBER_KINDS) {
      const ctx = await rpc("wpp_context", { p_user_id: t[kind] });
      assert.deepEqual(
        {
          org: ctx.organization_id,
          role: ctx.role,
          found: ctx.found,
          integration: ctx.integration,
        },
        { org: t.orgId, role: expected[kind], found: false, integration: null },
        kind,
      );
    }
    for (
      const [label, id] of [["no profile", loner], ["profile without organisation", orphan], [
        "unknown user",
        crypto.randomUUID(),
      ]]
    ) {
      const ctx = await rpc("wpp_context", { p_user_id: id });
      assert.deepEqual(ctx, {
        organization_id: null,
        role: null,
        found: false,
        replaced: false,
        integration: null,
      }, label);
    }
    // A role taken away is gone at the next request.
    await sql`delete from public.user_roles where user_id = ${t.ownerAdmin} and role = 'owner'`;
    assert.equal((await rpc("wpp_context", { p_user_id: t.ownerAdmin })).role, "admin");
    await sql`delete from public.user_roles where user_id = ${t.ownerAdmin}`;
    assert.equal((await rpc("wpp_context", { p_user_id: t.ownerAdmin })).role, "member");
  } finally {
    await dropTenants(sql, [t.orgId], [...usersOf(t), loner, orphan]);
    await sql.end({ timeout: 5 });
  }
});

Deno.test("wpp_context: by id, by session (either spelling), by the pick rule; never another organisation's", async () => {
  await withTenant(async (sql, t) => {
    const other = await createTenant(sql, "Context other");
    try {
      const primary = await insertLiveRow(sql, t.orgId, { primary: true, ageSeconds: 10 });
      const older = await insertRow(sql, t.orgId, {
        settings: validSettings(),
        ageSeconds: 500,
      });
      const telegram = await insertRow(sql, t.orgId, {
        provider: "telegram",
        messengerType: "telegram",
        settings: { botToken: "x" },
      });
      const foreign = await insertLiveRow(sql, other.orgId, { primary: true });

      const pick = await rpc("wpp_context", { p_user_id: t.admin });
      assert.equal(pick.found, true);
      assert.equal(pick.integration.integration_id, primary.id, "the active primary is picked");

      const byId = await rpc("wpp_context", { p_user_id: t.admin, p_integration_id: older });
      assert.equal(byId.integration.integration_id, older);
      for (const id of [foreign.id, telegram, crypto.randomUUID()]) {
        const ctx = await rpc("wpp_context", { p_user_id: t.admin, p_integration_id: id });
        assert.equal(ctx.found, false, `id ${id} is not one of the organisation's wpp rows`);
        assert.equal(ctx.integration, null);
        assert.equal(ctx.organization_id, t.orgId);
      }

      for (const spelling of [primary.session, `wpp_${primary.session}`, ` ${primary.session} `]) {
        const ctx = await rpc("wpp_context", { p_user_id: t.member, p_session: spelling });
        assert.equal(ctx.found, true, spelling);
        assert.equal(ctx.integration.integration_id, primary.id, spelling);
        assert.equal(ctx.integration.session, primary.session);
      }
      const foreignSession = await rpc("wpp_context", {
        p_user_id: t.admin,
        p_session: foreign.session,
      });
      assert.deepEqual(
        { found: foreignSession.found, replaced: foreignSession.replaced },
        { found: false, replaced: false },
        "another organisation's session is unknown here",
      );

      // A session this organisation's row held before is reported as replaced, with its row.
      const gone = newSession();
      await sql`update public.wpp_integration_state set replaced_sessions = array[${gone}]
                 where integration_id = ${primary.id}`;
      for (const spelling of [gone, `wpp_${gone}`]) {
        const ctx = await rpc("wpp_context", { p_user_id: t.admin, p_session: spelling });
        assert.equal(ctx.found, false);
        assert.equal(ctx.replaced, true, spelling);
        assert.equal(ctx.replaced_by, primary.id);
      }
      const notOurs = await rpc("wpp_context", { p_user_id: other.admin, p_session: gone });
      assert.equal(notOurs.replaced, false, "another organisation learns nothing of it");

      // Two rows holding one session: the active one answers.
      const twin = validSettings();
      const inactiveTwin = await insertRow(sql, t.orgId, {
        active: false,
        settings: twin,
        ageSeconds: 900,
      });
      const activeTwin = await insertRow(sql, t.orgId, { settings: twin, ageSeconds: 5 });
      const ctx = await rpc("wpp_context", {
        p_user_id: t.admin,
        p_session: twin.wppAccountNumber as string,
      });
      assert.equal(ctx.integration.integration_id, activeTwin);
      assert.notEqual(ctx.integration.integration_id, inactiveTwin);
    } finally {
      await dropTenants(sql, [other.orgId], usersOf(other));
    }
  });
});

Deno.test("wpp_context: the stored connection, its freshness, credentials, and the QR for owners and admins only", async () => {
  await withTenant(async (sql, t) => {
    const settings: Record<string, unknown> = {
      ...validSettings(),
      wppSubOrgId: `${t.orgId}__wpp__0a1b2c3d`,
    };
    const row = await insertLiveRow(sql, t.orgId, {
      settings,
      connection: "qr",
      checkedAgoSeconds: 40,
      createdAgoSeconds: 120,
    });
    await sql`update public.wpp_integration_state set qr = 'QR-PAYLOAD-1', qr_at = now() - interval '40 seconds'
               where integration_id = ${row.id}`;
    const admin = await rpc("wpp_context", { p_user_id: t.admin, p_fresh_seconds: 60 });
    const i = admin.integration;
    assert.equal(i.connection, "qr");
    assert.equal(i.qr, "QR-PAYLOAD-1");
    assert.equal(typeof i.qr_at, "number");
    assert.equal(i.fresh, true, "checked 40 s ago, fresh for 60 s");
    assert.equal(i.api_key, settings.wppApiKey);
    assert.equal(i.jwt_token, settings.wppJwtToken);
    assert.equal(i.jwt_expires_at, 4102444800000);
    assert.equal(i.platform_org_id, settings.wppSubOrgId, "an added number's own platform org");
    assert.equal(i.valid, true);
    assert.equal(i.placeholder, false);
    assert.equal(i.provisioning, false);
    assert.equal(i.refreshing, false);
    assert.equal(i.webhook_current, false, "no webhook registered yet");
    assert.ok(Math.abs(i.session_created_at - (Date.now() - 120_000)) < 30_000);

    const stale = await rpc("wpp_context", { p_user_id: t.admin, p_fresh_seconds: 30 });
    assert.equal(stale.integration.fresh, false, "the same state is stale for 30 s");
    for (const kind of ["member", "teacher"] as const) {
      const m = await rpc("wpp_context", { p_user_id: t[kind] });
      assert.equal(m.role, "member");
      assert.equal(m.integration.qr, null, `${kind}: no QR`);
      assert.equal(m.integration.connection, "qr", `${kind}: the status`);
    }
    const owner = await rpc("wpp_context", { p_user_id: t.ownerAdmin });
    assert.equal(owner.integration.qr, "QR-PAYLOAD-1");

    await sql`update public.wpp_integration_state set webhook_registered_hash = webhook_secret_hash
               where integration_id = ${row.id}`;
    assert.equal(
      (await rpc("wpp_context", { p_user_id: t.admin })).integration.webhook_current,
      true,
    );
    // The state of another session than the stored one says nothing about the stored one.
    await sql`update public.wpp_integration_state set session = 'an-older-session'
               where integration_id = ${row.id}`;
    const other = (await rpc("wpp_context", { p_user_id: t.admin })).integration;
    assert.deepEqual(
      [other.connection, other.qr, other.fresh, other.webhook_current, other.ever_connected],
      ["unknown", null, false, false, false],
    );
  });
});

Deno.test("wpp_context: rows the CRM made (no state) and placeholders, answered without writing", async () => {
  await withTenant(async (sql, t) => {
    const legacy = await insertRow(sql, t.orgId, { primary: true, settings: PLACEHOLDER });
    const before = await sql`select count(*)::int as n from public.wpp_integration_state
                              where organization_id = ${t.orgId}`;
    const ctx = await rpc("wpp_context", { p_user_id: t.owner });
    const i = ctx.integration;
    assert.equal(i.integration_id, legacy);
    assert.deepEqual(
      [i.valid, i.placeholder, i.session, i.connection, i.session_state, i.fresh],
      [false, true, "client_system", "unknown", "ok", false],
    );
    // Every boolean is a boolean (the functions validate the shape): none may come back null.
    for (
      const k of [
        "valid",
        "placeholder",
        "provisioning",
        "cooldown",
        "refreshing",
        "fresh",
        "ever_connected",
        "disconnected",
        "stop_pending",
        "webhook_current",
      ]
    ) {
      assert.equal(typeof i[k], "boolean", k);
    }
    const [after] = await sql`select count(*)::int as n from public.wpp_integration_state
                               where organization_id = ${t.orgId}`;
    assert.equal(after.n, before[0].n, "read-only: no state row is created");
    assert.equal(await stateOf(sql, legacy), undefined);

    // A row made elsewhere with a session, whose state row exists but knows nothing yet.
    const made = validSettings();
    const elsewhere = await insertRow(sql, t.orgId, { settings: made, ageSeconds: 50 });
    await sql`insert into public.wpp_integration_state (integration_id, organization_id, session)
              values (${elsewhere}, ${t.orgId}, ${made.wppAccountNumber as string})`;
    const e = (await rpc("wpp_context", { p_user_id: t.owner, p_integration_id: elsewhere }))
      .integration;
    for (
      const k of ["fresh", "ever_connected", "disconnected", "stop_pending", "webhook_current"]
    ) {
      assert.equal(e[k], false, k);
    }
  });
});
