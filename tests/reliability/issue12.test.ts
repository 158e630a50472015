// Issue #12's checklist, one test per item, each named by its number. Every call is made the way
// the CRM's panel makes it: through its HTTP helper with the real retry policy (4 attempts,
// 1 s·2ⁿ ±25 %, retrying 408/429/5xx and network errors, never 409 or another 4xx), so one click
// reaches the functions as often as it would in production. Each test says why it would have
// failed on the previous design (commit 2fa448a).
import assert from "node:assert/strict";
import postgres from "postgres";
import * as jose from "jose";
import { crmHelper, type HelperResult } from "../_support/crm-helper.ts";
import { db, mintUserToken, stack } from "../_support/stack.ts";
import {
  closeDb,
  createOrg,
  events,
  integrations,
  sim,
  sql,
  type TestOrg,
} from "../_support/wpp.ts";
import type { FaultSpec } from "../../dev/wpp-simulator/admin-client.ts";
import { parseConfig } from "../../supabase/functions/_shared/config.ts";
import { createTokenVerifier } from "../../supabase/functions/_shared/http/auth.ts";
import { AppError } from "../../supabase/functions/_shared/errors.ts";
import {
  attemptProblems,
  callDelta,
  clientsOf,
  inconsistencies,
  type OwnFunction,
  platformSessions,
  sleep,
  startOwnFunction,
  test,
  TestGateway,
  waitFor,
} from "./_helpers.ts";

const DEADLINE_MS = Number(stack.functionEnv.WPP_REQUEST_DEADLINE_MS);
const gateway = new TestGateway();
const own: OwnFunction[] = [];

function panel(org: TestOrg | string) {
  return crmHelper({ token: typeof org === "string" ? org : org.user.token });
}

function summary(r: HelperResult): string {
  return r.attempts.map((a) => `${a.status} ${a.body?.code ?? ""}`.trim()).join(", ");
}

/** Answers within the deadline + 1 s, each error coded, none a 500. */
function assertAttempts(r: HelperResult): void {
  assert.deepEqual(attemptProblems(r, DEADLINE_MS), [], summary(r));
}

async function qrDelivered(session: string): Promise<void> {
  await waitFor(`the QR event of ${session}`, async () => {
    const d = await sim.deliveries({ session, type: "qr" });
    return d.some((x) => x.attempt > 0) ? true : undefined;
  });
}

/** An organisation whose number is connected through the panel: a session with a QR on show. */
async function orgWithSession(): Promise<{ org: TestOrg; session: string; integrationId: string }> {
  const org = await createOrg("admin");
  const r = await panel(org).post("wpp-create", { add_new: false });
  assert.equal(r.status, 200, summary(r));
  const session = String(r.data?.session);
  await qrDelivered(session);
  return { org, session, integrationId: String(r.data?.integration_id) };
}

async function makeStale(orgId: string): Promise<void> {
  await sql`update public.wpp_integration_state set checked_at = now() - interval '1 hour'
             where organization_id = ${orgId}`;
}

async function ageSession(orgId: string): Promise<void> {
  await sql`update public.wpp_integration_state
               set session_created_at = now() - interval '2 hours'
             where organization_id = ${orgId}`;
}

async function withFault<T>(spec: FaultSpec, fn: () => Promise<T>): Promise<T> {
  await sim.clearFaults();
  await sim.setFault(spec);
  try {
    return await fn();
  } finally {
    await sim.clearFaults();
  }
}

async function clientCount(orgId: string): Promise<number> {
  return clientsOf(await platformSessions(), orgId).length;
}

// ---------------------------------------------------------------------------------------------
// (1) Before: a create whose outcome was unknown released the lease like any failure, so the
// helper's retry a second later created again (up to four clients per click).

const UNKNOWN_OUTCOMES: { name: string; fault: FaultSpec; code: string; status?: number }[] = [
  {
    name: "503 after acting",
    fault: { op: "create", kind: "status", status: 503, phase: "after" },
    code: "platform_error",
    status: 503,
  },
  {
    name: "hang after acting",
    fault: { op: "create", kind: "hang", phase: "after" },
    code: "platform_timeout",
  },
  {
    name: "connection closed after acting",
    fault: { op: "create", kind: "close", phase: "after" },
    code: "platform_unreachable",
  },
];

