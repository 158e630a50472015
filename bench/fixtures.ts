// Organisations for the benchmark, written straight to PostgreSQL in bulk, in the CRM's shape:
// the organisation in profiles.organization_id, the role in user_roles (profiles has none).
import type postgres from "postgres";
import { mintUserToken, type ProjectKeys } from "../dev/stack/keys.ts";

export type Sql = postgres.Sql;

export interface Tenant {
  orgId: string;
  userId: string;
  token: string;
}

export async function createTenants(
  sql: Sql,
  keys: ProjectKeys,
  n: number,
  role: "owner" | "admin" = "admin",
): Promise<Tenant[]> {
  const orgs = Array.from({ length: n }, () => crypto.randomUUID());
  const users = Array.from({ length: n }, () => crypto.randomUUID());
  await sql.begin(async (tx) => {
    await tx`insert into public.organizations (id, name)
             select id, 'Bench org ' || left(id::text, 8) from unnest(${orgs}::uuid[]) as t (id)`;
    await tx`insert into auth.users (id, email)
             select id, left(id::text, 8) || '@bench.local' from unnest(${users}::uuid[]) as t (id)`;
    await tx`insert into public.profiles (id, organization_id, email)
             select u, o, left(u::text, 8) || '@bench.local'
               from unnest(${users}::uuid[], ${orgs}::uuid[]) as t (u, o)`;
    await tx`insert into public.user_roles (user_id, role)
             select u, ${role}::public.app_role from unnest(${users}::uuid[]) as t (u)`;
  });
  return await Promise.all(orgs.map(async (orgId, i) => ({
    orgId,
    userId: users[i],
    token: await mintUserToken(keys, { sub: users[i], expiresInSeconds: 3600 }),
  })));
}
