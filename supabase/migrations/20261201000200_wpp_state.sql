-- What this project keeps for itself, next to the CRM's messenger_integrations rows.
--
-- The CRM's row stays the CRM's: `settings` keeps the keys the CRM's other functions read and
-- write (wppAccountNumber = the platform session, wppApiKey, wppJwtToken, wppJwtExpiresAt,
-- wppSubOrgId). Everything else this project needs about a `wpp` row lives in its own tables:
--   wpp_integration_state   one row per wpp integration: provisioning lease and cooldown, the
--                           refresh lease, the connection as last learned (webhook event or
--                           platform read) with its QR, replaced sessions, and the webhook secret;
--   wpp_integration_events  the audit trail (changes of state only);
--   wpp_idempotency_keys    answers replayed for a repeated Idempotency-Key;
--   wpp_session_placeholders values of wppAccountNumber that are not sessions (client_system).
-- All are service_role only, except the events, which owners and admins of the organisation read.

create table if not exists public.wpp_session_placeholders (
  value text primary key,
  note text
);

insert into public.wpp_session_placeholders (value, note) values
  ('client_system', 'stored by the first integration instead of the session id the platform returned')
on conflict (value) do nothing;

comment on table public.wpp_session_placeholders is
  'wppAccountNumber values that are not real WPP sessions; compared trimmed and case-insensitively.';

