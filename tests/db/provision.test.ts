// wpp_provision_begin / _complete / _fail, called as the functions call them (service_role over
// PostgREST): every decision and reason, the pick rule, add_new, the repeat window, cooldowns and
// leases, and what complete and fail leave in the CRM's row and this project's state.
import assert from "node:assert/strict";
import {
  type Answer,
  eventsOf,
  insertLiveRow,
  insertRow,
  newSession,
  PLACEHOLDER,
  rowOf,
  rpc,
  rpcFails,
  type Sql,
  stateOf,
  type Tenant,
  UUID,
  validSettings,
  withTenant,
} from "./_fixtures.ts";

type BeginArgs = Parameters<typeof rpc<"wpp_provision_begin">>[1];

function begin(t: Tenant, args: Partial<BeginArgs> = {}): Promise<Answer> {
  return rpc("wpp_provision_begin", { p_organization_id: t.orgId, p_actor: t.admin, ...args });
}

/** Clears a lease a test took only to look at the decision. */
async function dropLease(sql: Sql, id: string) {
  await sql`update public.wpp_integration_state set lease_id = null, lease_expires_at = null
             where integration_id = ${id}`;
}

function near(
  at: Date | string | null | undefined,
  expectedMs: number,
  what: string,
  slack = 5000,
) {
  assert.ok(at, `${what} is set`);
  const ms = new Date(at).getTime();
  assert.ok(Math.abs(ms - expectedMs) < slack, `${what}: ${new Date(ms).toISOString()}`);
}

const SUB_ORG = /^[0-9a-f-]{36}__wpp__[0-9a-f]{8}$/;

Deno.test("begin, first connect: a new row (the CRM's columns filled, primary), leased to the caller", async () => {
  await withTenant(async (sql, t) => {
    const first = await begin(t, { p_lease_seconds: 45 });
    assert.equal(first.decision, "create");
    assert.equal(first.reason, "no_integration");
    assert.match(first.lease_id, UUID);
    assert.equal(first.old_session, null);
    assert.equal(first.old_api_key, null);
    near(first.lease_expires_at, Date.now() + 45_000, "lease_expires_at");
    const row = await rowOf(sql, first.integration_id);
    assert.deepEqual(
      {
        org: row!.organization_id,
        name: row!.name,
        type: row!.messenger_type,
        provider: row!.provider,
        active: row!.is_active,
        primary: row!.is_primary,
        settings: row!.settings,
      },
      {
        org: t.orgId,
        name: "WhatsApp",
        type: "whatsapp",
        provider: "wpp",
        active: true,
        primary: true,
        settings: {},
      },
    );
    assert.match(row!.webhook_key, /^[0-9a-f]{32}$/, "the CRM's webhook_key gets a fresh value");
    const state = await stateOf(sql, first.integration_id);
    assert.equal(state?.lease_id, first.lease_id);
    assert.equal(state?.lease_reason, "no_integration");

    // The next click while the lease is live waits for it: busy, with a useful Retry-After.
    const second = await begin(t);
    assert.equal(second.decision, "busy");
    assert.equal(second.reason, "lease_held");
    assert.equal(second.integration_id, first.integration_id);
    assert.ok(second.retry_after_seconds >= 40 && second.retry_after_seconds <= 45);
    assert.equal(second.lease_id, undefined, "no lease for the second caller");
    const [{ n }] = await sql`select count(*)::int as n from public.messenger_integrations
                               where organization_id = ${t.orgId}`;
    assert.equal(n, 1, "one row");
  });
});

Deno.test("begin never makes a second primary WhatsApp row: another provider's primary keeps it", async () => {
  await withTenant(async (sql, t) => {
    const greenapi = await insertRow(sql, t.orgId, {
      provider: "greenapi",
      primary: true,
      settings: { idInstance: "1" },
    });
    const first = await begin(t);
    assert.equal(first.decision, "create");
    assert.equal((await rowOf(sql, first.integration_id))!.is_primary, false);
    await dropLease(sql, first.integration_id);
    // A picked non-primary legacy row stays non-primary too.
    const picked = await begin(t);
    assert.equal(picked.integration_id, first.integration_id);
    assert.equal(picked.is_primary, false);
    assert.equal((await rowOf(sql, greenapi))!.is_primary, true, "the CRM's primary is untouched");
  });
});

