-- Exactly-once provisioning of WPP Platform sessions.
--
-- The platform is not idempotent: every create call makes a new client (apiKey + session). The UI
-- retries failed calls and users double-click, so the database decides who may create:
--
--   wpp_provision_begin     under a per-organisation lock, finds (or inserts) the org's primary
--                           whatsapp/wpp integration and answers reuse | create | busy. `create`
--                           hands out a lease; every other caller gets `busy` until it expires.
--   wpp_provision_complete  stores the new session + apiKey, only for the lease holder.
--   wpp_provision_fail      releases the lease when the platform call failed.
--   wpp_store_token         caches a JWT for the session it was minted for, nothing else.
--   wpp_record_event        audit events the edge function writes itself.
--   wpp_caller_context      the organisation and role of a user id taken from a verified JWT.
--
-- All are SECURITY DEFINER with an empty search_path and executable by service_role only: they
-- return credentials and bypass RLS. Errors they raise on purpose use SQLSTATE class 'WP', which
-- PostgREST passes through as `code` (HTTP 400):
--   WP400  invalid_argument: ...     a required argument is missing or out of range
--   WP404  organization_not_found: / integration_not_found: ...
--   WP409  lease_lost: ...           the lease is not (or no longer) held by this request
--   WP422  invalid_session: / invalid_action: / integration_not_in_organization: ...
-- The text before the colon is stable and meant for code; the rest is for humans.

-- Internal: the fields every begin answer carries, read from the row as it is now.
create function private.wpp_integration_snapshot(p_row public.messenger_integrations)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'integration_id', p_row.id,
    'organization_id', p_row.organization_id,
    'session', nullif(p_row.settings ->> 'wppAccountNumber', ''),
    'api_key', nullif(p_row.settings ->> 'wppApiKey', ''),
    'jwt_token', nullif(p_row.settings ->> 'wppJwtToken', ''),
    'jwt_expires_at', case
      when jsonb_typeof(p_row.settings -> 'wppJwtExpiresAt') = 'number'
        then p_row.settings -> 'wppJwtExpiresAt'
      when p_row.settings ->> 'wppJwtExpiresAt' ~ '^[0-9]{1,18}$'
        then to_jsonb((p_row.settings ->> 'wppJwtExpiresAt')::bigint)
    end,
    'webhook_key', p_row.webhook_key,
    -- When the stored session was created (ms epoch): a brand-new apiKey may be refused by the
    -- platform for a while, and the caller must not mistake that for a dead key.
    'session_created_at', case
      when jsonb_typeof(p_row.settings -> 'wppSessionCreatedAt') = 'number'
        then p_row.settings -> 'wppSessionCreatedAt'
    end
  )
$$;

create function private.wpp_is_placeholder(p_session text) returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (
    select 1 from public.wpp_session_placeholders ph
    where lower(ph.value) = lower(btrim(p_session))
  )
$$;

revoke all on function private.wpp_integration_snapshot(public.messenger_integrations) from public;
revoke all on function private.wpp_is_placeholder(text) from public;

create function public.wpp_caller_context(p_user_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    (select jsonb_build_object('organization_id', p.organization_id, 'role', p.role)
       from public.profiles p
      where p.id = p_user_id
        and p.organization_id is not null),
    jsonb_build_object('organization_id', null, 'role', null)
  )
$$;

comment on function public.wpp_caller_context(uuid) is
  'service_role only. {"organization_id": uuid|null, "role": "owner"|"admin"|"member"|null} of a user id.';

