// Each test builds its own organisations on the shared database (the seeded demo rows are left
// alone). Setup and before/after looks go straight to PostgreSQL as the superuser; what is being
// tested goes through the gateway and PostgREST with supabase-js, as the CRM's browser code and
// the edge functions do. Users get their roles the CRM's way: `user_roles`, several per user.
import assert from "node:assert/strict";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { db, mintUserToken, stack, userClient } from "../_support/stack.ts";
import type { Database } from "../../supabase/functions/_shared/db/database.types.ts";

export type Sql = ReturnType<typeof db>;
// deno-lint-ignore no-explicit-any
export type Answer = Record<string, any>;

export function openDb(): Sql {
  return db();
}

/** postgres.js serialises a jsonb parameter itself: the object goes in as it is. */
export function json(sql: Sql, value: unknown) {
  return sql.json(value as Parameters<Sql["json"]>[0]);
}

export const service: SupabaseClient<Database> = createClient<Database>(
  stack.url,
  stack.serviceRoleKey,
  { auth: { persistSession: false, autoRefreshToken: false } },
);

type Functions = Database["public"]["Functions"];
export type RpcName = keyof Functions;

export class RpcError extends Error {
  constructor(readonly fn: string, readonly code: string | undefined, message: string) {
    super(`${fn}: ${code} ${message}`);
  }
}

/** A service_role RPC through the gateway; throws RpcError with PostgreSQL's SQLSTATE. */
export async function rpc<F extends RpcName>(fn: F, args: Functions[F]["Args"]): Promise<Answer> {
  const { data, error } = await service.rpc(fn, args as never);
  if (error) throw new RpcError(fn, error.code, error.message);
  return data as Answer;
}

/** The error an RPC is expected to raise. */
export async function rpcFails<F extends RpcName>(
  fn: F,
  args: Functions[F]["Args"],
): Promise<RpcError> {
  try {
    await rpc(fn, args);
  } catch (e) {
    if (e instanceof RpcError) return e;
    throw e;
  }
  throw new assert.AssertionError({ message: `${fn} was expected to fail` });
}

export interface Tenant {
  orgId: string;
  /** CRM role `owner`. */
  owner: string;
  /** CRM roles `admin` and `teacher`. */
  admin: string;
  /** CRM role `manager`: a member to this project. */
  member: string;
  /** CRM roles `teacher` and `accountant`: a member. */
  teacher: string;
  /** CRM roles `admin` and `owner`: the owner wins. */
  ownerAdmin: string;
}

export const MEMBER_KINDS = ["owner", "admin", "member", "teacher", "ownerAdmin"] as const;

async function insertUser(sql: Sql, id: string): Promise<void> {
  await sql`insert into auth.users (id, email) values (${id}, ${`${id}@test.local`})`;
}

export async function createTenant(sql: Sql, label: string): Promise<Tenant> {
  const t: Tenant = {
    orgId: crypto.randomUUID(),
    owner: crypto.randomUUID(),
    admin: crypto.randomUUID(),
    member: crypto.randomUUID(),
    teacher: crypto.randomUUID(),
    ownerAdmin: crypto.randomUUID(),
  };
  await sql`insert into public.organizations (id, name) values (${t.orgId}, ${label})`;
  const roles: [string, string[]][] = [
    [t.owner, ["owner"]],
    [t.admin, ["admin", "teacher"]],
    [t.member, ["manager"]],
    [t.teacher, ["teacher", "accountant"]],
    [t.ownerAdmin, ["admin", "owner"]],
  ];
  for (const [id, rs] of roles) {
    await insertUser(sql, id);
    await sql`insert into public.profiles (id, organization_id, email)
              values (${id}, ${t.orgId}, ${`${id}@test.local`})`;
    for (const r of rs) {
      await sql`insert into public.user_roles (user_id, role) values (${id}, ${r})`;
    }
  }
  return t;
}

/** A signed-in user with no profile. */
export async function createLoner(sql: Sql): Promise<string> {
  const id = crypto.randomUUID();
  await insertUser(sql, id);
  return id;
}

/** A user whose profile names no organisation, though they hold the CRM role `admin`. */
export async function createOrphan(sql: Sql): Promise<string> {
  const id = crypto.randomUUID();
  await insertUser(sql, id);
  await sql`insert into public.profiles (id, organization_id, email) values (${id}, null, 'o@x')`;
  await sql`insert into public.user_roles (user_id, role) values (${id}, 'admin')`;
  return id;
}

export interface RowSpec {
  settings?: Record<string, unknown>;
  active?: boolean;
  primary?: boolean;
  provider?: string;
  messengerType?: string;
  name?: string;
  /** Seconds before now: orders rows by created_at. */
  ageSeconds?: number;
}

export async function insertRow(sql: Sql, orgId: string, spec: RowSpec = {}): Promise<string> {
  const age = spec.ageSeconds ?? 0;
  const [row] = await sql<{ id: string }[]>`
    insert into public.messenger_integrations
      (organization_id, name, messenger_type, provider, is_active, is_primary, webhook_key,
       settings, created_at, updated_at)
    values (${orgId}, ${spec.name ?? "WhatsApp"}, ${spec.messengerType ?? "whatsapp"},
            ${spec.provider ?? "wpp"}, ${spec.active ?? true}, ${spec.primary ?? false},
            ${"crm-" + crypto.randomUUID()}, ${json(sql, spec.settings ?? {})},
            now() - make_interval(secs => ${age}), now() - make_interval(secs => ${age}))
    returning id`;
  return row.id;
}

