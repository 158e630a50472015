// The database's roles are Supabase's: supabase_admin is the bootstrap superuser, `postgres` an
// ordinary role with the attributes and grants it has on Supabase, and the migrations run as
// `postgres` — so a migration needing more than Supabase allows fails here first.
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { db, stack } from "../_support/stack.ts";
import {
  createDatabase,
  dropDatabase,
  MigrationError,
  setupDatabase,
  STAND_IN_MIGRATOR,
} from "../../dev/stack/migrate.ts";
import { startPostgres } from "../../dev/stack/postgres.ts";
import { ProcessGroup } from "../../dev/stack/processes.ts";
import { freePort, startStack } from "../../dev/stack/stack.ts";

Deno.test("supabase_admin is the bootstrap superuser; postgres has Supabase's attributes", async () => {
  const sql = db();
  try {
    const [boot] = await sql`select rolname from pg_roles where oid = 10`;
    assert.equal(boot.rolname, "supabase_admin");
    const [pg] = await sql`
      select rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
             rolcanlogin
        from pg_roles where rolname = 'postgres'`;
    assert.deepEqual({ ...pg }, {
      rolsuper: false,
      rolinherit: true,
      rolcreaterole: true,
      rolcreatedb: true,
      rolreplication: true,
      rolbypassrls: true,
      rolcanlogin: true,
    });
    const api = await sql`
      select rolname, rolinherit, rolbypassrls, rolcanlogin from pg_roles
       where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')
       order by rolname`;
    assert.deepEqual(api.map((r) => ({ ...r })), [
      { rolname: "anon", rolinherit: false, rolbypassrls: false, rolcanlogin: false },
      { rolname: "authenticated", rolinherit: false, rolbypassrls: false, rolcanlogin: false },
      { rolname: "authenticator", rolinherit: false, rolbypassrls: false, rolcanlogin: true },
      { rolname: "service_role", rolinherit: false, rolbypassrls: true, rolcanlogin: false },
    ]);
    const timeouts = await sql`
      select rolname, rolconfig from pg_roles where rolname in ('anon', 'authenticated')
       order by rolname`;
    assert.deepEqual(timeouts.map((r) => r.rolconfig), [
      ["statement_timeout=3s"],
      ["statement_timeout=8s"],
    ]);
  } finally {
    await sql.end({ timeout: 5 });
  }
});