Deno.test("begin, connect: a usable session is reused, whatever cooldown or refresh is under way", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId);
    const r = await begin(t);
    assert.equal(r.decision, "reuse");
    assert.equal(r.reason, "valid_session");
    assert.equal(r.integration_id, live.id);
    assert.equal(r.session, live.session);
    assert.equal(r.api_key, live.settings.wppApiKey);
    assert.equal((await stateOf(sql, live.id))?.lease_id, null, "no lease for a reuse");
    await sql`update public.wpp_integration_state
                 set cooldown_until = now() + interval '1 minute',
                     refresh_lease_id = gen_random_uuid(),
                     refresh_lease_expires_at = now() + interval '1 minute'
               where integration_id = ${live.id}`;
    assert.equal((await begin(t)).decision, "reuse");
    assert.equal((await eventsOf(sql, t.orgId)).length, 0, "a reuse records nothing");
  });
});

Deno.test("begin: an unusable stored session is replaced, with the reason it is unusable", async () => {
  await withTenant(async (sql, t) => {
    const cases: [string, Record<string, unknown>, string, string | null][] = [
      ["placeholder", PLACEHOLDER, "placeholder_session", null],
      [
        "placeholder in another case",
        { ...PLACEHOLDER, wppAccountNumber: " CLIENT_System " },
        "placeholder_session",
        null,
      ],
      ["no apiKey", { wppAccountNumber: newSession() }, "missing_credentials", null],
      [
        "empty apiKey",
        { wppAccountNumber: newSession(), wppApiKey: "  " },
        "missing_credentials",
        null,
      ],
      [
        "apiKey not a string",
        { wppAccountNumber: newSession(), wppApiKey: 12345 },
        "missing_credentials",
        null,
      ],
      ["no account", { wppApiKey: "k" }, "missing_credentials", null],
      ["marked by the repair", validSettings(), "placeholder_session", "placeholder_session"],
      ["marked dead", validSettings(), "dead_key", "dead_key"],
    ];
    for (const [label, settings, reason, mark] of cases) {
      const id = await insertRow(sql, t.orgId, { settings });
      if (mark) {
        await sql`insert into public.wpp_integration_state
                    (integration_id, organization_id, session_state, repair_reason)
                  values (${id}, ${t.orgId}, 'needs_new_session', ${mark})`;
      }
      const r = await begin(t, { p_integration_id: id });
      assert.equal(r.decision, "create", label);
      assert.equal(r.reason, reason, label);
      assert.equal(r.valid, false, label);
      assert.equal(r.old_session, mark ? settings.wppAccountNumber : null, `${label}: old_session`);
      await dropLease(sql, id);
    }
  });
});

Deno.test("begin: an expired lease is taken over (lease_taken_over), and its holder's complete fails", async () => {
  await withTenant(async (sql, t) => {
    const first = await begin(t);
    await sql`update public.wpp_integration_state set lease_expires_at = now() - interval '1 second'
               where integration_id = ${first.integration_id}`;
    const second = await begin(t);
    assert.equal(second.decision, "create");
    assert.notEqual(second.lease_id, first.lease_id);
    assert.equal(second.reason, "missing_credentials", "the inserted row has no session yet");
    const taken = (await eventsOf(sql, t.orgId)).filter((e) => e.action === "lease_taken_over");
    assert.equal(taken.length, 1);
    assert.ok(taken[0].details.previous_lease_expired_at);
    assert.equal(taken[0].actor_user_id, t.admin);

    const late = await rpcFails("wpp_provision_complete", {
      p_integration_id: first.integration_id,
      p_lease_id: first.lease_id,
      p_session: newSession(),
      p_api_key: "late-key",
    });
    assert.equal(late.code, "WP409");
    assert.match(late.message, /^wpp_provision_complete: WP409 lease_lost: /);
    assert.deepEqual((await rowOf(sql, first.integration_id))!.settings, {}, "nothing stored");
    const done = await rpc("wpp_provision_complete", {
      p_integration_id: second.integration_id,
      p_lease_id: second.lease_id,
      p_session: newSession(),
      p_api_key: "new-key",
    });
    assert.equal(done.action, "created");
  });
});

