-- Messenger integrations of an organisation (WhatsApp through the WPP Platform first, others
-- later), the placeholder session list, and the audit trail.
--
-- Secrets. `settings` holds the platform credentials (wppApiKey, wppJwtToken, ...) next to
-- harmless values (wppAccountNumber, greeting texts). RLS only filters rows, never columns, so the
-- credentials are kept from the API roles with column privileges:
--   * anon has no privilege on the table at all;
--   * authenticated may SELECT every column except `settings`, `webhook_key` (the secret in the
--     webhook URL), the lease columns and `last_provision_error` (free text from the platform);
--   * `public_settings` is a stored generated copy of `settings` with every secret-looking key
--     removed by public.strip_secret_settings, so wppAccountNumber and friends stay readable.
-- Consequence for clients: PostgREST expands `select=*` (and supabase-js `.select()` with no
-- argument) to every column, which PostgreSQL refuses with 42501 "permission denied for table
-- messenger_integrations" (HTTP 403 / 401 for anon). Nothing leaks, but the UI must name its
-- columns or read the view public.messenger_integrations_public, which holds only safe columns.
-- Realtime does not honour column privileges: do not add this table to the supabase_realtime
-- publication without a column list.

-- Secret-looking keys are recognised by name: the camelCase convention of this project
-- (wppApiKey, wppJwtToken, webhookSecret, ...) plus snake/kebab spellings (api_key,
-- webhook_secret, auth-token). Webhook URLs are stripped too: the platform sends no signature, so
-- the URL itself carries a secret. Nested objects and arrays are cleaned as well. Erring on the
-- side of stripping is deliberate: a stripped harmless value costs a UI field, a leaked key costs
-- the WhatsApp number.
--
-- IMMUTABLE because public_settings is a stored generated column. If these rules change, rewrite
-- the stored copies afterwards: `update public.messenger_integrations set settings = settings;`.
create function public.strip_secret_settings(p_settings jsonb) returns jsonb
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  v_key text;
  v_value jsonb;
  v_out jsonb;
begin
  if p_settings is null then
    return null;
  end if;
  case jsonb_typeof(p_settings)
    when 'object' then
      v_out := '{}'::jsonb;
      for v_key, v_value in select e.key, e.value from jsonb_each(p_settings) e loop
        if v_key ~ '(Key|Token|Secret|Password|Jwt|Credentials?|WebhookUrl)$'
          or v_key ~* '(^|[_.-])(api_?key|key|token|secret|password|passwd|jwt|credentials?|authorization|webhook_?url)$'
        then
          continue;
        end if;
        v_out := v_out || jsonb_build_object(v_key, public.strip_secret_settings(v_value));
      end loop;
      return v_out;
    when 'array' then
      select coalesce(jsonb_agg(public.strip_secret_settings(a.elem) order by a.ord), '[]'::jsonb)
        into v_out
        from jsonb_array_elements(p_settings) with ordinality as a (elem, ord);
      return v_out;
    else
      return p_settings;
  end case;
end;
$$;

comment on function public.strip_secret_settings(jsonb) is
  'settings without secret-looking keys (…Key, …Token, …Secret, api_key, webhook_secret, webhook URLs), recursively. Feeds messenger_integrations.public_settings.';

-- Session ids that the old integration stored instead of a real one. Data, not code, so an
-- operator can add one without a deploy.
create table public.wpp_session_placeholders (
  value text primary key,
  note text
);

insert into public.wpp_session_placeholders (value, note) values
  ('client_system', 'stored by the first integration instead of the session id the platform returned');

comment on table public.wpp_session_placeholders is
  'wppAccountNumber values that are not real WPP sessions; compared trimmed and case-insensitively.';

create table public.messenger_integrations (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  messenger_type text not null check (messenger_type ~ '^[a-z][a-z0-9_]*$'),
  provider text not null check (provider ~ '^[a-z][a-z0-9_]*$'),
  name text not null default '',
  is_active boolean not null default true,
  is_primary boolean not null default false,
  -- The secret carried in the webhook URL registered on the platform; the receiver matches it.
  webhook_key text not null unique default encode(extensions.gen_random_bytes(24), 'hex'),
  settings jsonb not null default '{}'::jsonb check (jsonb_typeof(settings) = 'object'),
  public_settings jsonb generated always as (public.strip_secret_settings(settings)) stored,
  -- 'needs_new_session' is set when the stored session is known to be unusable (placeholder
  -- repaired, apiKey refused by the platform) and cleared by a completed provisioning.
  session_state text not null default 'ok' check (session_state in ('ok', 'needs_new_session')),
  -- Exactly-once provisioning: whoever holds an unexpired lease is the only request allowed to
  -- create a platform client for this integration. See wpp_provision_begin.
  provision_lease_id uuid,
  provision_lease_expires_at timestamptz,
  provision_lease_reason text,
  last_provision_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint messenger_integrations_lease_pair check (
    (provision_lease_id is null) = (provision_lease_expires_at is null)
  )
);

create index messenger_integrations_organization_id_idx
  on public.messenger_integrations (organization_id);

-- wpp_provision_begin looks the integration up by this rule, so two rows matching it would make
-- "which session is ours" ambiguous. Inactive or non-primary rows may pile up freely.
create unique index messenger_integrations_one_primary_wpp
  on public.messenger_integrations (organization_id)
  where is_active and is_primary and messenger_type = 'whatsapp' and provider = 'wpp';

