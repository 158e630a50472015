// Prepares a database the way Supabase does: the bootstrap superuser applies what the
// supabase/postgres image ships (dev/stack/supabase-bootstrap.sql), then the project's migrations
// and the seed are applied as `postgres`, a NON-superuser, as `supabase db push` applies them.
// Migrations are recorded in supabase_migrations.schema_migrations like the CLI records them.
import postgres from "postgres";
import { basename, join } from "node:path";
import { ROOT } from "./paths.ts";

export const BOOTSTRAP_SQL = join(ROOT, "dev/stack/supabase-bootstrap.sql");
export const MIGRATIONS_DIR = join(ROOT, "supabase/migrations");
export const SEED_SQL = join(ROOT, "supabase/seed.sql");

/** Migrates in postgres' place when a server's own `postgres` is a superuser. */
export const STAND_IN_MIGRATOR = "postgres_nonsuper";

export class MigrationError extends Error {
  constructor(readonly file: string, readonly dbMessage: string) {
    super(`migration ${file} failed: ${dbMessage}`);
  }
}

export interface SetupOptions {
  /** A superuser's URL (supabase_admin on the embedded cluster). */
  superuserUrl: string;
  /** Password given to authenticator, supabase_auth_admin and a migrating role the stack owns. */
  password: string;
  /**
   * The embedded cluster: every role in it is the stack's, so `postgres` is (re)created with this
   * password. Otherwise an existing `postgres` is used only if the password logs it in.
   */
  ownsCluster: boolean;
  seed: boolean;
  /** Defaults to supabase/migrations. */
  migrationsDir?: string;
  /** Extra migration directories applied after the project's (test fixtures). */
  extraMigrationDirs?: string[];
  /**
   * SQL applied as the migrating role after the bootstrap and before the migrations, each text in
   * a transaction of its own: a database that already holds someone else's tables (the host CRM's,
   * tests/fixtures/brownfield) when the project's migrations first run.
   */
  preMigrationSql?: PreMigrationSql[];
  log?: (line: string) => void;
}

export interface PreMigrationSql {
  /** Named in logs and in a MigrationError. */
  name: string;
  sql: string;
}

export interface DatabaseSetup {
  applied: string[];
  /** The role the migrations ran as: `postgres`, or the stand-in. */
  migrator: string;
  /** Its URL: what Supabase calls the database URL (SUPABASE_DB_URL). */
  migratorUrl: string;
}

async function sqlFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".sql")) files.push(join(dir, e.name));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return files.sort((a, b) => basename(a).localeCompare(basename(b)));
}

function describe(e: unknown): string {
  const err = e as { message?: string; position?: string; detail?: string; hint?: string };
  return [err.message, err.detail && `detail: ${err.detail}`, err.hint && `hint: ${err.hint}`]
    .filter(Boolean).join("; ");
}