Deno.test("begin: cooldown after an unknown outcome, then create once it passed; a refresh in flight holds a replace", async () => {
  await withTenant(async (sql, t) => {
    const first = await begin(t);
    const failed = await rpc("wpp_provision_fail", {
      p_integration_id: first.integration_id,
      p_lease_id: first.lease_id,
      p_reason: "platform_timeout",
      p_outcome_unknown: true,
      p_cooldown_seconds: 20,
    });
    assert.equal(failed.released, true);
    const cooling = await begin(t);
    assert.equal(cooling.decision, "cooldown");
    assert.equal(cooling.integration_id, first.integration_id);
    assert.ok(cooling.retry_after_seconds >= 18 && cooling.retry_after_seconds <= 20);
    assert.equal(cooling.cooldown, true);
    await sql`update public.wpp_integration_state set cooldown_until = now() - interval '1 second'
               where integration_id = ${first.integration_id}`;
    assert.equal((await begin(t)).decision, "create");

    const live = await insertLiveRow(sql, t.orgId, { primary: false });
    await sql`update public.wpp_integration_state
                 set refresh_lease_id = gen_random_uuid(),
                     refresh_lease_expires_at = now() + interval '10 seconds'
               where integration_id = ${live.id}`;
    const held = await begin(t, { p_mode: "recreate", p_integration_id: live.id });
    assert.equal(held.decision, "busy");
    assert.equal(held.reason, "refresh_in_flight");
    assert.ok(held.retry_after_seconds >= 1 && held.retry_after_seconds <= 10);
    assert.equal((await stateOf(sql, live.id))?.lease_id, null);
  });
});

Deno.test("begin, recreate: forced after the repeat window with the old credentials handed back; reused within it", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, { createdAgoSeconds: 3600 });
    const forced = await begin(t, { p_mode: "recreate", p_repeat_window_seconds: 60 });
    assert.equal(forced.decision, "create");
    assert.equal(forced.reason, "forced");
    assert.equal(forced.integration_id, live.id);
    assert.equal(forced.old_session, live.session);
    assert.equal(forced.old_api_key, live.settings.wppApiKey);
    assert.equal(forced.old_jwt_token, live.settings.wppJwtToken);
    assert.equal(forced.old_jwt_expires_at, 4102444800000);
    const fresh = newSession();
    await rpc("wpp_provision_complete", {
      p_integration_id: live.id,
      p_lease_id: forced.lease_id,
      p_session: fresh,
      p_api_key: "fresh-key",
    });
    // The panel's helper retries a slow force_recreate: the session made moments ago answers.
    const repeat = await begin(t, { p_mode: "recreate", p_repeat_window_seconds: 60 });
    assert.equal(repeat.decision, "reuse");
    assert.equal(repeat.reason, "recently_created");
    assert.equal(repeat.session, fresh);
    // Outside the window (and once the creator's first start is over), a recreate replaces it.
    await sql`update public.wpp_integration_state
                 set session_created_at = now() - interval '61 seconds',
                     refresh_lease_id = null, refresh_lease_expires_at = null
               where integration_id = ${live.id}`;
    const again = await begin(t, { p_mode: "recreate", p_repeat_window_seconds: 60 });
    assert.equal(again.decision, "create");
    assert.equal(again.old_session, fresh);
  });
});

