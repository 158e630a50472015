// The local stack: PostgreSQL, PostgREST, the auth stand-in, the platform simulator, one Deno
// process per edge function, and the gateway in front, started and stopped together, and
// supervised while they run (dev/stack/supervisor.ts).
import { join } from "node:path";
import postgres from "postgres";
import { ROOT } from "./paths.ts";
import {
  buildProjectKeys,
  DEV_JWT_SECRET,
  generateEs256Jwk,
  type ProjectKeys,
  type SigningMode,
} from "./keys.ts";
import { isAlive, ProcessGroup } from "./processes.ts";
import { startPostgres } from "./postgres.ts";
import { createDatabase, dropDatabase, type PreMigrationSql, setupDatabase } from "./migrate.ts";
import { startPostgrest, waitForHttp } from "./postgrest.ts";
import {
  discoverFunctions,
  type FunctionSpec,
  readEnvFile,
  type RunningFunction,
  startFunction,
  waitForPort,
} from "./functions.ts";
import { createGatewayHandler, type GatewayFunction } from "./gateway.ts";
import { Supervisor } from "./supervisor.ts";
import { checkHealth } from "./health.ts";
import type * as jose from "jose";

const SIMULATOR_MAIN = join(ROOT, "dev/wpp-simulator/main.ts");
const AUTH_MAIN = join(ROOT, "dev/auth/main.ts");
export const DEFAULT_ENV_FILE = join(ROOT, "supabase/functions/.env");
/** Access token lifetime, as supabase/config.toml's [auth] jwt_expiry. */
const JWT_EXPIRY_SECONDS = 3600;

export interface StackPorts {
  gateway: number;
  db: number;
  postgrest: number;
  postgrestAdmin: number;
  simulator: number;
  /** The auth stand-in (behind the gateway); 0 or absent picks a free port. */
  auth?: number;
}

export interface StackOptions {
  dataDir: string;
  /** 0 picks a free port. */
  ports: StackPorts;
  /** Throwaway cluster: non-durable settings; a fresh database every start. */
  ephemeral: boolean;
  jwtSecret?: string;
  signing?: SigningMode;
  /** Superuser URL of an existing PostgreSQL server to use instead of the embedded one. */
  externalDbUrl?: string;
  dbPassword?: string;
  envFile?: string;
  /** Added to every function's env after the env file (values only known at start-up). */
  extraFunctionEnv?: Record<string, string>;
  simulator?: boolean;
  simulatorSecret?: string;
  functionInstances?: number;
  /** Leave out supabase/functions (stack-only tests). */
  skipProjectFunctions?: boolean;
  extraFunctions?: FunctionSpec[];
  extraMigrationDirs?: string[];
  /**
   * SQL applied as `postgres` after Supabase's bootstrap and before the migrations, on a fresh
   * database only: the tables and rows a database already had when the project was installed
   * (tests/fixtures/brownfield).
   */
  preMigrationSql?: PreMigrationSql[];
  /** Extra gateway routes (the demo page), built once the keys and URLs are known. */
  extraRoutes?: (
    ctx: RouteContext,
  ) => Record<string, (req: Request) => Response | Promise<Response>>;
  /** Where each function process's output is also written, one file per process. */
  functionLogDir?: string;
  /** Restarts allowed per service within a minute before the stack gives up (default 5). */
  maxRestarts?: number;
  echo?: boolean;
  log?: (line: string) => void;
}

export interface RouteContext {
  keys: ProjectKeys;
  gatewayUrl: string;
  simulatorUrl?: string;
}

export interface Stack {
  url: string;
  restUrl: string;
  /** `postgres`'s URL (non-superuser), as Supabase gives it (SUPABASE_DB_URL). */
  dbUrl: string;
  /** The bootstrap superuser's URL (supabase_admin on the embedded cluster). */
  superuserUrl: string;
  /** The role the migrations ran as: `postgres` or its stand-in. */
  migrator: string;
  postgrestUrl: string;
  authUrl: string;
  simulatorUrl?: string;
  simulatorSecret?: string;
  keys: ProjectKeys;
  functions: RunningFunction[];
  functionEnv: Record<string, string>;
  startupMs: number;
  timings: Record<string, number>;
  /** Resolves, with the reason, once the stack stopped itself because a service is gone. */
  failure: Promise<string>;
  stop(): Promise<void>;
}

/**
 * A port found free may be taken by another process before the function binds it (another stack
 * starting at the same moment): such a start is retried on another free port.
 */
