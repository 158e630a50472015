-- Exactly-once provisioning: the lease, the cooldown and the repeat window, decided under a
-- per-organisation lock (see 20261201000300_wpp_rpc_helpers.sql for the conventions).

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

-- They hand out credentials or write this project's state: service_role only (Supabase's default
-- privileges would make them executable by anon and authenticated, PostgreSQL's by PUBLIC).
revoke all on function public.wpp_provision_begin(uuid, uuid, text, uuid, integer, integer, integer, text, integer) from public, anon, authenticated;
grant execute on function public.wpp_provision_begin(uuid, uuid, text, uuid, integer, integer, integer, text, integer) to service_role;
revoke all on function public.wpp_provision_complete(uuid, uuid, text, text, uuid, jsonb, integer) from public, anon, authenticated;
grant execute on function public.wpp_provision_complete(uuid, uuid, text, text, uuid, jsonb, integer) to service_role;
revoke all on function public.wpp_provision_fail(uuid, uuid, text, jsonb, uuid, boolean, integer) from public, anon, authenticated;
grant execute on function public.wpp_provision_fail(uuid, uuid, text, jsonb, uuid, boolean, integer) to service_role;
