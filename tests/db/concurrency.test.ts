// The decisions under contention, through PostgREST with its real connection pool: one create
// for a crowd of clicks, a complete racing the clicks it answers, and lock waits that end with
// 55P03 within lock_timeout instead of outliving the request.
import assert from "node:assert/strict";
import {
  type Answer,
  insertLiveRow,
  newSession,
  rowOf,
  rpc,
  RpcError,
  type Sql,
  stateOf,
  type Tenant,
  withTenant,
} from "./_fixtures.ts";

/** Each call's answer, or its error: a race must not turn into an error. */
async function settle(calls: Promise<Answer>[]): Promise<(Answer | RpcError)[]> {
  return await Promise.all(calls.map((p) => p.catch((e) => e as RpcError)));
}

function begins(t: Tenant, n: number, args: Record<string, unknown> = {}): Promise<Answer>[] {
  return Array.from(
    { length: n },
    () => rpc("wpp_provision_begin", { p_organization_id: t.orgId, p_actor: t.admin, ...args }),
  );
}

function tally(answers: (Answer | RpcError)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const k = a instanceof RpcError ? `error ${a.code}` : `${a.decision}/${a.reason ?? ""}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

async function wppRows(sql: Sql, orgId: string): Promise<number> {
  const [{ n }] = await sql`select count(*)::int as n from public.messenger_integrations
                             where organization_id = ${orgId} and provider = 'wpp'`;
  return n;
}

Deno.test("50 concurrent first clicks of one organisation: exactly one create, the rest busy", async () => {
  await withTenant(async (sql, t) => {
    const answers = await settle(begins(t, 50));
    assert.deepEqual(tally(answers), { "create/no_integration": 1, "busy/lease_held": 49 });
    assert.equal(await wppRows(sql, t.orgId), 1, "one row");
    const created = answers.find((a) =>
      !(a instanceof RpcError) && a.decision === "create"
    ) as Answer;
    assert.equal((await stateOf(sql, created.integration_id))?.lease_id, created.lease_id);
    for (const a of answers) assert.equal((a as Answer).integration_id, created.integration_id);
  });
});

Deno.test("50 concurrent add_new: exactly one new number", async () => {
  await withTenant(async (sql, t) => {
    const main = await insertLiveRow(sql, t.orgId);
    const answers = await settle(begins(t, 50, { p_mode: "add_new" }));
    assert.deepEqual(tally(answers), { "create/add_new": 1, "busy/lease_held": 49 });
    assert.equal(await wppRows(sql, t.orgId), 2, "the main number and one new one");
    const ids = new Set(answers.map((a) => (a as Answer).integration_id));
    assert.equal(ids.size, 1);
    assert.ok(!ids.has(main.id));
  });
});

Deno.test("complete racing 20 begins: no deadlock, no error, never a second create", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, { createdAgoSeconds: 3600 });
    const seen: Record<string, number> = {};
    for (let round = 0; round < 5; round++) {
      // Each round starts outside the repeat window with no start in flight.
      await sql`update public.wpp_integration_state
                   set session_created_at = now() - interval '1 hour',
                       refresh_lease_id = null, refresh_lease_expires_at = null
                 where integration_id = ${live.id}`;
      const lease = await rpc("wpp_provision_begin", {
        p_organization_id: t.orgId,
        p_actor: t.admin,
        p_mode: "recreate",
      });
      assert.equal(lease.decision, "create", `round ${round}`);
      const session = newSession();
      const [done, ...others] = await settle([
        rpc("wpp_provision_complete", {
          p_integration_id: live.id,
          p_lease_id: lease.lease_id,
          p_session: session,
          p_api_key: `key-${round}`,
        }),
        ...begins(t, 10),
        ...begins(t, 10, { p_mode: "recreate" }),
      ]);
      assert.ok(!(done instanceof RpcError), `round ${round}: complete failed: ${done}`);
      assert.equal((done as Answer).session, session);
      for (const [k, n] of Object.entries(tally(others))) seen[k] = (seen[k] ?? 0) + n;
      for (const a of others) {
        assert.ok(!(a instanceof RpcError), `round ${round}: ${a}`);
        assert.ok(
          ["busy", "reuse"].includes((a as Answer).decision),
          `round ${round}: ${JSON.stringify(tally(others))}`,
        );
        if ((a as Answer).decision === "reuse") assert.equal((a as Answer).session, session);
      }
      assert.equal((await rowOf(sql, live.id))!.settings.wppAccountNumber, session);
    }
    assert.equal(await wppRows(sql, t.orgId), 1);
    const [{ n }] = await sql`select count(*)::int as n from public.wpp_integration_events
                               where organization_id = ${t.orgId} and action = 'recreated'`;
    assert.equal(n, 5, `one recreate per round (answers seen: ${JSON.stringify(seen)})`);
  });
});

/** Elapsed ms and the error of an RPC made while `hold` keeps a lock in another transaction. */
async function whileHeld(
  sql: Sql,
  hold: (tx: Sql) => Promise<unknown>,
  call: () => Promise<Answer>,
): Promise<{ ms: number; error?: RpcError; answer?: Answer }> {
  let out!: { ms: number; error?: RpcError; answer?: Answer };
  await sql.begin(async (tx) => {
    await hold(tx as unknown as Sql);
    const t0 = performance.now();
    try {
      out = { ms: 0, answer: await call() };
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
      out = { ms: 0, error: e };
    }
    out.ms = performance.now() - t0;
  });
  return out;
}

Deno.test("lock_timeout: a transaction holding the state row makes begin fail with 55P03 in ~5 s", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId);
    const held = await whileHeld(
      sql,
      (tx) =>
        tx`select 1 from public.wpp_integration_state where integration_id = ${live.id} for update`,
      () =>
        rpc("wpp_provision_begin", {
          p_organization_id: t.orgId,
          p_actor: t.admin,
          p_mode: "recreate",
        }),
    );
    assert.equal(
      held.error?.code,
      "55P03",
      `expected lock_not_available, got ${JSON.stringify(held)}`,
    );
    assert.ok(held.ms >= 4500 && held.ms < 8000, `failed after ${Math.round(held.ms)} ms`);
    // Released: the same call goes through.
    const after = await rpc("wpp_provision_begin", {
      p_organization_id: t.orgId,
      p_actor: t.admin,
      p_mode: "recreate",
    });
    assert.equal(after.decision, "create");
  });
});

Deno.test("lock_timeout: the organisation's advisory lock held elsewhere → 55P03; the CRM holding its organizations row does not stall a click", async () => {
  await withTenant(async (sql, t) => {
    await insertLiveRow(sql, t.orgId);
    const advisory = await whileHeld(
      sql,
      (tx) => tx`select pg_advisory_xact_lock(hashtextextended(${"wpp-connect:" + t.orgId}, 0))`,
      () => rpc("wpp_provision_begin", { p_organization_id: t.orgId, p_actor: t.admin }),
    );
    assert.equal(advisory.error?.code, "55P03", JSON.stringify(advisory));
    assert.ok(advisory.ms < 8000);

    const crm = await whileHeld(
      sql,
      (tx) => tx`select 1 from public.organizations where id = ${t.orgId} for update`,
      () => rpc("wpp_provision_begin", { p_organization_id: t.orgId, p_actor: t.admin }),
    );
    assert.equal(crm.error, undefined, JSON.stringify(crm));
    assert.equal(crm.answer?.decision, "reuse");
    assert.ok(crm.ms < 2000, `took ${Math.round(crm.ms)} ms`);
  });
});

/** Waits until a backend of this database waits for a lock while running `fn`. */
async function waitForLockWaiter(sql: Sql, fn: string) {
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    const [{ n }] = await sql`
      select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock'
         and query like ${"%" + fn + "%"}`;
    if (n > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no call of ${fn} waited for the lock`);
}

