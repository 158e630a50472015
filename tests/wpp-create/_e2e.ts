// What the end-to-end tests of wpp-create, wpp-qr and wpp-disconnect share: platform call
// counts, this project's stored state, rows written the way the CRM writes them, and a book of
// every secret seen during a test, to prove none reached an answer or a function's log.
//
// Only the CRM's own tables (organizations, profiles, user_roles, messenger_integrations) and this
// project's tables are touched by SQL: the same files run against a database shaped like the
// CRM's.
import { callFunction, type CallResult, functionLogLines, sim, sql } from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import type { CallCounts } from "../../dev/wpp-simulator/admin-client.ts";
import { waitFor } from "../_support/wait.ts";

/**
 * The shared database connection and fetch's keep-alive sockets outlive each test by design, so
 * the per-test leak checks are off.
 */
export function test(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeResources: false, sanitizeOps: false });
}

export const SESSION_RE = /^\d{13}$/;

export type OpCounts = Omit<CallCounts, "routes">;
const OPS = ["create", "token", "start", "status", "qr", "webhook", "stop", "unknown"] as const;

export function diffCalls(before: CallCounts, after: CallCounts): OpCounts {
  const delta = {} as OpCounts;
  for (const op of OPS) delta[op] = after[op] - before[op];
  return delta;
}

/** How many platform calls of each kind were made while `fn` ran. */
export async function platformCallsDuring<T>(fn: () => Promise<T>): Promise<[T, OpCounts]> {
  const before = await sim.calls();
  const result = await fn();
  return [result, diffCalls(before, await sim.calls())];
}

/** Only the operations a test cares about, for readable deepEqual failures. */
export function pick(counts: OpCounts, ...ops: (keyof OpCounts)[]): Partial<OpCounts> {
  return Object.fromEntries(ops.map((op) => [op, counts[op]]));
}

export { waitFor };

export interface StateRow {
  integration_id: string;
  session: string | null;
  session_created_at: Date | null;
  replaced_sessions: string[];
  connection: string;
  checked_at: Date | null;
  qr: string | null;
  lease_id: string | null;
  refresh_lease_id: string | null;
  cooldown_until: Date | null;
  ever_connected_at: Date | null;
  disconnected_at: Date | null;
  stop_pending: boolean;
  webhook_secret: string;
}

export async function stateOf(integrationId: string): Promise<StateRow> {
  const [row] = await sql<StateRow[]>`
    select integration_id, session, session_created_at, replaced_sessions, connection,
           checked_at, qr, lease_id, refresh_lease_id, cooldown_until, ever_connected_at,
           disconnected_at, stop_pending, webhook_secret
      from public.wpp_integration_state where integration_id = ${integrationId}`;
  if (!row) throw new Error(`no wpp_integration_state row for ${integrationId}`);
  return row;
}

/**
 * Waits until `count` of the platform's events about `session` (a QR per start, a link per scan,
 * an offline per stop) reached wpp-webhook: a late one would refresh state a test is about to make
 * stale.
 */
export async function eventsDelivered(session: string, count: number): Promise<void> {
  await waitFor(`${count} event(s) of ${session} delivered`, async () => {
    const done = (await sim.deliveries({ session })).filter((d) => d.attempt > 0);
    return done.length >= count ? true : undefined;
  });
}

/** What was last heard about the organisation's sessions is old: the next request asks. */
export async function makeStale(orgId: string): Promise<void> {
  await sql`update public.wpp_integration_state
               set checked_at = now() - interval '1 hour'
             where organization_id = ${orgId}`;
}

/** The sessions of the organisation were created long ago (past the repeat window and grace). */
export async function ageSessions(orgId: string, interval = "2 hours"): Promise<void> {
  await sql`update public.wpp_integration_state
               set session_created_at = now() - ${interval}::interval
             where organization_id = ${orgId}`;
}

/** The phone scans the session's QR, and the platform's event reaches wpp-webhook. */
export async function scanAndWait(session: string, integrationId: string): Promise<void> {
  await sim.scan(session);
  await waitFor(`${session} connected`, async () => {
    const s = await stateOf(integrationId);
    return s.connection === "connected" ? true : undefined;
  });
}

/**
 * A wpp row written the way the CRM writes one (every column given: the CRM's table may have no
 * defaults), without a state row of this project.
 */
