-- The decisions that must be atomic, as SQL functions the edge functions call with supabase.rpc.
--
-- All are SECURITY DEFINER with an empty search_path and executable by service_role only: they
-- return credentials and bypass RLS. Those that wait for locks set lock_timeout, so a row held by
-- someone else's transaction makes them fail fast (SQLSTATE 55P03) instead of outliving the
-- request. Errors raised on purpose use SQLSTATE class 'WP'; the text before the colon is stable:
--   WP400 invalid_argument     WP404 not_found     WP409 lease_lost     WP422 invalid_session
--
--   wpp_context              read-only: the caller (organisation, role) and the integration a
--                            request is about, with its stored connection. The only call of a
--                            plain click on a usable session, and of a status poll on fresh state.
--   wpp_provision_begin      under a per-organisation lock: picks (or inserts) the row and answers
--                            reuse | create | busy | cooldown | limit | not_found.
--   wpp_provision_complete   stores the created session for the lease holder; rotates the webhook
--                            secret; hands the creator the refresh lease for the first start.
--   wpp_provision_fail       releases the lease; an unknown outcome starts a cooldown instead.
--   wpp_refresh_begin/_end   one platform refresh (status, webhook, start, QR) at a time.
--   wpp_webhook_event        a platform event, found by the hash of the URL's secret.
--   wpp_store_token          caches a platform token for the session it was minted for.
--   wpp_disconnect/_stopped  marks a number disconnected; records the platform stop.
--   wpp_idempotency_claim/_finish  the Idempotency-Key of wpp-create.
--   wpp_record_event         audit events the edge functions write themselves.

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

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_context(
  p_user_id uuid,
  p_integration_id uuid default null,
  p_session text default null,
  p_fresh_seconds integer default 30
) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_org uuid;
  v_role text;
  v_row public.messenger_integrations;
  v_state public.wpp_integration_state;
  v_session text := nullif(btrim(p_session), '');
  v_replaced uuid;
  v_answer jsonb;
begin
  select c.organization_id, c.role into v_org, v_role from private.wpp_caller(p_user_id) c;
  v_answer := jsonb_build_object('organization_id', v_org, 'role', v_role,
                                 'found', false, 'replaced', false, 'integration', null);
  if v_org is null then
    return v_answer;
  end if;

  if p_integration_id is not null then
    select i.* into v_row from public.messenger_integrations i
     where i.id = p_integration_id and i.organization_id = v_org and i.provider = 'wpp';
  elsif v_session is not null then
    -- The CRM's whatsapp_sessions name sessions 'wpp_<session>'; both spellings are accepted.
    select i.* into v_row from public.messenger_integrations i
     where i.organization_id = v_org and i.provider = 'wpp'
       and private.wpp_account(i.settings) in (v_session, regexp_replace(v_session, '^wpp_', ''))
     order by i.is_active desc, i.created_at
     limit 1;
    if v_row.id is null then
      select s.integration_id into v_replaced from public.wpp_integration_state s
       where s.organization_id = v_org
         and (v_session = any (s.replaced_sessions)
              or regexp_replace(v_session, '^wpp_', '') = any (s.replaced_sessions))
       limit 1;
      if v_replaced is not null then
        return v_answer || jsonb_build_object('replaced', true, 'replaced_by', v_replaced);
      end if;
    end if;
  else
    v_row := private.wpp_pick(v_org);
  end if;

  if v_row.id is null then
    return v_answer;
  end if;
  select s.* into v_state from public.wpp_integration_state s where s.integration_id = v_row.id;
  return v_answer || jsonb_build_object(
    'found', true,
    'integration', private.wpp_snapshot(v_row, v_state, p_fresh_seconds, v_role in ('owner', 'admin'))
  );
end;
$$;

