// The CRM's legacy WhatsApp rows, fixed by the panel's own click through its HTTP helper. The
// rows are made here, in the CRM's shape, so the file runs in both passes of the test runner (a
// fresh database and the CRM-shaped one); the last test uses the brownfield fixture's own rows,
// which only the second pass has.
import assert from "node:assert/strict";
import { crmHelper } from "../_support/crm-helper.ts";
import { mintUserToken } from "../_support/stack.ts";
import {
  createOrg,
  events,
  functionLogLines,
  platformApiKey,
  sim,
  sql,
  type TestOrg,
} from "../_support/wpp.ts";
import { crmUser, NOBODY, ORG, ROW } from "../fixtures/brownfield/mod.ts";

const brownfield = Deno.env.get("STACK_DB_SHAPE") === "brownfield";

const test = (name: string, fn: (t: Deno.TestContext) => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

// The panel's helper, with its real retry policy; the tests expect single attempts, and assert it.
function panel(token: string) {
  return crmHelper({ token });
}

interface RowSpec {
  provider?: string;
  messengerType?: string;
  name?: string;
  active: boolean;
  primary: boolean;
  settings: Record<string, unknown>;
  /** Seconds before now: orders the rows by created_at. */
  ageSeconds: number;
}

async function insertRow(orgId: string, spec: RowSpec): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    insert into public.messenger_integrations
      (organization_id, name, messenger_type, provider, is_active, is_primary, webhook_key,
       settings, created_at, updated_at)
    values (${orgId}, ${spec.name ?? "WhatsApp"}, ${spec.messengerType ?? "whatsapp"},
            ${spec.provider ?? "wpp"}, ${spec.active}, ${spec.primary},
            ${"crm-key-" + crypto.randomUUID()},
            ${sql.json(spec.settings as Parameters<typeof sql.json>[0])},
            now() - make_interval(secs => ${spec.ageSeconds}),
            now() - make_interval(secs => ${spec.ageSeconds}))
    returning id`;
  return row.id;
}

/** Every CRM row of the organisation, every column, keyed by id. */
async function crmRows(orgId: string): Promise<Map<string, Record<string, unknown>>> {
  const rows = await sql<{ id: string; row: Record<string, unknown> }[]>`
    select m.id, to_jsonb(m) as row from public.messenger_integrations m
     where m.organization_id = ${orgId}`;
  return new Map(rows.map((r) => [r.id, r.row]));
}

async function platformCreates(): Promise<number> {
  return (await sim.calls()).create;
}

function assertNoSecret(text: string, secrets: string[], what: string) {
  for (const s of secrets) {
    assert.ok(!text.includes(s), `${what} leaks a secret (${s.slice(0, 4)}…)`);
  }
}

/** A CRM admin: `admin` in user_roles, next to another CRM role, as the CRM's users hold them. */
async function orgWithCrmAdmin(): Promise<TestOrg> {
  const org = await createOrg("admin");
  await sql`insert into public.user_roles (user_id, role) values (${org.user.userId}, 'teacher')`;
  return org;
}

test("an admin's click fills the legacy non-primary client_system row in place and makes it primary", async () => {
  const org = await orgWithCrmAdmin();
  const manager = await org.addUser("member");
  const legacyKey = `legacy-key-${crypto.randomUUID()}`;
  const legacy = await insertRow(org.orgId, {
    active: true,
    primary: false,
    ageSeconds: 3600,
    settings: {
      wppAccountNumber: "client_system",
      wppApiKey: legacyKey,
      greeting: "Здравствуйте! Чем помочь?",
      workingHours: { from: "09:00", to: "18:00" },
    },
  });
  // The organisation's other providers, one of them a WhatsApp row of its own (inactive).
  const greenapi = await insertRow(org.orgId, {
    provider: "greenapi",
    name: "Green API",
    active: false,
    primary: false,
    ageSeconds: 7200,
    settings: { idInstance: "1101000001", apiTokenInstance: "greenapi-token-000" },
  });
  const telegram = await insertRow(org.orgId, {
    provider: "telegram",
    messengerType: "telegram",
    name: "Telegram",
    active: true,
    primary: true,
    ageSeconds: 7000,
    settings: { botToken: "123:telegram-token" },
  });
  const before = await crmRows(org.orgId);
  const createsBefore = await platformCreates();

  // A CRM 'manager' sees the status only: refused once (a 403 is never retried), nothing written.
  const refused = await panel(manager.token).post("wpp-create", { add_new: false });
  assert.equal(refused.status, 403);
  assert.equal(refused.attempts.length, 1, "a 403 is not retried");
  assert.equal(refused.data?.code, "forbidden");
  assert.deepEqual(await crmRows(org.orgId), before, "the manager's click changed nothing");
  assert.equal(await platformCreates(), createsBefore, "no platform client for the manager");

  const res = await panel(org.user.token).post("wpp-create", { add_new: false });
  assert.equal(res.status, 200, JSON.stringify(res.data));
  assert.equal(res.attempts.length, 1);
  const body = res.data!;
  assert.equal(body.success, true);
  assert.equal(body.created, true);
  assert.equal(body.integration_id, legacy, "the legacy row is the one connected");
  assert.ok(["qr_issued", "starting", "connected"].includes(body.status as string));
  const session = body.session as string;
  assert.ok(session && session !== "client_system", "a real session");
  assert.equal(await platformCreates(), createsBefore + 1, "exactly one platform client");

  const after = await crmRows(org.orgId);
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), "no row added or deleted");
  const row = after.get(legacy)! as {
    settings: Record<string, unknown>;
    is_primary: boolean;
    is_active: boolean;
    webhook_key: string;
    name: string;
  };
  const apiKey = await platformApiKey(session);
  assert.equal(row.settings.wppAccountNumber, session);
  assert.equal(row.settings.wppApiKey, apiKey);
  assert.equal(row.settings.greeting, "Здравствуйте! Чем помочь?", "greeting kept");
  assert.deepEqual(row.settings.workingHours, { from: "09:00", to: "18:00" }, "other keys kept");
  assert.equal(row.is_primary, true, "made primary: no other WhatsApp row was");
  assert.equal(row.is_active, true);
  const old = before.get(legacy)! as typeof row;
  assert.equal(row.webhook_key, old.webhook_key, "the CRM's webhook_key is the CRM's");
  assert.equal(row.name, old.name);
  assert.deepEqual(after.get(greenapi), before.get(greenapi), "greenapi row untouched");
  assert.deepEqual(after.get(telegram), before.get(telegram), "telegram row untouched");
  const [{ primaries }] = await sql<{ primaries: number }[]>`
    select count(*)::int as primaries from public.messenger_integrations
     where organization_id = ${org.orgId} and messenger_type = 'whatsapp' and is_primary`;
  assert.equal(primaries, 1, "one primary WhatsApp row");

  const trail = await events(org.orgId);
  const created = trail.filter((e) => e.action === "created");
  assert.equal(created.length, 1);
  assert.equal(created[0].details.reason, "placeholder_session");
  assert.equal(created[0].details.session, session);

  const [state] = await sql<{ webhook_secret: string }[]>`
    select webhook_secret from public.wpp_integration_state where integration_id = ${legacy}`;
  const secrets = [apiKey, legacyKey, state.webhook_secret];
  assertNoSecret(JSON.stringify(res.attempts), secrets, "the answer");
  assertNoSecret(JSON.stringify(refused.attempts), secrets, "the manager's answer");
  assertNoSecret(JSON.stringify(trail), secrets, "the audit trail");
  const logs = await functionLogLines("wpp-create");
  assert.ok(logs.some((l) => l.includes(String(body.request_id))), "the request is logged");
  assertNoSecret(logs.join("\n"), secrets, "the function logs");
  assert.notEqual(body.apiKey, apiKey, "the apiKey is shown masked");
});

// The panel lists the legacy row, so its button is «Подключить ещё один WhatsApp»: add_new.
test("the panel's «add another number» on that organisation fills the listed legacy row, not a new one", async () => {
  const org = await orgWithCrmAdmin();
  const legacy = await insertRow(org.orgId, {
    active: true,
    primary: false,
    ageSeconds: 3600,
    settings: { wppAccountNumber: "client_system", wppApiKey: "legacy-key", greeting: "Привет" },
  });
  const before = await crmRows(org.orgId);
  const res = await panel(org.user.token).post("wpp-create", { add_new: true });
  assert.equal(res.status, 200, JSON.stringify(res.data));
  assert.equal(res.data?.integration_id, legacy);
  assert.equal(res.data?.created, true);
  const after = await crmRows(org.orgId);
  assert.deepEqual([...after.keys()], [...before.keys()], "no row added");
  const row = after.get(legacy) as { settings: Record<string, unknown>; is_primary: boolean };
  assert.equal(row.settings.wppAccountNumber, res.data?.session);
  assert.equal(row.settings.greeting, "Привет");
  assert.equal(row.is_primary, true, "the organisation had no primary WhatsApp row");
});

test("with two wpp rows the pick rule decides which one a click fills; the other is untouched", async (t) => {
  const legacy = (extra: Record<string, unknown> = {}) => ({
    wppAccountNumber: "client_system",
    wppApiKey: `legacy-${crypto.randomUUID()}`,
    ...extra,
  });
  const cases: {
    name: string;
    rows: RowSpec[];
    /** Index of the row the rule picks. */
    picked: number;
    /** Whether the picked row ends primary: only if no other WhatsApp row of the org is. */
    primary: boolean;
    reactivated?: boolean;
    /** 'recreated' when the picked row held a session that is not a placeholder. */
    action?: "created" | "recreated";
  }[] = [
    {
      name: "an active primary beats an older active row",
      rows: [
        { active: true, primary: false, ageSeconds: 9000, settings: legacy({ tag: "older" }) },
        { active: true, primary: true, ageSeconds: 100, settings: { wppAccountNumber: "x1" } },
      ],
      picked: 1,
      primary: true,
      action: "recreated",
    },
    {
      name: "without a primary, the oldest active row",
      rows: [
        { active: true, primary: false, ageSeconds: 100, settings: legacy({ tag: "newer" }) },
        { active: true, primary: false, ageSeconds: 9000, settings: legacy({ tag: "oldest" }) },
        { active: false, primary: false, ageSeconds: 99000, settings: legacy({ tag: "off" }) },
      ],
      picked: 1,
      primary: true,
    },
    {
      name: "an active row beats an inactive primary",
      rows: [
        { active: false, primary: true, ageSeconds: 9000, settings: legacy() },
        { active: true, primary: false, ageSeconds: 100, settings: legacy() },
      ],
      picked: 1,
      // The inactive row keeps its flag: the click changes no row but the one it fills.
      primary: false,
    },
    {
      name: "only inactive rows: the inactive primary, reactivated",
      rows: [
        { active: false, primary: false, ageSeconds: 9000, settings: legacy() },
        { active: false, primary: true, ageSeconds: 100, settings: legacy() },
      ],
      picked: 1,
      primary: true,
      reactivated: true,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const org = await orgWithCrmAdmin();
      const ids: string[] = [];
      for (const r of c.rows) ids.push(await insertRow(org.orgId, r));
      const before = await crmRows(org.orgId);
      const res = await panel(org.user.token).post("wpp-create", { add_new: false });
      assert.equal(res.status, 200, JSON.stringify(res.data));
      assert.equal(res.data?.integration_id, ids[c.picked]);
      assert.equal(res.data?.created, true);
      const after = await crmRows(org.orgId);
      assert.equal(after.size, before.size, "no row added or deleted");
      for (const [i, id] of ids.entries()) {
        if (i === c.picked) continue;
        assert.deepEqual(after.get(id), before.get(id), `row ${i} untouched`);
      }
      const picked = after.get(ids[c.picked]) as {
        settings: Record<string, unknown>;
        is_active: boolean;
        is_primary: boolean;
      };
      assert.equal(picked.settings.wppAccountNumber, res.data?.session);
      assert.equal(picked.is_active, true);
      for (const [k, v] of Object.entries(c.rows[c.picked].settings)) {
        if (!k.startsWith("wpp")) assert.deepEqual(picked.settings[k], v, `${k} kept`);
      }
      const [{ primaries }] = await sql<{ primaries: number }[]>`
        select count(*)::int as primaries from public.messenger_integrations
         where organization_id = ${org.orgId} and messenger_type = 'whatsapp' and is_primary`;
      assert.equal(primaries, 1, "never a second primary");
      assert.equal(picked.is_primary, c.primary);
      const actions = (await events(org.orgId)).map((e) => e.action);
      assert.equal(actions.includes("reactivated"), c.reactivated ?? false, actions.join(","));
      const action = c.action ?? "created";
      assert.equal(actions.filter((a) => a === action).length, 1, actions.join(","));
    });
  }
});

Deno.test({
  name: "brownfield: the CRM's own legacy rows, repaired by the migration, are fixed by a click",
  // Only the second pass's database holds the fixture's organisations.
  ignore: !brownfield,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const rowOf = async (id: string) =>
      (await sql<{ row: Record<string, unknown> }[]>`
        select to_jsonb(m) as row from public.messenger_integrations m where m.id = ${id}`)[0]
        ?.row as { settings: Record<string, unknown>; is_primary: boolean; is_active: boolean };
    const untouched = [ROW.greenapiOld, ROW.telegram1, ROW.w3, ROW.w4, ROW.w5, ROW.w8];
    const before = await Promise.all(untouched.map(rowOf));
    const [{ sessions }] = await sql<{ sessions: unknown }[]>`
      select jsonb_agg(to_jsonb(w) order by w.id) as sessions from public.whatsapp_sessions w`;

    // The migration marked the legacy rows before anyone clicked.
    const [mark] = await sql<{ session_state: string; repaired: number }[]>`
      select s.session_state,
             (select count(*)::int from public.wpp_integration_events e
               where e.integration_id = s.integration_id and e.action = 'repaired') as repaired
        from public.wpp_integration_state s where s.integration_id = ${ROW.w1}`;
    assert.deepEqual({ ...mark }, { session_state: "needs_new_session", repaired: 1 });

    const tokenOf = (org: number, kind: "owner" | "admin" | "manager") =>
      mintUserToken(crmUser(org, kind).id, { email: crmUser(org, kind).email });
    const manager = await panel(await tokenOf(1, "manager")).post("wpp-create", {});
    assert.equal(manager.status, 403);
    const nobody = await panel(await mintUserToken(NOBODY.id)).post("wpp-create", {});
    assert.equal(nobody.status, 403);
    assert.equal(nobody.data?.code, "no_organization");

    // org 01: the admin (also a teacher) fixes W1; org 04: the owner's click reactivates W6, the
    // inactive primary; org 05: the admin's click fills W7 (primary, no apiKey), not W8.
    for (
      const [org, kind, row, orgId] of [
        [1, "admin", ROW.w1, ORG.legacySecondary],
        [4, "owner", ROW.w6, ORG.inactive],
        [5, "admin", ROW.w7, ORG.halfConfigured],
      ] as const
    ) {
      const oldRow = await rowOf(row);
      const res = await panel(await tokenOf(org, kind)).post("wpp-create", { add_new: false });
      assert.equal(res.status, 200, JSON.stringify(res.data));
      assert.equal(res.data?.integration_id, row, `org ${org}: the documented pick`);
      const newRow = await rowOf(row);
      assert.equal(newRow.settings.wppAccountNumber, res.data?.session);
      assert.equal(newRow.is_active, true);
      for (const [k, v] of Object.entries(oldRow.settings)) {
        if (!["wppAccountNumber", "wppApiKey", "wppJwtToken", "wppJwtExpiresAt"].includes(k)) {
          assert.deepEqual(newRow.settings[k], v, `org ${org}: ${k} kept`);
        }
      }
      const [{ primaries }] = await sql<{ primaries: number }[]>`
        select count(*)::int as primaries from public.messenger_integrations
         where organization_id = ${orgId} and messenger_type = 'whatsapp' and is_primary`;
      assert.equal(primaries, 1, `org ${org}: one primary WhatsApp row`);
    }
    assert.equal((await rowOf(ROW.w1)).is_primary, true, "W1 made primary");
    assert.deepEqual(await Promise.all(untouched.map(rowOf)), before, "other rows untouched");
    const [after] = await sql<{ sessions: unknown }[]>`
      select jsonb_agg(to_jsonb(w) order by w.id) as sessions from public.whatsapp_sessions w`;
    assert.deepEqual(after.sessions, sessions, "the CRM's whatsapp_sessions are the CRM's");
  },
});