export async function insertWppRow(
  orgId: string,
  opts: { settings: Record<string, unknown>; isPrimary?: boolean; isActive?: boolean },
): Promise<string> {
  const id = crypto.randomUUID();
  await sql`
    insert into public.messenger_integrations
      (id, organization_id, name, messenger_type, provider, is_active, is_primary, webhook_key,
       settings, created_at, updated_at)
    values (${id}, ${orgId}, 'WhatsApp', 'whatsapp', 'wpp', ${opts.isActive ?? true},
            ${opts.isPrimary ?? false}, ${crypto.randomUUID().replaceAll("-", "")},
            ${sql.json(opts.settings as Parameters<typeof sql.json>[0])}, now(), now())`;
  return id;
}

/** The one log line a request wrote (found by its request_id), once the function flushed it. */
export async function logLineOf(fn: string, requestId: string): Promise<Record<string, unknown>> {
  return await waitFor(`${fn} log line of ${requestId}`, async () => {
    const lines = (await functionLogLines(fn))
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.request_id === requestId && l.fn === fn);
    if (lines.length > 1) throw new Error(`${lines.length} log lines for one request`);
    return lines[0];
  });
}

/** A random secret-looking value, long enough to be found verbatim if it leaked. */
export function fakeKey(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

/** A call through the gateway whose answer is recorded in the book. */
export async function call(
  book: SecretBook,
  token: string,
  opts: Parameters<typeof callFunction>[1] = {},
): Promise<CallResult> {
  const res = await callFunction(token, opts);
  book.text(res.text);
  for (const [k, v] of res.headers) book.text(`${k}: ${v}`);
  return res;
}

/**
 * Every secret known during a test (platform secret, project keys, apiKeys, platform tokens,
 * webhook secrets, users' access tokens) and every answer seen, so a test can prove at its end
 * that none of the secrets appeared in any answer or any function's log line. `harvest()` reads
 * what the simulator and the database hold now; call it before anything that forgets (a
 * simulator reset) and once at the end.
 */
export class SecretBook {
  readonly secrets = new Set<string>();
  readonly texts: string[] = [];

  constructor() {
    for (
      const v of [
        stack.serviceRoleKey,
        stack.jwtSecret,
        stack.simulatorSecret,
        stack.functionEnv.WPP_SECRET,
        stack.functionEnv.SUPABASE_SERVICE_ROLE_KEY,
        stack.functionEnv.JWT_SECRET,
      ]
    ) this.secret(v);
  }

  secret(value: unknown): void {
    // Short values (a placeholder like client_system) would match innocent text.
    if (typeof value === "string" && value.length >= 16) this.secrets.add(value);
  }

  text(value: string): void {
    this.texts.push(value);
  }

  async harvest(): Promise<void> {
    const state = await sim.state({ reveal: true });
    for (const s of state.sessions) {
      this.secret(s.apiKey);
      if (s.webhookUrl) this.secret(decodeURIComponent(s.webhookUrl.split("/").pop() ?? ""));
    }
    for (const t of state.tokens) this.secret(t.token);
    const rows = await sql<{ settings: Record<string, unknown>; webhook_secret: string | null }[]>`
      select i.settings, s.webhook_secret
        from public.messenger_integrations i
        left join public.wpp_integration_state s on s.integration_id = i.id
       where i.provider = 'wpp'`;
    for (const r of rows) {
      this.secret(r.webhook_secret);
      this.secret(r.settings.wppApiKey);
      this.secret(r.settings.wppJwtToken);
    }
  }

  /** Harvests once more, then fails naming the first secret found in an answer or a log line. */
  async assertNoneLeaked(fns = ["wpp-create", "wpp-qr", "wpp-disconnect", "wpp-status"]) {
    await this.harvest();
    const logs: string[] = [];
    for (const fn of fns) logs.push(...await functionLogLines(fn));
    if (this.secrets.size < 8 || this.texts.length === 0 || logs.length === 0) {
      throw new Error(
        `the scan would prove nothing: ${this.secrets.size} secrets, ${this.texts.length} answers, ${logs.length} log lines`,
      );
    }
    // Tokens nobody told the book about (another test's user, a platform token) look like JWTs.
    const jwt = logs.find((l) => /eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(l));
    if (jwt) throw new Error(`a JWT leaked into a log line: ${jwt}`);
    for (const secret of this.secrets) {
      for (const [where, list] of [["an answer", this.texts], ["a log line", logs]] as const) {
        const hit = list.find((t) => t.includes(secret));
        if (hit) {
          throw new Error(`a secret (${secret.slice(0, 4)}…) leaked into ${where}: ${hit}`);
        }
      }
    }
    return { secrets: this.secrets.size, answers: this.texts.length, logLines: logs.length };
  }
}
