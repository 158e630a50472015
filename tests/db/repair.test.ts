// wpp_repair_legacy_sessions(): every wpp row whose stored session cannot work (a placeholder,
// no apiKey, no account), whatever its is_primary and is_active, is marked needs_new_session with
// one `repaired` event; nothing is deleted or changed in the CRM's rows; a second run marks
// nothing; a row under a live lease is left to its holder. It runs over the whole database, so
// each test compares against what was there to mark just before.
import assert from "node:assert/strict";
import {
  eventsOf,
  insertRow,
  newSession,
  openDb,
  PLACEHOLDER,
  rpc,
  type Sql,
  stateOf,
  validSettings,
} from "./_fixtures.ts";

/** Organisations without users: the repair needs none. */
async function bareOrgs(sql: Sql, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => crypto.randomUUID());
  for (const id of ids) {
    await sql`insert into public.organizations (id, name) values (${id}, 'Repair test')`;
  }
  return ids;
}

async function dropOrgs(sql: Sql, ids: string[]) {
  await sql`delete from public.wpp_integration_events where organization_id in ${sql(ids)}`;
  await sql`delete from public.organizations where id in ${sql(ids)}`;
}

/** Rows the repair would mark right now, anywhere. */
async function markable(sql: Sql): Promise<number> {
  const [{ n }] = await sql`
    select count(*)::int as n from public.messenger_integrations i
      left join public.wpp_integration_state s on s.integration_id = i.id
     where i.provider = 'wpp'
       and not public.wpp_session_is_valid(i.settings, s.session_state)
       and s.session_state is distinct from 'needs_new_session'
       and not coalesce(s.lease_id is not null and s.lease_expires_at > now(), false)`;
  return n;
}

async function rowsOf(sql: Sql, orgIds: string[]): Promise<string> {
  const [r] = await sql`select jsonb_agg(to_jsonb(m) order by m.id) as rows
                          from public.messenger_integrations m
                         where m.organization_id in ${sql(orgIds)}`;
  return JSON.stringify(r.rows);
}

function repair(): Promise<number> {
  return rpc("wpp_repair_legacy_sessions", {}) as unknown as Promise<number>;
}

Deno.test("repair: every shape of unusable wpp row is marked once, with one event, and nothing is deleted", async () => {
  const sql = openDb();
  // One primary per organisation and type (the stand-in's constraint): a tenant per primary row.
  const orgs = await bareOrgs(sql, 4);
  try {
    const shapes: {
      id: string;
      reason: "placeholder_session" | "missing_credentials";
      primary: boolean;
      active: boolean;
      account: string | null;
    }[] = [];
    let i = 0;
    for (const primary of [true, false]) {
      for (const active of [true, false]) {
        const org = orgs[i++];
        for (
          const [reason, settings] of [
            ["placeholder_session", { ...PLACEHOLDER, greeting: "hi" }],
            ["missing_credentials", { wppAccountNumber: newSession(), note: "no key" }],
          ] as const
        ) {
          // Each org holds one primary at most: the second shape of a primary org is not primary.
          const isPrimary = primary && reason === "placeholder_session";
          const id = await insertRow(sql, org, { primary: isPrimary, active, settings });
          shapes.push({
            id,
            reason,
            primary: isPrimary,
            active,
            account: settings.wppAccountNumber,
          });
        }
        if (primary) {
          const id = await insertRow(sql, org, {
            active,
            settings: { wppAccountNumber: newSession(), wppApiKey: "" },
            ageSeconds: 5,
          });
          shapes.push({ id, reason: "missing_credentials", primary: false, active, account: null });
        }
      }
    }
    // The primary rows without a key, each in an org of its own.
    const noKeyPrimaries = await bareOrgs(sql, 2);
    orgs.push(...noKeyPrimaries);
    for (const [n, org] of noKeyPrimaries.entries()) {
      const id = await insertRow(sql, org, { primary: true, active: n === 0, settings: {} });
      shapes.push({
        id,
        reason: "missing_credentials",
        primary: true,
        active: n === 0,
        account: null,
      });
    }
    const odd = await insertRow(sql, orgs[1], {
      settings: { wppAccountNumber: "  CLIENT_System ", wppApiKey: "k" },
    });
    shapes.push({
      id: odd,
      reason: "placeholder_session",
      primary: false,
      active: true,
      account: "CLIENT_System",
    });
    // Left alone: usable sessions, and other providers' rows.
    const valid = await insertRow(sql, orgs[0], { settings: validSettings() });
    const greenapi = await insertRow(sql, orgs[0], {
      provider: "greenapi",
      settings: { idInstance: "1" },
    });
    const rowsBefore = await rowsOf(sql, orgs);
    const expected = await markable(sql);
    assert.ok(expected >= shapes.length, `${expected} markable`);

    assert.equal(await repair(), expected, "it reports how many rows it marked");
    for (const s of shapes) {
      const state = await stateOf(sql, s.id);
      assert.equal(state?.session_state, "needs_new_session", JSON.stringify(s));
      assert.equal(state?.repair_reason, s.reason, JSON.stringify(s));
    }
    assert.equal(await stateOf(sql, valid), undefined, "a usable row gets no state");
    assert.equal(await stateOf(sql, greenapi), undefined);
    assert.equal(await rowsOf(sql, orgs), rowsBefore, "no CRM row deleted, added or changed");

    const events = (await Promise.all(orgs.map((o) => eventsOf(sql, o)))).flat();
    assert.ok(events.every((e) => e.action === "repaired"));
    assert.equal(events.length, shapes.length, "one event per marked row");
    for (const s of shapes) {
      const mine = events.filter((e) => e.integration_id === s.id);
      assert.equal(mine.length, 1);
      assert.deepEqual(mine[0].details, {
        reason: s.reason,
        is_primary: s.primary,
        is_active: s.active,
        ...(s.reason === "placeholder_session" ? { previous_account_number: s.account } : {}),
      });
      assert.equal(mine[0].actor_user_id, null);
    }

    assert.equal(await repair(), 0, "a second run marks nothing");
    assert.equal(
      (await Promise.all(orgs.map((o) => eventsOf(sql, o)))).flat().length,
      shapes.length,
      "and records nothing",
    );
    assert.equal(await rowsOf(sql, orgs), rowsBefore);
  } finally {
    await dropOrgs(sql, orgs);
    await sql.end({ timeout: 5 });
  }
});

