-- Supabase's database as the supabase/postgres image ships it, applied by the bootstrap superuser
-- (supabase_admin) before any project migration. The project's migrations then run as `postgres`,
-- which on Supabase is NOT a superuser: whatever a migration needs must be granted here, and
-- nothing beyond what Supabase grants, so a migration that would fail on Supabase fails here too.
--
-- Sources: supabase/postgres migrations/db/init-scripts/*.sql, migrations/db/migrations/
-- (10000000000000_demote-postgres, 20211115181400_update-auth-permissions, 20221103090837 revoke
-- supabase_admin from authenticator, 20230201083204 API roles to postgres, 20240627101908 and
-- 20250421084701 lock-downs of the auth schema), migrations/tests/database/privs.sql, and the
-- role and ACL dumps in supabase/cli internal/utils/templates (globals.sql, initial_schemas/15.sql).
--
-- Idempotent: it runs on every start and never grants on objects the migrations create, so a
-- restart cannot undo a migration's REVOKE. The session setting `stack.migrator` names the role
-- that applies the migrations: `postgres`, or a stand-in with postgres' attributes when an
-- external server's own `postgres` is a superuser (which PostgreSQL may refuse to demote).

-- The API roles, PostgREST's login role, and the role Supabase Auth (GoTrue) connects as.
do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin login noinherit nocreaterole noreplication;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

-- PostgREST switches role per request: statement timeouts as Supabase sets them.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role supabase_auth_admin set search_path = auth;

-- The role that applies migrations: LOGIN NOSUPERUSER INHERIT CREATEROLE CREATEDB REPLICATION
-- BYPASSRLS, as `postgres` is on Supabase once 10000000000000_demote-postgres has run.
do $$
declare
  m text := current_setting('stack.migrator');
begin
  if not exists (select from pg_roles where rolname = m) then
    execute format(
      'create role %I login nosuperuser inherit createrole createdb replication bypassrls', m);
  else
    execute format(
      'alter role %I login nosuperuser inherit createrole createdb replication bypassrls', m);
  end if;
  execute format('grant anon, authenticated, service_role, pg_monitor to %I', m);
  execute format('alter role %I set search_path to "$user", public, extensions', m);
end
$$;

-- Extensions live in their own schema, which postgres owns (initial_schemas/15.sql: "Name:
-- extensions; Type: SCHEMA; Owner: postgres").
create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
grant usage on schema extensions to anon, authenticated, service_role;
-- Not on Supabase: GoTrue checks bcrypt in Go, the local auth stand-in (dev/auth) with pgcrypto.
grant usage on schema extensions to supabase_auth_admin;

-- Supabase Auth's schema, owned by supabase_admin; its tables and helpers belong to
-- supabase_auth_admin. The tables carry the columns GoTrue reads, with GoTrue's types and
-- defaults (a real project's dump), so rows seeded here also sign in on a real GoTrue. NB: GoTrue
-- scans confirmation_token, recovery_token, email_change_token_new and email_change into Go
-- strings; they have no default, and a NULL there makes every sign-in of that user fail with
-- 500 "Database error querying schema" (supabase/auth#1940): seeds must write ''.
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;
grant all on schema auth to supabase_auth_admin;

create table if not exists auth.users (
  instance_id uuid,
  id uuid not null primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text unique default null,
  phone_confirmed_at timestamptz,
  phone_change text default '',
  phone_change_token varchar(255) default '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '',
  email_change_confirm_status smallint default 0
    check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
  banned_until timestamptz,
  reauthentication_token varchar(255) default '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);
create unique index if not exists users_email_partial_key on auth.users (email)
  where is_sso_user = false;
create index if not exists users_instance_id_idx on auth.users (instance_id);
create index if not exists users_instance_id_email_idx on auth.users (instance_id, lower(email));

create table if not exists auth.identities (
  provider_id text not null,
  user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null,
  provider text not null,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid not null default gen_random_uuid() primary key,
  constraint identities_provider_id_provider_unique unique (provider_id, provider)
);
create index if not exists identities_user_id_idx on auth.identities (user_id);

do $$
begin
  if not exists (
    select from pg_type t join pg_namespace n on n.oid = t.typnamespace
     where n.nspname = 'auth' and t.typname = 'aal_level'
  ) then
    create type auth.aal_level as enum ('aal1', 'aal2', 'aal3');
  end if;
end
$$;

create table if not exists auth.sessions (
  id uuid not null primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz,
  updated_at timestamptz,
  factor_id uuid,
  aal auth.aal_level,
  not_after timestamptz,
  refreshed_at timestamp,
  user_agent text,
  ip inet,
  tag text
);
create index if not exists sessions_user_id_idx on auth.sessions (user_id);

create table if not exists auth.refresh_tokens (
  instance_id uuid,
  id bigserial primary key,
  token varchar(255) unique,
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz,
  updated_at timestamptz,
  parent varchar(255),
  session_id uuid references auth.sessions (id) on delete cascade
);
create index if not exists refresh_tokens_session_id_revoked_idx
  on auth.refresh_tokens (session_id, revoked);

-- PostgREST 12 publishes the verified claims as request.jwt.claims (JSON). The older per-claim
-- settings are read first, as Supabase's own helpers do, for clients that still set them.
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select nullif(
    coalesce(
      current_setting('request.jwt.claim.sub', true),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    ),
    ''
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

alter table auth.users owner to supabase_auth_admin;
alter table auth.identities owner to supabase_auth_admin;
alter table auth.sessions owner to supabase_auth_admin;
alter table auth.refresh_tokens owner to supabase_auth_admin;
alter type auth.aal_level owner to supabase_auth_admin;
alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;

grant usage on schema public to anon, authenticated, service_role;

-- What `postgres` may do on Supabase, and nothing more.
do $$
declare
  m text := current_setting('stack.migrator');
  admin text := current_user;
begin
  -- privs.sql: CONNECT, TEMPORARY, CREATE on the database; CREATE and USAGE on public and on
  -- extensions (whose owner it is).
  execute format('grant all on database %I to %I', current_database(), m);
  execute format('grant usage, create on schema public to %I', m);
  execute format('alter schema extensions owner to %I', m);

  -- Extension objects: ALL with grant option, existing and future (initial_schemas/15.sql).
  execute format('grant all on all functions in schema extensions to %I with grant option', m);
  execute format('grant all on all tables in schema extensions to %I with grant option', m);
  execute format('grant all on all sequences in schema extensions to %I with grant option', m);
  execute format('alter default privileges for role %I in schema extensions '
    'grant all on tables to %I with grant option', admin, m);
  execute format('alter default privileges for role %I in schema extensions '
    'grant all on functions to %I with grant option', admin, m);
  execute format('alter default privileges for role %I in schema extensions '
    'grant all on sequences to %I with grant option', admin, m);

  -- auth: USAGE only (CREATE was revoked in 2024), ALL on its tables, sequences and routines
  -- (REFERENCES included: a foreign key to auth.users works), no membership in
  -- supabase_auth_admin (revoked in 2024).
  execute format('grant usage on schema auth to %I', m);
  execute format('revoke create on schema auth from %I', m);
  execute format('grant all on all tables in schema auth to %I', m);
  execute format('grant all on all sequences in schema auth to %I', m);
  execute format('grant all on all routines in schema auth to %I', m);
  execute format('alter default privileges for role supabase_auth_admin in schema auth '
    'grant all on tables to %I', m);
  execute format('alter default privileges for role supabase_auth_admin in schema auth '
    'grant all on sequences to %I', m);
  execute format('alter default privileges for role supabase_auth_admin in schema auth '
    'grant all on functions to %I', m);

  -- Supabase's default grants (RLS, not privileges, protects tables): what postgres (the init
  -- scripts ran as postgres) or supabase_admin creates in public is reachable by the API roles.
  execute format('alter default privileges for role %I in schema public '
    'grant all on tables to anon, authenticated, service_role', m);
  execute format('alter default privileges for role %I in schema public '
    'grant all on sequences to anon, authenticated, service_role', m);
  execute format('alter default privileges for role %I in schema public '
    'grant all on functions to anon, authenticated, service_role', m);
  execute format('alter default privileges for role %I in schema public '
    'grant all on tables to %I, anon, authenticated, service_role', admin, m);
  execute format('alter default privileges for role %I in schema public '
    'grant all on sequences to %I, anon, authenticated, service_role', admin, m);
  execute format('alter default privileges for role %I in schema public '
    'grant all on functions to %I, anon, authenticated, service_role', admin, m);
end
$$;
