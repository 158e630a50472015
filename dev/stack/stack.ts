// The local stack: PostgreSQL, PostgREST, the platform simulator, one Deno process per edge
// function, and the gateway in front, all started and stopped together.
import { join } from "node:path";
import { ROOT } from "./paths.ts";
import {
  buildProjectKeys,
  DEV_JWT_SECRET,
  generateEs256Jwk,
  type ProjectKeys,
  type SigningMode,
} from "./keys.ts";
import { type Child, isAlive, ProcessGroup } from "./processes.ts";
import { startPostgres } from "./postgres.ts";
import { createDatabase, dropDatabase, migrate } from "./migrate.ts";
import { startPostgrest } from "./postgrest.ts";
import {
  discoverFunctions,
  type FunctionSpec,
  readEnvFile,
  type RunningFunction,
  startFunction,
  waitForPort,
} from "./functions.ts";
import { createGatewayHandler, type GatewayFunction } from "./gateway.ts";
import type * as jose from "jose";

const SIMULATOR_MAIN = join(ROOT, "dev/wpp-simulator/main.ts");
export const DEFAULT_ENV_FILE = join(ROOT, "supabase/functions/.env");

export interface StackPorts {
  gateway: number;
  db: number;
  postgrest: number;
  postgrestAdmin: number;
  simulator: number;
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
  simulator?: boolean;
  simulatorSecret?: string;
  functionInstances?: number;
  /** Leave out supabase/functions (stack-only tests). */
  skipProjectFunctions?: boolean;
  extraFunctions?: FunctionSpec[];
  extraMigrationDirs?: string[];
  /** Extra gateway routes (the demo page), built once the keys and URLs are known. */
  extraRoutes?: (
    ctx: RouteContext,
  ) => Record<string, (req: Request) => Response | Promise<Response>>;
  /** Where each function process's output is also written, one file per process. */
  functionLogDir?: string;
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
  dbUrl: string;
  postgrestUrl: string;
  simulatorUrl?: string;
  simulatorSecret?: string;
  keys: ProjectKeys;
  functions: RunningFunction[];
  functionEnv: Record<string, string>;
  startupMs: number;
  timings: Record<string, number>;
  stop(): Promise<void>;
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
    );
  await writePids();

  const ports: StackPorts = {
    gateway: portOrFree(opts.ports.gateway),
    db: portOrFree(opts.ports.db),
    postgrest: portOrFree(opts.ports.postgrest),
    postgrestAdmin: portOrFree(opts.ports.postgrestAdmin),
    simulator: portOrFree(opts.ports.simulator),
  };
  assertPortFree(ports.gateway, "gateway", "API_PORT");
  assertPortFree(ports.postgrest, "PostgREST", "POSTGREST_PORT");

  const password = opts.dbPassword ?? "postgres";
  const cleanups: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const c of cleanups.reverse()) await c().catch((e) => log(`stop: ${e.message}`));
    await group.stopAll();
    await Deno.remove(pidPath).catch(() => {});
  };

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
    let dbUrl: string;
    let fresh: boolean;
    if (opts.externalDbUrl) {
      if (opts.ephemeral) {
        const name = `wpp_connect_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
        dbUrl = await createDatabase(opts.externalDbUrl, name);
        cleanups.push(() => dropDatabase(opts.externalDbUrl!, name));
        fresh = true;
      } else {
        dbUrl = opts.externalDbUrl;
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
      await writePids();
      dbUrl = pg.superuserUrl;
      fresh = pg.fresh;
    }
    mark("postgres", s);
    s = performance.now();
    const { applied } = await migrate({
      superuserUrl: dbUrl,
      authenticatorPassword: password,
      seed: fresh,
      extraMigrationDirs: opts.extraMigrationDirs,
      log,
    });
    mark("migrations", s);
    log(`database ready (${applied.length} migration(s) applied${fresh ? ", seeded" : ""})`);

    // PostgREST and the simulator start side by side.
    s = performance.now();
    const authUrl = new URL(dbUrl);
    authUrl.username = "authenticator";
    authUrl.password = encodeURIComponent(password);
    let simulatorUrl: string | undefined;
    const simulatorSecret = opts.simulatorSecret ??
      `wpp-sim-secret-${crypto.randomUUID().replaceAll("-", "")}`;
    let simChild: Child | undefined;
    if (opts.simulator ?? true) {
      simChild = group.spawn({
        name: "wpp-simulator",
        cmd: Deno.execPath(),
        args: ["run", "-A", SIMULATOR_MAIN, "--port", String(ports.simulator)],
        cwd: ROOT,
        env: { WPP_SECRET: simulatorSecret, NO_COLOR: "1" },
        echo,
      });
      simulatorUrl = `http://127.0.0.1:${ports.simulator}`;
    }
    const [postgrest] = await Promise.all([
      startPostgrest(group, {
        dbUrl: authUrl.toString(),
        port: ports.postgrest,
        adminPort: ports.postgrestAdmin,
        jwks: keys.postgrestJwks,
        echo,
      }),
      simChild ? waitForPort(ports.simulator, 20_000, simChild) : Promise.resolve(),
    ]);
    await writePids();
    mark("postgrest_and_simulator", s);

    // Functions.
    s = performance.now();
    const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;
    const fileEnv = await readEnvFile(opts.envFile ?? DEFAULT_ENV_FILE).catch((e) => {
      if (e instanceof Deno.errors.NotFound && !opts.envFile) return {};
      throw e;
    });
    const functionEnv: Record<string, string> = {
      ...(simulatorUrl ? { WPP_BASE_URL: simulatorUrl, WPP_SECRET: simulatorSecret } : {}),
      ...fileEnv,
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
        Array.from({ length: instances }, async (_, i) =>
          startFunction(
            group,
            spec,
            await freePort(),
            functionEnv,
            echo,
            instances > 1 ? i + 1 : 0,
            opts.functionLogDir,
          ))
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
        port: ports.gateway,
        postgrestUrl: postgrest.url,
        keys,
        functions: gatewayFns,
        extraRoutes: opts.extraRoutes?.({ keys, gatewayUrl, simulatorUrl }),
        health: () => ({
          status: "ok",
          services: {
            rest: postgrest.url,
            functions: gatewayFns.map((f) => f.name),
            simulator: simulatorUrl ?? null,
          },
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
      postgrestUrl: postgrest.url,
      simulatorUrl,
      simulatorSecret: simulatorUrl ? simulatorSecret : undefined,
      keys,
      functions: started,
      functionEnv,
      startupMs,
      timings,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
