-- The decisions that must be atomic are SQL functions the edge functions call with supabase.rpc,
-- one concern a file (applied in name order, as `supabase db push` applies them):
--   20261201000300_wpp_rpc_helpers       private helpers the RPCs share (this file)
--   20261201000310_wpp_rpc_context       wpp_context: read-only, the caller and the integration a
--                                        request is about, with its stored connection. The only
--                                        call of a plain click on a usable session, and of a
--                                        status poll on fresh state.
--   20261201000320_wpp_rpc_provisioning  wpp_provision_begin (under a per-organisation lock: picks
--                                        or inserts the row, answers reuse | create | busy |
--                                        cooldown | limit | not_found), _complete (stores the
--                                        created session for the lease holder, rotates the webhook
--                                        secret, hands the creator the refresh lease), _fail
--                                        (releases the lease; an unknown outcome starts a cooldown)
--   20261201000330_wpp_rpc_refresh       wpp_refresh_begin/_end: one platform refresh (status,
--                                        webhook, start, QR) at a time; wpp_store_token
--   20261201000340_wpp_rpc_webhook       wpp_webhook_event: a platform event, found by the hash of
--                                        the URL's secret
--   20261201000350_wpp_rpc_disconnect    wpp_disconnect/_stopped
--   20261201000360_wpp_rpc_idempotency   wpp_idempotency_claim/_finish (wpp-create's
--                                        Idempotency-Key)
--   20261201000370_wpp_rpc_audit         wpp_record_event: audit events the functions write
--
-- All public RPCs are SECURITY DEFINER with an empty search_path and executable by service_role
-- only: they return credentials and bypass RLS. Those that wait for locks set lock_timeout, so a
-- row held by someone else's transaction makes them fail fast (SQLSTATE 55P03) instead of
-- outliving the request. Errors raised on purpose use SQLSTATE class 'WP'; the text before the
-- colon is stable:
--   WP400 invalid_argument     WP404 not_found     WP409 lease_lost     WP422 invalid_session

create or replace function private.wpp_is_placeholder(p_session text) returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (
    select 1 from public.wpp_session_placeholders ph
     where lower(ph.value) = lower(btrim(p_session))
  )
$$;

create or replace function private.wpp_account(p_settings jsonb) returns text
language sql
immutable
set search_path = ''
as $$
  select case when jsonb_typeof(p_settings -> 'wppAccountNumber') = 'string'
    then nullif(btrim(p_settings ->> 'wppAccountNumber'), '') end
$$;

create or replace function private.wpp_ms(p_at timestamptz) returns bigint
language sql
immutable
set search_path = ''
as $$
  select floor(extract(epoch from p_at) * 1000)::bigint
$$;

-- The row of this project's own state for an integration, created on first need: rows the CRM
-- made before (or after) this project was installed have none.
create or replace function private.wpp_state_for(p_row public.messenger_integrations)
returns public.wpp_integration_state
language plpgsql
set search_path = ''
as $$
declare
  v_state public.wpp_integration_state;
begin
  -- A row made elsewhere already holds its session: the state describes it from the start, so
  -- what is learned about it (and the webhook registered for it) is kept.
  insert into public.wpp_integration_state (integration_id, organization_id, session)
  values (p_row.id, p_row.organization_id,
          case when not private.wpp_is_placeholder(private.wpp_account(p_row.settings))
            then private.wpp_account(p_row.settings) end)
  on conflict (integration_id) do nothing;
  select s.* into v_state from public.wpp_integration_state s
   where s.integration_id = p_row.id
   for update;
  return v_state;
end;
$$;

-- What a function needs to know about one integration. Credentials included (service_role only);
-- the QR only when p_with_qr (owners and admins).
create or replace function private.wpp_snapshot(
  p_row public.messenger_integrations,
  p_state public.wpp_integration_state,
  p_fresh_seconds integer,
  p_with_qr boolean
) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_acct text := private.wpp_account(p_row.settings);
  -- Never NULL: every boolean below is answered as true or false (the functions validate it).
  v_current boolean := coalesce(p_state.session = v_acct, false);
  v_fresh boolean := v_current and p_state.checked_at > v_now - make_interval(secs => p_fresh_seconds);