test("issue #12 (1): a create with an unknown outcome is made once per click, audited, and cools down", async () => {
  for (const c of UNKNOWN_OUTCOMES) {
    const org = await createOrg("admin");
    const before = await sim.calls();
    const click = await withFault(c.fault, () => panel(org).post("wpp-create", { add_new: false }));
    assertAttempts(click);
    // The first attempt failed, the retry met the cooldown, and a 409 ends the helper's retries.
    assert.equal(click.attempts.length, 2, `${c.name}: ${summary(click)}`);
    assert.equal(click.attempts[0].body?.code, c.code, `${c.name}: ${summary(click)}`);
    assert.equal(click.status, 409, `${c.name}: ${summary(click)}`);
    assert.equal(click.data?.code, "create_cooldown");
    assert.equal(callDelta(before, await sim.calls()).create, 1, `${c.name}: one create call`);
    assert.equal(await clientCount(org.orgId), 1, `${c.name}: the platform made one client`);

    const audit = await events(org.orgId);
    const unknown = audit.filter((e) => e.action === "create_outcome_unknown");
    assert.equal(unknown.length, 1, `${c.name}: ${JSON.stringify(audit)}`);
    assert.equal(unknown[0].details.op, "create");
    assert.equal(unknown[0].details.code, c.code);
    assert.ok(unknown[0].details.cooldown_until, "the audit says until when");
    if (c.status) {
      assert.equal(unknown[0].details.http_status, c.status, "the platform's status is audited");
      assert.equal(unknown[0].details.platform_said, "Service Unavailable");
    }
    assert.ok(!audit.some((e) => e.action === "failed"), "not audited as a plain failure");

    // Another click during the cooldown: a 409 again, never a second client.
    const again = await panel(org).post("wpp-create", { add_new: false });
    assert.equal(again.status, 409, summary(again));
    assert.equal(again.data?.code, "create_cooldown");
    assert.equal(callDelta(before, await sim.calls()).create, 1);

    // Once the cooldown is over, a click creates.
    await sql`update public.wpp_integration_state set cooldown_until = now()
               where organization_id = ${org.orgId}`;
    const later = await panel(org).post("wpp-create", { add_new: false });
    assert.equal(later.status, 200, summary(later));
    assert.equal(later.data?.created, true);
    assert.equal(callDelta(before, await sim.calls()).create, 2);
    const [row] = await integrations(org.orgId);
    assert.equal(row.settings.wppAccountNumber, later.data?.session);
    assert.deepEqual(await inconsistencies([org.orgId]), []);
  }
});

// ---------------------------------------------------------------------------------------------
// (2) Before: force_recreate always created, so each of the helper's retries after a failed
// token/webhook/start step made one more session.

test("issue #12 (2): a retried force_recreate whose step after the store fails makes one new session", async () => {
  for (const op of ["token", "webhook", "start"] as const) {
    const { org, session: old } = await orgWithSession();
    await ageSession(org.orgId);
    const before = await sim.calls();
    const click = await withFault(
      { op, kind: "status", status: 502 },
      () => panel(org).post("wpp-create", { force_recreate: true }),
    );
    assertAttempts(click);
    assert.equal(click.attempts.length, 4, `${op}: every attempt was retried: ${summary(click)}`);
    assert.ok(click.attempts.every((a) => a.status === 502), `${op}: ${summary(click)}`);
    assert.equal(
      callDelta(before, await sim.calls()).create,
      1,
      `${op}: one create for 4 attempts`,
    );
    assert.equal(await clientCount(org.orgId), 2, `${op}: the old session and one new one`);

    const [row] = await integrations(org.orgId);
    const fresh = String(row.settings.wppAccountNumber);
    assert.notEqual(fresh, old);
    const audit = await events(org.orgId);
    assert.equal(audit.filter((e) => e.action === "recreated").length, 1, JSON.stringify(audit));
    assert.ok(audit.some((e) => e.action === "session_stopped" && e.details.session === old));

    // With the platform healthy, the panel's next click gets that session.
    const next = await panel(org).post("wpp-create", { add_new: false });
    assert.equal(next.status, 200, summary(next));
    assert.equal(next.data?.session, fresh);
    assert.equal(next.data?.created, false);
    assert.equal(callDelta(before, await sim.calls()).create, 1);
    assert.deepEqual(await inconsistencies([org.orgId]), []);
  }
});