/**
 * `call` starts while a complete holds the state row, and reads the CRM's row before it waits;
 * the complete then stores a new session and commits. Answers what `call` answered afterwards.
 */
async function racingComplete(
  sql: Sql,
  id: string,
  leaseId: string,
  session: string,
  fn: string,
  call: () => Promise<Answer>,
): Promise<Answer | RpcError> {
  let pending!: Promise<Answer | RpcError>;
  await sql.begin(async (tx) => {
    await tx`select 1 from public.wpp_integration_state where integration_id = ${id} for update`;
    pending = call().catch((e) => e as RpcError);
    await waitForLockWaiter(sql, fn);
    await tx`select public.wpp_provision_complete(${id}, ${leaseId}, ${session}, 'fresh-key')`;
  });
  return await pending;
}

Deno.test("a click that waited for a complete answers with the session it stored, never the replaced one", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, { createdAgoSeconds: 3600 });
    const lease = await rpc("wpp_provision_begin", {
      p_organization_id: t.orgId,
      p_actor: t.admin,
      p_mode: "recreate",
    });
    const fresh = newSession();
    const answer = await racingComplete(
      sql,
      live.id,
      lease.lease_id,
      fresh,
      "wpp_provision_begin",
      () => rpc("wpp_provision_begin", { p_organization_id: t.orgId, p_actor: t.member }),
    );
    assert.ok(!(answer instanceof RpcError), String(answer));
    assert.equal(answer.decision, "reuse");
    assert.equal(answer.session, fresh, "not the session the complete just replaced");
    assert.equal(answer.api_key, "fresh-key");
  });
});

