-- The host CRM's tables, as far as this project needs them.
--
-- wpp-connect is installed into a CRM that already owns `organizations`, `profiles`,
-- `user_roles` (enum `app_role`) and `messenger_integrations` (see the README, "The CRM's
-- database"). On that database every statement below is a no-op: nothing the CRM owns is
-- recreated or altered here. On an empty database (the local stack, a demo project) the tables are
-- created in the CRM's shape, so the rest of the project has one code path for both.
--
-- A stand-in is marked with a table comment starting with 'wpp-connect stand-in'; later
-- migrations only add policies and privileges of their own to tables carrying that mark.
--
-- Applied like any Supabase migration: by the non-superuser `postgres` (`supabase db push`).

create schema if not exists private;
revoke all on schema private from public;
-- Policies run as the requesting role, which must be able to reach the helpers they call.
grant usage on schema private to authenticated, service_role;

-- Each stand-in is created, marked and given its indexes in one block, only when the table is
-- missing: existence is checked first, so a CRM table is never mistaken for a stand-in.
do $$
begin
  if to_regclass('public.organizations') is null then
    create table public.organizations (
      id uuid primary key default gen_random_uuid(),
      name text not null,
      slug text,
      logo_url text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    comment on table public.organizations is
      'wpp-connect stand-in for the host CRM''s table of the same name';
  end if;

  -- The CRM's profiles carry no role: roles live in user_roles. id is auth.users.id; there is no
  -- foreign key to auth.users, which the migration role may not be allowed to reference.
  if to_regclass('public.profiles') is null then
    create table public.profiles (
      id uuid primary key,
      organization_id uuid references public.organizations (id) on delete set null,
      first_name text,
      last_name text,
      email text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index profiles_organization_id_idx on public.profiles (organization_id);
    comment on table public.profiles is
      'wpp-connect stand-in for the host CRM''s table of the same name';
  end if;

  if to_regtype('public.app_role') is null then
    create type public.app_role as enum (
      'admin', 'moderator', 'user', 'teacher', 'manager', 'owner', 'branch_manager', 'methodist',
      'head_teacher', 'sales_manager', 'marketing_manager', 'accountant', 'receptionist',
      'support', 'student', 'parent'
    );
  end if;

  -- A user may hold several roles; the organisation comes from profiles.organization_id.
  if to_regclass('public.user_roles') is null then
    create table public.user_roles (
      id uuid primary key default gen_random_uuid(),
      user_id uuid not null,
      role public.app_role not null,
      created_at timestamptz not null default now(),
      unique (user_id, role)
    );
    comment on table public.user_roles is
      'wpp-connect stand-in for the host CRM''s table of the same name';
  end if;

  -- The CRM publishes no DDL for this table. The stand-in has the two constraints the CRM's own
  -- plan asked for (unique webhook_key, one primary per organisation and messenger type); the code
  -- relies on neither: it inserts a fresh random webhook_key and never makes a second primary.
  if to_regclass('public.messenger_integrations') is null then
    create table public.messenger_integrations (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references public.organizations (id) on delete cascade,
      name text not null default '',
      messenger_type text not null,
      provider text not null,
      is_active boolean not null default true,
      is_primary boolean not null default false,
      priority integer,
      webhook_key text not null unique default encode(extensions.gen_random_bytes(16), 'hex'),
      settings jsonb not null default '{}'::jsonb,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create unique index messenger_integrations_one_primary
      on public.messenger_integrations (organization_id, messenger_type) where is_primary;
    comment on table public.messenger_integrations is
      'wpp-connect stand-in for the host CRM''s table of the same name';
  end if;
end
$$;

-- Every lookup of this project goes by organisation and provider. Additive, so also on the CRM's
-- table.
create index if not exists messenger_integrations_org_provider_idx
  on public.messenger_integrations (organization_id, provider);

create or replace function private.is_standin(p_table regclass) returns boolean
language sql
stable
set search_path = ''
as $$
  select coalesce(obj_description(p_table, 'pg_class') like 'wpp-connect stand-in%', false)
$$;

revoke all on function private.is_standin(regclass) from public;
