-- Read side of the WhatsApp connection, for the wpp-status edge function.
--
-- wpp-status reports whether the organisation's number is linked and fetches a fresh QR while a
-- scan is awaited. It never provisions, so it must not go through wpp_provision_begin (which takes
-- a per-organisation lock, inserts a row when there is none and writes a 'reused' event on every
-- call: an audit flood at one poll every two seconds). This function only reads.
--
-- Like the provisioning functions it returns credentials, so it is SECURITY DEFINER with an empty
-- search_path and executable by service_role only.

create function public.wpp_integration_for_status(p_organization_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select
    -- The webhook key is not needed to read a status; what is not returned cannot leak.
    (private.wpp_integration_snapshot(i) - 'webhook_key') || jsonb_build_object(
      'session_state', i.session_state,
      'valid', public.wpp_session_is_valid(i.settings, i.session_state),
      -- clock_timestamp, as wpp_provision_begin compares leases with it.
      'provisioning', i.provision_lease_id is not null
        and i.provision_lease_expires_at > clock_timestamp()
    )
  from public.messenger_integrations i
  where i.organization_id = p_organization_id
    and i.is_active and i.is_primary
    and i.messenger_type = 'whatsapp' and i.provider = 'wpp'
$$;

comment on function public.wpp_integration_for_status(uuid) is
  'service_role only. The organisation''s primary WhatsApp/WPP integration for a status read: integration_id, session, api_key, jwt_token, jwt_expires_at (ms), session_state, valid, provisioning; null when there is none. Returns credentials.';

revoke all on function public.wpp_integration_for_status(uuid) from public, anon, authenticated;
grant execute on function public.wpp_integration_for_status(uuid) to service_role;
