// Shared by the reliability tests: how big to make them, function processes and platform
// simulators the tests own (to fault one without touching another, to kill, to run with other
// settings), a gateway in front of them that the CRM helper can be pointed at, and the checks
// every test ends with.
import { join } from "node:path";
import { ROOT } from "../../dev/stack/paths.ts";
import { startFunction } from "../../dev/stack/functions.ts";
import { ProcessGroup } from "../../dev/stack/processes.ts";
import { freePort } from "../../dev/stack/stack.ts";
import { type RunningSimulator, startSimulator } from "../../dev/wpp-simulator/server.ts";
import {
  type CallCounts,
  type SessionView,
  SimulatorAdmin,
} from "../../dev/wpp-simulator/admin-client.ts";
import { sim, sql } from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import { type HelperResult } from "../_support/crm-helper.ts";
import { waitFor } from "../_support/wait.ts";

/** `deno task test:reliability` sets this; `deno task test` runs the same tests smaller. */
export const FULL = Deno.env.get("RELIABILITY_FULL") === "1";

export function sized<T>(short: T, full: T): T {
  return FULL ? full : short;
}

/**
 * The shared database pool, keep-alive sockets and the processes a file starts outlive each test
 * on purpose (the file's last test closes them), so Deno's per-test leak checks would only
 * report those.
 */
export function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeResources: false, sanitizeOps: false });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export { waitFor };

// ---------------------------------------------------------------------------------------------
// Function processes of the tests' own.

export type FunctionName = "wpp-create" | "wpp-qr" | "wpp-status" | "wpp-disconnect";

let instances = 0;

export interface OwnFunction {
  name: FunctionName;
  /** Base URL: requests go to `${url}/${name}`. */
  url: string;
  pid: number;
  stop(): Promise<void>;
  /** SIGKILL, as a crash or an OOM kill would end it: no cleanup of any kind. */
  kill(): Promise<void>;
}

/**
 * One more process of a function with the stack's environment plus `overrides`. Its output goes
 * to the stack's function log directory, so every log scan sees it too.
 */
