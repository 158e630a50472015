// Shared by the reliability tests: how big to make them, extra wpp-create processes the tests
// own (to kill, or to run with other settings), and the checks every test ends with.
import { join } from "node:path";
import { ROOT } from "../../dev/stack/paths.ts";
import { startFunction } from "../../dev/stack/functions.ts";
import { ProcessGroup } from "../../dev/stack/processes.ts";
import { freePort } from "../../dev/stack/stack.ts";
import type { CallCounts, SessionView } from "../../dev/wpp-simulator/admin-client.ts";
import { sim, sql } from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";

/** `deno task test:reliability` sets this; `deno task test` runs the same tests smaller. */
export const FULL = Deno.env.get("RELIABILITY_FULL") === "1";

export function sized(short: number, full: number): number {
  return FULL ? full : short;
}

/**
 * The shared database pool and keep-alive sockets outlive each test on purpose (the file closes
 * them at its end), so Deno's per-test leak checks would only report those.
 */
export function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeResources: false, sanitizeOps: false });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const SPEC = {
  name: "wpp-create",
  entry: join(ROOT, "supabase/functions/wpp-create/index.ts"),
  verifyJwt: false,
};
let instances = 0;

export interface ExtraFunction {
  /** Base URL: requests go to `${url}/wpp-create`. */
  url: string;
  pid: number;
  stop(): Promise<void>;
  /** SIGKILL, as a crash or an OOM kill would end it: no cleanup of any kind. */
  kill(): Promise<void>;
}

/**
 * One more wpp-create process with the stack's environment plus `overrides`. Its output goes to
 * the stack's function log directory, so the log scans of every test see it too.
 */
export async function startExtraFunction(
  overrides: Record<string, string> = {},
): Promise<ExtraFunction> {
  const group = new ProcessGroup();
  const logDir = Deno.env.get("STACK_FUNCTION_LOG_DIR");
  const running = await startFunction(
    group,
    SPEC,
    await freePort(),
    { ...stack.functionEnv, ...overrides },
    false,
    // Numbered apart from the stack's own instances, so each process has a log file of its own.
    100 + ++instances,
    logDir,
  );
  const child = running.child;
  return {
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

/** Every live wpp-create process on the machine that belongs to this stack. */
export async function functionPids(): Promise<number[]> {
  const ports = new Set(
    [...(stack.functionUrls["wpp-create"] ?? [])].map((u) => new URL(u).port),
  );
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmd = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      if (!cmd.includes("supabase/functions/wpp-create/index.ts")) continue;
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

export type OpDelta = Omit<CallCounts, "routes">;

export function callDelta(before: CallCounts, after: CallCounts): OpDelta {
  const out = {} as Record<string, number>;
  for (const [op, n] of Object.entries(after)) {
    if (op !== "routes") out[op] = (n as number) - (before[op as keyof OpDelta] ?? 0);
  }
  return out as OpDelta;
}

export async function platformSessions(): Promise<SessionView[]> {
  return (await sim.state({ reveal: true })).sessions;
}

export interface StoredPair {
  session: string | null;
  apiKey: string | null;
}

export function storedPair(settings: Record<string, unknown> | undefined): StoredPair {
  const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : null);
  return { session: text(settings?.wppAccountNumber), apiKey: text(settings?.wppApiKey) };
}

interface Row {
  organization_id: string;
  settings: Record<string, unknown>;
  provision_lease_id: string | null;
}

/**
 * What must hold for every organisation once no request is running: at most one primary row,
 * no lease left behind, session and apiKey both stored or both absent, and a stored pair that
 * is a real platform client of that organisation. Returns the problems found, one per line.
 */
export async function inconsistencies(orgIds: string[]): Promise<string[]> {
  const rows = await sql<Row[]>`
    select organization_id, settings, provision_lease_id
      from public.messenger_integrations
     where organization_id = any(${orgIds}::uuid[]) and provider = 'wpp'
       and is_active and is_primary`;
  const byKey = new Map((await platformSessions()).map((s) => [s.apiKey, s]));
  const problems: string[] = [];
  const seen = new Map<string, number>();
  for (const row of rows) {
    const org = row.organization_id;
    seen.set(org, (seen.get(org) ?? 0) + 1);
    if (row.provision_lease_id !== null) problems.push(`${org}: lease left behind`);
    const pair = storedPair(row.settings);
    if ((pair.session === null) !== (pair.apiKey === null)) {
      problems.push(`${org}: half-written settings (${JSON.stringify(pair.session)})`);
      continue;
    }
    if (pair.apiKey === null) continue;
    const platform = byKey.get(pair.apiKey);
    if (!platform) problems.push(`${org}: stored apiKey unknown to the platform`);
    else if (platform.session !== pair.session) problems.push(`${org}: apiKey of another session`);
    else if (platform.organizationId !== org) problems.push(`${org}: session of another org`);
  }
  for (const [org, n] of seen) if (n > 1) problems.push(`${org}: ${n} primary rows`);
  return problems;
}

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

/** A plain-text table for test output. */
export function textTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}
