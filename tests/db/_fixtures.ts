// Each test builds its own tenants on the shared database (the seeded demo rows are left alone)
// and removes them afterwards. Setup goes straight to PostgreSQL; what is being tested goes
// through the gateway and PostgREST with supabase-js, as the UI and the edge functions do.
import type { SupabaseClient } from "@supabase/supabase-js";
import { db, mintUserToken, userClient } from "../_support/stack.ts";

export type Sql = ReturnType<typeof db>;

export interface Tenant {
  orgId: string;
  owner: string;
  admin: string;
  member: string;
}

/** The secrets every fixture row carries, so a test can look for them in any response. */
export const SECRET_VALUES = [
  "sk-live-api-key-0001",
  "jwt-secret-token-0001",
  "whsec-webhook-secret-0001",
  "snake-api-key-0001",
  "nested-private-token-0001",
] as const;

/** Settings as the old integration left them: secrets next to harmless values. */
export function secretSettings(accountNumber = "0000000000042"): Record<string, unknown> {
  return {
    wppAccountNumber: accountNumber,
    wppApiKey: SECRET_VALUES[0],
    wppJwtToken: SECRET_VALUES[1],
    wppJwtExpiresAt: 4102444800000,
    webhookSecret: SECRET_VALUES[2],
    api_key: SECRET_VALUES[3],
    greeting: "Hello from the CRM",
    limits: { daily: 500, providerToken: SECRET_VALUES[4] },
  };
}

// postgres.js serialises a parameter itself once the server types it as jsonb, so the object goes
// in as it is: stringifying it first would store one JSON string instead of an object.
export function json(sql: Sql, value: Record<string, unknown>) {
  return sql.json(value as Parameters<Sql["json"]>[0]);
}

export function openDb(): Sql {
  return db();
}

async function insertUsers(sql: Sql, ids: string[]): Promise<void> {
  for (const id of ids) {
    await sql`insert into auth.users (id, email) values (${id}, ${`${id}@test.local`})`;
  }
}

export async function createTenant(sql: Sql, label: string): Promise<Tenant> {
  const tenant: Tenant = {
    orgId: crypto.randomUUID(),
    owner: crypto.randomUUID(),
    admin: crypto.randomUUID(),
    member: crypto.randomUUID(),
  };
  await insertUsers(sql, [tenant.owner, tenant.admin, tenant.member]);
  await sql`insert into public.organizations (id, name) values (${tenant.orgId}, ${label})`;
  await sql`
    insert into public.profiles (id, organization_id, role) values
      (${tenant.owner}, ${tenant.orgId}, 'owner'),
      (${tenant.admin}, ${tenant.orgId}, 'admin'),
      (${tenant.member}, ${tenant.orgId}, 'member')`;
  return tenant;
}

/** A signed-in user with no profile, hence no organisation. */
export async function createLoner(sql: Sql): Promise<string> {
  const id = crypto.randomUUID();
  await insertUsers(sql, [id]);
  return id;
}

export async function insertIntegration(
  sql: Sql,
  orgId: string,
  settings: Record<string, unknown>,
  extra: { isPrimary?: boolean; isActive?: boolean; provider?: string } = {},
): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    insert into public.messenger_integrations
      (organization_id, messenger_type, provider, name, is_active, is_primary, settings)
    values (${orgId}, 'whatsapp', ${extra.provider ?? "wpp"}, 'WhatsApp',
            ${extra.isActive ?? true}, ${extra.isPrimary ?? true}, ${json(sql, settings)})
    returning id`;
  return row.id;
}

export async function insertEvent(
  sql: Sql,
  orgId: string,
  integrationId: string | null,
  action: string,
  details: Record<string, unknown> = {},
): Promise<number> {
  const [row] = await sql<{ id: number }[]>`
    insert into public.integration_events (organization_id, integration_id, action, details)
    values (${orgId}, ${integrationId}, ${action}, ${json(sql, details)})
    returning id`;
  return Number(row.id);
}

/** Removes tenants with everything hanging off them (integrations and events cascade). */
export async function dropTenants(sql: Sql, tenants: Tenant[], users: string[] = []) {
  const orgIds = tenants.map((t) => t.orgId);
  const userIds = [...tenants.flatMap((t) => [t.owner, t.admin, t.member]), ...users];
  if (orgIds.length) await sql`delete from public.organizations where id in ${sql(orgIds)}`;
  if (userIds.length) await sql`delete from auth.users where id in ${sql(userIds)}`;
}

export async function clientAs(userId: string): Promise<SupabaseClient> {
  return userClient(await mintUserToken(userId, { email: `${userId}@test.local` }));
}

export interface IntegrationSnapshot {
  id: string;
  settings: Record<string, unknown>;
  session_state: string;
  provision_lease_id: string | null;
  provision_lease_expires_at: Date | null;
  updated_at: Date;
}

export async function snapshot(sql: Sql, integrationId: string): Promise<IntegrationSnapshot> {
  const [row] = await sql<IntegrationSnapshot[]>`
    select id, settings, session_state, provision_lease_id, provision_lease_expires_at, updated_at
    from public.messenger_integrations where id = ${integrationId}`;
  return row;
}

export async function eventsOf(
  sql: Sql,
  integrationId: string,
): Promise<{ action: string; details: Record<string, unknown>; actor_user_id: string | null }[]> {
  const rows = await sql<
    { action: string; details: Record<string, unknown>; actor_user_id: string | null }[]
  >`
    select action, details, actor_user_id from public.integration_events
    where integration_id = ${integrationId} order by id`;
  // A plain array, so strict deep equality with a literal compares contents, not prototypes.
  return [...rows];
}