Deno.test("begin: a dead session is condemned only while it is still the stored one", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, { createdAgoSeconds: 5 });
    // A caller with an outdated view names a session that is no longer stored: nothing happens.
    const stale = await begin(t, { p_dead_session: "5500000000000" });
    assert.equal(stale.decision, "reuse");
    assert.equal((await stateOf(sql, live.id))?.session_state, "ok");
    // Even within the repeat window, a dead key is not "recently created": it is replaced.
    const dead = await begin(t, {
      p_mode: "recreate",
      p_dead_session: ` ${live.session} `,
      p_repeat_window_seconds: 600,
    });
    assert.equal(dead.decision, "create");
    assert.equal(dead.reason, "dead_key");
    assert.equal(dead.old_session, live.session, "handed back, so the old session is stopped");
    const state = await stateOf(sql, live.id);
    assert.equal(state?.session_state, "needs_new_session");
    assert.equal(state?.repair_reason, "dead_key");
    const detected = (await eventsOf(sql, t.orgId)).filter((e) => e.action === "dead_key_detected");
    assert.equal(detected.length, 1);
    assert.equal(detected[0].details.session, live.session);
    // Named again while marked: no second event.
    await dropLease(sql, live.id);
    await begin(t, { p_dead_session: live.session });
    assert.equal(
      (await eventsOf(sql, t.orgId)).filter((e) => e.action === "dead_key_detected").length,
      1,
    );
  });
});

Deno.test("begin: not_found for an unknown id, another organisation's row, another provider's row", async () => {
  await withTenant(async (sql, t) => {
    await withTenant(async (_sql, other) => {
      const foreign = await insertLiveRow(sql, other.orgId);
      const telegram = await insertRow(sql, t.orgId, {
        provider: "telegram",
        messengerType: "telegram",
      });
      const foreignState = await stateOf(sql, foreign.id);
      for (const id of [crypto.randomUUID(), foreign.id, telegram]) {
        for (const mode of ["connect", "recreate"]) {
          assert.deepEqual(await begin(t, { p_integration_id: id, p_mode: mode }), {
            decision: "not_found",
          });
        }
      }
      assert.deepEqual(await stateOf(sql, foreign.id), foreignState, "a foreign row untouched");
      assert.equal(await stateOf(sql, telegram), undefined, "no state for another provider");
      const [{ n }] = await sql`select count(*)::int as n from public.messenger_integrations
                                 where organization_id = ${t.orgId} and provider = 'wpp'`;
      assert.equal(n, 0, "no row inserted");
    }, "Other org");
  });
});

Deno.test("the pick rule: active primary, oldest active, inactive primary, oldest inactive (reactivated)", async () => {
  await withTenant(async (sql, t) => {
    const ids = {
      inactiveOld: await insertRow(sql, t.orgId, {
        active: false,
        settings: PLACEHOLDER,
        ageSeconds: 900,
      }),
      inactivePrimary: await insertRow(sql, t.orgId, {
        active: false,
        primary: true,
        settings: PLACEHOLDER,
        ageSeconds: 100,
      }),
      activeOld: await insertRow(sql, t.orgId, { settings: PLACEHOLDER, ageSeconds: 800 }),
      activeNew: await insertRow(sql, t.orgId, { settings: PLACEHOLDER, ageSeconds: 50 }),
    };
    // A picked row leaves the game as another provider's row: deleting it would unlink its events.
    const retire = (id: string) =>
      sql`update public.messenger_integrations set provider = 'retired', is_primary = false
           where id = ${id}`;
    // The stand-in allows one primary per organisation and type (whether active or not).
    await sql`update public.messenger_integrations set is_primary = false where id = ${ids.inactivePrimary}`;
    const activePrimary = await insertRow(sql, t.orgId, {
      primary: true,
      settings: PLACEHOLDER,
      ageSeconds: 10,
    });
    const first = await begin(t);
    assert.equal(first.integration_id, activePrimary, "the active primary, though newest");
    await dropLease(sql, activePrimary);
    await retire(activePrimary);
    await sql`update public.messenger_integrations set is_primary = true where id = ${ids.inactivePrimary}`;

    const second = await begin(t);
    assert.equal(second.integration_id, ids.activeOld, "then the oldest active");
    assert.equal(second.is_primary, false, "the inactive primary keeps the flag");
    await dropLease(sql, second.integration_id);
    await retire(ids.activeOld);
    await retire(ids.activeNew);

    const third = await begin(t);
    assert.equal(third.integration_id, ids.inactivePrimary, "then the inactive primary");
    assert.equal(third.is_active, true, "reactivated");
    assert.equal((await rowOf(sql, ids.inactivePrimary))!.is_active, true);
    await dropLease(sql, third.integration_id);
    await retire(ids.inactivePrimary);

    const fourth = await begin(t);
    assert.equal(fourth.integration_id, ids.inactiveOld, "then the oldest inactive");
    assert.equal(fourth.is_active, true);
    assert.equal(fourth.is_primary, true, "no primary left: it becomes the primary");
    const reactivated = (await eventsOf(sql, t.orgId)).filter((e) => e.action === "reactivated");
    assert.deepEqual(reactivated.map((e) => e.integration_id), [
      ids.inactivePrimary,
      ids.inactiveOld,
    ]);
    assert.equal(reactivated[0].details.session, "client_system");
    assert.equal(reactivated[0].actor_user_id, t.admin);
  });
});