// ---------------------------------------------------------------------------------------------
// (3) Before: a plain click's reuse (status → webhook → start) ran unguarded; a force_recreate
// replacing the session meanwhile stopped it, and the click then started it again and handed out
// its QR.

test("issue #12 (3): a click held in the reuse path never restarts a session a recreate replaced", async () => {
  const { org, session: old } = await orgWithSession();
  await ageSession(org.orgId);
  await makeStale(org.orgId);
  const oldQrBefore = (await platformSessions()).find((s) => s.session === old)?.qr;
  await sim.clearFaults();
  // The plain click's status read is slow; the recreate arrives while it waits.
  await sim.setFault({ op: "status", kind: "latency", ms: 2_000, times: 1 });
  const calls0 = await sim.calls();
  try {
    const plain = panel(org).post("wpp-create", { add_new: false });
    await waitFor(
      "the plain click's status call",
      async () => (await sim.calls()).status > calls0.status ? true : undefined,
    );
    const recreate = await panel(org).post("wpp-create", { force_recreate: true });
    const replacedAt = performance.now();
    const calls1 = await sim.calls();
    const first = await plain;
    assertAttempts(recreate);
    assertAttempts(first);
    assert.equal(recreate.status, 200, summary(recreate));
    assert.equal(recreate.data?.created, true);
    const fresh = String(recreate.data?.session);
    assert.notEqual(fresh, old);
    assert.equal(first.status, 200, summary(first));

    // The panel keeps polling the old session and clicking; none of it may revive or show it.
    const later: HelperResult[] = [];
    for (let i = 0; i < 4; i++) {
      later.push(await panel(org).post("wpp-status", { session_name: old, force: true }));
      later.push(await panel(org).get("wpp-qr", { session: old }));
      later.push(await panel(org).post("wpp-create", { add_new: false }));
      await sleep(250);
    }
    assert.ok(performance.now() > replacedAt);
    for (const r of later) {
      assert.equal(r.status, 200, summary(r));
      const text = JSON.stringify(r.data);
      assert.ok(
        !text.includes(`"${old}"`),
        `an answer after the replacement names ${old}: ${text}`,
      );
      if (oldQrBefore) {
        assert.ok(!text.includes(oldQrBefore), "the old session's QR was handed out");
      }
    }
    const statusAnswers = later.filter((r) => r.data?.reason === "replaced");
    assert.equal(statusAnswers.length, 8, "wpp-status and wpp-qr say the session was replaced");

    // The replaced session stays stopped: no start after its stop, no QR issued for it since.
    await waitFor(`${old} offline`, async () => {
      const view = (await platformSessions()).find((s) => s.session === old);
      return view?.state === "offline" ? true : undefined;
    });
    assert.equal(callDelta(calls1, await sim.calls()).start, 0, "no start after the replacement");
    const deliveries = await sim.deliveries({ session: old });
    const stoppedAt = deliveries.findLastIndex((d) => d.type === "disconnected");
    assert.ok(stoppedAt >= 0, "the old session's stop was reported by the platform");
    assert.deepEqual(
      deliveries.slice(stoppedAt + 1).filter((d) => d.type === "qr").map((d) => d.eventId),
      [],
      "a QR event of the old session after its stop",
    );
    assert.equal((await platformSessions()).find((s) => s.session === old)?.state, "offline");
    assert.deepEqual(await inconsistencies([org.orgId]), []);
  } finally {
    await sim.clearFaults();
  }
});

// ---------------------------------------------------------------------------------------------
// (4) Before: database calls had no deadline and no lock_timeout, so a CRM transaction holding a
// row stalled a click for as long as it lasted (34 s against a 20 s deadline), and the click was
// then reported as a platform timeout with a `failed` event blaming the platform.

interface Holder {
  release(): Promise<void>;
}

