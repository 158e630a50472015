-- Audit events the edge functions write themselves (see 20261201000300_wpp_rpc_helpers.sql for
-- the conventions).

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

-- They hand out credentials or write this project's state: service_role only (Supabase's default
-- privileges would make them executable by anon and authenticated, PostgreSQL's by PUBLIC).
revoke all on function public.wpp_record_event(uuid, uuid, uuid, text, jsonb) from public, anon, authenticated;
grant execute on function public.wpp_record_event(uuid, uuid, uuid, text, jsonb) to service_role;