create trigger messenger_integrations_set_updated_at
  before update on public.messenger_integrations
  for each row execute function private.set_updated_at();

comment on table public.messenger_integrations is
  'Messenger connections of an organisation. settings holds credentials: never readable by anon/authenticated; use public_settings or messenger_integrations_public.';
comment on column public.messenger_integrations.settings is
  'Provider settings including secrets (wppApiKey, wppJwtToken). service_role only.';
comment on column public.messenger_integrations.public_settings is
  'settings with secret-looking keys removed; what the UI reads.';
comment on column public.messenger_integrations.webhook_key is
  'Secret part of the webhook URL. service_role only.';

-- One predicate for "can this stored session be used as it is". STABLE, not IMMUTABLE: it reads
-- the placeholder list.
create function public.wpp_session_is_valid(settings jsonb, session_state text) returns boolean
language sql
stable
set search_path = ''
as $$
  select coalesce(
    jsonb_typeof(settings -> 'wppApiKey') = 'string'
      and btrim(settings ->> 'wppApiKey') <> ''
      and jsonb_typeof(settings -> 'wppAccountNumber') = 'string'
      and btrim(settings ->> 'wppAccountNumber') <> ''
      and not exists (
        select 1
        from public.wpp_session_placeholders ph
        where lower(ph.value) = lower(btrim(settings ->> 'wppAccountNumber'))
      )
      and session_state is distinct from 'needs_new_session',
    false
  )
$$;

comment on function public.wpp_session_is_valid(jsonb, text) is
  'true iff wppApiKey and wppAccountNumber are non-empty strings, the account number is not a placeholder and session_state is not needs_new_session.';

create table public.integration_events (
  id bigint generated always as identity primary key,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  -- The audit trail outlives the integration it talks about.
  integration_id uuid references public.messenger_integrations (id) on delete set null,
  actor_user_id uuid references auth.users (id) on delete set null,
  action text not null check (action in (
    'created', 'reused', 'recreated', 'repaired', 'failed',
    'session_stopped', 'stop_failed', 'token_refreshed', 'token_failed',
    'webhook_registered', 'webhook_failed', 'dead_key_detected', 'lease_taken_over'
  )),
  details jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object'),
  created_at timestamptz not null default now()
);

create index integration_events_organization_id_created_at_idx
  on public.integration_events (organization_id, created_at desc);
create index integration_events_integration_id_idx on public.integration_events (integration_id);

comment on table public.integration_events is
  'Audit trail of integration changes. Owners and admins of the organisation read it; details never hold secrets.';

-- Whoever writes an event (the SQL functions, the edge functions, an operator), its details go
-- through the same filter as public_settings: admins read them.
create function private.strip_event_details() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.details := public.strip_secret_settings(coalesce(new.details, '{}'::jsonb));
  return new;
end;
$$;

revoke all on function private.strip_event_details() from public;

create trigger integration_events_strip_details
  before insert or update on public.integration_events
  for each row execute function private.strip_event_details();

-- What the UI should read: safe columns only, and RLS of the underlying table applies to the
-- caller (security_invoker), so it shows exactly the rows the caller could read from the table.
create view public.messenger_integrations_public
with (security_invoker = true)
as
select
  i.id,
  i.organization_id,
  i.messenger_type,
  i.provider,
  i.name,
  i.is_active,
  i.is_primary,
  i.public_settings,
  i.session_state,
  i.created_at,
  i.updated_at
from public.messenger_integrations i;

comment on view public.messenger_integrations_public is
  'Secret-free view of messenger_integrations for the UI (settings → public_settings, no webhook_key or lease).';

alter table public.messenger_integrations enable row level security;
alter table public.integration_events enable row level security;
alter table public.wpp_session_placeholders enable row level security;

create policy "members read their organisation's integrations"
  on public.messenger_integrations
  for select
  to authenticated
  using (organization_id = (select private.user_organization_id()));

create policy "owners and admins read their organisation's events"
  on public.integration_events
  for select
  to authenticated
  using (
    organization_id = (select private.user_organization_id())
    and (select private.user_role()) in ('owner', 'admin')
  );

-- No policy on wpp_session_placeholders: service_role and the definer functions only.

revoke all on table public.messenger_integrations from anon, authenticated;
grant select (
  id, organization_id, messenger_type, provider, name, is_active, is_primary,
  public_settings, session_state, created_at, updated_at
) on public.messenger_integrations to authenticated;

revoke all on table public.messenger_integrations_public from anon, authenticated;
grant select on public.messenger_integrations_public to authenticated;

revoke all on table public.integration_events from anon;
revoke insert, update, delete, truncate, references, trigger
  on table public.integration_events from authenticated;

revoke all on table public.wpp_session_placeholders from anon, authenticated;

-- Plain helpers: the edge functions may use them, browsers have no use for them.
revoke all on function public.strip_secret_settings(jsonb) from public, anon, authenticated;
revoke all on function public.wpp_session_is_valid(jsonb, text) from public, anon, authenticated;
grant execute on function public.strip_secret_settings(jsonb) to service_role;
grant execute on function public.wpp_session_is_valid(jsonb, text) to service_role;
