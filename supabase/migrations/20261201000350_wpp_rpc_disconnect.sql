-- «Отключить»: a number marked disconnected and inactive, nothing deleted, and the platform
-- stop recorded (see 20261201000300_wpp_rpc_helpers.sql for the conventions).

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

-- They hand out credentials or write this project's state: service_role only (Supabase's default
-- privileges would make them executable by anon and authenticated, PostgreSQL's by PUBLIC).
revoke all on function public.wpp_disconnect(uuid, uuid, uuid) from public, anon, authenticated;
grant execute on function public.wpp_disconnect(uuid, uuid, uuid) to service_role;
revoke all on function public.wpp_disconnect_stopped(uuid, text, boolean, jsonb, uuid) from public, anon, authenticated;
grant execute on function public.wpp_disconnect_stopped(uuid, text, boolean, jsonb, uuid) to service_role;