begin
  return jsonb_build_object(
    'integration_id', p_row.id,
    'organization_id', p_row.organization_id,
    'name', p_row.name,
    'is_active', p_row.is_active,
    'is_primary', p_row.is_primary,
    'session', v_acct,
    'api_key', case when jsonb_typeof(p_row.settings -> 'wppApiKey') = 'string'
      then nullif(btrim(p_row.settings ->> 'wppApiKey'), '') end,
    'jwt_token', nullif(p_row.settings ->> 'wppJwtToken', ''),
    'jwt_expires_at', case
      when jsonb_typeof(p_row.settings -> 'wppJwtExpiresAt') = 'number'
        then p_row.settings -> 'wppJwtExpiresAt'
      when p_row.settings ->> 'wppJwtExpiresAt' ~ '^[0-9]{1,18}$'
        then to_jsonb((p_row.settings ->> 'wppJwtExpiresAt')::bigint)
    end,
    'platform_org_id', coalesce(nullif(p_row.settings ->> 'wppSubOrgId', ''), p_row.organization_id::text),
    'valid', public.wpp_session_is_valid(p_row.settings, p_state.session_state),
    'placeholder', v_acct is not null and private.wpp_is_placeholder(v_acct),
    'session_state', coalesce(p_state.session_state, 'ok'),
    'provisioning', p_state.lease_id is not null and p_state.lease_expires_at > v_now,
    'cooldown', p_state.cooldown_until is not null and p_state.cooldown_until > v_now,
    'cooldown_until', p_state.cooldown_until,
    'refreshing', p_state.refresh_lease_id is not null and p_state.refresh_lease_expires_at > v_now,
    'connection', case when v_current then p_state.connection else 'unknown' end,
    'connection_at', case when v_current then private.wpp_ms(p_state.connection_at) end,
    'fresh', coalesce(v_fresh, false),
    'qr', case when v_current and p_with_qr and p_state.connection = 'qr' then p_state.qr end,
    'qr_at', case when v_current and p_state.connection = 'qr' then private.wpp_ms(p_state.qr_at) end,
    'ever_connected', v_current and p_state.ever_connected_at is not null,
    'disconnected', p_state.disconnected_at is not null and not p_row.is_active,
    'stop_pending', coalesce(p_state.stop_pending, false),
    -- A session made elsewhere has a state row but no registered hash yet: not current.
    'webhook_current', v_current
      and coalesce(p_state.webhook_registered_hash = p_state.webhook_secret_hash, false),
    'session_created_at', case when v_current then private.wpp_ms(p_state.session_created_at) end
  );
end;
$$;

-- The rule for "the organisation's WhatsApp" when a request names no number: its active primary
-- wpp row, else its oldest active wpp row, else its primary or oldest inactive one (which a
-- click reactivates). A legacy row (client_system, no apiKey, not primary, inactive) is adopted
-- by this rule, so a click fills it in place instead of adding a second row.
create or replace function private.wpp_pick(p_organization_id uuid)
returns public.messenger_integrations
language sql
stable
set search_path = ''
as $$
  select i.*
    from public.messenger_integrations i
   where i.organization_id = p_organization_id
     and i.provider = 'wpp'
   order by i.is_active desc, i.is_primary desc, i.created_at, i.id
   limit 1
$$;

create or replace function private.wpp_event(
  p_organization_id uuid,
  p_integration_id uuid,
  p_actor uuid,
  p_action text,
  p_details jsonb
) returns void
language sql
set search_path = ''
as $$
  insert into public.wpp_integration_events
    (organization_id, integration_id, actor_user_id, action, details)
  values (p_organization_id, p_integration_id, p_actor, p_action,
          jsonb_strip_nulls(coalesce(p_details, '{}'::jsonb)))