/** Runs `statement` in a transaction on a connection of its own and keeps it open. */
async function hold(statement: (tx: postgres.TransactionSql) => Promise<unknown>): Promise<Holder> {
  const conn = db();
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => locked = r);
  const done = conn.begin(async (tx) => {
    await statement(tx);
    locked();
    await released;
  }).catch(() => {});
  await isLocked;
  // However the test goes, the transaction ends by itself.
  const watchdog = setTimeout(release, 4 * (DEADLINE_MS + 1_000) + 15_000);
  return {
    release: async () => {
      clearTimeout(watchdog);
      release();
      await done;
      await conn.end({ timeout: 5 });
    },
  };
}

test("issue #12 (4): a slow database answers a clear 503 within the deadline, blaming nobody", async () => {
  // (a) the CRM holds the integration's row (as its own functions do while writing settings) on
  // a number a click must create a session for; (b) the state row of a session whose stored
  // state is stale; (c) the organisation's advisory lock, on a first click.
  const a = await createOrg("admin");
  const aRow = crypto.randomUUID();
  await sql`insert into public.messenger_integrations
              (id, organization_id, name, messenger_type, provider, is_active, is_primary,
               webhook_key, settings, created_at, updated_at)
            values (${aRow}, ${a.orgId}, 'WhatsApp', 'whatsapp', 'wpp', true, true,
                    ${crypto.randomUUID()}, ${sql.json({ wppAccountNumber: "client_system" })},
                    now(), now())`;
  const b = await orgWithSession();
  await makeStale(b.org.orgId);
  const c = await createOrg("admin");

  const cases = [
    {
      name: "the integration's row",
      org: a,
      hold: (tx: postgres.TransactionSql) =>
        tx`update public.messenger_integrations set updated_at = now() where id = ${aRow}`,
    },
    {
      name: "the state row",
      org: b.org,
      hold: (tx: postgres.TransactionSql) =>
        tx`select 1 from public.wpp_integration_state where integration_id = ${b.integrationId}
             for update`,
    },
    {
      name: "the organisation's advisory lock",
      org: c,
      hold: (tx: postgres.TransactionSql) =>
        tx`select pg_advisory_xact_lock(hashtextextended(${"wpp-connect:" + c.orgId}, 0))`,
    },
  ];
  await sim.clearFaults();
  const before = await sim.calls();
  const holders = await Promise.all(cases.map((k) => hold(k.hold)));
  let clicks: HelperResult[];
  try {
    clicks = await Promise.all(
      cases.map((k) => panel(k.org).post("wpp-create", { add_new: false })),
    );
  } finally {
    await Promise.all(holders.map((h) => h.release()));
  }
  const delta = callDelta(before, await sim.calls());

  cases.forEach((k, i) => {
    const r = clicks[i];
    assertAttempts(r);
    assert.equal(r.attempts.length, 4, `${k.name}: a 503 is retried: ${summary(r)}`);
    for (const at of r.attempts) {
      assert.equal(at.status, 503, `${k.name}: ${summary(r)}`);
      assert.ok(
        at.body?.code === "database_busy" || at.body?.code === "database_timeout",
        `${k.name}: ${summary(r)}`,
      );
      assert.match(String(at.body?.error), /database/);
    }
  });
  assert.equal(delta.create, 0, "no platform client was created");
  for (const k of cases) {
    const audit = await events(k.org.orgId);
    const blamed = audit.filter((e) =>
      e.action === "create_outcome_unknown" ||
      (e.action === "failed" && String(e.details.code).startsWith("platform_"))
    );
    assert.deepEqual(blamed, [], `${k.name}: the platform was blamed`);
  }

  // The transactions are over: the same clicks work.
  for (const k of cases) {
    const r = await panel(k.org).post("wpp-create", { add_new: false });
    assert.equal(r.status, 200, `${k.name}: ${summary(r)}`);
  }
  assert.deepEqual(await inconsistencies(cases.map((k) => k.org.orgId)), []);
});

// ---------------------------------------------------------------------------------------------
// (5) Before: WPP_LEASE_SECONDS was checked on its own (>= 5), so a lease shorter than the request
// deadline was accepted and a second click could create while the first was still creating.

