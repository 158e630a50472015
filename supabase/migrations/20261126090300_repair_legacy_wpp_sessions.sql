-- Legacy repair: WPP integrations whose stored session cannot work.
--
-- The first integration stored wppAccountNumber = 'client_system' instead of the session id the
-- platform returned, and the old code then reused that row forever. The earlier fix plan deleted
-- those rows by hand; that also threw away the row id, its webhook_key, every other setting and
-- the audit trail. Instead, such rows are marked session_state = 'needs_new_session':
-- wpp_provision_begin then answers `create` for the SAME row, and wpp_provision_complete writes
-- the new session into it.
--
-- RUNBOOK (replaces the manual DELETE of the old plan), on any environment, as often as needed:
--
--     select public.wpp_repair_legacy_sessions();   -- returns the number of rows it marked
--
-- then ask the organisation to press "Connect WhatsApp" again. Safe to re-run: rows already
-- marked, valid rows and rows being provisioned right now are left alone, and nothing is deleted.
-- To teach it another placeholder:
--     insert into public.wpp_session_placeholders (value, note) values ('...', '...');

create function public.wpp_repair_legacy_sessions() returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  with candidates as (
    select
      i.id,
      i.organization_id,
      i.settings ->> 'wppAccountNumber' as account_number,
      case
        when jsonb_typeof(i.settings -> 'wppAccountNumber') = 'string'
          and private.wpp_is_placeholder(i.settings ->> 'wppAccountNumber')
          then 'placeholder_session'
        else 'missing_credentials'
      end as reason
    from public.messenger_integrations i
    where i.provider = 'wpp'
      and i.session_state <> 'needs_new_session'
      and not public.wpp_session_is_valid(i.settings, i.session_state)
      -- A row under an unexpired lease is being given a session right now (a fresh row starts
      -- with empty settings); marking it would only add a misleading event.
      and not (i.provision_lease_id is not null and i.provision_lease_expires_at > clock_timestamp())
    for update of i
  ),
  repaired as (
    update public.messenger_integrations i
       set session_state = 'needs_new_session'
      from candidates c
     where i.id = c.id
    returning i.id, i.organization_id, c.account_number, c.reason
  )
  insert into public.integration_events (organization_id, integration_id, actor_user_id, action, details)
  select
    r.organization_id,
    r.id,
    null,
    'repaired',
    jsonb_strip_nulls(jsonb_build_object(
      'reason', r.reason,
      'previous_account_number', case when r.reason = 'placeholder_session' then r.account_number end,
      'session_state', 'needs_new_session'
    ))
  from repaired r;

  get diagnostics v_count = row_count;
  return v_count;
end;
$$;

comment on function public.wpp_repair_legacy_sessions() is
  'service_role / operators only. Marks WPP rows with a placeholder session or missing apiKey/account number as needs_new_session and records a repaired event per row; idempotent. Runbook replacing the manual DELETE of client_system rows.';

revoke all on function public.wpp_repair_legacy_sessions() from public, anon, authenticated;
grant execute on function public.wpp_repair_legacy_sessions() to service_role;

select public.wpp_repair_legacy_sessions();
