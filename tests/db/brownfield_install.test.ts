// The installation into the CRM's own database (tests/fixtures/brownfield), in both variants of
// the constraints the contract leaves open. Each variant gets a database of its own on the test
// cluster, bootstrapped like Supabase (postgres not a superuser), the CRM's tables and rows
// applied as postgres, then this project's migrations exactly as the stack applies them.
//
// Browser and service access is checked the way PostgREST performs it: `set local role` plus the
// request's JWT claims, inside a transaction.
import assert from "node:assert/strict";
import postgres from "postgres";
import {
  createDatabase,
  dropDatabase,
  MIGRATIONS_DIR,
  setupDatabase,
} from "../../dev/stack/migrate.ts";
import { stack } from "../_support/stack.ts";
import {
  brownfieldSql,
  type BrownfieldVariant,
  CRM_TABLES,
  crmUser,
  NOBODY,
  ORG,
  OTHER_PROVIDERS,
  PICKED,
  REPAIRED,
  ROW,
  VALID_WPP,
  VARIANTS,
} from "../fixtures/brownfield/mod.ts";

type Sql = postgres.Sql;
// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;

const PASSWORD = "postgres";

/** Every row of every CRM table, every column, in a stable order. */
async function crmData(sql: Sql): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const table of CRM_TABLES) {
    const [r] = await sql.unsafe(
      `select coalesce(jsonb_agg(to_jsonb(t) order by t.id), '[]') as rows from public.${table} t`,
    );
    out[table] = r.rows;
  }
  return out;
}

/** The CRM's policies, owners, RLS flags and table comments. */
async function crmShape(sql: Sql): Promise<unknown> {
  return [
    ...await sql`
    select c.relname, pg_get_userbyid(c.relowner) as owner, c.relrowsecurity as rls,
           obj_description(c.oid, 'pg_class') as comment,
           (select jsonb_agg(jsonb_build_object('name', p.polname, 'cmd', p.polcmd,
                               'using', pg_get_expr(p.polqual, p.polrelid)) order by p.polname)
              from pg_policy p where p.polrelid = c.oid) as policies,
           -- The grants, except on messenger_integrations, whose settings column is taken from
           -- the browser roles on purpose (see privileges()).
           case when c.relname <> 'messenger_integrations' then c.relacl::text end as grants
      from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relname in ${sql([...CRM_TABLES])}
     order by c.relname`,
  ];
}

/** What the browser roles may do with messenger_integrations, table-wide and per column. */
async function privileges(sql: Sql): Promise<Row> {
  const [r] = await sql`
    select has_table_privilege('anon', 'public.messenger_integrations', 'select') as anon_select,
           has_table_privilege('authenticated', 'public.messenger_integrations', 'select')
             as auth_select,
           has_column_privilege('authenticated', 'public.messenger_integrations', 'settings',
             'select') as auth_settings,
           has_column_privilege('authenticated', 'public.messenger_integrations', 'webhook_key',
             'select') as auth_webhook_key,
           has_column_privilege('anon', 'public.messenger_integrations', 'name', 'select')
             as anon_name,
           has_table_privilege('service_role', 'public.messenger_integrations',
             'select, insert, update, delete') as service_all`;
  return { ...r };
}

interface Installed {
  sql: Sql;
  name: string;
  before: Record<string, unknown>;
  shapeBefore: unknown;
  privilegesBefore: Row;
  applied: string[];
  migrator: string;
}

