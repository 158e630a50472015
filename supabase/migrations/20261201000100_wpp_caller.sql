-- Who a user is to this project: their organisation and whether they may connect WhatsApp.
--
-- private.wpp_caller is the ONLY place that knows where the host CRM keeps this: the
-- organisation in profiles.organization_id, the roles in user_roles (several per user). Every RPC
-- and policy of this project asks it. Adapting the project to another CRM means rewriting this
-- one function.
--
-- role is normalised to what this project distinguishes: 'owner', 'admin' (may connect,
-- recreate, disconnect, see QR codes) or 'member' (any other role, or none: sees the status only).

create or replace function private.wpp_caller(p_user_id uuid)
returns table (organization_id uuid, role text)
language sql
stable
security definer
set search_path = ''
as $$
  select
    p.organization_id,
    case
      when exists (select 1 from public.user_roles r
                    where r.user_id = p.id and r.role::text = 'owner') then 'owner'
      when exists (select 1 from public.user_roles r
                    where r.user_id = p.id and r.role::text = 'admin') then 'admin'
      else 'member'
    end
  from public.profiles p
  where p.id = p_user_id
    and p.organization_id is not null
$$;

comment on function private.wpp_caller(uuid) is
  'The organisation and normalised role (owner | admin | member) of a user; no row when the user belongs to no organisation. The only place that reads the host CRM''s profiles and user_roles.';

-- The caller of the current request, for policies. `(select ...)` around them in a policy makes
-- the planner evaluate them once per statement, not once per row.
create or replace function private.wpp_current_org() returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select c.organization_id from private.wpp_caller(auth.uid()) c
$$;

create or replace function private.wpp_current_role() returns text
language sql
stable
security definer
set search_path = ''
as $$
  select c.role from private.wpp_caller(auth.uid()) c
$$;

revoke all on function private.wpp_caller(uuid) from public;
revoke all on function private.wpp_current_org() from public;
revoke all on function private.wpp_current_role() from public;
grant execute on function private.wpp_current_org() to authenticated, service_role;
grant execute on function private.wpp_current_role() to authenticated, service_role;
grant execute on function private.wpp_caller(uuid) to service_role;

-- Policies and privileges for the stand-ins only: the CRM's own tables keep the CRM's.
do $$
begin
  if private.is_standin('public.organizations') then
    alter table public.organizations enable row level security;
    drop policy if exists "members read their organisation" on public.organizations;
    create policy "members read their organisation" on public.organizations
      for select to authenticated
      using (id = (select private.wpp_current_org()));
    revoke all on table public.organizations from anon;
    revoke insert, update, delete, truncate, references, trigger
      on table public.organizations from authenticated;
  end if;

  if private.is_standin('public.profiles') then
    alter table public.profiles enable row level security;
    drop policy if exists "members read their organisation's profiles" on public.profiles;
    create policy "members read their organisation's profiles" on public.profiles
      for select to authenticated
      using (id = (select auth.uid()) or organization_id = (select private.wpp_current_org()));
    revoke all on table public.profiles from anon;
    revoke insert, update, delete, truncate, references, trigger
      on table public.profiles from authenticated;
  end if;

  if private.is_standin('public.user_roles') then
    alter table public.user_roles enable row level security;
    drop policy if exists "users read their own roles" on public.user_roles;
    create policy "users read their own roles" on public.user_roles
      for select to authenticated
      using (user_id = (select auth.uid()));
    revoke all on table public.user_roles from anon;
    revoke insert, update, delete, truncate, references, trigger
      on table public.user_roles from authenticated;
  end if;

  if private.is_standin('public.messenger_integrations') then
    alter table public.messenger_integrations enable row level security;
    drop policy if exists "members read their organisation's integrations"
      on public.messenger_integrations;
    create policy "members read their organisation's integrations"
      on public.messenger_integrations
      for select to authenticated
      using (organization_id = (select private.wpp_current_org()));
    revoke insert, update, delete, truncate, references, trigger
      on table public.messenger_integrations from anon, authenticated;
  end if;
end
$$;
