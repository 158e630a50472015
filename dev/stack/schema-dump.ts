// `deno task schema`: a schema-only dump (pg_dump) of what the migrations build, for comparing
// two sets of migrations: a refactoring of migrations must leave the schema exactly as it was.
//
//   deno task schema                       print the dump of supabase/migrations
//   deno task schema --compare <git ref>   dump the migrations at <ref> and the ones on disk,
//                                          exit 1 with a diff when the schemas differ
//   options: --migrations <dir>, --through <version> (only files up to that version),
//            --db-url <superuser URL> (or DB_URL) instead of a throwaway cluster
//
// pg_dump is the PostgreSQL client's (Debian's postgresql-client, /usr/bin/pg_dump): the npm
// package of the server ships none. Its version must be the server's major version, 15.
import { basename, join } from "node:path";
import { ROOT } from "./paths.ts";
import { MIGRATIONS_DIR } from "./migrate.ts";
import { withMigratedDatabase } from "./throwaway-db.ts";
import { diffSummary } from "./gen-types.ts";

/** This project's schemas, and the CRM's tables it creates where they are missing. */
const SCHEMAS = ["public", "private"];

export interface DumpOptions {
  migrationsDir?: string;
  /** Only migrations whose version (the name's leading digits) is at most this one. */
  through?: string;
  serverUrl?: string;
  password?: string;
}

async function pgDump(url: string): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("pg_dump", {
      args: ["--schema-only", ...SCHEMAS.flatMap((s) => ["--schema", s]), `--dbname=${url}`],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        "pg_dump is not installed: install the PostgreSQL 15 client (apt-get install postgresql-client-15)",
      );
    }
    throw e;
  }
  if (!out.success) throw new Error(`pg_dump failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/**
 * The dump without what differs between two dumps of the same schema: pg_dump's version
 * comments, its random `\restrict` keys, blank-line runs.
 */
export function normalise(dump: string): string {
  return dump.split("\n")
    .filter((l) => !l.startsWith("--") && !/^\\(un)?restrict /.test(l))
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim() + "\n";
}

/** The migrations of `dir` up to `through`, copied into a folder of their own. */
async function selectMigrations(dir: string, through: string): Promise<string> {
  const out = await Deno.makeTempDir({ prefix: "wpp-connect-migrations-" });
  for await (const e of Deno.readDir(dir)) {
    const version = basename(e.name).match(/^(\d+)_/)?.[1];
    if (e.isFile && e.name.endsWith(".sql") && version && version <= through) {
      await Deno.copyFile(join(dir, e.name), join(out, e.name));
    }
  }
  return out;
}

export async function dumpSchema(opts: DumpOptions = {}): Promise<string> {
  const dir = opts.migrationsDir ?? MIGRATIONS_DIR;
  const selected = opts.through ? await selectMigrations(dir, opts.through) : dir;
  try {
    return normalise(
      await withMigratedDatabase(
        { serverUrl: opts.serverUrl, password: opts.password, migrationsDir: selected },
        async ({ superuserUrl }) => await pgDump(superuserUrl),
      ),
    );
  } finally {
    if (selected !== dir) await Deno.remove(selected, { recursive: true });
  }
}

/** supabase/migrations as it was at a git revision, in a temporary folder. */
async function migrationsAt(ref: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wpp-connect-migrations-at-" });
  const list = await new Deno.Command("git", {
    args: ["ls-tree", "--name-only", `${ref}:supabase/migrations`],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!list.success) {
    throw new Error(
      `git cannot read supabase/migrations at ${ref}: ${new TextDecoder().decode(list.stderr)}`,
    );
  }
  for (const name of new TextDecoder().decode(list.stdout).split("\n").filter(Boolean)) {
    const file = await new Deno.Command("git", {
      args: ["show", `${ref}:supabase/migrations/${name}`],
      cwd: ROOT,
      stdout: "piped",
    }).output();
    await Deno.writeFile(join(dir, name), file.stdout);
  }
  return dir;
}

if (import.meta.main) {
  const args = [...Deno.args];
  const flag = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const common = {
    through: flag("--through"),
    serverUrl: flag("--db-url") ?? (Deno.env.get("DB_URL") || undefined),
    password: Deno.env.get("DB_PASSWORD") || undefined,
  };
  try {
    const ref = flag("--compare");
    if (!ref) {
      const dump = await dumpSchema({ ...common, migrationsDir: flag("--migrations") });
      await Deno.stdout.write(new TextEncoder().encode(dump));
    } else {
      const before = await migrationsAt(ref);
      try {
        const was = await dumpSchema({ ...common, migrationsDir: before });
        const now = await dumpSchema({ ...common, migrationsDir: flag("--migrations") });
        if (was === now) {
          console.log(
            `the schema the migrations build is the same as at ${ref} (${
              was.split("\n").length
            } dump lines)`,
          );
        } else {
          console.error(`the schema differs from the one at ${ref}:\n${diffSummary(was, now)}`);
          Deno.exit(1);
        }
      } finally {
        await Deno.remove(before, { recursive: true });
      }
    }
  } catch (e) {
    console.error(`schema dump failed: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