create function public.wpp_provision_begin(
  p_organization_id uuid,
  p_force boolean default false,
  p_actor uuid default null,
  p_lease_seconds integer default 60,
  p_dead_session text default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.messenger_integrations;
  v_inserted boolean := false;
  v_dead boolean := false;
  v_now timestamptz;
  v_acct text;
  v_key text;
  v_looks_valid boolean;
  v_reason text;
  v_lease uuid;
  v_expires timestamptz;
  v_prev_lease uuid;
  v_prev_expires timestamptz;
begin
  if p_organization_id is null then
    raise exception using errcode = 'WP400',
      message = 'invalid_argument: p_organization_id is required';
  end if;
  if p_lease_seconds is null or p_lease_seconds < 1 or p_lease_seconds > 3600 then
    raise exception using errcode = 'WP400',
      message = 'invalid_argument: p_lease_seconds must be between 1 and 3600';
  end if;

  -- The organisation row is the mutex: concurrent begins for one organisation queue here, and
  -- each sees what the previous one committed (READ COMMITTED takes a fresh snapshot per
  -- statement), including an integration row it inserted. NO KEY UPDATE, not UPDATE: inserts
  -- elsewhere that reference the organisation (events written by complete/fail) take KEY SHARE
  -- on it, and a full UPDATE lock would make them wait on begins that wait on them (deadlock).
  perform 1 from public.organizations o where o.id = p_organization_id for no key update;
  if not found then
    raise exception using errcode = 'WP404',
      message = format('organization_not_found: no organization %s', p_organization_id);
  end if;

  select i.* into v_row
    from public.messenger_integrations i
   where i.organization_id = p_organization_id
     and i.is_active and i.is_primary
     and i.messenger_type = 'whatsapp' and i.provider = 'wpp'
   for update;

  if not found then
    -- Inserted before any platform call so the integration id (and its webhook_key) exist from
    -- the start and every later step refers to the same row.
    insert into public.messenger_integrations
      (organization_id, messenger_type, provider, name, is_active, is_primary, settings)
    values (p_organization_id, 'whatsapp', 'wpp', 'WhatsApp', true, true, '{}'::jsonb)
    returning * into v_row;
    v_inserted := true;
  end if;

  v_acct := nullif(btrim(v_row.settings ->> 'wppAccountNumber'), '');
  v_key := nullif(btrim(v_row.settings ->> 'wppApiKey'), '');

  -- Only the session still stored counts: a caller holding an outdated view must not condemn a
  -- session someone else just created.
  if p_dead_session is not null and v_acct is not null and v_acct = btrim(p_dead_session) then
    v_dead := true;
    if v_row.session_state <> 'needs_new_session' then
      update public.messenger_integrations i
         set session_state = 'needs_new_session'
       where i.id = v_row.id
      returning * into v_row;
      insert into public.integration_events (organization_id, integration_id, actor_user_id, action, details)
      values (v_row.organization_id, v_row.id, p_actor, 'dead_key_detected',
              jsonb_build_object('session', v_acct));
    end if;
  end if;

  -- clock_timestamp, not now(): the transaction may have waited on the lock above for a while.
  v_now := clock_timestamp();

  if v_row.provision_lease_id is not null and v_row.provision_lease_expires_at > v_now then
    return private.wpp_integration_snapshot(v_row) || jsonb_build_object(
      'decision', 'busy',
      'reason', 'lease_held',
      'lease_id', null,
      'lease_expires_at', v_row.provision_lease_expires_at,
      'retry_after_seconds',
        greatest(1, ceil(extract(epoch from (v_row.provision_lease_expires_at - v_now))))::integer,
      'old_session', null,
      'old_api_key', null
    );
  end if;

  if public.wpp_session_is_valid(v_row.settings, v_row.session_state)
     and not coalesce(p_force, false) then
    insert into public.integration_events (organization_id, integration_id, actor_user_id, action, details)
    values (v_row.organization_id, v_row.id, p_actor, 'reused', jsonb_build_object('session', v_acct));
    return private.wpp_integration_snapshot(v_row) || jsonb_build_object(
      'decision', 'reuse',
      'reason', 'valid_session',
      'lease_id', null,
      'lease_expires_at', null,
      'retry_after_seconds', null,
      'old_session', null,
      'old_api_key', null
    );
  end if;

  v_looks_valid := v_acct is not null and v_key is not null
    and jsonb_typeof(v_row.settings -> 'wppAccountNumber') = 'string'
    and jsonb_typeof(v_row.settings -> 'wppApiKey') = 'string'
    and not private.wpp_is_placeholder(v_acct);

  v_reason := case
    when v_inserted then 'no_integration'
    when v_dead then 'dead_key'
    when v_acct is not null and private.wpp_is_placeholder(v_acct) then 'placeholder_session'
    when v_acct is null or v_key is null or not v_looks_valid then 'missing_credentials'
    when v_row.session_state = 'needs_new_session' then 'needs_new_session'
    else 'forced'
  end;

  v_prev_lease := v_row.provision_lease_id;
  v_prev_expires := v_row.provision_lease_expires_at;
  v_lease := gen_random_uuid();
  v_expires := v_now + make_interval(secs => p_lease_seconds);

  update public.messenger_integrations i
     set provision_lease_id = v_lease,
         provision_lease_expires_at = v_expires,
         provision_lease_reason = v_reason
   where i.id = v_row.id
  returning * into v_row;

  if v_prev_lease is not null then
    -- The previous holder may still be talking to the platform; its complete will now fail with
    -- lease_lost, and whatever client it created is orphaned on the platform. Worth an audit line.
    insert into public.integration_events (organization_id, integration_id, actor_user_id, action, details)
    values (v_row.organization_id, v_row.id, p_actor, 'lease_taken_over',
            jsonb_build_object('previous_lease_expired_at', v_prev_expires, 'reason', v_reason));
  end if;

  return private.wpp_integration_snapshot(v_row) || jsonb_build_object(
    'decision', 'create',
    'reason', v_reason,
    'lease_id', v_lease,
    'lease_expires_at', v_expires,
    'retry_after_seconds', null,
    -- Handed back so the caller can stop the old session on the platform once the new one works.
    'old_session', case when v_looks_valid then v_acct end,
    'old_api_key', case when v_looks_valid then v_key end,
    'lease_taken_over', v_prev_lease is not null
  );
end;
$$;

comment on function public.wpp_provision_begin(uuid, boolean, uuid, integer, text) is
  'service_role only. Decides reuse | create | busy for the organisation''s primary WhatsApp/WPP integration; create hands out a lease. Returns credentials.';

create function public.wpp_provision_complete(
  p_integration_id uuid,
  p_lease_id uuid,
  p_session text,
  p_api_key text,
  p_jwt_token text default null,
  p_jwt_expires_at bigint default null,
  p_actor uuid default null,
  p_details jsonb default '{}'::jsonb
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.messenger_integrations;
  v_old text;
  v_settings jsonb;
begin
  select i.* into v_row
    from public.messenger_integrations i
   where i.id = p_integration_id
   for update;
  if not found then
    raise exception using errcode = 'WP404',
      message = format('integration_not_found: no integration %s', p_integration_id);
  end if;

  -- An expired lease still counts while nobody has taken it over: a slow platform call that
  -- finally succeeded should be stored, not thrown away.
  if p_lease_id is null or v_row.provision_lease_id is distinct from p_lease_id then
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

  v_old := nullif(btrim(v_row.settings ->> 'wppAccountNumber'), '');

  -- A cached token belongs to the previous apiKey: drop it unless a new one comes with the call.
  v_settings := (v_row.settings - 'wppJwtToken' - 'wppJwtExpiresAt')
    || jsonb_build_object(
      'wppAccountNumber', p_session,
      'wppApiKey', p_api_key,
      'wppSessionCreatedAt', floor(extract(epoch from clock_timestamp()) * 1000)::bigint
    );
  if p_jwt_token is not null and btrim(p_jwt_token) <> '' then
    v_settings := v_settings || jsonb_build_object('wppJwtToken', p_jwt_token);
    if p_jwt_expires_at is not null then
      v_settings := v_settings || jsonb_build_object('wppJwtExpiresAt', p_jwt_expires_at);
    end if;
  end if;

  update public.messenger_integrations i
     set settings = v_settings,
         session_state = 'ok',
         provision_lease_id = null,
         provision_lease_expires_at = null,
         provision_lease_reason = null,
         last_provision_error = null
   where i.id = v_row.id;

  insert into public.integration_events (organization_id, integration_id, actor_user_id, action, details)
  values (
    v_row.organization_id,
    v_row.id,
    p_actor,
    case when v_old is null then 'created' else 'recreated' end,
    coalesce(p_details, '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object(
      'session', p_session,
      'previous_session', v_old,
      'reason', v_row.provision_lease_reason,
      'lease_expired', v_row.provision_lease_expires_at <= clock_timestamp()
    ))
  );

  return jsonb_build_object('integration_id', v_row.id, 'session', p_session);
end;
$$;

comment on function public.wpp_provision_complete(uuid, uuid, text, text, text, bigint, uuid, jsonb) is
  'service_role only. Stores the new session and apiKey for the lease holder, keeping every other settings key; raises WP409 lease_lost otherwise.';

create function public.wpp_provision_fail(
  p_integration_id uuid,
  p_lease_id uuid,
  p_reason text,
  p_details jsonb default '{}'::jsonb,
  p_actor uuid default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.messenger_integrations;
  v_released boolean := false;
begin
  select i.* into v_row
    from public.messenger_integrations i
   where i.id = p_integration_id
   for update;
  if not found then
    raise exception using errcode = 'WP404',
      message = format('integration_not_found: no integration %s', p_integration_id);
  end if;

  if p_lease_id is not null and v_row.provision_lease_id = p_lease_id then
    update public.messenger_integrations i
       set provision_lease_id = null,
           provision_lease_expires_at = null,
           provision_lease_reason = null,
           last_provision_error = left(coalesce(p_reason, 'unknown'), 1000)
     where i.id = v_row.id;
    v_released := true;
  end if;

  -- Recorded even when the lease was gone: a failure nobody can attribute is still a failure.
  insert into public.integration_events (organization_id, integration_id, actor_user_id, action, details)
  values (
    v_row.organization_id,
    v_row.id,
    p_actor,
    'failed',
    coalesce(p_details, '{}'::jsonb)
      || jsonb_build_object('reason', left(coalesce(p_reason, 'unknown'), 1000), 'released', v_released)
  );

  return jsonb_build_object('released', v_released);
end;
$$;

comment on function public.wpp_provision_fail(uuid, uuid, text, jsonb, uuid) is
  'service_role only. Releases the lease if p_lease_id still holds it and records a failed event; settings untouched.';

create function public.wpp_store_token(
  p_integration_id uuid,
  p_session text,
  p_token text,
  p_expires_at bigint
) returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_org uuid;
begin
  if p_token is null or btrim(p_token) = '' then
    raise exception using errcode = 'WP400', message = 'invalid_argument: p_token is required';
  end if;

  -- A merge, never a rewrite of settings, and only while the session the token was minted for is
  -- still the stored one: a token fetched for a session that was replaced meanwhile must not be
  -- attached to the new session. The WHERE is re-checked after any concurrent update commits.
  update public.messenger_integrations i
     set settings = (i.settings - 'wppJwtExpiresAt')
       || jsonb_strip_nulls(jsonb_build_object('wppJwtToken', p_token, 'wppJwtExpiresAt', p_expires_at))
   where i.id = p_integration_id
     and p_session is not null
     and i.settings ->> 'wppAccountNumber' = p_session
  returning i.organization_id into v_org;

  if v_org is null then
    return false;
  end if;

  insert into public.integration_events (organization_id, integration_id, action, details)
  values (v_org, p_integration_id, 'token_refreshed',
          jsonb_strip_nulls(jsonb_build_object('session', p_session, 'expires_at', p_expires_at)));
  return true;
end;
$$;

comment on function public.wpp_store_token(uuid, text, text, bigint) is
  'service_role only. Merges wppJwtToken/wppJwtExpiresAt into settings if p_session is still the stored session; returns whether it stored.';

create function public.wpp_record_event(
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
      message = 'integration_not_in_organization: the integration does not belong to the organization';
  end if;

  begin
    -- Secret-looking keys are dropped by the integration_events trigger.
    insert into public.integration_events (organization_id, integration_id, actor_user_id, action, details)
    values (p_organization_id, p_integration_id, p_actor, p_action,
            case when jsonb_typeof(p_details) = 'object' then p_details else '{}'::jsonb end);
  exception
    when check_violation then
      raise exception using errcode = 'WP422',
        message = format('invalid_action: %s is not a known integration event', p_action);
    when foreign_key_violation then
      raise exception using errcode = 'WP404',
        message = 'organization_not_found: unknown organization or actor';
  end;
end;
$$;

comment on function public.wpp_record_event(uuid, uuid, uuid, text, jsonb) is
  'service_role only. Audit event written by the edge function (session_stopped, stop_failed, webhook_registered, ...); secret-looking detail keys are stripped.';

-- Supabase's default privileges made all of these executable by anon and authenticated (and
-- PostgreSQL by PUBLIC): they hand out credentials, so service_role only.
revoke all on function public.wpp_caller_context(uuid) from public, anon, authenticated;
revoke all on function public.wpp_provision_begin(uuid, boolean, uuid, integer, text)
  from public, anon, authenticated;
revoke all on function public.wpp_provision_complete(uuid, uuid, text, text, text, bigint, uuid, jsonb)
  from public, anon, authenticated;
revoke all on function public.wpp_provision_fail(uuid, uuid, text, jsonb, uuid)
  from public, anon, authenticated;
revoke all on function public.wpp_store_token(uuid, text, text, bigint)
  from public, anon, authenticated;
revoke all on function public.wpp_record_event(uuid, uuid, uuid, text, jsonb)
  from public, anon, authenticated;

grant execute on function public.wpp_caller_context(uuid) to service_role;
grant execute on function public.wpp_provision_begin(uuid, boolean, uuid, integer, text) to service_role;
grant execute on function public.wpp_provision_complete(uuid, uuid, text, text, text, bigint, uuid, jsonb)
  to service_role;
grant execute on function public.wpp_provision_fail(uuid, uuid, text, jsonb, uuid) to service_role;
grant execute on function public.wpp_store_token(uuid, text, text, bigint) to service_role;
grant execute on function public.wpp_record_event(uuid, uuid, uuid, text, jsonb) to service_role;