Deno.test("begin, add_new: a new non-primary number with its own platform org; repeats answer the pending one", async () => {
  await withTenant(async (sql, t) => {
    const main = await insertLiveRow(sql, t.orgId, { primary: true });
    const added = await begin(t, { p_mode: "add_new" });
    assert.equal(added.decision, "create");
    assert.equal(added.reason, "add_new");
    assert.notEqual(added.integration_id, main.id);
    const row = await rowOf(sql, added.integration_id);
    assert.equal(row!.is_primary, false, "the organisation has its primary");
    assert.equal(row!.name, "WhatsApp 2");
    assert.match(row!.settings.wppSubOrgId, SUB_ORG);
    assert.ok((row!.settings.wppSubOrgId as string).startsWith(`${t.orgId}__wpp__`));
    assert.equal(added.platform_org_id, row!.settings.wppSubOrgId);

    // A double click while it is being created: the same number, busy.
    const double = await begin(t, { p_mode: "add_new" });
    assert.equal(double.decision, "busy");
    assert.equal(double.integration_id, added.integration_id);

    const session = newSession();
    await rpc("wpp_provision_complete", {
      p_integration_id: added.integration_id,
      p_lease_id: added.lease_id,
      p_session: session,
      p_api_key: "added-key",
    });
    // Created, not scanned yet: a repeated add_new shows that number instead of making another.
    const pending = await begin(t, { p_mode: "add_new" });
    assert.equal(pending.decision, "reuse");
    assert.equal(pending.reason, "pending_number");
    assert.equal(pending.integration_id, added.integration_id);
    assert.equal(pending.session, session);
    assert.equal(
      (await rowOf(sql, added.integration_id))!.settings.wppSubOrgId,
      row!.settings.wppSubOrgId,
      "kept",
    );

    // Once scanned, the next add_new is a new number again.
    await sql`update public.wpp_integration_state set ever_connected_at = now(), connection = 'connected'
               where integration_id = ${added.integration_id}`;
    const third = await begin(t, { p_mode: "add_new" });
    assert.equal(third.decision, "create");
    assert.notEqual(third.integration_id, added.integration_id);
    assert.equal((await rowOf(sql, third.integration_id))!.name, "WhatsApp 3");

    // Its create failed for good: the row waits, and the next add_new fills it instead of a fourth.
    await rpc("wpp_provision_fail", {
      p_integration_id: third.integration_id,
      p_lease_id: third.lease_id,
      p_reason: "platform_rejected",
    });
    const refill = await begin(t, { p_mode: "add_new" });
    assert.equal(refill.decision, "create");
    assert.equal(refill.integration_id, third.integration_id, "the failed number is refilled");
    // Its outcome unknown this time: the number cools down and answers the next add_new.
    await rpc("wpp_provision_fail", {
      p_integration_id: third.integration_id,
      p_lease_id: refill.lease_id,
      p_reason: "platform_timeout",
      p_outcome_unknown: true,
    });
    const cooling = await begin(t, { p_mode: "add_new" });
    assert.equal(cooling.decision, "cooldown");
    assert.equal(cooling.integration_id, third.integration_id);
    const [{ n }] = await sql`select count(*)::int as n from public.messenger_integrations
                               where organization_id = ${t.orgId}`;
    assert.equal(n, 3);
  });
});