test("issue #12 (5): a lease not longer than the request deadline is refused", async () => {
  const base = {
    SUPABASE_URL: "http://127.0.0.1:1",
    SUPABASE_SERVICE_ROLE_KEY: "x".repeat(40),
    WPP_BASE_URL: "http://127.0.0.1:2",
    WPP_SECRET: "secret-secret",
  };
  const refused = parseConfig({
    ...base,
    WPP_LEASE_SECONDS: "20",
    WPP_REQUEST_DEADLINE_MS: "20000",
  });
  assert.equal(refused.ok, false);
  assert.equal(!refused.ok && refused.variable, "WPP_LEASE_SECONDS");
  const shorter = parseConfig({ ...base, WPP_LEASE_SECONDS: "10" });
  assert.equal(
    !shorter.ok && shorter.variable,
    "WPP_LEASE_SECONDS",
    "the default deadline is 20 s",
  );
  assert.equal(
    parseConfig({ ...base, WPP_LEASE_SECONDS: "21", WPP_REQUEST_DEADLINE_MS: "20000" }).ok,
    true,
  );
  assert.equal(parseConfig(base).ok, true, "the defaults are consistent");

  // A function process so configured says so on every request, naming the variable.
  const fn = await startOwnFunction("wpp-create", {
    WPP_LEASE_SECONDS: "8",
    WPP_REQUEST_DEADLINE_MS: "8000",
  });
  own.push(fn);
  const org = await createOrg("admin");
  const before = await sim.calls();
  const r = await crmHelper({
    token: org.user.token,
    baseUrl: gateway.route({ "wpp-create": fn.url }),
  }).post("wpp-create", { add_new: false });
  assert.equal(r.status, 500, summary(r));
  assert.equal(r.data?.code, "not_configured");
  assert.match(String(r.data?.error), /WPP_LEASE_SECONDS/);
  assert.equal(callDelta(before, await sim.calls()).create, 0);
  assert.equal((await integrations(org.orgId)).length, 0, "nothing written");
});

// ---------------------------------------------------------------------------------------------
// (6) Before: wpp-status answered every member of the organisation with the QR, and its refresh
// (status, QR, start) ran for them too; wpp-qr did not exist, and wpp-create refused members.

test("issue #12 (6): a member gets no QR and causes no start", async () => {
  const { org, session } = await orgWithSession();
  const member = await org.addUser("member");
  const asMember = panel(member.token);

  // Fresh state with a QR on show: the admin sees it, the member does not.
  const adminView = await panel(org).post("wpp-status", { session_name: session, force: true });
  assert.equal(adminView.status, 200, summary(adminView));
  assert.equal(typeof adminView.data?.qrcode, "string", "the admin sees the QR");
  let before = await sim.calls();
  const fresh = await asMember.post("wpp-status", { session_name: session, force: true });
  assert.equal(fresh.status, 200, summary(fresh));
  assert.equal(fresh.data?.status, "qr_issued");
  assert.equal(fresh.data?.qrcode, null);

  // Stale state: the member's read may ask the platform for the status, nothing more.
  await makeStale(org.orgId);
  const stale = await asMember.post("wpp-status", { session_name: session, force: true });
  const viaGet = await asMember.get("wpp-status", { session_name: session, force: "true" });
  for (const r of [stale, viaGet]) {
    assert.equal(r.status, 200, summary(r));
    assert.equal(r.data?.qrcode, null);
  }
  const delta = callDelta(before, await sim.calls());
  assert.deepEqual(
    { start: delta.start, qr: delta.qr, create: delta.create, webhook: delta.webhook },
    { start: 0, qr: 0, create: 0, webhook: 0 },
  );

  before = await sim.calls();
  const qr = await asMember.get("wpp-qr", { session });
  const create = await asMember.post("wpp-create", { add_new: false });
  const recreate = await asMember.post("wpp-create", { force_recreate: true });
  for (const r of [qr, create, recreate]) {
    assert.equal(r.status, 403, summary(r));
    assert.equal(r.data?.code, "forbidden");
    assert.equal(r.attempts.length, 1, "a 403 is not retried");
  }
  assert.deepEqual(callDelta(before, await sim.calls()), {
    create: 0,
    token: 0,
    start: 0,
    status: 0,
    qr: 0,
    webhook: 0,
    stop: 0,
    unknown: 0,
  });
});

