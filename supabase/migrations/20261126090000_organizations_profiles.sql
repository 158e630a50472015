-- Organisations and the users who belong to them. These two tables stand in for the host CRM's own
-- tables: the WhatsApp integration only needs "which organisation is this user in, with which
-- role", so they are kept minimal.
--
-- Access model shared by every migration of this project:
--   * Supabase grants ALL on public tables and functions to anon and authenticated by default and
--     relies on RLS alone. Here RLS is enabled on every table AND the privileges the API roles do
--     not need are revoked, so a missing or mistaken policy cannot turn into a write path.
--   * Only service_role (the edge functions) writes; it has BYPASSRLS as on a real project.
--   * Helpers that policies call are SECURITY DEFINER and live in the `private` schema, which
--     PostgREST does not expose, so they are not callable as /rpc endpoints (Supabase's advice
--     for definer functions).

create schema if not exists private;
revoke all on schema private from public;
-- Policies run as the requesting role, so that role must be able to reach the helpers.
grant usage on schema private to authenticated, service_role;

create table public.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  created_at timestamptz not null default now()
);

comment on table public.organizations is
  'Tenant of the CRM. Stands for the host CRM''s own table; members read their own, service_role writes.';

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  -- A profile outlives its organisation's deletion so the user account is not silently orphaned
  -- of its profile row; it simply stops belonging anywhere.
  organization_id uuid references public.organizations (id) on delete set null,
  role text not null default 'member' check (role in ('owner', 'admin', 'member')),
  created_at timestamptz not null default now()
);

create index profiles_organization_id_idx on public.profiles (organization_id);

comment on table public.profiles is
  'One row per CRM user: their organisation and role. Stands for the host CRM''s own table.';

-- The caller's organisation and role, read past RLS: a policy on profiles that queried profiles
-- directly would recurse into itself.
create function private.user_organization_id() returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select p.organization_id from public.profiles p where p.id = auth.uid()
$$;

create function private.user_role() returns text
language sql
stable
security definer
set search_path = ''
as $$
  select p.role from public.profiles p where p.id = auth.uid()
$$;

revoke all on function private.user_organization_id() from public;
revoke all on function private.user_role() from public;
grant execute on function private.user_organization_id() to authenticated, service_role;
grant execute on function private.user_role() to authenticated, service_role;

-- Shared by the tables that carry updated_at.
create function private.set_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

revoke all on function private.set_updated_at() from public;

alter table public.organizations enable row level security;
alter table public.profiles enable row level security;

-- `(select ...)` makes the planner evaluate the helper once per statement, not once per row.
create policy "members read their organisation"
  on public.organizations
  for select
  to authenticated
  using (id = (select private.user_organization_id()));

create policy "members read their organisation's profiles"
  on public.profiles
  for select
  to authenticated
  using (
    id = (select auth.uid())
    or organization_id = (select private.user_organization_id())
  );

-- anon has no business with tenants at all; authenticated only ever reads (RLS narrows the rows).
-- TRUNCATE is revoked explicitly because RLS does not apply to it.
revoke all on table public.organizations, public.profiles from anon;
revoke insert, update, delete, truncate, references, trigger
  on table public.organizations, public.profiles from authenticated;