$$;

-- A new wpp row in the CRM's table. Every column the CRM might require is given: a fresh random
-- webhook_key (the CRM's own, shown to members; not this project's secret), timestamps, a name.
-- Primary only when the organisation has no primary WhatsApp row, so a "one primary" constraint,
-- if the CRM has one, is never violated.
create or replace function private.wpp_insert_row(p_organization_id uuid, p_settings jsonb)
returns public.messenger_integrations
language plpgsql
set search_path = ''
as $$
declare
  v_row public.messenger_integrations;
  v_count integer;
  v_primary boolean;
begin
  select count(*) into v_count from public.messenger_integrations i
   where i.organization_id = p_organization_id and i.provider = 'wpp';
  v_primary := not exists (
    select 1 from public.messenger_integrations i
     where i.organization_id = p_organization_id and i.messenger_type = 'whatsapp' and i.is_primary
  );
  insert into public.messenger_integrations
    (id, organization_id, name, messenger_type, provider, is_active, is_primary, webhook_key,
     settings, created_at, updated_at)
  values
    (gen_random_uuid(), p_organization_id,
     case when v_count = 0 then 'WhatsApp' else format('WhatsApp %s', v_count + 1) end,
     'whatsapp', 'wpp', true, v_primary, encode(extensions.gen_random_bytes(16), 'hex'),
     p_settings, now(), now())
  returning * into v_row;
  return v_row;
end;
$$;

-- Applies what was learned about a session (an event, or a platform read) to the locked state,
-- in the order the platform produced it. Returns whether it changed the stored connection.
create or replace function private.wpp_observe(
  p_state public.wpp_integration_state,
  p_current_session text,
  p_session text,
  p_connection text,
  p_qr text,
  p_at timestamptz
) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_same_session boolean := p_state.session is not distinct from p_session;
begin
  if p_session is null or p_session is distinct from p_current_session then
    return false; -- not the row's session (replaced, or another account): never stored
  end if;
  if p_connection not in ('starting', 'qr', 'connected', 'offline')
     or (p_connection = 'qr' and nullif(btrim(p_qr), '') is null) then
    return false;
  end if;
  if v_same_session and p_state.connection_at is not null then
    if p_at < p_state.connection_at then
      return false; -- older than what is stored
    end if;
    -- At the same instant a QR cannot follow a link: the QR was the earlier of the two.
    if p_at = p_state.connection_at and p_state.connection = 'connected'
       and p_connection in ('qr', 'starting') then
      return false;
    end if;
  end if;
  update public.wpp_integration_state s
     set session = p_session,
         connection = p_connection,
         connection_at = p_at,
         checked_at = greatest(clock_timestamp(), p_at),
         qr = case when p_connection = 'qr' then p_qr end,
         qr_at = case when p_connection = 'qr' then p_at end,
         ever_connected_at = case
           when p_connection = 'connected' then coalesce(
             case when v_same_session then s.ever_connected_at end, p_at)
           when v_same_session then s.ever_connected_at
         end
   where s.integration_id = p_state.integration_id;
  return true;
end;
$$;

revoke all on function private.wpp_is_placeholder(text) from public;
revoke all on function private.wpp_account(jsonb) from public;
revoke all on function private.wpp_ms(timestamptz) from public;
revoke all on function private.wpp_state_for(public.messenger_integrations) from public;
revoke all on function private.wpp_snapshot(public.messenger_integrations,
  public.wpp_integration_state, integer, boolean) from public;
revoke all on function private.wpp_pick(uuid) from public;
revoke all on function private.wpp_event(uuid, uuid, uuid, text, jsonb) from public;
revoke all on function private.wpp_insert_row(uuid, jsonb) from public;
revoke all on function private.wpp_observe(public.wpp_integration_state, text, text, text, text,
  timestamptz) from public;