export async function startOwnFunction(
  name: FunctionName,
  overrides: Record<string, string> = {},
): Promise<OwnFunction> {
  const group = new ProcessGroup();
  const running = await startFunction(
    group,
    { name, entry: join(ROOT, `supabase/functions/${name}/index.ts`), verifyJwt: false },
    freePort(),
    { ...stack.functionEnv, ...overrides },
    false,
    // Numbered apart from the stack's own instances, so each process has a log file of its own.
    100 + ++instances,
    Deno.env.get("STACK_FUNCTION_LOG_DIR"),
  );
  const child = running.child;
  return {
    name,
    url: running.url,
    pid: child.pid,
    stop: () => group.stopChild(child),
    kill: async () => {
      child.process.kill("SIGKILL");
      await child.exited;
      await group.stopChild(child);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A gateway in the test process, so the CRM helper (which calls `<base>/functions/v1/<fn>`) can
// reach function processes the tests started. Each route is a base URL of its own; a function
// with several upstreams gets them in turn, as the stack's gateway does. An upstream that gives
// no answer is a 502, as from the stack's gateway.

export class TestGateway {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #routes = new Map<string, { upstreams: Map<string, string[]>; next: number }>();
  readonly url: string;

  constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => this.#handle(req),
    );
    this.url = `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** A base URL for the CRM helper whose functions are the given upstream base URLs. */
  route(upstreams: Partial<Record<string, string | string[]>>): string {
    const id = crypto.randomUUID().slice(0, 8);
    const map = new Map<string, string[]>();
    for (const [fn, u] of Object.entries(upstreams)) {
      if (u) map.set(fn, Array.isArray(u) ? u : [u]);
    }
    this.#routes.set(id, { upstreams: map, next: 0 });
    return `${this.url}/${id}`;
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const m = url.pathname.match(/^\/([^/]+)\/functions\/v1\/([^/?]+)(.*)$/);
    const route = m ? this.#routes.get(m[1]) : undefined;
    const list = route && m ? route.upstreams.get(m[2]) : undefined;
    if (!route || !m || !list?.length) {
      return Response.json({ message: "no Route matched with those values" }, { status: 404 });
    }
    const upstream = list[route.next++ % list.length];
    const headers = new Headers(req.headers);
    headers.delete("host");
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    try {
      const res = await fetch(`${upstream}/${m[2]}${m[3]}${url.search}`, {
        method: req.method,
        headers,
        body: hasBody ? await req.arrayBuffer() : undefined,
      });
      const out = new Headers(res.headers);
      // The body is re-sent whole and decoded: its framing headers belong to the first hop.
      for (const h of ["content-length", "transfer-encoding", "content-encoding", "connection"]) {
        out.delete(h);
      }
      return new Response(await res.arrayBuffer(), { status: res.status, headers: out });
    } catch (e) {
      return Response.json(
        { message: "An invalid response was received from the upstream server" },
        { status: 502, headers: { "x-gateway-error": (e as Error).name } },
      );
    }
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}

// ---------------------------------------------------------------------------------------------
// A lane: a platform simulator of its own and function processes talking only to it, so a fault
// set on it hits nobody else's requests. Its sessions' events go to the stack's wpp-webhook.

export interface Lane {
  id: number;
  sim: RunningSimulator;
  admin: SimulatorAdmin;
  fns: Partial<Record<FunctionName, OwnFunction>>;
  /** Base URL for the CRM helper. */
  base: string;
}

export async function startLane(
  id: number,
  gateway: TestGateway,
  fns: FunctionName[],
  env: Record<string, string>,
): Promise<Lane> {
  const laneSim = await startSimulator({ port: 0, log: false });
  const started: Partial<Record<FunctionName, OwnFunction>> = {};
  try {
    for (const fn of fns) {
      started[fn] = await startOwnFunction(fn, {
        ...env,
        WPP_BASE_URL: laneSim.url,
        WPP_SECRET: laneSim.secret,
      });
    }
  } catch (e) {
    await Promise.all(Object.values(started).map((f) => f.stop()));
    await laneSim.close();
    throw e;
  }
  return {
    id,
    sim: laneSim,
    admin: new SimulatorAdmin(laneSim.url),
    fns: started,
    base: gateway.route(Object.fromEntries(Object.values(started).map((f) => [f.name, f.url]))),
  };
}

export async function stopLane(lane: Lane): Promise<void> {
  await Promise.all(Object.values(lane.fns).map((f) => f.stop().catch(() => {})));
  await lane.sim.close();
}

// ---------------------------------------------------------------------------------------------
// Platform call counts.

export type OpDelta = Omit<CallCounts, "routes">;

export function callDelta(before: CallCounts, after: CallCounts): OpDelta {
  const out = {} as Record<string, number>;
  for (const [op, n] of Object.entries(after)) {
    if (op !== "routes") out[op] = (n as number) - (before[op as keyof OpDelta] ?? 0);
  }
  return out as OpDelta;
}

/** The platform clients of an organisation (its own and its add_new sub-organisations). */
export function clientsOf(sessions: SessionView[], orgId: string): SessionView[] {
  return sessions.filter((s) =>
    s.organizationId === orgId || s.organizationId.startsWith(`${orgId}__wpp__`)
  );
}

export async function platformSessions(admin: SimulatorAdmin = sim): Promise<SessionView[]> {
  return (await admin.state({ reveal: true })).sessions;
}

// ---------------------------------------------------------------------------------------------
// The end state every test checks.

export interface StoredPair {
  session: string | null;
  apiKey: string | null;
}

export function storedPair(settings: Record<string, unknown> | undefined): StoredPair {
  const text = (v: unknown) => (typeof v === "string" && v.trim() !== "" ? v : null);
  return { session: text(settings?.wppAccountNumber), apiKey: text(settings?.wppApiKey) };
}

interface Row {
  id: string;
  organization_id: string;
  settings: Record<string, unknown>;
  is_active: boolean;
  is_primary: boolean;
  state_session: string | null;
  lease_held: boolean | null;
  refresh_held: boolean | null;
  placeholder: boolean;
}

/**
 * What must hold for every organisation once no request is running: at most one primary
 * WhatsApp row, no provisioning or refresh lease left behind, session and apiKey both stored or
 * both absent, every stored pair a real platform client of that organisation, described by the
 * project's state row, and no session stored twice. `sessions` are the platform clients of every
 * simulator involved. Returns the problems found, one per line.
 */
export async function inconsistencies(
  orgIds: string[],
  sessions?: SessionView[],
  opts: { leasesMayBeHeld?: boolean } = {},
): Promise<string[]> {
  const rows = await sql<Row[]>`
    select i.id, i.organization_id, i.settings, i.is_active, i.is_primary,
           s.session as state_session,
           s.lease_id is not null and s.lease_expires_at > now() as lease_held,
           s.refresh_lease_id is not null and s.refresh_lease_expires_at > now() as refresh_held,
           exists (select 1 from public.wpp_session_placeholders p
                    where lower(p.value) = lower(btrim(i.settings ->> 'wppAccountNumber')))
             as placeholder
      from public.messenger_integrations i
      left join public.wpp_integration_state s on s.integration_id = i.id
     where i.organization_id = any(${orgIds}::uuid[]) and i.provider = 'wpp'`;
  const platform = sessions ?? await platformSessions();
  const byKey = new Map(platform.map((s) => [s.apiKey, s]));
  const problems: string[] = [];
  const primaries = new Map<string, number>();
  const stored = new Map<string, string>();
  for (const row of rows) {
    const org = row.organization_id;
    const at = `${org.slice(0, 8)}/${row.id.slice(0, 8)}`;
    if (row.is_primary) primaries.set(org, (primaries.get(org) ?? 0) + 1);
    if (!opts.leasesMayBeHeld) {
      if (row.lease_held) problems.push(`${at}: provisioning lease left behind`);
      if (row.refresh_held) problems.push(`${at}: refresh lease left behind`);
    }
    const pair = storedPair(row.settings);
    if ((pair.session === null) !== (pair.apiKey === null)) {
      problems.push(`${at}: half-written settings (${JSON.stringify(pair.session)})`);
      continue;
    }
    if (pair.apiKey === null || row.placeholder) continue;
    const client = byKey.get(pair.apiKey);
    if (!client) problems.push(`${at}: stored apiKey unknown to the platform`);
    else if (client.session !== pair.session) problems.push(`${at}: apiKey of another session`);
    else if (clientsOf([client], org).length === 0) problems.push(`${at}: session of another org`);
    if (row.state_session !== null && row.state_session !== pair.session) {
      problems.push(`${at}: state describes ${row.state_session}, row holds ${pair.session}`);
    }
    const key = `${pair.apiKey}`;
    if (stored.has(key)) problems.push(`${at}: session also stored in ${stored.get(key)}`);
    stored.set(key, at);
  }
  for (const [org, n] of primaries) if (n > 1) problems.push(`${org}: ${n} primary rows`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Small tools.

/** Runs `task` over `items` with at most `limit` in flight. */
export async function pool<T, R>(
  items: T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function countBy<T>(items: T[], key: (item: T) => string | number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}

/** Nearest-rank percentile; NaN for no values. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function seconds(ms: number): string {
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)}s` : "-";
}

/** A plain-text table for test output. */
export function textTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** Problems with the helper's attempts that no answer may have, whatever the fault. */
export function attemptProblems(r: HelperResult, deadlineMs: number): string[] {
  const out: string[] = [];
  r.attempts.forEach((a, i) => {
    const n = `attempt ${i + 1}`;
    if (a.ms > deadlineMs + 1_000) {
      out.push(`${n} took ${a.ms} ms, past the deadline (${deadlineMs} ms) + 1 s`);
    }
    if (a.status === 0) out.push(`${n}: no answer`);
    if (a.status === 500) out.push(`${n}: 500 ${JSON.stringify(a.body)}`);
    if (a.status >= 400) {
      if (typeof a.body?.code !== "string" || typeof a.body?.error !== "string") {
        out.push(`${n}: error ${a.status} without code and message`);
      }
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// The stack's own function processes.

/** Every live process of the stack's `fn` instances on this machine. */
export async function functionPids(fn: FunctionName = "wpp-create"): Promise<number[]> {
  const ports = new Set((stack.functionUrls[fn] ?? []).map((u) => new URL(u).port));
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmd = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      if (!cmd.includes(`supabase/functions/${fn}/index.ts`)) continue;
      const env = await Deno.readTextFile(`/proc/${entry.name}/environ`);
      const port = /DENO_SERVE_ADDRESS=tcp:127\.0\.0\.1:(\d+)/.exec(env)?.[1];
      if (port && ports.has(port)) pids.push(Number(entry.name));
    } catch { /* exited meanwhile, or not ours to read */ }
  }
  return pids.sort((a, b) => a - b);
}

export async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}