async function install(variant: BrownfieldVariant): Promise<Installed> {
  const name = `wpp_brownfield_${variant.replace(/-/g, "_")}_${crypto.randomUUID().slice(0, 8)}`;
  const url = await createDatabase(stack.superuserUrl, name);
  const empty = await Deno.makeTempDir({ prefix: "wpp-no-migrations-" });
  try {
    // The CRM's database as it is before wpp-connect: Supabase's bootstrap and the CRM's tables.
    await setupDatabase({
      superuserUrl: url,
      password: PASSWORD,
      ownsCluster: false,
      seed: false,
      migrationsDir: empty,
      preMigrationSql: await brownfieldSql(variant),
    });
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
  const sql = postgres(url, { max: 3, onnotice: () => {} });
  const before = await crmData(sql);
  const shapeBefore = await crmShape(sql);
  const privilegesBefore = await privileges(sql);
  const setup = await setupDatabase({
    superuserUrl: url,
    password: PASSWORD,
    ownsCluster: false,
    seed: false,
    migrationsDir: MIGRATIONS_DIR,
  });
  return {
    sql,
    name,
    before,
    shapeBefore,
    privilegesBefore,
    applied: setup.applied,
    migrator: setup.migrator,
  };
}

async function uninstall(i: Installed) {
  await i.sql.end({ timeout: 5 });
  await dropDatabase(stack.superuserUrl, i.name);
}

/** Runs `fn` as PostgREST would for this role and user, in a transaction rolled back after. */
async function as<T>(
  sql: Sql,
  role: "anon" | "authenticated" | "service_role",
  userId: string | null,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T | { error: string; code: string }> {
  let out!: T | { error: string; code: string };
  await sql.begin(async (tx) => {
    await tx.unsafe(`set local role ${role}`);
    await tx`select set_config('request.jwt.claims', ${
      JSON.stringify({ role, ...(userId ? { sub: userId } : {}) })
    }, true)`;
    try {
      out = await fn(tx);
    } catch (e) {
      const err = e as { message: string; code: string };
      out = { error: err.message, code: err.code };
    }
    throw new Rollback();
  }).catch((e) => {
    if (!(e instanceof Rollback)) throw e;
  });
  return out;
}

class Rollback extends Error {}

function rows(r: unknown): Row[] {
  assert.ok(Array.isArray(r), `expected rows, got ${JSON.stringify(r)}`);
  return r as Row[];
}

for (const variant of VARIANTS) {
  Deno.test(`brownfield (${variant}): the migrations apply as postgres and leave every CRM row, column and policy as it was`, async () => {
    const i = await install(variant);
    try {
      assert.equal(i.migrator, "postgres");
      assert.deepEqual(
        i.applied,
        [...Deno.readDirSync(MIGRATIONS_DIR)].map((e) => e.name).filter((n) => n.endsWith(".sql"))
          .sort(),
        "every migration applied",
      );
      const [{ superuser }] = await i.sql`
        select rolsuper as superuser from pg_roles where rolname = 'postgres'`;
      assert.equal(superuser, false, "as on Supabase, postgres is not a superuser");
      assert.deepEqual(await crmData(i.sql), i.before, "no CRM row lost, added or changed");
      assert.deepEqual(await crmShape(i.sql), i.shapeBefore, "the CRM's policies, owners, RLS");
      // Supabase's default grants gave the browser roles everything; settings is now kept from
      // them, every other column stays readable for signed-in users, service_role keeps it all.
      assert.deepEqual(i.privilegesBefore, {
        anon_select: true,
        auth_select: true,
        auth_settings: true,
        auth_webhook_key: true,
        anon_name: true,
        service_all: true,
      });
      assert.deepEqual(await privileges(i.sql), {
        anon_select: false,
        auth_select: false,
        auth_settings: false,
        auth_webhook_key: true,
        anon_name: false,
        service_all: true,
      });
      const shape = await crmShape(i.sql) as Row[];
      for (const t of shape) {
        assert.equal(t.owner, "postgres", `${t.relname} is still postgres'`);
        assert.ok(!String(t.comment ?? "").startsWith("wpp-connect stand-in"), t.relname);
      }
      // The project's own tables exist next to them.
      const [{ n }] = await i.sql`
        select count(*)::int as n from pg_class
         where relnamespace = 'public'::regnamespace
           and relname in ('wpp_integration_state', 'wpp_integration_events',
                           'wpp_idempotency_keys', 'wpp_session_placeholders',
                           'messenger_integrations_public')`;
      assert.equal(n, 5);
      // The fixture's rows are the ones mod.ts describes.
      const ids = await i.sql<{ id: string; provider: string }[]>`
        select id, provider from public.messenger_integrations`;
      assert.deepEqual(
        ids.filter((r) => r.provider === "wpp").map((r) => r.id).sort(),
        [...Object.keys(REPAIRED), ...VALID_WPP].sort(),
      );
      assert.deepEqual(
        ids.filter((r) => r.provider !== "wpp").map((r) => r.id).sort(),
        [...OTHER_PROVIDERS].sort(),
      );
    } finally {
      await uninstall(i);
    }
  });

  Deno.test(`brownfield (${variant}): the repair marked exactly the unusable wpp rows, once each`, async () => {
    const i = await install(variant);
    try {
      const states = await i.sql<{ id: string; session_state: string; repair_reason: string }[]>`
        select integration_id as id, session_state, repair_reason
          from public.wpp_integration_state order by integration_id`;
      assert.deepEqual(
        Object.fromEntries(states.map((s) => [s.id, s.repair_reason])),
        REPAIRED,
        "a state row, marked, for each unusable row; none for the others",
      );
      assert.ok(states.every((s) => s.session_state === "needs_new_session"));
      const events = await i.sql<{ integration_id: string; action: string; details: Row }[]>`
        select integration_id, action, details from public.wpp_integration_events order by id`;
      assert.deepEqual(
        events.map((e) => e.integration_id).sort(),
        Object.keys(REPAIRED).sort(),
        "one event per repaired row",
      );
      assert.ok(events.every((e) => e.action === "repaired"));
      const w6 = events.find((e) => e.integration_id === ROW.w6)!;
      assert.deepEqual(w6.details, {
        reason: "placeholder_session",
        previous_account_number: "Client_System",
        is_primary: true,
        is_active: false,
      });
      // As the runbook says: run it again, any time.
      const [{ again }] = await i.sql`select public.wpp_repair_legacy_sessions() as again`;
      assert.equal(again, 0);
    } finally {
      await uninstall(i);
    }
  });

  Deno.test(`brownfield (${variant}): the CRM's service role reads settings; a member's select * is refused, named columns and the public view work`, async () => {
    const i = await install(variant);
    try {
      const member = crmUser(3, "manager").id;
      const service = rows(
        await as(
          i.sql,
          "service_role",
          null,
          (tx) => tx`select id, settings from public.messenger_integrations where id = ${ROW.w3}`,
        ),
      );
      assert.equal(service[0].settings.wppApiKey, "real-w3-api-key-00000000");
      const write = await as(
        i.sql,
        "service_role",
        null,
        (tx) =>
          tx`update public.messenger_integrations
              set settings = settings || '{"wppJwtToken": "fresh"}' where id = ${ROW.w3}
           returning settings ->> 'wppJwtToken' as t`,
      );
      assert.equal(rows(write)[0].t, "fresh", "wpp-send writes its token back");

      for (const user of [member, crmUser(3, "admin").id, crmUser(3, "owner").id]) {
        const star = await as(
          i.sql,
          "authenticated",
          user,
          (tx) => tx`select * from public.messenger_integrations`,
        );
        assert.equal((star as { code: string }).code, "42501", `select * as ${user}`);
        const settings = await as(
          i.sql,
          "authenticated",
          user,
          (tx) => tx`select id from public.messenger_integrations where settings ? 'wppApiKey'`,
        );
        assert.equal((settings as { code: string }).code, "42501");
      }
      const named = rows(
        await as(
          i.sql,
          "authenticated",
          member,
          (tx) =>
            tx`select id, name, provider, is_active, is_primary, webhook_key
               from public.messenger_integrations order by id`,
        ),
      );
      assert.deepEqual(
        named.map((r) => r.id),
        [ROW.w3, ROW.w4, ROW.telegram3].sort(),
        "the CRM's own policy: the member's organisation",
      );
      const view = rows(
        await as(
          i.sql,
          "authenticated",
          member,
          (tx) => tx`select * from public.messenger_integrations_public order by id`,
        ),
      );
      assert.deepEqual(
        view.map((r) => r.id),
        [ROW.w3, ROW.w4, ROW.telegram3].sort(),
      );
      const text = JSON.stringify(view);
      for (
        const secret of [
          "real-w3-api-key",
          "real-w3-jwt",
          "legacy-w3-webhook-secret",
          "legacy-w4-api-key",
          "telegram-bot-token-t3",
        ]
      ) {
        assert.ok(!text.includes(secret), `the view shows ${secret}`);
      }
      const w3 = view.find((r) => r.id === ROW.w3)!;
      assert.equal(w3.public_settings.signature, "— Academy");
      assert.equal(w3.session, "5511999990003");
      assert.equal(w3.connection, "unknown", "not learned yet");
      assert.equal(
        view.find((r) => r.id === ROW.w4)!.connection,
        "not_configured",
      );
      for (const who of [NOBODY.id, null]) {
        const none = await as(
          i.sql,
          who ? "authenticated" : "anon",
          who,
          (tx) => tx`select id from public.messenger_integrations_public`,
        );
        if (who) {
          assert.deepEqual([...rows(none)], [], "no organisation, no rows");
        } else assert.equal((none as { code: string }).code, "42501", "anon");
      }
      const anon = await as(
        i.sql,
        "anon",
        null,
        (tx) => tx`select id from public.messenger_integrations`,
      );
      assert.equal((anon as { code: string }).code, "42501");
      // The CRM's other tables keep their own grants: a member still reads whatsapp_sessions.
      const sessions = rows(
        await as(
          i.sql,
          "authenticated",
          member,
          (tx) => tx`select session_name from public.whatsapp_sessions`,
        ),
      );
      assert.deepEqual(
        sessions.map((r) => r.session_name),
        ["wpp_5511999990003"],
      );
    } finally {
      await uninstall(i);
    }
  });

  Deno.test(`brownfield (${variant}): clicks follow the pick rule and never make a second primary`, async () => {
    const i = await install(variant);
    try {
      // The CRM generates webhook_key itself: an insert of this project must not rely on a default.
      await i.sql`alter table public.messenger_integrations alter column webhook_key drop default`;
      const begin = (org: string, mode = "connect") =>
        as(i.sql, "service_role", null, async (tx) => {
          const [r] = await tx`
            select public.wpp_provision_begin(${org}::uuid, ${
            crmUser(1, "admin").id
          }::uuid, ${mode})
              as answer`;
          return r.answer as Row;
        });
      const commit = async (org: string, mode = "connect") => {
        // `as` rolls back; the decisions below must stay, so they run as service_role directly.
        const [r] = await i.sql.begin(async (tx) => {
          await tx.unsafe("set local role service_role");
          return await tx`
            select public.wpp_provision_begin(${org}::uuid, ${
            crmUser(1, "admin").id
          }::uuid, ${mode})
              as answer`;
        });
        return r.answer as Row;
      };
      for (const [org, row] of Object.entries(PICKED)) {
        const r = await begin(org) as Row;
        assert.equal(r.integration_id, row, `org ${org}: the documented pick`);
        // W3 holds a usable session; every other picked row is one the repair marked.
        assert.equal(r.decision, row === ROW.w3 ? "reuse" : "create", `org ${org}`);
      }
      // Committed: org 01's legacy row becomes primary (its greenapi row is not); org 06, whose
      // primary WhatsApp is greenapi's, gets a new wpp row that is not primary; add_new in org 03
      // fills the listed legacy W4 first (it stays secondary to W3), then adds a new row.
      const w1 = await commit(ORG.legacySecondary);
      assert.equal(w1.integration_id, ROW.w1);
      assert.equal(w1.is_primary, true);
      const inserted = await commit(ORG.otherProviders);
      assert.equal(inserted.reason, "no_integration");
      assert.equal(inserted.is_primary, false);
      const filled = await commit(ORG.twoWpp, "add_new");
      assert.deepEqual(
        [filled.integration_id, filled.reason, filled.is_primary],
        [ROW.w4, "placeholder_session", false],
      );
      await i.sql`update public.wpp_integration_state set lease_id = null, lease_expires_at = null
                   where integration_id = ${ROW.w4}`;
      await i.sql`update public.messenger_integrations set is_active = false where id = ${ROW.w4}`;
      const added = await commit(ORG.twoWpp, "add_new");
      assert.equal(added.reason, "add_new");
      assert.equal(added.is_primary, false);
      const reactivated = await commit(ORG.inactive);
      assert.equal(reactivated.integration_id, ROW.w6);
      assert.equal(reactivated.is_active, true);
      const keys = await i.sql<{ webhook_key: string | null }[]>`
        select webhook_key from public.messenger_integrations
         where id in ${i.sql([inserted.integration_id, added.integration_id])}`;
      assert.ok(keys.every((k) => /^[0-9a-f]{32}$/.test(k.webhook_key ?? "")), "keys given");
      const doubles = await i.sql`
        select organization_id, messenger_type, count(*)::int as n
          from public.messenger_integrations where is_primary
         group by 1, 2 having count(*) > 1`;
      assert.deepEqual([...doubles], [], "one primary per organisation and messenger type");
    } finally {
      await uninstall(i);
    }
  });
}

Deno.test("brownfield: the migrations can be applied a second time without error or change", async () => {
  const i = await install("with-constraints");
  try {
    const [{ url }] = await i.sql`select current_database() as url`;
    assert.ok(url);
    const asPostgres = postgres(
      (() => {
        const u = new URL(stack.superuserUrl);
        u.username = "postgres";
        u.password = PASSWORD;
        u.pathname = `/${i.name}`;
        return u.toString();
      })(),
      { max: 1, onnotice: () => {} },
    );
    try {
      const stateBefore = await i.sql`select jsonb_agg(to_jsonb(s) order by s.integration_id) as s
                                         from public.wpp_integration_state s`;
      for (const f of [...Deno.readDirSync(MIGRATIONS_DIR)].map((e) => e.name).sort()) {
        if (!f.endsWith(".sql")) continue;
        await asPostgres.begin((tx) => tx.unsafe(Deno.readTextFileSync(`${MIGRATIONS_DIR}/${f}`)))
          .catch((e) => {
            throw new Error(`${f} cannot be applied again: ${e.message}`);
          });
      }
      assert.deepEqual(await crmData(i.sql), i.before);
      const stateAfter = await i.sql`select jsonb_agg(to_jsonb(s) order by s.integration_id) as s
                                        from public.wpp_integration_state s`;
      assert.deepEqual(stateAfter, stateBefore, "nothing marked twice, nothing reset");
      const [{ n }] = await i.sql`select count(*)::int as n from public.wpp_integration_events`;
      assert.equal(n, Object.keys(REPAIRED).length);
    } finally {
      await asPostgres.end({ timeout: 5 });
    }
  } finally {
    await uninstall(i);
  }
});
