// Edge functions: each `supabase/functions/<name>/index.ts` runs as its own Deno process, with the
// env Supabase gives a function, as the edge runtime would run it: on the Deno version that runtime
// is built on, with the function's own deno.json and npm packages from a Deno cache (never the
// repository's node_modules or root deno.json, which a deploy does not upload).
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { ROOT } from "./paths.ts";
import { parse as parseToml } from "smol-toml";
import type { Child, ProcessGroup } from "./processes.ts";

export const FUNCTIONS_DIR = join(ROOT, "supabase/functions");
export const CONFIG_TOML = join(ROOT, "supabase/config.toml");
/**
 * Deno 2.1.4, the version Supabase's edge runtime is built on: its linux-x64 binary package under
 * the alias `deno-edge-linux-x64` (the `deno` wrapper package at a second version makes npm 11
 * write a lock its own `npm ci` refuses).
 */
export const EDGE_DENO = join(ROOT, "node_modules/deno-edge-linux-x64/deno");
/** Sets each function's listening address; see the file's header. */
export const EDGE_SERVE = join(ROOT, "dev/stack/edge-serve.ts");

/**
 * The Deno cache the functions' npm packages live in. It persists (git-ignored) so packages are
 * fetched once, not on every start; `EDGE_DENO_DIR` moves it.
 */
export function edgeDenoDir(): string {
  return Deno.env.get("EDGE_DENO_DIR") || join(ROOT, ".local/deno-edge-cache");
}

/** What Deno 2.1.4 needs in its environment to resolve a function's packages like a deploy. */
export function edgeDenoEnv(denoDir = edgeDenoDir()): Record<string, string> {
  return {
    DENO_DIR: denoDir,
    // Deno 2.1.4 does not trust this machine's CA store by default, so npm fetches fail without it.
    DENO_TLS_CA_STORE: "system,mozilla",
    // The Supabase CLI bundles with this set: a package.json found above the function must not
    // turn its imports into node_modules lookups.
    DENO_NO_PACKAGE_JSON: "1",
    NO_COLOR: "1",
  };
}

/** The function's own deno.json, if it has one. */
function functionConfig(entry: string): { path: string; text: string } | undefined {
  const path = join(dirname(entry), "deno.json");
  try {
    return { path, text: Deno.readTextFileSync(path) };
  } catch {
    return undefined;
  }
}

/**
 * Where the lock file of a function's npm resolution is kept: in the edge cache, never in the
 * function's folder (a deploy would carry it, and the edge runtime would read it). It is named
 * after the function and its deno.json text, so a changed deno.json starts a fresh resolution.
 */
export function edgeLockFile(entry: string, denoDir = edgeDenoDir()): string | undefined {
  const config = functionConfig(entry);
  if (!config) return undefined;
  const hash = createHash("sha256").update(`${entry}\0${config.text}`).digest("hex").slice(0, 32);
  return join(denoDir, "wpp-connect-locks", `${hash}.lock`);
}

/**
 * `--config <folder>/deno.json` when the function has one (Supabase's CLI and edge runtime pick
 * that file up from the function's folder), `--no-config` otherwise; never the root deno.json.
 */
function configArgs(entry: string): string[] {
  const config = functionConfig(entry);
  return config ? ["--config", config.path] : ["--no-config"];
}

/**
 * The config flags, and the lock file once `precacheFunction` wrote it: it spares each process
 * re-reading the npm registry metadata to resolve its packages (about a third of its start-up).
 */
export function edgeConfigArgs(entry: string, denoDir = edgeDenoDir()): string[] {
  const lock = edgeLockFile(entry, denoDir);
  const locked = lock !== undefined && (() => {
    try {
      return Deno.statSync(lock).isFile;
    } catch {
      return false;
    }
  })();
  return [...configArgs(entry), locked ? `--lock=${lock}` : "--no-lock"];
}

export interface FunctionSpec {
  name: string;
  entry: string;
  verifyJwt: boolean;
}

export interface RunningFunction extends FunctionSpec {
  port: number;
  url: string;
  child: Child;
  startedInMs: number;
}