let sessionCounter = 0;
/** A session id of the platform's shape (digits), unique per call. */
export function newSession(): string {
  sessionCounter += 1;
  return `55${Date.now() % 1e9}${String(sessionCounter).padStart(4, "0")}`;
}

/** Settings of a row holding a usable session, with a cached token and a key of the CRM's. */
export function validSettings(session = newSession()): Record<string, unknown> {
  return {
    wppAccountNumber: session,
    wppApiKey: `api-key-${crypto.randomUUID()}`,
    wppJwtToken: `jwt-${crypto.randomUUID()}`,
    wppJwtExpiresAt: 4102444800000,
    greeting: "Здравствуйте",
  };
}

export const PLACEHOLDER = { wppAccountNumber: "client_system", wppApiKey: "legacy-key-0000" };

/** A row holding a usable session this project created `ageSeconds` ago, with its state. */
export async function insertLiveRow(
  sql: Sql,
  orgId: string,
  opts: RowSpec & { connection?: string; checkedAgoSeconds?: number; createdAgoSeconds?: number } =
    {},
): Promise<{ id: string; session: string; settings: Record<string, unknown> }> {
  const settings = opts.settings ?? validSettings();
  const id = await insertRow(sql, orgId, { primary: true, ...opts, settings });
  const session = settings.wppAccountNumber as string;
  await sql`
    insert into public.wpp_integration_state
      (integration_id, organization_id, session, session_created_at, connection, connection_at,
       checked_at, ever_connected_at)
    values (${id}, ${orgId}, ${session},
            now() - make_interval(secs => ${opts.createdAgoSeconds ?? 3600}),
            ${opts.connection ?? "connected"},
            now() - make_interval(secs => ${opts.checkedAgoSeconds ?? 3600}),
            now() - make_interval(secs => ${opts.checkedAgoSeconds ?? 3600}),
            case when ${(opts.connection ?? "connected") === "connected"}::boolean
                 then now() - interval '2 hours' end)`;
  return { id, session, settings };
}

export interface StateRow {
  integration_id: string;
  session_state: string;
  repair_reason: string | null;
  lease_id: string | null;
  lease_expires_at: Date | null;
  lease_reason: string | null;
  cooldown_until: Date | null;
  last_provision_error: string | null;
  session: string | null;
  session_created_at: Date | null;
  replaced_sessions: string[];
  refresh_lease_id: string | null;
  refresh_lease_expires_at: Date | null;
  connection: string;
  connection_at: Date | null;
  checked_at: Date | null;
  qr: string | null;
  qr_at: Date | null;
  ever_connected_at: Date | null;
  disconnected_at: Date | null;
  stop_pending: boolean;
  webhook_secret: string;
  webhook_secret_hash: Uint8Array;
  webhook_registered_hash: Uint8Array | null;
}

export async function stateOf(sql: Sql, id: string): Promise<StateRow | undefined> {
  const [s] = await sql<StateRow[]>`
    select * from public.wpp_integration_state where integration_id = ${id}`;
  return s;
}

export async function rowOf(sql: Sql, id: string): Promise<Answer | undefined> {
  const [r] = await sql<{ row: Answer }[]>`
    select to_jsonb(m) as row from public.messenger_integrations m where m.id = ${id}`;
  return r?.row;
}

export interface EventRow {
  action: string;
  details: Answer;
  actor_user_id: string | null;
  integration_id: string | null;
}

export async function eventsOf(sql: Sql, orgId: string): Promise<EventRow[]> {
  return [
    ...await sql<EventRow[]>`
      select action, details, actor_user_id, integration_id from public.wpp_integration_events
       where organization_id = ${orgId} order by id`,
  ];
}

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** Hex for PostgREST's bytea parameters (`\x…`). */
export function byteaHex(bytes: Uint8Array): string {
  return "\\x" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function clientAs(userId: string): Promise<SupabaseClient> {
  return userClient(await mintUserToken(userId, { email: `${userId}@test.local` }));
}

/** Removes organisations (rows, state and events go with them) and users. */
export async function dropTenants(sql: Sql, orgIds: string[], userIds: string[] = []) {
  if (orgIds.length) {
    await sql`delete from public.wpp_integration_events where organization_id in ${sql(orgIds)}`;
    await sql`delete from public.wpp_idempotency_keys where organization_id in ${sql(orgIds)}`;
    await sql`delete from public.organizations where id in ${sql(orgIds)}`;
  }
  if (userIds.length) {
    await sql`delete from public.user_roles where user_id in ${sql(userIds)}`;
    await sql`delete from public.profiles where id in ${sql(userIds)}`;
    await sql`delete from auth.users where id in ${sql(userIds)}`;
  }
}

export function usersOf(t: Tenant): string[] {
  return [t.owner, t.admin, t.member, t.teacher, t.ownerAdmin];
}

/** Runs fn with a fresh tenant and removes it afterwards. */
export async function withTenant(
  fn: (sql: Sql, t: Tenant) => Promise<void>,
  label = "DB test org",
): Promise<void> {
  const sql = openDb();
  const t = await createTenant(sql, label);
  try {
    await fn(sql, t);
  } finally {
    try {
      await dropTenants(sql, [t.orgId], usersOf(t));
    } finally {
      await sql.end({ timeout: 5 });
    }
  }
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