// ---------------------------------------------------------------------------------------------
// (7) Before: any 401/403 of /auth/token condemned the apiKey, so a proxy's HTML 403 page, once
// the session was past its grace period, made every click create a new client.

const PROXY_403 = "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n" +
  "<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/** The stored token is gone and the session is past its grace period: the next click asks for a token. */
async function needsToken(orgId: string): Promise<void> {
  await sql`update public.messenger_integrations
               set settings = settings - 'wppJwtToken' - 'wppJwtExpiresAt'
             where organization_id = ${orgId} and provider = 'wpp'`;
  await ageSession(orgId);
  await makeStale(orgId);
}

test("issue #12 (7): only the platform's own JSON refusal marks a key dead", async () => {
  const { org, session } = await orgWithSession();
  const transient: { name: string; fault: FaultSpec; text: boolean; code: string }[] = [
    {
      name: "a proxy's HTML 403 page",
      fault: { op: "token", kind: "status", status: 403, message: PROXY_403 },
      text: true,
      code: "platform_error",
    },
    {
      name: "the platform's 404 page",
      fault: { op: "token", kind: "status", status: 404 },
      text: false,
      code: "platform_rejected",
    },
  ];
  const before = await sim.calls();
  for (const c of transient) {
    await needsToken(org.orgId);
    if (c.text) await sim.setVariants({ errorBody: "text" });
    let r: HelperResult;
    try {
      r = await withFault(c.fault, () => panel(org).post("wpp-create", { add_new: false }));
    } finally {
      await sim.setVariants({ errorBody: "json" });
    }
    assertAttempts(r);
    assert.equal(r.status, 502, `${c.name}: ${summary(r)}`);
    assert.equal(r.data?.code, c.code, `${c.name}: ${summary(r)}`);
    assert.equal(r.attempts.length, 4, `${c.name}: a 502 is retried`);
  }
  assert.equal(callDelta(before, await sim.calls()).create, 0, "no new client");
  let audit = await events(org.orgId);
  assert.ok(!audit.some((e) => e.action === "dead_key_detected"), JSON.stringify(audit));
  let [row] = await integrations(org.orgId);
  assert.equal(row.settings.wppAccountNumber, session);
  assert.equal(row.session_state, "ok");

  // Within the grace period even the platform's own refusal is the known activation delay.
  await needsToken(org.orgId);
  await sql`update public.wpp_integration_state set session_created_at = now()
             where organization_id = ${org.orgId}`;
  const young = await withFault(
    { op: "token", kind: "status", status: 403 },
    () => panel(org).post("wpp-create", { add_new: false }),
  );
  assertAttempts(young);
  assert.equal(young.status, 502, summary(young));
  assert.equal(callDelta(before, await sim.calls()).create, 0, "a young key is not dead");

  // Past the grace period, the platform's JSON `{"error":"Invalid API key"}` does condemn it.
  await needsToken(org.orgId);
  const dead = await withFault(
    { op: "token", kind: "status", status: 403, times: 1 },
    () => panel(org).post("wpp-create", { add_new: false }),
  );
  assertAttempts(dead);
  assert.equal(dead.status, 200, summary(dead));
  assert.equal(dead.data?.created, true);
  assert.notEqual(dead.data?.session, session);
  assert.equal(callDelta(before, await sim.calls()).create, 1);
  audit = await events(org.orgId);
  assert.ok(audit.some((e) => e.action === "dead_key_detected" && e.details.session === session));
  [row] = await integrations(org.orgId);
  assert.equal(row.settings.wppAccountNumber, dead.data?.session);
  assert.deepEqual(await inconsistencies([org.orgId]), []);
});

// ---------------------------------------------------------------------------------------------
// (8) Before: every click on a session that was not connected asked the platform for its status,
// registered the webhook and started the account: 30 clicks, 30 starts.

