// /health: each service's real state, probed on every call: a query on PostgreSQL, PostgREST's
// own readiness endpoint, an HTTP answer from the simulator and the auth stand-in, and for every
// function process that it is alive and accepts connections. A process the supervisor is
// restarting is reported as such.
import type postgres from "postgres";
import type { ServiceState, Supervisor } from "./supervisor.ts";

const PROBE_TIMEOUT_MS = 2_000;

export interface ServiceHealth {
  status: "up" | "down" | "restarting" | "failed";
  pid?: number;
  restarts?: number;
  last_exit?: string;
  /** What the probe saw when it is not up. */
  error?: string;
  url?: string;
  ms: number;
}

export interface HealthTargets {
  supervisor: Supervisor;
  sql?: postgres.Sql;
  postgrestAdminUrl: string;
  authUrl: string;
  simulatorUrl?: string;
  /** Supervised process name → the port it serves on. */
  functions: { name: string; process: string; port: number }[];
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} did not answer in ${PROBE_TIMEOUT_MS} ms`)),
        PROBE_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

async function httpOk(url: string): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}

async function accepts(port: number): Promise<void> {
  const conn = await withTimeout(Deno.connect({ hostname: "127.0.0.1", port }), `port ${port}`);
  conn.close();
}

async function probe(
  state: ServiceState | undefined,
  run: () => Promise<void>,
): Promise<ServiceHealth> {
  const t0 = performance.now();
  const base = state
    ? {
      pid: state.pid,
      restarts: state.restarts,
      ...(state.lastExit ? { last_exit: state.lastExit } : {}),
    }
    : {};
  if (state && state.status !== "up") {
    return { status: state.status, ...base, ms: 0 };
  }
  try {
    await run();
    return { status: "up", ...base, ms: Math.round(performance.now() - t0) };
  } catch (e) {
    return {
      status: "down",
      ...base,
      error: (e as Error).message,
      ms: Math.round(performance.now() - t0),
    };
  }
}

export async function checkHealth(t: HealthTargets): Promise<{ ok: boolean; body: unknown }> {
  const sup = t.supervisor;
  const [db, rest, auth, simulator, ...fns] = await Promise.all([
    probe(sup.state("postgres"), async () => {
      if (!t.sql) throw new Error("no connection");
      await withTimeout(t.sql`select 1`, "PostgreSQL");
    }),
    probe(sup.state("postgrest"), () => httpOk(`${t.postgrestAdminUrl}/ready`)),
    probe(sup.state("auth"), () => httpOk(`${t.authUrl}/health`)),
    t.simulatorUrl
      ? probe(sup.state("wpp-simulator"), () => httpOk(`${t.simulatorUrl}/__admin/faults`))
      : Promise.resolve(undefined),
    ...t.functions.map((f) => probe(sup.state(f.process), () => accepts(f.port))),
  ]);
  const functions: Record<string, ServiceHealth> = {};
  t.functions.forEach((f, i) => functions[f.process.replace(/^fn:/, "")] = fns[i]!);
  const services = {
    postgres: db,
    postgrest: rest,
    auth,
    ...(simulator ? { simulator } : {}),
    functions,
  };
  const all = [db, rest, auth, ...(simulator ? [simulator] : []), ...Object.values(functions)];
  const ok = all.every((s) => s.status === "up");
  return { ok, body: { status: ok ? "ok" : "degraded", services } };
}
