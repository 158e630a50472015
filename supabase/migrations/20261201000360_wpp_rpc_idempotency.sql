-- wpp-create's Idempotency-Key: the first answer kept and replayed (see
-- 20261201000300_wpp_rpc_helpers.sql for the conventions).

create or replace function public.wpp_idempotency_claim(
  p_user_id uuid,
  p_organization_id uuid,
  p_key text,
  p_fingerprint text,
  p_claim_seconds integer default 60,
  p_ttl_seconds integer default 86400
) returns jsonb
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
declare
  v_row public.wpp_idempotency_keys;
  v_claim uuid := gen_random_uuid();
  v_now timestamptz := clock_timestamp();
begin
  if p_key is null or length(p_key) not between 1 and 255 then
    raise exception using errcode = 'WP400', message = 'invalid_argument: p_key must be 1 to 255 characters';
  end if;
  delete from public.wpp_idempotency_keys k
   where k.user_id = p_user_id and k.key = p_key and k.expires_at <= v_now;
  insert into public.wpp_idempotency_keys
    (user_id, key, organization_id, fingerprint, state, claim_id, claim_expires_at, expires_at)
  values (p_user_id, p_key, p_organization_id, p_fingerprint, 'in_flight', v_claim,
          v_now + make_interval(secs => p_claim_seconds), v_now + make_interval(secs => p_ttl_seconds))
  on conflict (user_id, key) do nothing;
  if found then
    return jsonb_build_object('state', 'claimed', 'claim_id', v_claim);
  end if;

  select k.* into v_row from public.wpp_idempotency_keys k
   where k.user_id = p_user_id and k.key = p_key
   for update;
  if v_row.fingerprint <> p_fingerprint or v_row.organization_id <> p_organization_id then
    return jsonb_build_object('state', 'mismatch');
  end if;
  if v_row.state = 'done' then
    return jsonb_build_object('state', 'replay', 'http_status', v_row.http_status,
                              'response', v_row.response);
  end if;
  if v_row.claim_expires_at > v_now then
    return jsonb_build_object('state', 'in_flight', 'retry_after_seconds',
      greatest(1, ceil(extract(epoch from (v_row.claim_expires_at - v_now))))::integer);
  end if;
  -- The first request died without an answer: this one takes the key over.
  update public.wpp_idempotency_keys k
     set claim_id = v_claim, claim_expires_at = v_now + make_interval(secs => p_claim_seconds)
   where k.user_id = p_user_id and k.key = p_key;
  return jsonb_build_object('state', 'claimed', 'claim_id', v_claim);
end;
$$;

comment on function public.wpp_idempotency_claim(uuid, uuid, text, text, integer, integer) is
  'service_role only. claimed | replay (with the first answer) | in_flight | mismatch (the key was used for another request) for an Idempotency-Key of a user.';

create or replace function public.wpp_idempotency_finish(
  p_user_id uuid,
  p_key text,
  p_claim_id uuid,
  p_http_status integer,
  p_response jsonb
) returns void
language plpgsql
security definer
set search_path = ''
set lock_timeout = '5s'
as $$
begin
  if p_http_status >= 500 then
    -- A server-side failure is not an answer worth replaying: the key is free for a retry, and
    -- the provisioning's own lease and cooldown keep that retry from creating twice.
    delete from public.wpp_idempotency_keys k
     where k.user_id = p_user_id and k.key = p_key and k.claim_id = p_claim_id;
  else
    update public.wpp_idempotency_keys k
       set state = 'done', http_status = p_http_status, response = p_response,
           claim_id = null, claim_expires_at = null
     where k.user_id = p_user_id and k.key = p_key and k.claim_id = p_claim_id;
  end if;
end;
$$;

comment on function public.wpp_idempotency_finish(uuid, text, uuid, integer, jsonb) is
  'service_role only. Keeps the first answer of an Idempotency-Key (2xx/4xx) for replay, or frees the key after a 5xx.';

-- They hand out credentials or write this project's state: service_role only (Supabase's default
-- privileges would make them executable by anon and authenticated, PostgreSQL's by PUBLIC).
revoke all on function public.wpp_idempotency_claim(uuid, uuid, text, text, integer, integer) from public, anon, authenticated;
grant execute on function public.wpp_idempotency_claim(uuid, uuid, text, text, integer, integer) to service_role;
revoke all on function public.wpp_idempotency_finish(uuid, text, uuid, integer, jsonb) from public, anon, authenticated;
grant execute on function public.wpp_idempotency_finish(uuid, text, uuid, integer, jsonb) to service_role;