Deno.test("begin, add_new: a listed number without a usable session is filled before a row is added", async () => {
  await withTenant(async (sql, t) => {
    const main = await insertLiveRow(sql, t.orgId, { primary: true });
    const inactive = await insertRow(sql, t.orgId, {
      active: false,
      settings: PLACEHOLDER,
      ageSeconds: 900,
    });
    const legacy = await insertRow(sql, t.orgId, {
      settings: { ...PLACEHOLDER, greeting: "hi" },
      ageSeconds: 500,
    });
    const noKey = await insertRow(sql, t.orgId, {
      settings: { wppAccountNumber: newSession() },
      ageSeconds: 100,
    });
    const first = await begin(t, { p_mode: "add_new" });
    assert.deepEqual(
      [first.decision, first.integration_id, first.reason, first.is_primary],
      ["create", legacy, "placeholder_session", false],
      "the oldest listed unusable number, secondary to the working one",
    );
    await rpc("wpp_provision_fail", {
      p_integration_id: legacy,
      p_lease_id: first.lease_id,
      p_reason: "x",
    });
    await sql`update public.messenger_integrations set is_active = false where id = ${legacy}`;
    const second = await begin(t, { p_mode: "add_new" });
    assert.deepEqual([second.integration_id, second.reason], [noKey, "missing_credentials"]);
    await dropLease(sql, noKey);
    await sql`update public.messenger_integrations set is_active = false where id = ${noKey}`;
    const third = await begin(t, { p_mode: "add_new" });
    assert.equal(third.reason, "add_new", "an inactive number is not listed: a new row");
    assert.ok(![main.id, inactive, legacy, noKey].includes(third.integration_id));
  });
});

Deno.test("begin, add_new: the cap counts active numbers only", async () => {
  await withTenant(async (sql, t) => {
    const a = await insertLiveRow(sql, t.orgId, { primary: true });
    const b = await insertLiveRow(sql, t.orgId, { primary: false });
    for (const id of [a.id, b.id]) {
      await sql`update public.wpp_integration_state set ever_connected_at = now() where integration_id = ${id}`;
    }
    await insertRow(sql, t.orgId, { active: false, settings: validSettings() });
    const limit = await begin(t, { p_mode: "add_new", p_max_numbers: 2 });
    assert.deepEqual(limit, { decision: "limit", count: 2, max: 2 });
    const [{ n }] = await sql`select count(*)::int as n from public.messenger_integrations
                               where organization_id = ${t.orgId}`;
    assert.equal(n, 3, "nothing inserted at the cap");
    assert.equal((await begin(t, { p_mode: "add_new", p_max_numbers: 3 })).decision, "create");
  });
});

Deno.test("begin: invalid arguments are WP400", async () => {
  await withTenant(async (_sql, t) => {
    for (
      const args of [
        { p_mode: "delete" },
        { p_lease_seconds: 0 },
        { p_lease_seconds: 3601 },
      ] as Partial<BeginArgs>[]
    ) {
      const e = await rpcFails("wpp_provision_begin", {
        p_organization_id: t.orgId,
        p_actor: t.admin,
        ...args,
      });
      assert.equal(e.code, "WP400", JSON.stringify(args));
      assert.match(e.message, /invalid_argument: /);
    }
  });
});

