// The exactly-once provisioning RPCs, called the way the edge function calls them: service_role
// through PostgREST. The client is typed with database.types.ts, so a drift between those types
// and these calls fails the type check.
import assert from "node:assert/strict";
import { createClient, type PostgrestError } from "@supabase/supabase-js";
import { stack } from "../_support/stack.ts";
import {
  type Database,
  WPP_DB_ERRORS,
  type WppCallerContext,
  type WppProvisionBeginResult,
  type WppProvisionCompleteResult,
  type WppProvisionFailResult,
} from "../../supabase/functions/_shared/database.types.ts";
import {
  createLoner,
  createTenant,
  dropTenants,
  eventsOf,
  insertIntegration,
  openDb,
  secretSettings,
  snapshot,
  type Sql,
  type Tenant,
} from "./_fixtures.ts";

const service = createClient<Database>(stack.url, stack.serviceRoleKey, {
  auth: { persistSession: false, autoRefreshToken: false },
});

type BeginArgs = Database["public"]["Functions"]["wpp_provision_begin"]["Args"];
type CompleteArgs = Database["public"]["Functions"]["wpp_provision_complete"]["Args"];

async function begin(args: BeginArgs): Promise<WppProvisionBeginResult> {
  const { data, error } = await service.rpc("wpp_provision_begin", args);
  assert.equal(error, null, `wpp_provision_begin failed: ${error?.message}`);
  return data as unknown as WppProvisionBeginResult;
}

async function complete(args: CompleteArgs): Promise<WppProvisionCompleteResult> {
  const { data, error } = await service.rpc("wpp_provision_complete", args);
  assert.equal(error, null, `wpp_provision_complete failed: ${error?.message}`);
  return data as unknown as WppProvisionCompleteResult;
}

function assertLeaseLost(error: PostgrestError | null, what: string) {
  assert.equal(error?.code, WPP_DB_ERRORS.leaseLost, what);
  assert.match(error!.message, /^lease_lost: /, what);
}