Deno.test("a refresh racing a complete: refused as replaced, and its observation of the old session is not stored", async () => {
  await withTenant(async (sql, t) => {
    const live = await insertLiveRow(sql, t.orgId, { connection: "qr", createdAgoSeconds: 3600 });
    const fresh = newSession();
    const lease = async () => {
      const r = await rpc("wpp_provision_begin", {
        p_organization_id: t.orgId,
        p_actor: t.admin,
        p_mode: "recreate",
        p_repeat_window_seconds: 0,
      });
      assert.equal(r.decision, "create", JSON.stringify(r));
      return r.lease_id as string;
    };
    const refused = await racingComplete(
      sql,
      live.id,
      await lease(),
      fresh,
      "wpp_refresh_begin",
      () => rpc("wpp_refresh_begin", { p_integration_id: live.id, p_session: live.session }),
    );
    assert.ok(!(refused instanceof RpcError), String(refused));
    assert.equal(refused.granted, false);
    assert.equal(refused.reason, "replaced");
    assert.equal(refused.session, fresh);

    // A refresh of the old session that was under way ends while the next complete commits.
    const newer = newSession();
    await sql`update public.wpp_integration_state
                 set refresh_lease_id = null, refresh_lease_expires_at = null,
                     session_created_at = now() - interval '1 hour'
               where integration_id = ${live.id}`;
    const oldLease = crypto.randomUUID();
    const ended = await racingComplete(
      sql,
      live.id,
      await lease(),
      newer,
      "wpp_refresh_end",
      () =>
        rpc("wpp_refresh_end", {
          p_integration_id: live.id,
          p_refresh_lease_id: oldLease,
          p_session: fresh,
          p_connection: "connected",
          p_observed_at: new Date(Date.now() + 1000).toISOString(),
        }),
    );
    assert.ok(!(ended instanceof RpcError), String(ended));
    assert.equal(ended.applied, false, "an observation of a replaced session");
    const state = await stateOf(sql, live.id);
    assert.equal(state!.session, newer);
    assert.equal(state!.connection, "starting");
    assert.equal(state!.ever_connected_at, null);
  });
});
