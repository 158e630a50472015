// Applies Supabase's conventions, then the project's migrations in name order (recorded like the
// Supabase CLI records them), then the seed on a fresh database.
import postgres from "postgres";
import { basename, join } from "node:path";
import { ROOT } from "./paths.ts";

export const BOOTSTRAP_SQL = join(ROOT, "dev/stack/supabase-bootstrap.sql");
export const MIGRATIONS_DIR = join(ROOT, "supabase/migrations");
export const SEED_SQL = join(ROOT, "supabase/seed.sql");

export class MigrationError extends Error {
  constructor(readonly file: string, readonly dbMessage: string) {
    super(`migration ${file} failed: ${dbMessage}`);
  }
}

export interface MigrateOptions {
  superuserUrl: string;
  authenticatorPassword: string;
  seed: boolean;
  /** Extra migration directories applied after the project's (test fixtures). */
  extraMigrationDirs?: string[];
  log?: (line: string) => void;
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

export async function migrate(opts: MigrateOptions): Promise<{ applied: string[] }> {
  const log = opts.log ?? (() => {});
  const sql = postgres(opts.superuserUrl, { max: 1, onnotice: () => {} });
  const applied: string[] = [];
  try {
    await sql.unsafe(await Deno.readTextFile(BOOTSTRAP_SQL));
    await sql.unsafe(
      `alter role authenticator with login password '${
        opts.authenticatorPassword.replaceAll("'", "''")
      }'`,
    );
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
      ...(await sqlFiles(MIGRATIONS_DIR)),
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
      try {
        const seed = await Deno.readTextFile(SEED_SQL);
        try {
          await sql.unsafe(seed);
        } catch (e) {
          throw new MigrationError("supabase/seed.sql", describe(e));
        }
        log("applied supabase/seed.sql");
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    await sql`select pg_notify('pgrst', 'reload schema')`;
  } finally {
    await sql.end({ timeout: 5 });
  }
  return { applied };
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