async function withTenant(fn: (sql: Sql, t: Tenant) => Promise<void>) {
  const sql = openDb();
  const tenant = await createTenant(sql, "Provisioning tenant");
  try {
    await fn(sql, tenant);
  } finally {
    try {
      await dropTenants(sql, [tenant]);
    } finally {
      await sql.end();
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** complete stamps the session's creation time; checks it and returns the other settings. */
function withoutCreatedAt(settings: Record<string, unknown>): Record<string, unknown> {
  const { wppSessionCreatedAt, ...rest } = settings;
  assert.equal(typeof wppSessionCreatedAt, "number", "complete records when the session was made");
  assert.ok(Math.abs(Date.now() - (wppSessionCreatedAt as number)) < 60_000);
  return rest;
}

Deno.test("wpp_caller_context: organisation and role of a user, nulls outside any", async () => {
  const sql = openDb();
  const tenant = await createTenant(sql, "Context tenant");
  const loner = await createLoner(sql);
  try {
    const expectations: [string, WppCallerContext][] = [
      [tenant.owner, { organization_id: tenant.orgId, role: "owner" }],
      [tenant.admin, { organization_id: tenant.orgId, role: "admin" }],
      [tenant.member, { organization_id: tenant.orgId, role: "member" }],
      [loner, { organization_id: null, role: null }],
      [crypto.randomUUID(), { organization_id: null, role: null }],
    ];
    for (const [userId, expected] of expectations) {
      const { data, error } = await service.rpc("wpp_caller_context", { p_user_id: userId });
      assert.equal(error, null);
      assert.deepEqual(data, expected);
    }
  } finally {
    await dropTenants(sql, [tenant], [loner]);
    await sql.end();
  }
});

Deno.test("first connect: begin inserts the row and leases it, complete stores, begin reuses", async () => {
  await withTenant(async (sql, t) => {
    const first = await begin({ p_organization_id: t.orgId, p_actor: t.admin });
    assert.equal(first.decision, "create");
    assert.equal(first.reason, "no_integration");
    assert.match(first.integration_id, UUID);
    assert.match(first.lease_id ?? "", UUID);
    assert.equal(first.session, null);
    assert.equal(first.old_session, null);

    const rows = await sql`select id, messenger_type, provider, name, is_active, is_primary,
                                  settings, webhook_key, provision_lease_id
                           from public.messenger_integrations where organization_id = ${t.orgId}`;
    assert.equal(rows.length, 1, "the integration row exists before any platform call");
    assert.deepEqual(
      { ...rows[0] },
      {
        id: first.integration_id,
        messenger_type: "whatsapp",
        provider: "wpp",
        name: "WhatsApp",
        is_active: true,
        is_primary: true,
        settings: {},
        webhook_key: first.webhook_key,
        provision_lease_id: first.lease_id,
      },
    );

    const second = await begin({ p_organization_id: t.orgId });
    assert.equal(second.decision, "busy");
    assert.equal(second.reason, "lease_held");
    assert.equal(second.lease_id, null, "a busy answer never hands out the lease");
    assert.ok(second.retry_after_seconds! >= 1 && second.retry_after_seconds! <= 60);
    assert.equal(second.integration_id, first.integration_id);

    const done = await complete({
      p_integration_id: first.integration_id,
      p_lease_id: first.lease_id!,
      p_session: "0000000000001",
      p_api_key: "fresh-api-key-1",
      p_jwt_token: "jwt-1",
      p_jwt_expires_at: 1_900_000_000_000,
      p_actor: t.admin,
    });
    assert.deepEqual(done, { integration_id: first.integration_id, session: "0000000000001" });

    const reuse = await begin({ p_organization_id: t.orgId, p_actor: t.member });
    assert.equal(reuse.decision, "reuse");
    assert.equal(reuse.reason, "valid_session");
    assert.equal(reuse.integration_id, first.integration_id);
    assert.equal(reuse.session, "0000000000001");
    assert.equal(reuse.api_key, "fresh-api-key-1");
    assert.equal(reuse.jwt_token, "jwt-1");
    assert.equal(reuse.jwt_expires_at, 1_900_000_000_000);
    assert.equal(reuse.lease_id, null);

    const events = await eventsOf(sql, first.integration_id);
    assert.deepEqual(events.map((e) => [e.action, e.actor_user_id]), [
      ["created", t.admin],
      ["reused", t.member],
    ]);
    assert.equal(events[0].details.session, "0000000000001");
    assert.equal(events[0].details.reason, "no_integration");
  });
});

/**
 * Fires `n` begins at once. The table is held under a SHARE lock while they arrive, so none can
 * write before all of them are in flight: without that, the first request often commits before
 * the others start and a missing lock would go unnoticed.
 */
async function burst(sql: Sql, orgId: string, n: number) {
  let pending: Promise<{ data: unknown; error: PostgrestError | null }[]> | undefined;
  await sql.begin(async (tx) => {
    await tx`lock table public.messenger_integrations in share mode`;
    pending = Promise.all(
      Array.from({ length: n }, async () => {
        const { data, error } = await service.rpc("wpp_provision_begin", {
          p_organization_id: orgId,
          p_lease_seconds: 120,
        });
        return { data, error };
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
  });
  const results = await pending!;
  assert.deepEqual(results.filter((r) => r.error).map((r) => r.error!.message), [], "no errors");
  return results.map((r) => r.data as unknown as WppProvisionBeginResult);
}

Deno.test("50 concurrent begins for one organisation: exactly one create, 49 busy", async () => {
  await withTenant(async (sql, t) => {
    const answers = await burst(sql, t.orgId, 50);
    const creates = answers.filter((a) => a.decision === "create");
    const busy = answers.filter((a) => a.decision === "busy");
    assert.equal(creates.length, 1, "exactly one request may create a platform client");
    assert.equal(busy.length, 49);
    assert.equal(new Set(answers.map((a) => a.integration_id)).size, 1, "one row for everyone");
    for (const b of busy) assert.ok(b.retry_after_seconds! >= 1 && b.retry_after_seconds! <= 120);

    const rows = await sql`select id, provision_lease_id from public.messenger_integrations
                           where organization_id = ${t.orgId}`;
    assert.equal(rows.length, 1);
    assert.equal(rows[0].provision_lease_id, creates[0].lease_id);

    // The same race on an existing row whose lease just ran out: one takes it over.
    await sql`update public.messenger_integrations
              set provision_lease_expires_at = now() - interval '1 second'
              where organization_id = ${t.orgId}`;
    const again = await burst(sql, t.orgId, 50);
    const takers = again.filter((a) => a.decision === "create");
    assert.equal(takers.length, 1, "exactly one request takes the expired lease over");
    assert.equal(takers[0].lease_taken_over, true);
    assert.notEqual(takers[0].lease_id, creates[0].lease_id);
    assert.equal(again.filter((a) => a.decision === "busy").length, 49);
  });
});

Deno.test("a complete racing with 20 begins: no deadlock, and they all see the new session", async () => {
  await withTenant(async (sql, t) => {
    const first = await begin({ p_organization_id: t.orgId });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    let pending: Promise<{ data: unknown; error: PostgrestError | null }[]> | undefined;
    // complete takes the integration row lock and then blocks on the table lock; the begins pile
    // up behind it holding the organisation lock. On release complete's event insert needs a key
    // lock on the organisation: the begins' lock must not conflict with it.
    await sql.begin(async (tx) => {
      await tx`lock table public.messenger_integrations in share mode`;
      const done = service.rpc("wpp_provision_complete", {
        p_integration_id: first.integration_id,
        p_lease_id: first.lease_id!,
        p_session: "0000000000015",
        p_api_key: "raced-key",
      }).then(({ data, error }) => ({ data: data as unknown, error }));
      await sleep(200);
      const begins = Array.from({ length: 20 }, async () => {
        const { data, error } = await service.rpc("wpp_provision_begin", {
          p_organization_id: t.orgId,
        });
        return { data: data as unknown, error };
      });
      pending = Promise.all([done, ...begins]);
      await sleep(500);
    });
    const [completed, ...begun] = await pending!;
    assert.equal(completed.error, null, completed.error?.message);
    assert.deepEqual(begun.filter((b) => b.error).map((b) => b.error!.code), [], "no deadlock");
    const decisions = begun.map((b) => (b.data as WppProvisionBeginResult).decision);
    assert.deepEqual(decisions, Array(20).fill("reuse"));
    assert.equal((begun[0].data as WppProvisionBeginResult).session, "0000000000015");
  });
});

Deno.test("an expired lease is taken over; the old holder's complete is lease_lost and changes nothing", async () => {
  await withTenant(async (sql, t) => {
    const id = await insertIntegration(sql, t.orgId, {
      wppAccountNumber: "client_system",
      wppApiKey: "legacy",
      greeting: "hi",
    });
    const stale = await begin({ p_organization_id: t.orgId, p_lease_seconds: 30 });
    assert.equal(stale.decision, "create");
    assert.equal(stale.reason, "placeholder_session");
    assert.equal(stale.old_session, null, "a placeholder is nothing to stop on the platform");

    await sql`update public.messenger_integrations
              set provision_lease_expires_at = now() - interval '1 second' where id = ${id}`;
    const fresh = await begin({ p_organization_id: t.orgId });
    assert.equal(fresh.decision, "create");
    assert.equal(fresh.integration_id, id);
    assert.equal(fresh.lease_taken_over, true);
    assert.notEqual(fresh.lease_id, stale.lease_id);

    const before = await snapshot(sql, id);
    const eventsBefore = await eventsOf(sql, id);
    const late = await service.rpc("wpp_provision_complete", {
      p_integration_id: id,
      p_lease_id: stale.lease_id!,
      p_session: "0000000000010",
      p_api_key: "late-key",
    });
    assertLeaseLost(late.error, "the taken-over lease");
    const stolen = await service.rpc("wpp_provision_complete", {
      p_integration_id: id,
      p_lease_id: crypto.randomUUID(),
      p_session: "0000000000011",
      p_api_key: "stolen-key",
    });
    assertLeaseLost(stolen.error, "a lease that was never handed out");
    assert.deepEqual(await snapshot(sql, id), before, "refused completes changed nothing");
    assert.deepEqual(await eventsOf(sql, id), eventsBefore, "and recorded nothing");

    const done = await complete({
      p_integration_id: id,
      p_lease_id: fresh.lease_id!,
      p_session: "0000000000012",
      p_api_key: "winner-key",
    });
    assert.equal(done.session, "0000000000012");
    const actions = (await eventsOf(sql, id)).map((e) => e.action);
    assert.deepEqual(actions, ["lease_taken_over", "recreated"]);
  });
});

Deno.test("an expired lease nobody took over still completes", async () => {
  await withTenant(async (sql, t) => {
    const first = await begin({ p_organization_id: t.orgId, p_lease_seconds: 5 });
    await sql`update public.messenger_integrations
              set provision_lease_expires_at = now() - interval '1 minute'
              where id = ${first.integration_id}`;
    const done = await complete({
      p_integration_id: first.integration_id,
      p_lease_id: first.lease_id!,
      p_session: "0000000000020",
      p_api_key: "slow-but-fine",
    });
    assert.equal(done.session, "0000000000020");
    const row = await snapshot(sql, first.integration_id);
    assert.equal(row.provision_lease_id, null, "the lease is cleared");
    const [created] = await eventsOf(sql, first.integration_id);
    assert.equal(created.action, "created");
    assert.equal(created.details.lease_expired, true);
  });
});

Deno.test("force: complete keeps the row id and every other setting, drops the stale token", async () => {
  await withTenant(async (sql, t) => {
    const settings = secretSettings("0000000000030");
    const id = await insertIntegration(sql, t.orgId, settings);
    const [{ webhook_key: webhookKey }] = await sql`
      select webhook_key from public.messenger_integrations where id = ${id}`;

    assert.equal((await begin({ p_organization_id: t.orgId })).decision, "reuse");
    const forced = await begin({ p_organization_id: t.orgId, p_force: true, p_actor: t.owner });
    assert.equal(forced.decision, "create");
    assert.equal(forced.reason, "forced");
    assert.equal(forced.integration_id, id);
    assert.equal(forced.old_session, "0000000000030", "the caller learns what to stop");
    assert.equal(forced.old_api_key, settings.wppApiKey);

    await complete({
      p_integration_id: id,
      p_lease_id: forced.lease_id!,
      p_session: "0000000000031",
      p_api_key: "new-api-key",
      p_actor: t.owner,
      p_details: { platform_status: "starting", wppApiKey: "must not be logged" },
    });
    const row = await snapshot(sql, id);
    const { wppJwtToken: _t, wppJwtExpiresAt: _e, ...untouched } = settings;
    assert.deepEqual(withoutCreatedAt(row.settings), {
      ...untouched,
      wppAccountNumber: "0000000000031",
      wppApiKey: "new-api-key",
    });
    assert.equal(row.id, id);
    assert.equal(row.session_state, "ok");
    const [{ webhook_key: after }] = await sql`
      select webhook_key from public.messenger_integrations where id = ${id}`;
    assert.equal(after, webhookKey, "the registered webhook URL stays valid");
    const [{ n }] = await sql`select count(*)::int as n from public.messenger_integrations
                              where organization_id = ${t.orgId}`;
    assert.equal(n, 1, "no second row appeared");

    const recreated = (await eventsOf(sql, id)).find((e) => e.action === "recreated");
    assert.deepEqual(recreated?.details, {
      platform_status: "starting",
      session: "0000000000031",
      previous_session: "0000000000030",
      reason: "forced",
      lease_expired: false,
    });
    assert.equal(recreated?.actor_user_id, t.owner);
  });
});

Deno.test("complete with a new token stores it; a placeholder or empty session is refused", async () => {
  await withTenant(async (sql, t) => {
    const b = await begin({ p_organization_id: t.orgId });
    for (const [session, key] of [["client_system", "k"], ["", "k"], ["0000000000040", " "]]) {
      const res = await service.rpc("wpp_provision_complete", {
        p_integration_id: b.integration_id,
        p_lease_id: b.lease_id!,
        p_session: session,
        p_api_key: key,
      });
      assert.equal(res.error?.code, WPP_DB_ERRORS.unprocessable, `session ${session}`);
      assert.match(res.error!.message, /^invalid_session: /);
    }
    assert.equal((await snapshot(sql, b.integration_id)).provision_lease_id, b.lease_id);
    await complete({
      p_integration_id: b.integration_id,
      p_lease_id: b.lease_id!,
      p_session: "0000000000041",
      p_api_key: "key-41",
      p_jwt_token: "jwt-41",
      p_jwt_expires_at: 1_800_000_000_000,
    });
    assert.deepEqual(withoutCreatedAt((await snapshot(sql, b.integration_id)).settings), {
      wppAccountNumber: "0000000000041",
      wppApiKey: "key-41",
      wppJwtToken: "jwt-41",
      wppJwtExpiresAt: 1_800_000_000_000,
    });
  });
});

Deno.test("wpp_provision_fail releases only its own lease and never touches settings", async () => {
  await withTenant(async (sql, t) => {
    const id = await insertIntegration(sql, t.orgId, { wppAccountNumber: "client_system", x: 1 });
    const b = await begin({ p_organization_id: t.orgId });
    const before = await snapshot(sql, id);

    const wrong = await service.rpc("wpp_provision_fail", {
      p_integration_id: id,
      p_lease_id: crypto.randomUUID(),
      p_reason: "someone else's failure",
    });
    assert.equal(wrong.error, null);
    assert.deepEqual(wrong.data as unknown as WppProvisionFailResult, { released: false });
    assert.deepEqual(await snapshot(sql, id), before, "a stranger cannot release the lease");

    const mine = await service.rpc("wpp_provision_fail", {
      p_integration_id: id,
      p_lease_id: b.lease_id!,
      p_reason: "platform answered 500",
      p_details: { status: 500 },
      p_actor: t.admin,
    });
    assert.deepEqual(mine.data as unknown as WppProvisionFailResult, { released: true });
    const after = await snapshot(sql, id);
    assert.equal(after.provision_lease_id, null);
    assert.deepEqual(after.settings, before.settings);
    const [{ last_provision_error: lastError }] = await sql`
      select last_provision_error from public.messenger_integrations where id = ${id}`;
    assert.equal(lastError, "platform answered 500");

    const failed = (await eventsOf(sql, id)).filter((e) => e.action === "failed");
    assert.deepEqual(failed.map((e) => e.details), [
      { reason: "someone else's failure", released: false },
      { reason: "platform answered 500", released: true, status: 500 },
    ]);
    assert.equal((await begin({ p_organization_id: t.orgId })).decision, "create", "free again");
  });
});

Deno.test("wpp_store_token merges the token for the current session only", async () => {
  await withTenant(async (sql, t) => {
    const settings = { ...secretSettings("0000000000050"), wppJwtToken: "old-jwt" };
    const id = await insertIntegration(sql, t.orgId, settings);
    const before = await snapshot(sql, id);

    const stale = await service.rpc("wpp_store_token", {
      p_integration_id: id,
      p_session: "0000000000049",
      p_token: "token-for-a-replaced-session",
      p_expires_at: 1_700_000_000_000,
    });
    assert.equal(stale.error, null);
    assert.equal(stale.data, false);
    assert.deepEqual(await snapshot(sql, id), before, "nothing stored for an old session");

    const current = await service.rpc("wpp_store_token", {
      p_integration_id: id,
      p_session: "0000000000050",
      p_token: "new-jwt",
      p_expires_at: 1_700_000_900_000,
    });
    assert.equal(current.data, true);
    assert.deepEqual((await snapshot(sql, id)).settings, {
      ...settings,
      wppJwtToken: "new-jwt",
      wppJwtExpiresAt: 1_700_000_900_000,
    });
    const refreshed = (await eventsOf(sql, id)).filter((e) => e.action === "token_refreshed");
    assert.deepEqual(refreshed.map((e) => e.details), [
      { session: "0000000000050", expires_at: 1_700_000_900_000 },
    ]);
  });
});

Deno.test("a dead apiKey: only the stored session can be condemned, and it is then replaced", async () => {
  await withTenant(async (sql, t) => {
    const id = await insertIntegration(sql, t.orgId, secretSettings("0000000000060"));
    const outdated = await begin({ p_organization_id: t.orgId, p_dead_session: "0000000000059" });
    assert.equal(outdated.decision, "reuse", "an outdated report does not condemn the new session");

    const dead = await begin({
      p_organization_id: t.orgId,
      p_dead_session: "0000000000060",
      p_actor: t.member,
    });
    assert.equal(dead.decision, "create");
    assert.equal(dead.reason, "dead_key");
    assert.equal(dead.integration_id, id);
    assert.equal(dead.old_session, "0000000000060");
    assert.equal((await snapshot(sql, id)).session_state, "needs_new_session");
    const detected = (await eventsOf(sql, id)).filter((e) => e.action === "dead_key_detected");
    assert.deepEqual(detected.map((e) => [e.details, e.actor_user_id]), [
      [{ session: "0000000000060" }, t.member],
    ]);

    await service.rpc("wpp_provision_fail", {
      p_integration_id: id,
      p_lease_id: dead.lease_id!,
      p_reason: "create failed",
    });
    const again = await begin({ p_organization_id: t.orgId });
    assert.equal(again.decision, "create", "the session stays condemned after a failed attempt");
    assert.equal(again.reason, "needs_new_session");
  });
});

Deno.test("wpp_record_event and begin reject what they cannot attribute", async () => {
  const sql = openDb();
  const a = await createTenant(sql, "Events tenant A");
  const b = await createTenant(sql, "Events tenant B");
  try {
    const ib = await insertIntegration(sql, b.orgId, secretSettings());
    const crossed = await service.rpc("wpp_record_event", {
      p_organization_id: a.orgId,
      p_integration_id: ib,
      p_actor: a.admin,
      p_action: "session_stopped",
    });
    assert.equal(crossed.error?.code, WPP_DB_ERRORS.unprocessable);
    assert.match(crossed.error!.message, /^integration_not_in_organization: /);

    const unknown = await service.rpc("wpp_record_event", {
      p_organization_id: a.orgId,
      p_integration_id: null as unknown as string,
      p_actor: a.admin,
      p_action: "deleted_everything",
    });
    assert.equal(unknown.error?.code, WPP_DB_ERRORS.unprocessable);
    assert.match(unknown.error!.message, /^invalid_action: /);

    const ok = await service.rpc("wpp_record_event", {
      p_organization_id: a.orgId,
      p_integration_id: null as unknown as string,
      p_actor: a.admin,
      p_action: "stop_failed",
      p_details: { status: 404 },
    });
    assert.equal(ok.error, null);
    const rows = await sql`select action, details from public.integration_events
                           where organization_id in ${sql([a.orgId, b.orgId])}`;
    assert.deepEqual(rows.map((r) => [r.action, r.details]), [["stop_failed", { status: 404 }]]);

    const nowhere = await service.rpc("wpp_provision_begin", {
      p_organization_id: crypto.randomUUID(),
    });
    assert.equal(nowhere.error?.code, WPP_DB_ERRORS.notFound);
    assert.match(nowhere.error!.message, /^organization_not_found: /);
    const badLease = await service.rpc("wpp_provision_begin", {
      p_organization_id: a.orgId,
      p_lease_seconds: 0,
    });
    assert.equal(badLease.error?.code, WPP_DB_ERRORS.invalidArgument);
    const [{ n }] = await sql`select count(*)::int as n from public.messenger_integrations
                              where organization_id = ${a.orgId}`;
    assert.equal(n, 0, "a refused begin inserted nothing");
  } finally {
    await dropTenants(sql, [a, b]);
    await sql.end();
  }
});
