// Edge functions: each `supabase/functions/<name>/index.ts` runs as its own Deno process, with the
// env Supabase gives a function, as the edge runtime would run it.
import { join } from "node:path";
import { ROOT } from "./paths.ts";
import { parse as parseToml } from "smol-toml";
import type { Child, ProcessGroup } from "./processes.ts";

export const FUNCTIONS_DIR = join(ROOT, "supabase/functions");
export const CONFIG_TOML = join(ROOT, "supabase/config.toml");

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
    cmd: Deno.execPath(),
    args: ["run", "--allow-net", "--allow-env", "--allow-read", "--no-prompt", spec.entry],
    cwd: ROOT,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
      NO_COLOR: "1",
      ...env,
      DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
    },
    echo,
  });
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