Deno.test("repair: a row under a live lease is skipped until the lease is gone; a row already marked is not marked again", async () => {
  const sql = openDb();
  const [org] = await bareOrgs(sql, 1);
  try {
    const leased = await insertRow(sql, org, { primary: true, settings: {} });
    await sql`insert into public.wpp_integration_state
                (integration_id, organization_id, lease_id, lease_expires_at, lease_reason)
              values (${leased}, ${org}, gen_random_uuid(), now() + interval '1 minute', 'add_new')`;
    const dead = await insertRow(sql, org, { settings: validSettings() });
    await sql`insert into public.wpp_integration_state
                (integration_id, organization_id, session_state, repair_reason)
              values (${dead}, ${org}, 'needs_new_session', 'dead_key')`;
    await repair();
    assert.equal((await stateOf(sql, leased))!.session_state, "ok", "its holder is filling it");
    assert.equal((await stateOf(sql, dead))!.repair_reason, "dead_key", "kept as it was");
    assert.deepEqual(await eventsOf(sql, org), []);

    await sql`update public.wpp_integration_state set lease_expires_at = now() - interval '1 second'
               where integration_id = ${leased}`;
    assert.ok(await repair() >= 1);
    assert.equal((await stateOf(sql, leased))!.session_state, "needs_new_session");
    assert.deepEqual((await eventsOf(sql, org)).map((e) => [e.action, e.integration_id]), [
      ["repaired", leased],
    ]);
  } finally {
    await dropOrgs(sql, [org]);
    await sql.end({ timeout: 5 });
  }
});

Deno.test("repair: a placeholder added to wpp_session_placeholders is recognised (the runbook)", async () => {
  const sql = openDb();
  const [org] = await bareOrgs(sql, 1);
  const placeholder = `legacy_${crypto.randomUUID().slice(0, 8)}`;
  try {
    const id = await insertRow(sql, org, {
      settings: { wppAccountNumber: placeholder.toUpperCase(), wppApiKey: "k" },
    });
    await repair();
    assert.equal(await stateOf(sql, id), undefined, "not a placeholder yet: a usable session");
    await sql`insert into public.wpp_session_placeholders (value, note) values (${placeholder}, 'test')`;
    assert.ok(await repair() >= 1);
    assert.equal((await stateOf(sql, id))!.repair_reason, "placeholder_session");
  } finally {
    await sql`delete from public.wpp_session_placeholders where value = ${placeholder}`;
    await dropOrgs(sql, [org]);
    await sql.end({ timeout: 5 });
  }
});

Deno.test("repair, then a click: the marked row gets a session in place and is no longer marked", async () => {
  const sql = openDb();
  const [org] = await bareOrgs(sql, 1);
  try {
    const legacy = await insertRow(sql, org, { settings: { ...PLACEHOLDER, greeting: "hi" } });
    await repair();
    const begin = await rpc("wpp_provision_begin", {
      p_organization_id: org,
      p_actor: crypto.randomUUID(),
    });
    assert.deepEqual([begin.decision, begin.reason, begin.integration_id], [
      "create",
      "placeholder_session",
      legacy,
    ]);
    const session = newSession();
    await rpc("wpp_provision_complete", {
      p_integration_id: legacy,
      p_lease_id: begin.lease_id,
      p_session: session,
      p_api_key: "new-key",
    });
    const state = await stateOf(sql, legacy);
    assert.deepEqual([state!.session_state, state!.repair_reason], ["ok", null]);
    await repair();
    assert.equal((await stateOf(sql, legacy))!.session_state, "ok");
    assert.deepEqual((await eventsOf(sql, org)).map((e) => e.action), ["repaired", "created"]);
  } finally {
    await dropOrgs(sql, [org]);
    await sql.end({ timeout: 5 });
  }
});
