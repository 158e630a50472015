-- The platform's events, authenticated by the hash of the secret in the webhook URL (see
-- 20261201000300_wpp_rpc_helpers.sql for the conventions).

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

-- They hand out credentials or write this project's state: service_role only (Supabase's default
-- privileges would make them executable by anon and authenticated, PostgreSQL's by PUBLIC).
revoke all on function public.wpp_webhook_event(bytea, text, text, text, timestamptz) from public, anon, authenticated;
grant execute on function public.wpp_webhook_event(bytea, text, text, text, timestamptz) to service_role;
