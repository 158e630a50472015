-- One platform refresh of a session at a time, what it learned, and the token it fetched (see
-- 20261201000300_wpp_rpc_helpers.sql for the conventions).

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

-- They hand out credentials or write this project's state: service_role only (Supabase's default
-- privileges would make them executable by anon and authenticated, PostgreSQL's by PUBLIC).
revoke all on function public.wpp_refresh_begin(uuid, text, integer, integer, boolean) from public, anon, authenticated;
grant execute on function public.wpp_refresh_begin(uuid, text, integer, integer, boolean) to service_role;
revoke all on function public.wpp_refresh_end(uuid, uuid, text, text, text, timestamptz, boolean) from public, anon, authenticated;
grant execute on function public.wpp_refresh_end(uuid, uuid, text, text, text, timestamptz, boolean) to service_role;
revoke all on function public.wpp_store_token(uuid, text, text, bigint) from public, anon, authenticated;
grant execute on function public.wpp_store_token(uuid, text, text, bigint) to service_role;
