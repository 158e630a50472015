// Tenants for the benchmark, written straight to PostgreSQL in bulk: minting a few thousand
// organisations one request at a time would take longer than the benchmark itself.
import type postgres from "postgres";
import { mintUserToken, type ProjectKeys } from "../dev/stack/keys.ts";

export type Sql = postgres.Sql;

export interface Tenant {
  orgId: string;
  userId: string;
  token: string;
}

export async function createTenants(sql: Sql, keys: ProjectKeys, n: number): Promise<Tenant[]> {
  const orgs = Array.from({ length: n }, () => crypto.randomUUID());
  const users = Array.from({ length: n }, () => crypto.randomUUID());
  await sql.begin(async (tx) => {
    await tx`insert into public.organizations (id, name)
             select id, 'Bench org ' || left(id::text, 8) from unnest(${orgs}::uuid[]) as t (id)`;
    await tx`insert into auth.users (id, email)
             select id, left(id::text, 8) || '@bench.local' from unnest(${users}::uuid[]) as t (id)`;
    await tx`insert into public.profiles (id, organization_id, role)
             select u, o, 'admin' from unnest(${users}::uuid[], ${orgs}::uuid[]) as t (u, o)`;
  });
  return await Promise.all(orgs.map(async (orgId, i) => ({
    orgId,
    userId: users[i],
    token: await mintUserToken(keys, { sub: users[i], expiresInSeconds: 3600 }),
  })));
}
