-- Legacy repair: wpp rows whose stored session cannot work.
--
-- The first integration stored wppAccountNumber = 'client_system' instead of the session id the
-- platform returned, and the old code reused that row forever. The original fix plan deleted such
-- rows by hand, which also threw away the row id, the CRM's webhook_key, every other setting and
-- the history. Instead, every wpp row with a placeholder session or without an apiKey, whatever
-- its is_primary and is_active, is marked needs_new_session in this project's state: the next
-- «Подключить WhatsApp» that picks it creates a real session IN THE SAME ROW, keeping every other
-- settings key; `force_recreate` with its integration_id does the same for a row that is not the
-- one a click picks. Nothing is deleted.
--
-- RUNBOOK, on any environment, as often as needed (idempotent):
--     select public.wpp_repair_legacy_sessions();   -- returns how many rows it marked
-- To teach it another placeholder:
--     insert into public.wpp_session_placeholders (value, note) values ('...', '...');

create or replace function public.wpp_repair_legacy_sessions() returns integer
language plpgsql
security definer
set search_path = ''
set lock_timeout = '10s'
as $$
declare
  v_row public.messenger_integrations;
  v_state public.wpp_integration_state;
  v_acct text;
  v_reason text;
  v_count integer := 0;
begin
  for v_row in
    select i.* from public.messenger_integrations i
      left join public.wpp_integration_state s on s.integration_id = i.id
     where i.provider = 'wpp'
       and not public.wpp_session_is_valid(i.settings, s.session_state)
       and s.session_state is distinct from 'needs_new_session'
     order by i.created_at
  loop
    v_state := private.wpp_state_for(v_row);
    -- A row under an unexpired lease is being given a session right now (an add_new row starts
    -- empty); marking it would only add a misleading event.
    continue when v_state.lease_id is not null and v_state.lease_expires_at > clock_timestamp();
    v_acct := private.wpp_account(v_row.settings);
    v_reason := case when v_acct is not null and private.wpp_is_placeholder(v_acct)
      then 'placeholder_session' else 'missing_credentials' end;
    update public.wpp_integration_state s
       set session_state = 'needs_new_session', repair_reason = v_reason
     where s.integration_id = v_row.id;
    perform private.wpp_event(v_row.organization_id, v_row.id, null, 'repaired',
      jsonb_build_object(
        'reason', v_reason,
        'previous_account_number', case when v_reason = 'placeholder_session' then v_acct end,
        'is_primary', v_row.is_primary,
        'is_active', v_row.is_active));
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;

comment on function public.wpp_repair_legacy_sessions() is
  'service_role / operators only. Marks every wpp row with a placeholder session or missing apiKey/account number as needs_new_session (any is_primary/is_active) and records a repaired event per row; idempotent; deletes nothing.';

revoke all on function public.wpp_repair_legacy_sessions() from public, anon, authenticated;
grant execute on function public.wpp_repair_legacy_sessions() to service_role;

select public.wpp_repair_legacy_sessions();