Deno.test("complete: stores the session in the same row keeping every other key, rotates the secret, hands out the refresh lease", async () => {
  await withTenant(async (sql, t) => {
    const old = newSession();
    const settings = {
      wppAccountNumber: old,
      wppApiKey: "old-key",
      wppJwtToken: "old-jwt",
      wppJwtExpiresAt: 4102444800000,
      wppSubOrgId: `${t.orgId}__wpp__00aa11bb`,
      wppSession: old,
      wppBaseUrl: "https://wpp.example/api",
      greeting: "Здравствуйте",
      nested: { a: [1, 2] },
    };
    const live = await insertLiveRow(sql, t.orgId, { settings, createdAgoSeconds: 3600 });
    await sql`update public.wpp_integration_state
                 set qr = 'old-qr', qr_at = now(), stop_pending = true, cooldown_until = now() - interval '1 hour',
                     replaced_sessions = array['5500000000001']
               where integration_id = ${live.id}`;
    const before = await stateOf(sql, live.id);
    const lease = await begin(t, { p_mode: "recreate" });
    const fresh = newSession();
    const done = await rpc("wpp_provision_complete", {
      p_integration_id: live.id,
      p_lease_id: lease.lease_id,
      p_session: ` ${fresh} `,
      p_api_key: "new-key",
      p_actor: t.admin,
      p_details: { platform_ms: 120, apiKey: "must-not-be-kept" },
      p_refresh_lease_seconds: 25,
    });
    assert.equal(done.integration_id, live.id);
    assert.equal(done.session, fresh, "trimmed");
    assert.equal(done.action, "recreated");
    const row = await rowOf(sql, live.id);
    const { wppJwtToken: _t, wppJwtExpiresAt: _e, ...kept } = settings;
    assert.deepEqual(row!.settings, {
      ...kept,
      wppAccountNumber: fresh,
      wppApiKey: "new-key",
    }, "a merge: the token of the old key goes, every other key stays");
    const state = await stateOf(sql, live.id);
    assert.equal(state!.session, fresh);
    assert.deepEqual(state!.replaced_sessions, ["5500000000001", old]);
    assert.notEqual(state!.webhook_secret, before!.webhook_secret, "the webhook secret is rotated");
    assert.notDeepEqual(state!.webhook_secret_hash, before!.webhook_secret_hash);
    assert.equal(done.webhook_secret, state!.webhook_secret);
    assert.match(state!.webhook_secret, /^[A-Za-z0-9_-]{43,44}$/, "URL-safe");
    assert.equal(state!.refresh_lease_id, done.refresh_lease_id);
    near(state!.refresh_lease_expires_at, Date.now() + 25_000, "refresh lease");
    assert.deepEqual(
      {
        lease: state!.lease_id,
        cooldown: state!.cooldown_until,
        sessionState: state!.session_state,
        connection: state!.connection,
        qr: state!.qr,
        ever: state!.ever_connected_at,
        stop: state!.stop_pending,
        registered: state!.webhook_registered_hash,
      },
      {
        lease: null,
        cooldown: null,
        sessionState: "ok",
        connection: "starting",
        qr: null,
        ever: null,
        stop: false,
        registered: null,
      },
    );
    near(state!.session_created_at, Date.now(), "session_created_at");
    const recreated = (await eventsOf(sql, t.orgId)).filter((e) => e.action === "recreated");
    assert.equal(recreated.length, 1);
    assert.deepEqual(recreated[0].details, {
      platform_ms: 120,
      session: fresh,
      previous_session: old,
      reason: "forced",
    }, "secret-looking detail keys are stripped");
    assert.equal(recreated[0].actor_user_id, t.admin);
  });
});

Deno.test("complete: a placeholder row gets its first session ('created'); refusals for lost leases and bad sessions", async () => {
  await withTenant(async (sql, t) => {
    const legacy = await insertRow(sql, t.orgId, {
      primary: true,
      settings: { ...PLACEHOLDER, greeting: "hi" },
    });
    const lease = await begin(t);
    assert.equal(lease.integration_id, legacy);
    const args = { p_integration_id: legacy, p_lease_id: lease.lease_id, p_api_key: "k" };
    for (const bad of ["", "   ", "client_system", " Client_System "]) {
      const e = await rpcFails("wpp_provision_complete", { ...args, p_session: bad });
      assert.equal(e.code, "WP422", `session ${JSON.stringify(bad)}`);
      assert.match(e.message, /invalid_session/);
    }
    const noKey = await rpcFails("wpp_provision_complete", {
      ...args,
      p_session: newSession(),
      p_api_key: " ",
    });
    assert.equal(noKey.code, "WP422");
    for (
      const lost of [
        { p_lease_id: crypto.randomUUID() },
        { p_integration_id: crypto.randomUUID() },
      ]
    ) {
      const e = await rpcFails("wpp_provision_complete", {
        ...args,
        p_session: newSession(),
        ...lost,
      });
      assert.equal(e.code, "WP409", JSON.stringify(lost));
    }
    assert.deepEqual((await rowOf(sql, legacy))!.settings, { ...PLACEHOLDER, greeting: "hi" });

    // An expired lease nobody took over still completes: a slow create is not thrown away.
    await sql`update public.wpp_integration_state set lease_expires_at = now() - interval '5 seconds'
               where integration_id = ${legacy}`;
    const session = newSession();
    const done = await rpc("wpp_provision_complete", { ...args, p_session: session });
    assert.equal(done.action, "created", "a placeholder was never a session");
    const state = await stateOf(sql, legacy);
    assert.deepEqual(state!.replaced_sessions, [], "client_system is not remembered as a session");
    const created = (await eventsOf(sql, t.orgId)).find((e) => e.action === "created");
    assert.deepEqual(created?.details, {
      session,
      previous_session: "client_system",
      reason: "placeholder_session",
    });
    assert.deepEqual((await rowOf(sql, legacy))!.settings, {
      greeting: "hi",
      wppAccountNumber: session,
      wppApiKey: "k",
    });
    // The lease is gone with the complete: the same lease completes nothing twice.
    const twice = await rpcFails("wpp_provision_complete", { ...args, p_session: newSession() });
    assert.equal(twice.code, "WP409");
  });
});