comment on function public.wpp_context(uuid, uuid, text, integer) is
  'service_role only. Read-only: the caller''s organisation and role, and the wpp integration a request is about (by id, by session, or by the pick rule) with its stored connection. Returns credentials.';

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_provision_begin(
  p_organization_id uuid,
  p_actor uuid,
  p_mode text default 'connect',
  p_integration_id uuid default null,
  p_lease_seconds integer default 60,
  p_repeat_window_seconds integer default 60,
  p_max_numbers integer default 10,
  p_dead_session text default null,
  p_fresh_seconds integer default 30
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_row public.messenger_integrations;
  v_state public.wpp_integration_state;
  v_now timestamptz;
  v_inserted boolean := false;
  v_pending boolean := false;
  v_dead boolean := false;
  v_acct text;
  v_key text;
  v_valid boolean;
  v_looks_valid boolean;
  v_reason text;
  v_lease uuid;
  v_expires timestamptz;
  v_count integer;
  v_base jsonb;
begin
  if p_organization_id is null then
    raise exception using errcode = 'WP400',
      message = 'invalid_argument: p_organization_id is required';
  end if;
  if p_mode is null or p_mode not in ('connect', 'recreate', 'add_new') then
    raise exception using errcode = 'WP400',
      message = 'invalid_argument: p_mode must be connect, recreate or add_new';
  end if;
  if p_lease_seconds is null or p_lease_seconds < 1 or p_lease_seconds > 3600 then
    raise exception using errcode = 'WP400',
      message = 'invalid_argument: p_lease_seconds must be between 1 and 3600';
  end if;

  -- Concurrent begins of one organisation queue here and each sees what the previous one
  -- committed. An advisory lock, not a row lock on the CRM's organizations row, so a CRM
  -- transaction that holds that row does not stall a click.
  perform pg_advisory_xact_lock(hashtextextended('wpp-connect:' || p_organization_id::text, 0));

  if p_mode = 'add_new' then
    -- A number of this organisation that is being created, or waits for its first scan, is the
    -- answer to a repeated or double-clicked add_new.
    select i.* into v_row
      from public.messenger_integrations i
      join public.wpp_integration_state s on s.integration_id = i.id
     where i.organization_id = p_organization_id and i.provider = 'wpp' and i.is_active
       and ((s.lease_id is not null and s.lease_expires_at > clock_timestamp())
            or s.cooldown_until > clock_timestamp()
            or (public.wpp_session_is_valid(i.settings, s.session_state)
                and s.session = private.wpp_account(i.settings)
                and s.session_created_at is not null
                and s.ever_connected_at is null
                and s.disconnected_at is null))
     order by i.created_at desc
     limit 1;
    v_pending := v_row.id is not null;
    if not v_pending then
      -- A listed number without a usable session (a legacy client_system row, one an earlier
      -- add_new could not create) is filled instead of adding another row beside it: the panel
      -- offers only "add another number" once one is listed.
      select i.* into v_row
        from public.messenger_integrations i
        left join public.wpp_integration_state s on s.integration_id = i.id
       where i.organization_id = p_organization_id and i.provider = 'wpp' and i.is_active
         and not public.wpp_session_is_valid(i.settings, s.session_state)
       order by i.is_primary desc, i.created_at, i.id
       limit 1;
    end if;
    if v_row.id is null then
      select count(*) into v_count from public.messenger_integrations i
       where i.organization_id = p_organization_id and i.provider = 'wpp' and i.is_active;
      if v_count >= p_max_numbers then
        return jsonb_build_object('decision', 'limit', 'count', v_count, 'max', p_max_numbers);
      end if;
      v_row := private.wpp_insert_row(p_organization_id, jsonb_build_object(
        'wppSubOrgId',
        p_organization_id::text || '__wpp__' || encode(extensions.gen_random_bytes(4), 'hex')));
      v_inserted := true;
    end if;
  elsif p_integration_id is not null then
    select i.* into v_row from public.messenger_integrations i
     where i.id = p_integration_id and i.organization_id = p_organization_id
       and i.provider = 'wpp';
    if v_row.id is null then
      return jsonb_build_object('decision', 'not_found');
    end if;
  else
    v_row := private.wpp_pick(p_organization_id);
    if v_row.id is null then
      v_row := private.wpp_insert_row(p_organization_id, '{}'::jsonb);
      v_inserted := true;
    end if;
  end if;

  v_state := private.wpp_state_for(v_row);
  -- The row was read before the state row's lock was granted: a complete that held that lock has
  -- committed a new session since. Read again, or the old (replaced) session would be reused.
  select i.* into v_row from public.messenger_integrations i where i.id = v_row.id;
  if v_row.id is null then
    return jsonb_build_object('decision', 'not_found');
  end if;
  v_acct := private.wpp_account(v_row.settings);
  v_key := case when jsonb_typeof(v_row.settings -> 'wppApiKey') = 'string'
    then nullif(btrim(v_row.settings ->> 'wppApiKey'), '') end;

  -- Only the session still stored can be condemned: a caller holding an outdated view must not
  -- condemn a session someone else just created.
  if p_dead_session is not null and v_acct = btrim(p_dead_session)
     and v_state.session_state <> 'needs_new_session' then
    update public.wpp_integration_state s
       set session_state = 'needs_new_session', repair_reason = 'dead_key'
     where s.integration_id = v_row.id
    returning * into v_state;
    perform private.wpp_event(v_row.organization_id, v_row.id, p_actor, 'dead_key_detected',
      jsonb_build_object('session', v_acct));
    v_dead := true;
  end if;

  v_now := clock_timestamp();
  v_valid := public.wpp_session_is_valid(v_row.settings, v_state.session_state);

  if v_state.lease_id is not null and v_state.lease_expires_at > v_now then
    return private.wpp_snapshot(v_row, v_state, p_fresh_seconds, true) || jsonb_build_object(
      'decision', 'busy', 'reason', 'lease_held',
      'retry_after_seconds',
        greatest(1, ceil(extract(epoch from (v_state.lease_expires_at - v_now))))::integer);
  end if;

  -- A disconnected or inactive row that a click picked becomes active again.
  if not v_row.is_active then
    update public.messenger_integrations i set is_active = true, updated_at = now()
     where i.id = v_row.id returning * into v_row;
    update public.wpp_integration_state s set disconnected_at = null
     where s.integration_id = v_row.id returning * into v_state;
    perform private.wpp_event(v_row.organization_id, v_row.id, p_actor, 'reactivated',
      jsonb_build_object('session', v_acct));
  end if;
  if not v_row.is_primary and not exists (
    select 1 from public.messenger_integrations i
     where i.organization_id = v_row.organization_id and i.messenger_type = 'whatsapp'
       and i.is_primary and i.id <> v_row.id
  ) then
    begin
      update public.messenger_integrations i set is_primary = true, updated_at = now()
       where i.id = v_row.id returning * into v_row;
    exception when unique_violation then
      null; -- a CRM transaction made another row primary meanwhile: this one stays secondary
    end;
  end if;

  v_base := private.wpp_snapshot(v_row, v_state, p_fresh_seconds, true);

  if v_valid and (
    p_mode = 'connect'
    or (p_mode = 'add_new' and v_pending)
    -- Repeat-safe recreate: a session this project created moments ago is what a repeated
    -- force_recreate (the CRM's helper retries, a double click) asked for.
    or (p_mode = 'recreate' and not v_dead and v_state.session = v_acct
        and v_state.session_created_at > v_now - make_interval(secs => p_repeat_window_seconds))
  ) then
    return v_base || jsonb_build_object(
      'decision', 'reuse',
      'reason', case
        when p_mode = 'connect' then 'valid_session'
        when p_mode = 'add_new' then 'pending_number'
        else 'recently_created' end);
  end if;

  if v_state.cooldown_until > v_now then
    return v_base || jsonb_build_object(
      'decision', 'cooldown',
      'retry_after_seconds',
        greatest(1, ceil(extract(epoch from (v_state.cooldown_until - v_now))))::integer);
  end if;
  -- A platform start of the current session may be in flight; replacing the session now could
  -- let that start revive the session just stopped. It ends within one platform call.
  if v_state.refresh_lease_id is not null and v_state.refresh_lease_expires_at > v_now then
    return v_base || jsonb_build_object(
      'decision', 'busy', 'reason', 'refresh_in_flight',
      'retry_after_seconds',
        greatest(1, ceil(extract(epoch from (v_state.refresh_lease_expires_at - v_now))))::integer);
  end if;

  v_looks_valid := v_acct is not null and v_key is not null and not private.wpp_is_placeholder(v_acct);
  v_reason := case
    when v_inserted and p_mode = 'add_new' then 'add_new'
    when v_inserted then 'no_integration'
    when v_dead then 'dead_key'
    when v_acct is not null and private.wpp_is_placeholder(v_acct) then 'placeholder_session'
    when v_acct is null or v_key is null then 'missing_credentials'
    when v_state.session_state = 'needs_new_session' then coalesce(v_state.repair_reason, 'needs_new_session')
    when p_mode = 'add_new' then 'add_new'
    else 'forced'
  end;

  -- The create's complete must write this row. A transaction holding it (a CRM function writing
  -- settings) would leave the new platform client unstorable: better a 55P03 (database_busy)
  -- now, before any client exists. The state row is locked already: the same order as complete.
  perform 1 from public.messenger_integrations i where i.id = v_row.id for no key update;

  v_lease := gen_random_uuid();
  v_expires := v_now + make_interval(secs => p_lease_seconds);
  if v_state.lease_id is not null then
    -- The previous holder outlived its lease; its complete now fails with lease_lost.
    perform private.wpp_event(v_row.organization_id, v_row.id, p_actor, 'lease_taken_over',
      jsonb_build_object('previous_lease_expired_at', v_state.lease_expires_at, 'reason', v_reason));
  end if;
  update public.wpp_integration_state s
     set lease_id = v_lease, lease_expires_at = v_expires, lease_reason = v_reason
   where s.integration_id = v_row.id;

  return v_base || jsonb_build_object(
    'decision', 'create',
    'reason', v_reason,
    'lease_id', v_lease,
    'lease_expires_at', v_expires,
    -- Handed back so the caller can stop the old session once the new one is stored.
    'old_session', case when v_looks_valid then v_acct end,
    'old_api_key', case when v_looks_valid then v_key end,
    'old_jwt_token', case when v_looks_valid then nullif(v_row.settings ->> 'wppJwtToken', '') end,
    'old_jwt_expires_at', case when v_looks_valid then v_base -> 'jwt_expires_at' end);
end;
$$;

comment on function public.wpp_provision_begin(uuid, uuid, text, uuid, integer, integer, integer, text, integer) is
  'service_role only. Decides reuse | create | busy | cooldown | limit | not_found for a connect, recreate or add_new of an organisation; create hands out a lease. Returns credentials.';

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_provision_complete(
  p_integration_id uuid,
  p_lease_id uuid,
  p_session text,
  p_api_key text,
  p_actor uuid default null,
  p_details jsonb default '{}'::jsonb,
  p_refresh_lease_seconds integer default 30
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_row public.messenger_integrations;
  v_state public.wpp_integration_state;
  v_old text;
  v_refresh uuid := gen_random_uuid();
  v_now timestamptz := clock_timestamp();
  v_action text;
  v_reason text;
begin
  select s.* into v_state from public.wpp_integration_state s
   where s.integration_id = p_integration_id
   for update;
  -- An expired lease still counts while nobody has taken it over: a slow create that finally
  -- succeeded is stored, not thrown away.
  if v_state.integration_id is null or p_lease_id is null
     or v_state.lease_id is distinct from p_lease_id then
    raise exception using errcode = 'WP409',
      message = 'lease_lost: the provisioning lease is no longer held by this request';
  end if;
  if p_session is null or btrim(p_session) = '' or p_api_key is null or btrim(p_api_key) = '' then
    raise exception using errcode = 'WP422',
      message = 'invalid_session: session and apiKey must be non-empty';
  end if;
  if private.wpp_is_placeholder(p_session) then
    raise exception using errcode = 'WP422',
      message = format('invalid_session: %s is a placeholder, not a session', p_session);
  end if;

  select i.* into v_row from public.messenger_integrations i where i.id = p_integration_id;
  v_old := private.wpp_account(v_row.settings);
  v_reason := v_state.lease_reason;

  -- A merge: every other key of the CRM's settings survives. A cached token belongs to the
  -- previous apiKey, so it goes.
  update public.messenger_integrations i
     set settings = (i.settings - 'wppJwtToken' - 'wppJwtExpiresAt')
           || jsonb_build_object('wppAccountNumber', btrim(p_session), 'wppApiKey', p_api_key),
         updated_at = now()
   where i.id = p_integration_id;

  update public.wpp_integration_state s
     set session = btrim(p_session),
         session_created_at = v_now,
         session_state = 'ok',
         repair_reason = null,
         lease_id = null, lease_expires_at = null, lease_reason = null,
         cooldown_until = null,
         last_provision_error = null,
         replaced_sessions = case
           when v_old is not null and v_old <> btrim(p_session) and not private.wpp_is_placeholder(v_old)
             then (array_append(s.replaced_sessions, v_old))[greatest(1, cardinality(s.replaced_sessions) - 48):]
           else s.replaced_sessions end,
         connection = 'starting', connection_at = v_now, checked_at = v_now,
         qr = null, qr_at = null, ever_connected_at = null, disconnected_at = null,
         stop_pending = false,
         -- Events sent to the previous session's URL are refused from now on.
         webhook_secret = translate(encode(extensions.gen_random_bytes(32), 'base64'), '+/=', '-_'),
         -- The creator starts the new session next; concurrent clicks wait for its QR.
         refresh_lease_id = v_refresh,
         refresh_lease_expires_at = v_now + make_interval(secs => p_refresh_lease_seconds)
   where s.integration_id = p_integration_id
  returning * into v_state;

  -- 'recreated' only when a real session is replaced; filling a legacy placeholder row is its
  -- first real session.
  v_action := case when v_old is null or private.wpp_is_placeholder(v_old)
    then 'created' else 'recreated' end;
  perform private.wpp_event(v_row.organization_id, v_row.id, p_actor, v_action,
    coalesce(p_details, '{}'::jsonb) || jsonb_build_object(
      'session', btrim(p_session),
      'previous_session', v_old,
      'reason', v_reason));

  return jsonb_build_object(
    'integration_id', v_row.id,
    'session', btrim(p_session),
    'action', v_action,
    'webhook_secret', v_state.webhook_secret,
    'refresh_lease_id', v_refresh);
end;
$$;

comment on function public.wpp_provision_complete(uuid, uuid, text, text, uuid, jsonb, integer) is
  'service_role only. Stores the new session and apiKey for the lease holder (other settings keys kept), rotates the webhook secret and hands the refresh lease to the creator; WP409 lease_lost otherwise.';

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_provision_fail(
  p_integration_id uuid,
  p_lease_id uuid,
  p_reason text,
  p_details jsonb default '{}'::jsonb,
  p_actor uuid default null,
  p_outcome_unknown boolean default false,
  p_cooldown_seconds integer default 30
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_state public.wpp_integration_state;
  v_released boolean := false;
  v_until timestamptz;
begin
  select s.* into v_state from public.wpp_integration_state s
   where s.integration_id = p_integration_id
   for update;
  if v_state.integration_id is null then
    raise exception using errcode = 'WP404',
      message = format('not_found: no integration %s', p_integration_id);
  end if;
  if p_lease_id is not null and v_state.lease_id = p_lease_id then
    v_until := case when p_outcome_unknown
      then clock_timestamp() + make_interval(secs => greatest(1, p_cooldown_seconds)) end;
    update public.wpp_integration_state s
       set lease_id = null, lease_expires_at = null, lease_reason = null,
           last_provision_error = left(coalesce(p_reason, 'unknown'), 1000),
           cooldown_until = coalesce(v_until, s.cooldown_until)
     where s.integration_id = p_integration_id;
    v_released := true;
  end if;
  -- Recorded even when the lease was gone: a failure nobody can attribute is still a failure.
  perform private.wpp_event(v_state.organization_id, p_integration_id, p_actor,
    case when p_outcome_unknown then 'create_outcome_unknown' else 'failed' end,
    coalesce(p_details, '{}'::jsonb) || jsonb_build_object(
      'reason', left(coalesce(p_reason, 'unknown'), 1000),
      'released', v_released,
      'cooldown_until', v_until));
  return jsonb_build_object('released', v_released, 'cooldown_until', v_until);
end;
$$;

comment on function public.wpp_provision_fail(uuid, uuid, text, jsonb, uuid, boolean, integer) is
  'service_role only. Releases the lease if still held and records failed, or create_outcome_unknown with a cooldown during which no create is allowed.';

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_refresh_begin(
  p_integration_id uuid,
  p_session text,
  p_lease_seconds integer default 30,
  p_fresh_seconds integer default 30,
  p_with_qr boolean default false
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_row public.messenger_integrations;
  v_state public.wpp_integration_state;
  v_now timestamptz;
  v_snapshot jsonb;
  v_lease uuid;
begin
  select i.* into v_row from public.messenger_integrations i where i.id = p_integration_id;
  if v_row.id is null then
    return jsonb_build_object('granted', false, 'reason', 'not_found');
  end if;
  v_state := private.wpp_state_for(v_row);
  -- Read again once the state row is locked: a complete may have replaced the session meanwhile.
  select i.* into v_row from public.messenger_integrations i where i.id = p_integration_id;
  if v_row.id is null then
    return jsonb_build_object('granted', false, 'reason', 'not_found');
  end if;
  v_now := clock_timestamp();
  v_snapshot := private.wpp_snapshot(v_row, v_state, p_fresh_seconds, p_with_qr);

  if private.wpp_account(v_row.settings) is distinct from btrim(p_session)
     or not public.wpp_session_is_valid(v_row.settings, v_state.session_state) then
    return v_snapshot || jsonb_build_object('granted', false, 'reason', 'replaced');
  end if;
  if not v_row.is_active then
    return v_snapshot || jsonb_build_object('granted', false, 'reason', 'inactive');
  end if;
  if v_state.lease_id is not null and v_state.lease_expires_at > v_now then
    return v_snapshot || jsonb_build_object('granted', false, 'reason', 'provisioning');
  end if;
  if v_state.refresh_lease_id is not null and v_state.refresh_lease_expires_at > v_now then
    return v_snapshot || jsonb_build_object('granted', false, 'reason', 'in_flight');
  end if;
  -- Someone refreshed while this caller was deciding: their answer is the caller's answer.
  if (v_snapshot ->> 'fresh')::boolean
     and (v_snapshot ->> 'connection' = 'connected' or v_snapshot ->> 'connection' = 'qr') then
    return v_snapshot || jsonb_build_object('granted', false, 'reason', 'fresh');
  end if;

  v_lease := gen_random_uuid();
  update public.wpp_integration_state s
     set refresh_lease_id = v_lease,
         refresh_lease_expires_at = v_now + make_interval(secs => p_lease_seconds)
   where s.integration_id = p_integration_id;
  return v_snapshot || jsonb_build_object(
    'granted', true, 'refresh_lease_id', v_lease, 'webhook_secret', v_state.webhook_secret);
end;
$$;

comment on function public.wpp_refresh_begin(uuid, text, integer, integer, boolean) is
  'service_role only. Grants the one platform refresh (status, webhook, start, QR) of a session, unless the session was replaced, a create or another refresh is running, or the stored state is already fresh.';

create or replace function public.wpp_refresh_end(
  p_integration_id uuid,
  p_refresh_lease_id uuid,
  p_session text,
  p_connection text default null,
  p_qr text default null,
  p_observed_at timestamptz default null,
  p_webhook_registered boolean default false
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_row public.messenger_integrations;
  v_state public.wpp_integration_state;
  v_applied boolean := false;
begin
  select s.* into v_state from public.wpp_integration_state s
   where s.integration_id = p_integration_id
   for update;
  -- The row after the lock: read before it, a session a complete replaced meanwhile would still
  -- look current, and an observation of it would overwrite the new session's state.
  select i.* into v_row from public.messenger_integrations i where i.id = p_integration_id;
  if v_row.id is null then
    return jsonb_build_object('released', false, 'applied', false);
  end if;
  if p_connection is not null then
    v_applied := private.wpp_observe(v_state, private.wpp_account(v_row.settings), btrim(p_session),
      p_connection, p_qr, coalesce(p_observed_at, clock_timestamp()));
  end if;
  update public.wpp_integration_state s
     set refresh_lease_id = null, refresh_lease_expires_at = null,
         -- The holder registered the URL of the secret current when its lease began; a rotation
         -- since then would have needed a new session, which ends the lease first.
         webhook_registered_hash = case
           when p_webhook_registered and s.session = btrim(p_session) then s.webhook_secret_hash
           else s.webhook_registered_hash end
   where s.integration_id = p_integration_id and s.refresh_lease_id = p_refresh_lease_id;
  return jsonb_build_object('released', found, 'applied', v_applied);
end;
$$;

comment on function public.wpp_refresh_end(uuid, uuid, text, text, text, timestamptz, boolean) is
  'service_role only. Stores what a refresh learned (if the session is still current and nothing newer is stored) and releases the refresh lease.';

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_webhook_event(
  p_secret_hash bytea,
  p_account text default null,
  p_connection text default null,
  p_qr text default null,
  p_event_at timestamptz default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '2s'
as $$
declare
  v_state public.wpp_integration_state;
  v_row public.messenger_integrations;
  v_acct text;
  v_applied boolean := false;
  v_account text := nullif(btrim(p_account), '');
begin
  -- The lookup compares SHA-256 digests, never the secret itself. Only a session event takes the
  -- row lock: messages and deliveries, most of the traffic, must not queue behind each other.
  if p_connection is null then
    select s.* into v_state from public.wpp_integration_state s
     where s.webhook_secret_hash = p_secret_hash;
  else
    select s.* into v_state from public.wpp_integration_state s
     where s.webhook_secret_hash = p_secret_hash
     for update;
  end if;
  if v_state.integration_id is null then
    return jsonb_build_object('found', false);
  end if;
  select i.* into v_row from public.messenger_integrations i where i.id = v_state.integration_id;
  v_acct := private.wpp_account(v_row.settings);

  if v_account is not null and v_account is distinct from v_acct then
    -- The URL authenticates one integration; an event naming another account is not trusted with
    -- that account's organisation.
    return jsonb_build_object('found', true, 'integration_id', v_row.id,
      'organization_id', v_row.organization_id, 'session', v_acct, 'applied', false,
      'forward', false, 'reason', 'other_account');
  end if;

  if p_connection is null then
    -- A message or delivery event: the session is alive, which keeps a "connected" fresh. Once
    -- a second is enough: freshness is counted in tens of seconds.
    update public.wpp_integration_state s set checked_at = clock_timestamp()
     where s.integration_id = v_state.integration_id
       and s.connection = 'connected' and s.session = v_acct
       and s.checked_at < clock_timestamp() - interval '1 second';
  else
    v_applied := private.wpp_observe(v_state, v_acct, coalesce(v_account, v_acct), p_connection,
      p_qr, coalesce(p_event_at, clock_timestamp()));
  end if;
  return jsonb_build_object('found', true, 'integration_id', v_row.id,
    'organization_id', v_row.organization_id, 'session', v_acct, 'applied', v_applied,
    'forward', true);
end;
$$;

comment on function public.wpp_webhook_event(bytea, text, text, text, timestamptz) is
  'service_role only. A platform event for the integration whose webhook secret hashes to p_secret_hash: applies session events in order; found=false (and no write) for an unknown secret.';

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_store_token(
  p_integration_id uuid,
  p_session text,
  p_token text,
  p_expires_at bigint
) returns boolean
language plpgsql
security definer
set search_path = ''
set lock_timeout = '2s'
as $$
begin
  if p_token is null or btrim(p_token) = '' then
    raise exception using errcode = 'WP400', message = 'invalid_argument: p_token is required';
  end if;
  -- A merge of two keys, and only while the session the token was minted for is still stored: a
  -- token fetched for a session replaced meanwhile must not be attached to the new one.
  update public.messenger_integrations i
     set settings = (i.settings - 'wppJwtExpiresAt')
       || jsonb_strip_nulls(jsonb_build_object('wppJwtToken', p_token, 'wppJwtExpiresAt', p_expires_at))
   where i.id = p_integration_id
     and p_session is not null
     and private.wpp_account(i.settings) = btrim(p_session);
  return found;
end;
$$;

comment on function public.wpp_store_token(uuid, text, text, bigint) is
  'service_role only. Merges wppJwtToken/wppJwtExpiresAt into settings if p_session is still the stored session; returns whether it stored.';

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_disconnect(
  p_integration_id uuid,
  p_organization_id uuid,
  p_actor uuid
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_row public.messenger_integrations;
  v_state public.wpp_integration_state;
  v_now timestamptz;
  v_valid boolean;
begin
  select i.* into v_row from public.messenger_integrations i
   where i.id = p_integration_id and i.organization_id = p_organization_id and i.provider = 'wpp';
  if v_row.id is null then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  -- The state row first, then the integration row: the order wpp_provision_begin and
  -- wpp_provision_complete take them in, so the three never deadlock.
  v_state := private.wpp_state_for(v_row);
  select i.* into v_row from public.messenger_integrations i where i.id = p_integration_id
   for update;
  v_now := clock_timestamp();
  if v_state.lease_id is not null and v_state.lease_expires_at > v_now then
    return jsonb_build_object('outcome', 'busy', 'reason', 'provisioning',
      'retry_after_seconds', greatest(1, ceil(extract(epoch from (v_state.lease_expires_at - v_now))))::integer);
  end if;
  -- A start in flight would revive the session right after it is stopped.
  if v_state.refresh_lease_id is not null and v_state.refresh_lease_expires_at > v_now then
    return jsonb_build_object('outcome', 'busy', 'reason', 'refresh_in_flight',
      'retry_after_seconds', 1);
  end if;
  v_valid := public.wpp_session_is_valid(v_row.settings, v_state.session_state);

  if not v_row.is_active and v_state.disconnected_at is not null then
    return private.wpp_snapshot(v_row, v_state, 0, false)
      || jsonb_build_object('outcome', 'already', 'stop_needed', v_state.stop_pending);
  end if;

  update public.messenger_integrations i set is_active = false, updated_at = now()
   where i.id = v_row.id returning * into v_row;
  update public.wpp_integration_state s
     set disconnected_at = v_now,
         connection = case when s.session = private.wpp_account(v_row.settings) then 'offline' else s.connection end,
         connection_at = v_now, checked_at = v_now,
         qr = null, qr_at = null,
         stop_pending = v_valid
   where s.integration_id = v_row.id
  returning * into v_state;
  perform private.wpp_event(v_row.organization_id, v_row.id, p_actor, 'disconnected',
    jsonb_build_object('session', private.wpp_account(v_row.settings)));
  return private.wpp_snapshot(v_row, v_state, 0, false)
    || jsonb_build_object('outcome', 'marked', 'stop_needed', v_valid);
end;
$$;

comment on function public.wpp_disconnect(uuid, uuid, uuid) is
  'service_role only. Marks an organisation''s wpp number disconnected and inactive (nothing deleted); says whether the platform session still has to be stopped. Returns credentials.';

create or replace function public.wpp_disconnect_stopped(
  p_integration_id uuid,
  p_session text,
  p_ok boolean,
  p_details jsonb default '{}'::jsonb,
  p_actor uuid default null
) returns void
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_org uuid;
begin
  update public.wpp_integration_state s
     set stop_pending = stop_pending and not p_ok
   where s.integration_id = p_integration_id
  returning s.organization_id into v_org;
  if v_org is not null then
    perform private.wpp_event(v_org, p_integration_id, p_actor,
      case when p_ok then 'session_stopped' else 'stop_failed' end,
      coalesce(p_details, '{}'::jsonb) || jsonb_build_object('session', p_session, 'reason', 'disconnect'));
  end if;
end;
$$;

comment on function public.wpp_disconnect_stopped(uuid, text, boolean, jsonb, uuid) is
  'service_role only. Records the platform stop of a disconnected number (or its failure, which leaves the stop pending for a repeated disconnect).';

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_idempotency_claim(
  p_user_id uuid,
  p_organization_id uuid,
  p_key text,
  p_fingerprint text,
  p_claim_seconds integer default 60,
  p_ttl_seconds integer default 86400
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_row public.wpp_idempotency_keys;
  v_claim uuid := gen_random_uuid();
  v_now timestamptz := clock_timestamp();
begin
  if p_key is null or length(p_key) not between 1 and 255 then
    raise exception using errcode = 'WP400', message = 'invalid_argument: p_key must be 1 to 255 characters';
  end if;
  delete from public.wpp_idempotency_keys k
   where k.user_id = p_user_id and k.key = p_key and k.expires_at <= v_now;
  insert into public.wpp_idempotency_keys
    (user_id, key, organization_id, fingerprint, state, claim_id, claim_expires_at, expires_at)
  values (p_user_id, p_key, p_organization_id, p_fingerprint, 'in_flight', v_claim,
          v_now + make_interval(secs => p_claim_seconds), v_now + make_interval(secs => p_ttl_seconds))
  on conflict (user_id, key) do nothing;
  if found then
    return jsonb_build_object('state', 'claimed', 'claim_id', v_claim);
  end if;

  select k.* into v_row from public.wpp_idempotency_keys k
   where k.user_id = p_user_id and k.key = p_key
   for update;
  if v_row.fingerprint <> p_fingerprint or v_row.organization_id <> p_organization_id then
    return jsonb_build_object('state', 'mismatch');
  end if;
  if v_row.state = 'done' then
    return jsonb_build_object('state', 'replay', 'http_status', v_row.http_status,
                              'response', v_row.response);
  end if;
  if v_row.claim_expires_at > v_now then
    return jsonb_build_object('state', 'in_flight', 'retry_after_seconds',
      greatest(1, ceil(extract(epoch from (v_row.claim_expires_at - v_now))))::integer);
  end if;
  -- The first request died without an answer: this one takes the key over.
  update public.wpp_idempotency_keys k
     set claim_id = v_claim, claim_expires_at = v_now + make_interval(secs => p_claim_seconds)
   where k.user_id = p_user_id and k.key = p_key;
  return jsonb_build_object('state', 'claimed', 'claim_id', v_claim);
end;
$$;

comment on function public.wpp_idempotency_claim(uuid, uuid, text, text, integer, integer) is
  'service_role only. claimed | replay (with the first answer) | in_flight | mismatch (the key was used for another request) for an Idempotency-Key of a user.';

create or replace function public.wpp_idempotency_finish(
  p_user_id uuid,
  p_key text,
  p_claim_id uuid,
  p_http_status integer,
  p_response jsonb
) returns void
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
begin
  if p_http_status >= 500 then
    -- A server-side failure is not an answer worth replaying: the key is free for a retry, and
    -- the provisioning's own lease and cooldown keep that retry from creating twice.
    delete from public.wpp_idempotency_keys k
     where k.user_id = p_user_id and k.key = p_key and k.claim_id = p_claim_id;
  else
    update public.wpp_idempotency_keys k
       set state = 'done', http_status = p_http_status, response = p_response,
           claim_id = null, claim_expires_at = null
     where k.user_id = p_user_id and k.key = p_key and k.claim_id = p_claim_id;
  end if;
end;
$$;

comment on function public.wpp_idempotency_finish(uuid, text, uuid, integer, jsonb) is
  'service_role only. Keeps the first answer of an Idempotency-Key (2xx/4xx) for replay, or frees the key after a 5xx.';

-- ---------------------------------------------------------------------------------------------
create or replace function public.wpp_record_event(
  p_organization_id uuid,
  p_integration_id uuid,
  p_actor uuid,
  p_action text,
  p_details jsonb default '{}'::jsonb
) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_organization_id is null or p_action is null then
    raise exception using errcode = 'WP400',
      message = 'invalid_argument: p_organization_id and p_action are required';
  end if;
  if p_integration_id is not null and not exists (
    select 1 from public.messenger_integrations i
     where i.id = p_integration_id and i.organization_id = p_organization_id
  ) then
    raise exception using errcode = 'WP422',
      message = 'invalid_argument: the integration does not belong to the organization';
  end if;
  begin
    perform private.wpp_event(p_organization_id, p_integration_id, p_actor, p_action,
      case when jsonb_typeof(p_details) = 'object' then p_details else '{}'::jsonb end);
  exception when check_violation then
    raise exception using errcode = 'WP422',
      message = format('invalid_argument: %s is not a known integration event', p_action);
  end;
end;
$$;

comment on function public.wpp_record_event(uuid, uuid, uuid, text, jsonb) is
  'service_role only. An audit event written by an edge function (session_stopped, stop_failed, failed); secret-looking detail keys are stripped.';

-- Supabase's default privileges made these executable by anon and authenticated (and PostgreSQL
-- by PUBLIC): they hand out credentials, so service_role only.
do $$
declare
  v_fn regprocedure;
begin
  for v_fn in
    select p.oid::regprocedure from pg_proc p
     where p.pronamespace = 'public'::regnamespace
       and p.proname in ('wpp_context', 'wpp_provision_begin', 'wpp_provision_complete',
         'wpp_provision_fail', 'wpp_refresh_begin', 'wpp_refresh_end', 'wpp_webhook_event',
         'wpp_store_token', 'wpp_disconnect', 'wpp_disconnect_stopped', 'wpp_idempotency_claim',
         'wpp_idempotency_finish', 'wpp_record_event')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', v_fn);
    execute format('grant execute on function %s to service_role', v_fn);
  end loop;
end
$$;