Deno.test("postgres' privileges are those of supabase/postgres' privs test, and no more", async () => {
  const sql = db();
  try {
    const [p] = await sql`
      select
        has_database_privilege('postgres', current_database(), 'CONNECT') as connect,
        has_database_privilege('postgres', current_database(), 'TEMPORARY') as temp,
        has_database_privilege('postgres', current_database(), 'CREATE') as create_db,
        has_schema_privilege('postgres', 'public', 'CREATE') as public_create,
        has_schema_privilege('postgres', 'extensions', 'CREATE') as extensions_create,
        has_schema_privilege('postgres', 'auth', 'USAGE') as auth_usage,
        has_schema_privilege('postgres', 'auth', 'CREATE') as auth_create,
        has_table_privilege('postgres', 'auth.users', 'REFERENCES') as users_references,
        has_table_privilege('postgres', 'auth.users', 'SELECT, INSERT, UPDATE, DELETE') as users_rw,
        has_schema_privilege('anon', 'public', 'CREATE') as anon_create,
        pg_has_role('postgres', 'supabase_auth_admin', 'USAGE') as in_auth_admin,
        pg_has_role('postgres', 'supabase_admin', 'USAGE') as in_admin,
        pg_has_role('authenticator', 'supabase_admin', 'USAGE') as authenticator_admin,
        pg_has_role('postgres', 'service_role', 'MEMBER') as in_service_role`;
    assert.deepEqual({ ...p }, {
      connect: true,
      temp: true,
      create_db: true,
      public_create: true,
      extensions_create: true,
      auth_usage: true,
      auth_create: false,
      users_references: true,
      users_rw: true,
      anon_create: false,
      in_auth_admin: false,
      in_admin: false,
      authenticator_admin: false,
      in_service_role: true,
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
});

Deno.test("the migrations ran as postgres: it owns what they created", async () => {
  const sql = db();
  try {
    const owners = await sql`
      select c.relname, c.relowner::regrole::text as owner
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname in ('public', 'supabase_migrations') and c.relkind in ('r', 'v')
       order by 1`;
    assert.ok(owners.length >= 5, JSON.stringify(owners));
    for (const o of owners) assert.equal(o.owner, "postgres", o.relname);
    const [auth] = await sql`select relowner::regrole::text as owner from pg_class
                              where oid = 'auth.users'::regclass`;
    assert.equal(
      auth.owner,
      "supabase_auth_admin",
      "auth belongs to Supabase Auth, as on Supabase",
    );
  } finally {
    await sql.end({ timeout: 5 });
  }
});

Deno.test("as postgres: Supabase's default grants apply, superuser-only statements fail", async () => {
  const sql = postgres(stack.dbUrl, { max: 1, onnotice: () => {} });
  const table = `roles_probe_${crypto.randomUUID().slice(0, 8)}`;
  try {
    const [{ current_user, is_super }] = await sql`
      select current_user, current_setting('is_superuser') = 'on' as is_super`;
    assert.equal(current_user, "postgres");
    assert.equal(is_super, false);
    await sql.unsafe(`create table public.${table} (
      id int primary key,
      user_id uuid references auth.users (id))`);
    const grants = await sql`
      select grantee, count(*)::int as n from information_schema.role_table_grants
       where table_schema = 'public' and table_name = ${table}
         and grantee in ('anon', 'authenticated', 'service_role') group by grantee order by 1`;
    assert.deepEqual(grants.map((g) => [g.grantee, g.n]), [
      ["anon", 7],
      ["authenticated", 7],
      ["service_role", 7],
    ]);
    const refused = [
      "create table auth.not_yours (id int)",
      "alter role postgres superuser",
      "create extension if not exists file_fdw",
      "alter table auth.users add column nope int",
    ];
    for (const statement of refused) {
      await assert.rejects(sql.unsafe(statement), /permission denied|must be|owner/, statement);
    }
  } finally {
    await sql.unsafe(`drop table if exists public.${table}`);
    await sql.end({ timeout: 5 });
  }
});

Deno.test("a migration needing a superuser fails, naming itself, as it would on Supabase", async () => {
  const name = `wpp_connect_roles_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const dir = await Deno.makeTempDir({ prefix: "wpp-roles-sql-" });
  await Deno.writeTextFile(
    join(dir, "29990101000000_needs_superuser.sql"),
    "create table public.fine (id int);\ncreate extension file_fdw;\n",
  );
  const url = await createDatabase(stack.superuserUrl, name);
  try {
    const err = await setupDatabase({
      superuserUrl: url,
      password: "postgres",
      ownsCluster: false,
      seed: false,
      migrationsDir: dir,
    }).then(() => null, (e) => e);
    assert.ok(err instanceof MigrationError, `expected a MigrationError, got ${err}`);
    assert.equal(err.file, "29990101000000_needs_superuser.sql");
    assert.match(err.message, /permission denied to create extension "file_fdw"/);
  } finally {
    await dropDatabase(stack.superuserUrl, name);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "DB_URL of a server whose postgres is the superuser: a non-superuser stand-in migrates",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "wpp-plain-pg-" });
    // The server runs as another OS user when the tests run as root: it must reach its folder.
    await Deno.chmod(dataDir, 0o755);
    const group = new ProcessGroup();
    let external: Awaited<ReturnType<typeof startStack>> | undefined;
    try {
      // A plain PostgreSQL, as `initdb -U postgres` leaves it.
      const plain = await startPostgres(group, {
        dataDir: join(dataDir, "server"),
        port: freePort(),
        password: "plain-pw",
        ephemeral: true,
        echo: false,
        superuser: "postgres",
      });
      const logs: string[] = [];
      external = await startStack({
        dataDir: join(dataDir, "stack"),
        ports: { gateway: 0, db: 0, postgrest: 0, postgrestAdmin: 0, simulator: 0 },
        ephemeral: true,
        externalDbUrl: plain.superuserUrl,
        dbPassword: "plain-pw",
        simulator: false,
        skipProjectFunctions: true,
        log: (l) => logs.push(l),
      });
      assert.equal(external.migrator, STAND_IN_MIGRATOR);
      assert.match(
        logs.join("\n"),
        /'postgres' is a superuser on this server and cannot be demoted/,
      );
      const sql = postgres(external.dbUrl, { max: 1, onnotice: () => {} });
      try {
        const [who] = await sql`
          select current_user, (select rolsuper from pg_roles where rolname = current_user) as sup,
                 (select relowner::regrole::text from pg_class
                   where oid = 'public.organizations'::regclass) as owner`;
        assert.deepEqual({ ...who }, {
          current_user: STAND_IN_MIGRATOR,
          sup: false,
          owner: STAND_IN_MIGRATOR,
        });
      } finally {
        await sql.end({ timeout: 5 });
      }
      const res = await fetch(`${external.restUrl}/organizations?select=id`, {
        headers: { apikey: external.keys.serviceRoleKey },
      });
      assert.equal(res.status, 200);
      assert.ok((await res.json()).length >= 2, "migrated and seeded");
    } finally {
      await external?.stop();
      await group.stopAll({ postgres: "SIGINT" });
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});