Deno.test("fail: a known failure releases the lease; an unknown outcome cools down; a lost lease is still recorded", async () => {
  await withTenant(async (sql, t) => {
    const first = await begin(t);
    const known = await rpc("wpp_provision_fail", {
      p_integration_id: first.integration_id,
      p_lease_id: first.lease_id,
      p_reason: "platform_rejected",
      p_details: { status: 400, body: "bad organizationId", token: "never-stored" },
      p_actor: t.admin,
    });
    assert.deepEqual(known, { released: true, cooldown_until: null });
    let state = await stateOf(sql, first.integration_id);
    assert.equal(state!.lease_id, null);
    assert.equal(state!.cooldown_until, null);
    assert.equal(state!.last_provision_error, "platform_rejected");

    const second = await begin(t);
    assert.equal(second.decision, "create", "a known failure allows the next click");
    const unknown = await rpc("wpp_provision_fail", {
      p_integration_id: second.integration_id,
      p_lease_id: second.lease_id,
      p_reason: "x".repeat(1500),
      p_details: { platform_status: 503, platform_said: "Service Unavailable" },
      p_outcome_unknown: true,
      p_cooldown_seconds: 30,
    });
    assert.equal(unknown.released, true);
    near(unknown.cooldown_until, Date.now() + 30_000, "cooldown_until");
    state = await stateOf(sql, second.integration_id);
    near(state!.cooldown_until, Date.now() + 30_000, "stored cooldown");
    assert.equal(state!.last_provision_error?.length, 1000, "the reason is bounded");

    // Nobody holds the lease now: a late fail is recorded, nothing else changes.
    const late = await rpc("wpp_provision_fail", {
      p_integration_id: second.integration_id,
      p_lease_id: crypto.randomUUID(),
      p_reason: "late",
    });
    assert.deepEqual(late, { released: false, cooldown_until: null });
    near((await stateOf(sql, second.integration_id))!.cooldown_until, Date.now() + 30_000, "kept");

    const trail = await eventsOf(sql, t.orgId);
    assert.deepEqual(trail.map((e) => e.action), ["failed", "create_outcome_unknown", "failed"]);
    assert.deepEqual(trail[0].details, {
      status: 400,
      body: "bad organizationId",
      reason: "platform_rejected",
      released: true,
    }, "the token-looking key is stripped");
    assert.equal(trail[0].actor_user_id, t.admin);
    assert.equal(trail[1].details.platform_status, 503);
    assert.equal(trail[1].details.platform_said, "Service Unavailable");
    assert.ok(trail[1].details.cooldown_until);
    assert.equal(trail[2].details.released, false);

    const e = await rpcFails("wpp_provision_fail", {
      p_integration_id: crypto.randomUUID(),
      p_lease_id: crypto.randomUUID(),
      p_reason: "x",
    });
    assert.equal(e.code, "WP404");
  });
});