function quoteLiteral(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export function urlAs(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = encodeURIComponent(password);
  return u.toString();
}

async function canLogIn(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/**
 * Which role applies the migrations, and whether the stack sets its password. `postgres` unless
 * that role is a superuser here (the bootstrap superuser of a plain PostgreSQL, say): PostgreSQL
 * forbids demoting the bootstrap superuser, and demoting another server's superuser is not the
 * stack's to do, so a stand-in with postgres' attributes migrates instead.
 */
async function chooseMigrator(
  sql: postgres.Sql,
  opts: SetupOptions,
): Promise<{ role: string; managePassword: boolean; note?: string }> {
  if (opts.ownsCluster) return { role: "postgres", managePassword: true };
  const [existing] = await sql<{ rolsuper: boolean }[]>`
    select rolsuper from pg_roles where rolname = 'postgres'`;
  if (!existing) return { role: "postgres", managePassword: true };
  if (
    !existing.rolsuper &&
    await canLogIn(urlAs(opts.superuserUrl, "postgres", opts.password))
  ) {
    return { role: "postgres", managePassword: false };
  }
  return {
    role: STAND_IN_MIGRATOR,
    managePassword: true,
    note: existing.rolsuper
      ? `'postgres' is a superuser on this server and cannot be demoted: migrations run as ` +
        `'${STAND_IN_MIGRATOR}', a non-superuser with the attributes 'postgres' has on Supabase`
      : `DB_PASSWORD does not log in as this server's 'postgres': migrations run as ` +
        `'${STAND_IN_MIGRATOR}', a non-superuser with the attributes 'postgres' has on Supabase`,
  };
}

/** Supabase's roles, extensions and auth schema, applied by the superuser. */
async function bootstrap(
  opts: SetupOptions,
): Promise<{ migrator: string; migratorUrl: string }> {
  const log = opts.log ?? (() => {});
  const sql = postgres(opts.superuserUrl, { max: 1, onnotice: () => {} });
  try {
    const [{ rolsuper }] = await sql<{ rolsuper: boolean }[]>`
      select rolsuper from pg_roles where rolname = current_user`;
    if (!rolsuper) {
      throw new Error(
        "the database URL must be a superuser's: it creates Supabase's roles, extensions and " +
          "auth schema before the migrations run as 'postgres'",
      );
    }
    const migrator = await chooseMigrator(sql, opts);
    if (migrator.note) log(`note: ${migrator.note}`);
    await sql.unsafe(`set stack.migrator = ${quoteLiteral(migrator.role)}`);
    await sql.unsafe(await Deno.readTextFile(BOOTSTRAP_SQL));
    const password = quoteLiteral(opts.password);
    await sql.unsafe(`alter role authenticator with login password ${password}`);
    await sql.unsafe(`alter role supabase_auth_admin with login password ${password}`);
    if (migrator.managePassword) {
      await sql.unsafe(`alter role ${migrator.role} with login password ${password}`);
    }
    return {
      migrator: migrator.role,
      migratorUrl: urlAs(opts.superuserUrl, migrator.role, opts.password),
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** The project's migrations (then the seed), connected as the migrating role. */
async function applyMigrations(
  url: string,
  opts: SetupOptions,
): Promise<string[]> {
  const log = opts.log ?? (() => {});
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const applied: string[] = [];
  try {
    await sql.unsafe(`
      create schema if not exists supabase_migrations;
      create table if not exists supabase_migrations.schema_migrations (
        version text primary key, statements text[], name text);
    `);
    const done = new Set(
      (await sql`select version from supabase_migrations.schema_migrations`).map((r) =>
        r.version as string
      ),
    );
    const files = [
      ...(await sqlFiles(opts.migrationsDir ?? MIGRATIONS_DIR)),
      ...(await Promise.all((opts.extraMigrationDirs ?? []).map(sqlFiles))).flat(),
    ];
    for (const file of files) {
      const name = basename(file, ".sql");
      const version = name.split("_")[0];
      if (done.has(version)) continue;
      const text = await Deno.readTextFile(file);
      try {
        await sql.begin(async (tx) => {
          await tx.unsafe(text);
          await tx`insert into supabase_migrations.schema_migrations (version, name, statements)
                   values (${version}, ${name.slice(version.length + 1)}, ${[text]})`;
        });
      } catch (e) {
        throw new MigrationError(basename(file), describe(e));
      }
      applied.push(basename(file));
      log(`applied migration ${basename(file)}`);
    }
    if (opts.seed) {
      let seed: string | undefined;
      try {
        seed = await Deno.readTextFile(SEED_SQL);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      if (seed !== undefined) {
        try {
          await sql.unsafe(seed);
        } catch (e) {
          throw new MigrationError("supabase/seed.sql", describe(e));
        }
        log("applied supabase/seed.sql");
      }
    }
    await sql`select pg_notify('pgrst', 'reload schema')`;
  } finally {
    await sql.end({ timeout: 5 });
  }
  return applied;
}

/** What was there before the project: applied like a migration, not recorded as one. */
async function applyPreMigrationSql(url: string, opts: SetupOptions): Promise<void> {
  if (!opts.preMigrationSql?.length) return;
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    for (const { name, sql: text } of opts.preMigrationSql) {
      try {
        await sql.begin((tx) => tx.unsafe(text));
      } catch (e) {
        throw new MigrationError(name, describe(e));
      }
      opts.log?.(`applied pre-migration SQL ${name}`);
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function setupDatabase(opts: SetupOptions): Promise<DatabaseSetup> {
  const { migrator, migratorUrl } = await bootstrap(opts);
  await applyPreMigrationSql(migratorUrl, opts);
  const applied = await applyMigrations(migratorUrl, opts);
  return { applied, migrator, migratorUrl };
}

/** For an existing server: a throwaway database so runs never share state. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`create database "${name}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`drop database if exists "${name}" with (force)`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