/** `verify_jwt` per function as supabase/config.toml says (Supabase's default is true). */
export async function readVerifyJwt(configPath = CONFIG_TOML): Promise<Map<string, boolean>> {
  const map = new Map<string, boolean>();
  let text: string;
  try {
    text = await Deno.readTextFile(configPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return map;
    throw e;
  }
  const config = parseToml(text) as { functions?: Record<string, { verify_jwt?: boolean }> };
  for (const [name, fn] of Object.entries(config.functions ?? {})) {
    map.set(name, fn.verify_jwt ?? true);
  }
  return map;
}

export async function discoverFunctions(dir = FUNCTIONS_DIR): Promise<FunctionSpec[]> {
  const verify = await readVerifyJwt();
  const specs: FunctionSpec[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isDirectory || e.name.startsWith("_") || e.name.startsWith(".")) continue;
    const entry = join(dir, e.name, "index.ts");
    try {
      await Deno.stat(entry);
    } catch {
      continue;
    }
    specs.push({ name: e.name, entry, verifyJwt: verify.get(e.name) ?? true });
  }
  return specs.sort((a, b) => a.name.localeCompare(b.name));
}

/** Parses a dotenv file (KEY=value, # comments, optional quotes). */
export async function readEnvFile(path: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const text = await Deno.readTextFile(path);
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 1) continue;
    let value = line.slice(eq + 1).trim();
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    env[line.slice(0, eq).trim().replace(/^export\s+/, "")] = value;
  }
  return env;
}

export async function waitForPort(port: number, timeoutMs: number, child: Child): Promise<void> {
  const until = Date.now() + timeoutMs;
  let exited = false;
  child.exited.then(() => exited = true);
  while (Date.now() < until) {
    if (exited) throw new Error(`function ${child.name} exited during start:\n${child.tail()}`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(
    `function ${child.name} did not listen on ${port} in ${timeoutMs} ms:\n${child.tail()}`,
  );
}

export function spawnFunction(
  group: ProcessGroup,
  spec: FunctionSpec,
  port: number,
  env: Record<string, string>,
  echo: boolean,
  instance = 0,
  logDir?: string,
): Child {
  const name = instance ? `fn:${spec.name}#${instance}` : `fn:${spec.name}`;
  return group.spawn({
    logFile: logDir ? join(logDir, `${spec.name}${instance ? `-${instance}` : ""}.log`) : undefined,
    name,
    cmd: EDGE_DENO,
    args: [
      "run",
      ...edgeConfigArgs(spec.entry),
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--no-prompt",
      EDGE_SERVE,
      spec.entry,
    ],
    cwd: ROOT,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      ...edgeDenoEnv(),
      ...env,
      DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
    },
    echo,
  });
}

const precached = new Map<string, Promise<void>>();
let precacheQueue: Promise<unknown> = Promise.resolve();

/**
 * Fetches a function's npm packages into the edge Deno cache and writes its lock file there,
 * before its processes start, once per function and cache (a lock file already there means done).
 * One at a time: processes started side by side on a cold cache would all download the same
 * packages into it at once.
 */
export function precacheFunction(spec: FunctionSpec): Promise<void> {
  const denoDir = edgeDenoDir();
  const key = `${denoDir}\0${spec.entry}`;
  let done = precached.get(key);
  if (!done) {
    done = precacheQueue.then(async () => {
      const lock = edgeLockFile(spec.entry, denoDir);
      if (lock && await Deno.stat(lock).then(() => true, () => false)) return;
      // Written aside and renamed when complete: a concurrent start never reads half a lock file.
      const partial = lock && `${lock}.${Deno.pid}.partial`;
      if (lock) await Deno.mkdir(dirname(lock), { recursive: true });
      const out = await new Deno.Command(EDGE_DENO, {
        args: [
          "cache",
          ...configArgs(spec.entry),
          partial ? `--lock=${partial}` : "--no-lock",
          spec.entry,
        ],
        cwd: ROOT,
        env: edgeDenoEnv(denoDir),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success) {
        if (partial) await Deno.remove(partial).catch(() => {});
        throw new Error(
          `function ${spec.name}: \`deno cache\` (Deno 2.1.4, ${denoDir}) failed:\n` +
            new TextDecoder().decode(out.stderr).trim(),
        );
      }
      if (lock && partial) await Deno.rename(partial, lock);
    });
    // A failure is reported to every caller, and a later start tries again.
    done.catch(() => precached.delete(key));
    precacheQueue = done.catch(() => {});
    precached.set(key, done);
  }
  return done;
}

export async function startFunction(
  group: ProcessGroup,
  spec: FunctionSpec,
  port: number,
  env: Record<string, string>,
  echo: boolean,
  instance = 0,
  logDir?: string,
): Promise<RunningFunction> {
  await precacheFunction(spec);
  const t0 = performance.now();
  const child = spawnFunction(group, spec, port, env, echo, instance, logDir);
  await waitForPort(port, 30_000, child);
  return {
    ...spec,
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    startedInMs: performance.now() - t0,
  };
}