create table if not exists public.wpp_integration_state (
  integration_id uuid primary key references public.messenger_integrations (id) on delete cascade,
  organization_id uuid not null,
  -- 'needs_new_session': the stored session cannot be used (placeholder repaired, apiKey refused
  -- by the platform); cleared when a new session is stored.
  session_state text not null default 'ok' check (session_state in ('ok', 'needs_new_session')),
  repair_reason text,
  -- Exactly-once provisioning: only the holder of an unexpired lease may create a platform client
  -- for this integration.
  lease_id uuid,
  lease_expires_at timestamptz,
  lease_reason text,
  -- A create whose outcome is unknown (the platform may have made a client, then the answer was
  -- lost): no create is allowed until then, so a retried click cannot make a second client.
  cooldown_until timestamptz,
  last_provision_error text,
  -- The session this state describes, and when this project created it.
  session text,
  session_created_at timestamptz,
  -- Sessions this row held before: never started again, never handed out.
  replaced_sessions text[] not null default '{}',
  -- One platform refresh (status read, webhook registration, start) at a time per integration:
  -- concurrent clicks and polls wait for its result instead of repeating it.
  refresh_lease_id uuid,
  refresh_lease_expires_at timestamptz,
  -- The connection as last learned, and the time of the event or read that said so (events are
  -- applied in that order; an older one never overwrites a newer state).
  connection text not null default 'unknown'
    check (connection in ('unknown', 'starting', 'qr', 'connected', 'offline')),
  connection_at timestamptz,
  -- When anything was last heard about this session (freshness of the stored state).
  checked_at timestamptz,
  qr text,
  qr_at timestamptz,
  ever_connected_at timestamptz,
  disconnected_at timestamptz,
  -- A disconnect marked the row but the platform's stop has not succeeded yet.
  stop_pending boolean not null default false,
  -- The credential in the webhook URL the platform posts to. Rotated with every new session.
  webhook_secret text not null
    default translate(encode(extensions.gen_random_bytes(32), 'base64'), '+/=', '-_'),
  -- The secret is base64url (ASCII), so 'escape' decoding yields exactly its bytes.
  webhook_secret_hash bytea generated always as (sha256(decode(webhook_secret, 'escape'))) stored,
  -- The hash of the secret last registered on the platform for `session`. A session made before
  -- this project (its events still go to the CRM's old URL) or a registration that failed shows
  -- as a mismatch, and the next refresh registers the current URL.
  webhook_registered_hash bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint wpp_integration_state_lease_pair
    check ((lease_id is null) = (lease_expires_at is null)),
  constraint wpp_integration_state_refresh_pair
    check ((refresh_lease_id is null) = (refresh_lease_expires_at is null))
);

create unique index if not exists wpp_integration_state_webhook_secret_hash
  on public.wpp_integration_state (webhook_secret_hash);
create index if not exists wpp_integration_state_organization_id
  on public.wpp_integration_state (organization_id);

comment on table public.wpp_integration_state is
  'wpp-connect''s own state per WPP integration (leases, connection, QR, webhook secret). service_role only.';

create table if not exists public.wpp_integration_events (
  id bigint generated always as identity primary key,
  organization_id uuid not null,
  -- The trail outlives the integration it talks about.
  integration_id uuid references public.messenger_integrations (id) on delete set null,
  actor_user_id uuid,
  action text not null check (action in (
    'created', 'recreated', 'repaired', 'adopted', 'reactivated', 'failed',
    'create_outcome_unknown', 'session_stopped', 'stop_failed', 'dead_key_detected',
    'lease_taken_over', 'disconnected'
  )),
  details jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object'),
  created_at timestamptz not null default now()
);

create index if not exists wpp_integration_events_org_created
  on public.wpp_integration_events (organization_id, created_at desc);
create index if not exists wpp_integration_events_integration
  on public.wpp_integration_events (integration_id);

comment on table public.wpp_integration_events is
  'Audit trail of WPP integration changes. Owners and admins of the organisation read it; details never hold secrets.';

create table if not exists public.wpp_idempotency_keys (
  user_id uuid not null,
  key text not null,
  organization_id uuid not null,
  fingerprint text not null,
  -- in_flight while the first request runs (until claim_expires_at, so a crash frees the key).
  state text not null check (state in ('in_flight', 'done')),
  claim_id uuid,
  claim_expires_at timestamptz,
  http_status integer,
  response jsonb,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (user_id, key)
);

create index if not exists wpp_idempotency_keys_expires on public.wpp_idempotency_keys (expires_at);

comment on table public.wpp_idempotency_keys is
  'First answers of wpp-create requests sent with an Idempotency-Key, replayed for repeats. service_role only.';

-- Secret-looking keys are recognised by name: the camelCase convention of the CRM (wppApiKey,
-- wppJwtToken, wppWebhookSecret) plus snake/kebab spellings (api_key, webhook_secret). Webhook
-- URLs are stripped too: the platform signs nothing, so such a URL carries a secret. Erring on
-- the side of stripping is deliberate: a stripped harmless value costs a UI field, a leaked key
-- costs the WhatsApp number.
create or replace function public.strip_secret_settings(p_settings jsonb) returns jsonb
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
  'settings without secret-looking keys (…Key, …Token, …Secret, api_key, webhook_secret, webhook URLs), recursively.';

-- Whoever writes an event (the RPCs, an operator), its details go through the same filter.
create or replace function private.wpp_strip_event_details() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.details := public.strip_secret_settings(coalesce(new.details, '{}'::jsonb));
  return new;
end;
$$;

revoke all on function private.wpp_strip_event_details() from public;

drop trigger if exists wpp_integration_events_strip_details on public.wpp_integration_events;
create trigger wpp_integration_events_strip_details
  before insert or update on public.wpp_integration_events
  for each row execute function private.wpp_strip_event_details();

create or replace function private.wpp_touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

revoke all on function private.wpp_touch_updated_at() from public;

drop trigger if exists wpp_integration_state_updated_at on public.wpp_integration_state;
create trigger wpp_integration_state_updated_at
  before update on public.wpp_integration_state
  for each row execute function private.wpp_touch_updated_at();

-- One predicate for "can this stored session be used as it is". STABLE: it reads the
-- placeholder list, as its owner, since the view below runs it for browser callers.
create or replace function public.wpp_session_is_valid(p_settings jsonb, p_session_state text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    jsonb_typeof(p_settings -> 'wppApiKey') = 'string'
      and btrim(p_settings ->> 'wppApiKey') <> ''
      and jsonb_typeof(p_settings -> 'wppAccountNumber') = 'string'
      and btrim(p_settings ->> 'wppAccountNumber') <> ''
      and not exists (
        select 1 from public.wpp_session_placeholders ph
         where lower(ph.value) = lower(btrim(p_settings ->> 'wppAccountNumber'))
      )
      and p_session_state is distinct from 'needs_new_session',
    false
  )
$$;

comment on function public.wpp_session_is_valid(jsonb, text) is
  'true iff wppApiKey and wppAccountNumber are non-empty strings, the account number is not a placeholder and the state is not needs_new_session.';

-- Row-level security on this project's tables. No policy means no access for the API roles;
-- service_role bypasses RLS, and the SECURITY DEFINER RPCs run as their owner.
alter table public.wpp_session_placeholders enable row level security;
alter table public.wpp_integration_state enable row level security;
alter table public.wpp_integration_events enable row level security;
alter table public.wpp_idempotency_keys enable row level security;

drop policy if exists "owners and admins read their organisation's events"
  on public.wpp_integration_events;
create policy "owners and admins read their organisation's events"
  on public.wpp_integration_events
  for select to authenticated
  using (
    organization_id = (select private.wpp_current_org())
    and (select private.wpp_current_role()) in ('owner', 'admin')
  );

revoke all on table public.wpp_session_placeholders, public.wpp_integration_state,
  public.wpp_idempotency_keys from anon, authenticated;
revoke all on table public.wpp_integration_events from anon;
revoke insert, update, delete, truncate, references, trigger
  on table public.wpp_integration_events from authenticated;
grant select on table public.wpp_integration_events to authenticated;
grant all on table public.wpp_session_placeholders, public.wpp_integration_state,
  public.wpp_integration_events, public.wpp_idempotency_keys to service_role;

-- The secret settings of the CRM's table. RLS filters rows, never columns, so `settings`
-- (wppApiKey, wppJwtToken, ...) is kept from the browser roles with column privileges: anon
-- loses SELECT on the table, authenticated keeps SELECT on every column except `settings`. The
-- CRM's service-role functions (wpp-send, ...) read settings as before. Consequence for a
-- browser: `select('*')` (PostgREST expands it to every column) is refused with 42501; name the
-- columns, or read public.messenger_integrations_public (below). Columns the CRM adds later are
-- not granted automatically: re-run this block (it is idempotent) after adding one.
do $$
declare
  v_columns text;
begin
  select string_agg(quote_ident(c.column_name), ', ' order by c.ordinal_position)
    into v_columns
    from information_schema.columns c
   where c.table_schema = 'public'
     and c.table_name = 'messenger_integrations'
     and c.column_name <> 'settings';
  revoke select on table public.messenger_integrations from anon, authenticated;
  execute format('grant select (%s) on public.messenger_integrations to authenticated', v_columns);
end
$$;

-- What a browser should read: safe columns, settings with secrets stripped, and the connection as
-- this project knows it. It runs as its owner (it must read settings to strip it), so it filters
-- rows itself: only the caller's organisation. security_barrier keeps a caller's own functions in
-- a WHERE clause from seeing rows before that filter.
create or replace view public.messenger_integrations_public
with (security_barrier = true)
as
select
  i.id,
  i.organization_id,
  i.name,
  i.messenger_type,
  i.provider,
  i.is_active,
  i.is_primary,
  public.strip_secret_settings(i.settings) as public_settings,
  case when i.provider = 'wpp' then nullif(btrim(i.settings ->> 'wppAccountNumber'), '') end
    as session,
  case
    when i.provider <> 'wpp' then null
    when s.disconnected_at is not null and not i.is_active then 'disconnected'
    when not public.wpp_session_is_valid(i.settings, s.session_state) then 'not_configured'
    when s.session is distinct from btrim(i.settings ->> 'wppAccountNumber') then 'unknown'
    else s.connection
  end as connection,
  s.checked_at as connection_checked_at,
  i.created_at,
  i.updated_at
from public.messenger_integrations i
left join public.wpp_integration_state s on s.integration_id = i.id
where i.organization_id = (select private.wpp_current_org());

comment on view public.messenger_integrations_public is
  'The caller''s organisation''s messenger integrations without secrets: settings → public_settings, plus the WhatsApp connection as wpp-connect knows it. What a browser should read instead of select(*) on messenger_integrations.';

revoke all on table public.messenger_integrations_public from anon, authenticated;
grant select on table public.messenger_integrations_public to authenticated, service_role;

-- A view's callers need EXECUTE on the functions it calls; both are harmless predicates.
revoke all on function public.strip_secret_settings(jsonb) from public, anon;
revoke all on function public.wpp_session_is_valid(jsonb, text) from public, anon;
grant execute on function public.strip_secret_settings(jsonb) to authenticated, service_role;
grant execute on function public.wpp_session_is_valid(jsonb, text) to authenticated, service_role;