async function startOnFreePort<T>(start: (port: number) => Promise<T>, tries = 3): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start(freePort());
    } catch (e) {
      if (attempt >= tries || !/address already in use/i.test(String((e as Error).message))) {
        throw e;
      }
    }
  }
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function portOrFree(p: number): number {
  return p === 0 ? freePort() : p;
}

function assertPortFree(port: number, what: string, envVar: string) {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
  } catch {
    throw new Error(
      `port ${port} (${what}) is already in use: stop what holds it or set ${envVar}`,
    );
  }
}

interface PidFile {
  pid: number;
  children: { name: string; pid: number }[];
  startedAt: string;
}

async function waitGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const until = Date.now() + timeoutMs;
  let alive = pids.filter(isAlive);
  while (alive.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** One stack per data directory: a live one is reported, a crashed one's leftovers are cleaned. */
async function claimDataDir(dataDir: string, log: (l: string) => void): Promise<string> {
  await Deno.mkdir(dataDir, { recursive: true });
  // The database server may run as another OS user, which must be able to reach its folder.
  await Deno.chmod(dataDir, 0o755);
  const pidPath = join(dataDir, "stack.pid.json");
  let old: PidFile;
  try {
    old = JSON.parse(await Deno.readTextFile(pidPath));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return pidPath;
    throw e;
  }
  if (old.pid !== Deno.pid && isAlive(old.pid)) {
    throw new Error(
      `another stack (pid ${old.pid}, started ${old.startedAt}) is running on ${dataDir}; ` +
        `stop it with Ctrl-C or: kill ${old.pid}`,
    );
  }
  const leftovers = old.children.filter((c) => isAlive(c.pid));
  for (const c of leftovers) {
    try {
      // Fast shutdown for Postgres: a smart one would wait for clients that are gone.
      Deno.kill(c.pid, c.name === "postgres" ? "SIGINT" : "SIGTERM");
    } catch { /* gone meanwhile */ }
  }
  const stubborn = await waitGone(leftovers.map((c) => c.pid), 10_000);
  for (const pid of stubborn) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
  await waitGone(stubborn, 2_000);
  log(
    `note: the stack started at ${old.startedAt} (pid ${old.pid}) did not shut down cleanly; ` +
      (leftovers.length
        ? `stopped its leftover processes: ${leftovers.map((c) => `${c.name} ${c.pid}`).join(", ")}`
        : "none of its processes was still running"),
  );
  await Deno.remove(pidPath).catch(() => {});
  return pidPath;
}

async function loadOrCreateSigningKey(dataDir: string, persist: boolean): Promise<jose.JWK> {
  const path = join(dataDir, "signing-key.json");
  if (persist) {
    try {
      return JSON.parse(await Deno.readTextFile(path));
    } catch { /* first start */ }
  }
  const jwk = await generateEs256Jwk();
  if (persist) await Deno.writeTextFile(path, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const mark = (k: string, since: number) => timings[k] = Math.round(performance.now() - since);
  const log = opts.log ?? (() => {});
  const echo = opts.echo ?? false;
  const group = new ProcessGroup();
  const pidPath = await claimDataDir(opts.dataDir, log);
  const writePids = () =>
    Deno.writeTextFile(
      pidPath,
      JSON.stringify({ pid: Deno.pid, children: group.pids, startedAt: new Date().toISOString() }),
    ).catch(() => {});
  await writePids();

  const ports: Required<StackPorts> = {
    gateway: portOrFree(opts.ports.gateway),
    db: portOrFree(opts.ports.db),
    postgrest: portOrFree(opts.ports.postgrest),
    postgrestAdmin: portOrFree(opts.ports.postgrestAdmin),
    simulator: portOrFree(opts.ports.simulator),
    auth: portOrFree(opts.ports.auth ?? 0),
  };
  assertPortFree(ports.gateway, "gateway", "API_PORT");
  assertPortFree(ports.postgrest, "PostgREST", "POSTGREST_PORT");
  assertPortFree(ports.auth, "auth", "AUTH_PORT");

  const password = opts.dbPassword ?? "postgres";
  const cleanups: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  let reportFailure!: (reason: string) => void;
  const failure = new Promise<string>((resolve) => reportFailure = resolve);
  const sup = new Supervisor(group, {
    log,
    maxRestarts: opts.maxRestarts,
    onChange: writePids,
    onFatal: (reason) => {
      log(`fatal: ${reason}; stopping the stack`);
      stopAll().then(() => reportFailure(reason));
    },
  });
  const stopAll = () =>
    stopping ??= (async () => {
      sup.stop();
      for (const c of cleanups.reverse()) await c().catch((e) => log(`stop: ${e.message}`));
      // Fast shutdown for PostgreSQL: a smart one would wait for clients that are gone.
      await group.stopAll({ postgres: "SIGINT" });
      await Deno.remove(pidPath).catch(() => {});
    })();

  try {
    // Keys are ready before anything else needs them.
    let s = performance.now();
    const keys = await buildProjectKeys({
      jwtSecret: opts.jwtSecret ?? DEV_JWT_SECRET,
      signing: opts.signing ?? "hs256",
      es256PrivateJwk: await loadOrCreateSigningKey(opts.dataDir, !opts.ephemeral),
    });

    // Database.
    s = performance.now();
    let superuserUrl: string;
    let fresh: boolean;
    if (opts.externalDbUrl) {
      if (opts.ephemeral) {
        const name = `wpp_connect_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
        superuserUrl = await createDatabase(opts.externalDbUrl, name);
        cleanups.push(() => dropDatabase(opts.externalDbUrl!, name));
        fresh = true;
      } else {
        superuserUrl = opts.externalDbUrl;
        fresh = false;
      }
    } else {
      assertPortFree(ports.db, "PostgreSQL", "DB_PORT");
      const pg = await startPostgres(group, {
        dataDir: join(opts.dataDir, "db"),
        port: ports.db,
        password,
        ephemeral: opts.ephemeral,
        echo,
      });
      sup.watch("postgres", pg.child);
      await writePids();
      superuserUrl = pg.superuserUrl;
      fresh = pg.fresh;
    }
    mark("postgres", s);
    s = performance.now();
    if (!fresh && opts.preMigrationSql?.length) {
      log("note: the database existed already: the pre-migration SQL is not applied again");
    }
    const { applied, migrator, migratorUrl } = await setupDatabase({
      superuserUrl,
      password,
      ownsCluster: !opts.externalDbUrl,
      seed: fresh,
      extraMigrationDirs: opts.extraMigrationDirs,
      preMigrationSql: fresh ? opts.preMigrationSql : undefined,
      log,
    });
    const dbUrl = migratorUrl;
    mark("migrations", s);
    log(
      `database ready (${applied.length} migration(s) applied as ${migrator}` +
        `${fresh ? ", seeded" : ""})`,
    );
    // One connection for /health's query, closed before PostgreSQL stops.
    const healthSql = postgres(superuserUrl, {
      max: 1,
      connect_timeout: 2,
      idle_timeout: 30,
      onnotice: () => {},
      connection: { application_name: "stack-health" },
    });
    cleanups.push(() => healthSql.end({ timeout: 1 }));

    // PostgREST, the auth stand-in and the simulator start side by side.
    s = performance.now();
    const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;
    const authUrl = `http://127.0.0.1:${ports.auth}`;
    const postgrestOpts = {
      dbUrl: (() => {
        const u = new URL(dbUrl);
        u.username = "authenticator";
        u.password = encodeURIComponent(password);
        return u.toString();
      })(),
      port: ports.postgrest,
      adminPort: ports.postgrestAdmin,
      jwks: keys.postgrestJwks,
      echo,
    };
    const startRest = async () => (await startPostgrest(group, postgrestOpts)).child;

    const authEnv = {
      AUTH_DB_URL: (() => {
        const u = new URL(superuserUrl);
        u.username = "supabase_auth_admin";
        u.password = encodeURIComponent(password);
        return u.toString();
      })(),
      JWT_SECRET: keys.jwtSecret,
      AUTH_SIGNING: keys.signing,
      AUTH_ES256_JWK: JSON.stringify(keys.es256PrivateJwk),
      AUTH_ISSUER: `${gatewayUrl}/auth/v1`,
      AUTH_JWT_EXPIRY: String(JWT_EXPIRY_SECONDS),
      NO_COLOR: "1",
    };
    const startAuth = async () => {
      const child = group.spawn({
        name: "auth",
        cmd: Deno.execPath(),
        args: ["run", "-A", AUTH_MAIN, "--port", String(ports.auth)],
        cwd: ROOT,
        env: authEnv,
        echo,
      });
      const exited = child.exited.then((st) => {
        throw new Error(`the auth stand-in exited with code ${st.code}:\n${child.tail()}`);
      });
      await Promise.race([waitForHttp(`${authUrl}/health`, 20_000, "the auth stand-in"), exited]);
      exited.catch(() => {});
      return child;
    };

    let simulatorUrl: string | undefined;
    const simulatorSecret = opts.simulatorSecret ??
      `wpp-sim-secret-${crypto.randomUUID().replaceAll("-", "")}`;
    const startSimulator = async () => {
      const child = group.spawn({
        name: "wpp-simulator",
        cmd: Deno.execPath(),
        args: ["run", "-A", SIMULATOR_MAIN, "--port", String(ports.simulator)],
        cwd: ROOT,
        env: { WPP_SECRET: simulatorSecret, NO_COLOR: "1" },
        echo,
      });
      await waitForPort(ports.simulator, 20_000, child);
      return child;
    };
    if (opts.simulator ?? true) simulatorUrl = `http://127.0.0.1:${ports.simulator}`;
    const [restChild, authChild, simChild] = await Promise.all([
      startRest(),
      startAuth(),
      simulatorUrl ? startSimulator() : Promise.resolve(undefined),
    ]);
    sup.watch("postgrest", restChild, startRest);
    sup.watch("auth", authChild, startAuth);
    if (simChild) sup.watch("wpp-simulator", simChild, startSimulator);
    await writePids();
    mark("postgrest_auth_simulator", s);

    // Functions.
    s = performance.now();
    const fileEnv = await readEnvFile(opts.envFile ?? DEFAULT_ENV_FILE).catch((e) => {
      if (e instanceof Deno.errors.NotFound && !opts.envFile) return {};
      throw e;
    });
    const functionEnv: Record<string, string> = {
      ...(simulatorUrl ? { WPP_BASE_URL: simulatorUrl, WPP_SECRET: simulatorSecret } : {}),
      ...fileEnv,
      ...opts.extraFunctionEnv,
      SUPABASE_URL: gatewayUrl,
      SUPABASE_ANON_KEY: keys.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
      SUPABASE_DB_URL: dbUrl,
      JWT_SECRET: keys.jwtSecret,
    };
    if (opts.functionLogDir) await Deno.mkdir(opts.functionLogDir, { recursive: true });
    const specs = [
      ...(opts.skipProjectFunctions ? [] : await discoverFunctions()),
      ...(opts.extraFunctions ?? []),
    ];
    const instances = Math.max(1, opts.functionInstances ?? 1);
    const started = await Promise.all(
      specs.flatMap((spec) =>
        Array.from({ length: instances }, async (_, i) => {
          const instance = instances > 1 ? i + 1 : 0;
          const start = (port: number) =>
            startFunction(group, spec, port, functionEnv, echo, instance, opts.functionLogDir);
          const fn = await startOnFreePort(start);
          // A restart keeps the port: the gateway's upstream list is fixed once started.
          sup.watch(fn.child.name, fn.child, async () => (await start(fn.port)).child);
          return fn;
        })
      ),
    );
    await writePids();
    mark("functions", s);

    // Gateway.
    const gatewayFns: GatewayFunction[] = specs.map((spec) => ({
      name: spec.name,
      verifyJwt: spec.verifyJwt,
      upstreams: started.filter((f) => f.name === spec.name).map((f) => f.url),
    }));
    const ac = new AbortController();
    const server = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: ports.gateway,
        signal: ac.signal,
        onListen: () => {},
      },
      createGatewayHandler({
        postgrestUrl: `http://127.0.0.1:${ports.postgrest}`,
        authUrl,
        keys,
        functions: gatewayFns,
        extraRoutes: opts.extraRoutes?.({ keys, gatewayUrl, simulatorUrl }),
        health: () =>
          checkHealth({
            supervisor: sup,
            sql: healthSql,
            postgrestAdminUrl: `http://127.0.0.1:${ports.postgrestAdmin}`,
            authUrl,
            simulatorUrl,
            functions: started.map((f) => ({ name: f.name, process: f.child.name, port: f.port })),
          }),
      }),
    );
    cleanups.push(async () => {
      ac.abort();
      await server.finished;
    });

    const startupMs = Math.round(performance.now() - t0);
    return {
      url: gatewayUrl,
      restUrl: `${gatewayUrl}/rest/v1`,
      dbUrl,
      superuserUrl,
      migrator,
      postgrestUrl: `http://127.0.0.1:${ports.postgrest}`,
      authUrl,
      simulatorUrl,
      simulatorSecret: simulatorUrl ? simulatorSecret : undefined,
      keys,
      functions: started,
      functionEnv,
      startupMs,
      timings,
      failure,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
