-- wpp_context: who the caller is and the integration a request is about, in one read-only round
-- trip (see 20261201000300_wpp_rpc_helpers.sql for the conventions of every RPC).

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

-- They hand out credentials or write this project's state: service_role only (Supabase's default
-- privileges would make them executable by anon and authenticated, PostgreSQL's by PUBLIC).
revoke all on function public.wpp_context(uuid, uuid, text, integer) from public, anon, authenticated;
grant execute on function public.wpp_context(uuid, uuid, text, integer) to service_role;