test("issue #12 (8): 30 concurrent clicks on a not-connected session make one start", async () => {
  const { org, session } = await orgWithSession();
  await makeStale(org.orgId);
  await sim.clearFaults();
  const before = await sim.calls();
  const clicks = await Promise.all(
    Array.from({ length: 30 }, () => panel(org).post("wpp-create", { add_new: false })),
  );
  const delta = callDelta(before, await sim.calls());
  for (const r of clicks) {
    assertAttempts(r);
    assert.equal(r.status, 200, summary(r));
    assert.equal(r.data?.session, session);
  }
  assert.deepEqual(
    { start: delta.start, webhook: delta.webhook, status: delta.status, create: delta.create },
    { start: 1, webhook: 1, status: 1, create: 0 },
  );
  const statuses = new Set(clicks.map((r) => r.data?.status));
  assert.deepEqual([...statuses], ["qr_issued"], "every click shows the one QR");
  assert.equal(new Set(clicks.map((r) => r.data?.qrcode)).size, 1);
});

// ---------------------------------------------------------------------------------------------
// (9) Before: jose verified signature, audience and role only; a token without `exp` never expired.

test("issue #12 (9): a token without exp is refused by every function; iss is checked when set", async () => {
  const org = await createOrg("admin");
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: org.user.userId, aud: "authenticated", role: "authenticated", iat: now };
  const secret = new TextEncoder().encode(stack.jwtSecret);
  const sign = (c: jose.JWTPayload) =>
    new jose.SignJWT(c).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(secret);
  const noExp = await sign(claims);
  const withExp = await sign({ ...claims, exp: now + 600 });
  const calls: [string, (h: ReturnType<typeof panel>) => Promise<HelperResult>][] = [
    ["wpp-create", (h) => h.post("wpp-create", { add_new: false })],
    ["wpp-status", (h) => h.post("wpp-status", { force: false })],
    ["wpp-qr", (h) => h.get("wpp-qr")],
    ["wpp-disconnect", (h) => h.post("wpp-disconnect", { integration_id: crypto.randomUUID() })],
  ];
  const before = await sim.calls();
  for (const [fn, call] of calls) {
    const refused = await call(panel(noExp));
    assert.equal(refused.status, 401, `${fn}: ${summary(refused)}`);
    assert.equal(refused.data?.code, "unauthorized");
    assert.match(String(refused.data?.error), /exp/);
    assert.equal(refused.attempts.length, 1);
    // The same token with an expiry gets past authentication.
    const accepted = await call(panel(withExp));
    assert.notEqual(accepted.status, 401, `${fn}: ${summary(accepted)}`);
  }
  assert.equal(callDelta(before, await sim.calls()).create, 1, "only the accepted click created");

  // With JWT_ISSUER set, `iss` must be exactly that.
  const issuer = "https://crm.example.com/auth/v1";
  const verify = createTokenVerifier({
    jwtSecret: stack.jwtSecret,
    jwksUrl: "http://127.0.0.1:9/jwks.json",
    issuer,
  });
  const bearer = async (c: jose.JWTPayload) => `Bearer ${await sign(c)}`;
  const exp = now + 600;
  assert.deepEqual(await verify(await bearer({ ...claims, exp, iss: issuer })), {
    userId: org.user.userId,
  });
  for (
    const [name, c] of [
      ["wrong iss", { ...claims, exp, iss: "https://other.example.com/auth/v1" }],
      ["no iss", { ...claims, exp }],
      ["no exp", { ...claims, iss: issuer }],
    ] as const
  ) {
    await assert.rejects(
      verify(await bearer(c)),
      (e) => e instanceof AppError && e.code === "unauthorized",
      name,
    );
  }
  // A token of the stack's own issuer (what mintUserToken makes) passes without JWT_ISSUER.
  const open = createTokenVerifier({ jwtSecret: stack.jwtSecret, jwksUrl: "http://127.0.0.1:9/" });
  assert.equal(
    (await open(`Bearer ${await mintUserToken(org.user.userId)}`)).userId,
    org.user.userId,
  );
});

test("issue #12: clean up", async () => {
  await sim.clearFaults();
  await Promise.all(own.map((f) => f.stop()));
  await gateway.close();
  await closeDb();
});
