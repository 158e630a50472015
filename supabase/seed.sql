-- Demo data for local development: two organisations, their users, and one legacy WhatsApp row.
-- Runs after the migrations (supabase db reset, or the local stack on a fresh database). The ids
-- are fixed because dev/stack/demo-users.ts and the docs refer to them. Re-running is harmless.
--
-- Every demo user's password is "demo-password": the local auth stand-in and a real Supabase Auth
-- (GoTrue) both sign them in.

insert into auth.users
  (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
   raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
   confirmation_token, recovery_token, email_change_token_new, email_change,
   email_change_token_current, phone_change, phone_change_token, reauthentication_token)
select
  '00000000-0000-0000-0000-000000000000',
  u.id,
  'authenticated',
  'authenticated',
  u.email,
  extensions.crypt('demo-password', extensions.gen_salt('bf')),
  now(),
  '{"provider": "email", "providers": ["email"]}'::jsonb,
  '{}'::jsonb,
  false,
  now(),
  now(),
  -- GoTrue reads these as strings: NULL makes its sign-in fail ("Database error querying schema").
  '', '', '', '', '', '', '', ''
from (values
  ('a0000000-0000-4000-8000-000000000001'::uuid, 'owner@demo.local'),
  ('a0000000-0000-4000-8000-000000000002'::uuid, 'admin@demo.local'),
  ('a0000000-0000-4000-8000-000000000003'::uuid, 'member@demo.local'),
  ('b0000000-0000-4000-8000-000000000001'::uuid, 'admin@other.local'),
  ('c0000000-0000-4000-8000-000000000001'::uuid, 'loner@demo.local')
) as u (id, email)
on conflict do nothing;

-- One email identity per user, as GoTrue writes on sign-up: provider_id is the user id.
insert into auth.identities
  (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
select
  u.id::text,
  u.id,
  jsonb_build_object('sub', u.id::text, 'email', u.email, 'email_verified', true),
  'email',
  now(),
  now(),
  now()
from auth.users u
where u.id in (
  'a0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000002',
  'a0000000-0000-4000-8000-000000000003', 'b0000000-0000-4000-8000-000000000001',
  'c0000000-0000-4000-8000-000000000001'
)
on conflict do nothing;

insert into public.organizations (id, name) values
  ('11111111-1111-4111-8111-111111111111', 'Demo CRM'),
  ('22222222-2222-4222-8222-222222222222', 'Other CRM')
on conflict do nothing;

-- loner@demo.local deliberately has no profile: a signed-in user outside any organisation.
insert into public.profiles (id, organization_id, email) values
  ('a0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'owner@demo.local'),
  ('a0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111', 'admin@demo.local'),
  ('a0000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111', 'member@demo.local'),
  ('b0000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222', 'admin@other.local')
on conflict do nothing;

-- Roles as the CRM keeps them: several per user; owner and admin may connect WhatsApp. The
-- member is a CRM 'manager', which sees the status only.
insert into public.user_roles (user_id, role) values
  ('a0000000-0000-4000-8000-000000000001', 'owner'),
  ('a0000000-0000-4000-8000-000000000002', 'admin'),
  ('a0000000-0000-4000-8000-000000000002', 'teacher'),
  ('a0000000-0000-4000-8000-000000000003', 'manager'),
  ('b0000000-0000-4000-8000-000000000001', 'admin')
on conflict do nothing;

-- The bug this project fixes, as it looks in an old database: a row holding the placeholder
-- 'client_system' instead of a real session, not primary (the CRM's default), with a setting of
-- its own. The repair migration ran before this seed, so the row is not marked yet; it is still
-- never reused (placeholders are not sessions), and "Connect WhatsApp" in Other CRM creates a new
-- session in this same row, keeping "greeting". Demo CRM has no integration yet: its first click
-- inserts one.
insert into public.messenger_integrations
  (id, organization_id, messenger_type, provider, name, is_active, is_primary, webhook_key, settings)
values (
  '33333333-3333-4333-8333-333333333333',
  '22222222-2222-4222-8222-222222222222',
  'whatsapp',
  'wpp',
  'WhatsApp',
  true,
  false,
  'crm-visible-webhook-key-0001',
  '{"wppAccountNumber": "client_system", "wppApiKey": "legacy-key-0000000000", "greeting": "hi"}'::jsonb
)
on conflict do nothing;
