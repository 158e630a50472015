// A database that exists for one job: Supabase's bootstrap and a folder of migrations applied as
// the stack applies them (as `postgres`, no seed), on a given server or on a throwaway embedded
// cluster, dropped again afterwards. What `deno task types` and `deno task schema` work on.
import { ProcessGroup } from "./processes.ts";
import { startPostgres } from "./postgres.ts";
import { createDatabase, dropDatabase, MIGRATIONS_DIR, setupDatabase } from "./migrate.ts";

export interface ThrowawayOptions {
  /** A superuser URL of a server to create the database on; none: a throwaway cluster. */
  serverUrl?: string;
  password?: string;
  migrationsDir?: string;
  log?: (line: string) => void;
}

export interface MigratedDatabase {
  /** A superuser's URL of the database. */
  superuserUrl: string;
  /** The migrating role's (`postgres`) URL of the database. */
  migratorUrl: string;
}

export async function withMigratedDatabase<T>(
  opts: ThrowawayOptions,
  work: (db: MigratedDatabase) => Promise<T>,
): Promise<T> {
  const password = opts.password ?? "postgres";
  if (opts.serverUrl) return await onServer(opts.serverUrl, password, opts, work);
  const dataDir = await Deno.makeTempDir({ prefix: "wpp-connect-db-" });
  const group = new ProcessGroup();
  try {
    const pg = await startPostgres(group, {
      dataDir,
      port: freePort(),
      password,
      ephemeral: true,
      echo: false,
    });
    return await onServer(pg.superuserUrl, password, opts, work);
  } finally {
    await group.stopAll({ postgres: "SIGINT" });
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

async function onServer<T>(
  serverUrl: string,
  password: string,
  opts: ThrowawayOptions,
  work: (db: MigratedDatabase) => Promise<T>,
): Promise<T> {
  const name = `wpp_connect_tmp_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const superuserUrl = await createDatabase(serverUrl, name);
  try {
    const { migratorUrl } = await setupDatabase({
      superuserUrl,
      password,
      ownsCluster: false,
      seed: false,
      migrationsDir: opts.migrationsDir ?? MIGRATIONS_DIR,
      log: opts.log,
    });
    return await work({ superuserUrl, migratorUrl });
  } finally {
    await dropDatabase(serverUrl, name);
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
