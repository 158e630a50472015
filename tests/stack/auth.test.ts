// Sign-in as in production: supabase-js's auth client against the auth stand-in (GoTrue's API and
// tables), sessions whose tokens PostgREST and the functions accept, GoTrue's error shapes, and a
// seed that a real GoTrue could sign in too.
import assert from "node:assert/strict";
import * as jose from "jose";
import { createClient } from "@supabase/supabase-js";
import { db, DEMO_PASSWORD, projectKeys, signIn, stack } from "../_support/stack.ts";
import { DEMO_USERS, demoUser } from "../../dev/stack/demo-users.ts";

type Sql = ReturnType<typeof db>;
const noSession = { auth: { persistSession: false, autoRefreshToken: false } } as const;
const admin = demoUser("admin");

async function token(body: unknown, grant = "password", headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.url}/auth/v1/token?grant_type=${grant}`, {
    method: "POST",
    headers: { apikey: stack.anonKey, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

/** A user of this test only, with a password, confirmed or not; GoTrue-valid unless told. */
async function passwordUser(
  sql: Sql,
  opts: { confirmed?: boolean; nullTokens?: boolean } = {},
) {
  const id = crypto.randomUUID();
  const email = `${id.slice(0, 8)}@auth.test`;
  await sql`
    insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
                            email_confirmed_at, raw_app_meta_data, raw_user_meta_data,
                            created_at, updated_at, confirmation_token, recovery_token,
                            email_change_token_new, email_change)
    values ('00000000-0000-0000-0000-000000000000', ${id}, 'authenticated', 'authenticated',
            ${email}, extensions.crypt('pw-123456', extensions.gen_salt('bf')),
            ${opts.confirmed === false ? null : new Date()},
            '{"provider": "email", "providers": ["email"]}', '{}', now(), now(),
            ${opts.nullTokens ? null : ""}, ${opts.nullTokens ? null : ""},
            ${opts.nullTokens ? null : ""}, ${opts.nullTokens ? null : ""})`;
  return { id, email, password: "pw-123456" };
}

Deno.test("supabase-js signs a seeded user in; the session has GoTrue's shape and claims", async () => {
  const session = await signIn(admin.email, DEMO_PASSWORD);
  assert.equal(session.token_type, "bearer");
  assert.equal(session.expires_in, 3600);
  assert.ok(Math.abs(session.expires_at! - (Date.now() / 1000 + 3600)) < 30);
  assert.equal(typeof session.refresh_token, "string");
  assert.equal(session.user.id, admin.id);
  assert.equal(session.user.email, admin.email);
  assert.equal(session.user.aud, "authenticated");
  assert.equal(session.user.role, "authenticated");
  assert.deepEqual(session.user.app_metadata, { provider: "email", providers: ["email"] });
  assert.ok(session.user.email_confirmed_at, "seeded users are confirmed");
  assert.ok(session.user.last_sign_in_at);
  assert.equal(session.user.identities?.length, 1);
  assert.equal(session.user.identities![0].provider, "email");
  assert.equal(session.user.identities![0].id, admin.id);

  // Signed as the stack signs user tokens: HS256 with the project secret.
  const { payload, protectedHeader } = await jose.jwtVerify(
    session.access_token,
    new TextEncoder().encode(stack.jwtSecret),
    { audience: "authenticated", issuer: `${stack.url}/auth/v1` },
  );
  assert.equal(protectedHeader.alg, "HS256");
  assert.deepEqual(Object.keys(payload).sort(), [
    "aal",
    "amr",
    "app_metadata",
    "aud",
    "email",
    "exp",
    "iat",
    "is_anonymous",
    "iss",
    "phone",
    "role",
    "session_id",
    "sub",
    "user_metadata",
  ]);
  assert.equal(payload.sub, admin.id);
  assert.equal(payload.role, "authenticated");
  assert.equal(payload.aal, "aal1");
  assert.equal(payload.is_anonymous, false);
  assert.equal(payload.exp! - payload.iat!, 3600);
  assert.deepEqual((payload.amr as { method: string }[]).map((a) => a.method), ["password"]);
  const sql = db();
  try {
    const [row] = await sql`
      select user_id from auth.sessions where id = ${String(payload.session_id)}`;
    assert.equal(row?.user_id, admin.id, "session_id names a stored session");
  } finally {
    await sql.end({ timeout: 5 });
  }
});

Deno.test("a signed-in session calls a function and the REST API as that user", async () => {
  const session = await signIn(admin.email, DEMO_PASSWORD);
  const client = createClient(stack.url, stack.anonKey, {
    ...noSession,
    global: { headers: { Authorization: `Bearer ${session.access_token}` } },
  });
  const status = await client.functions.invoke("wpp-status", { method: "GET" });
  assert.equal(status.error, null, String(status.error?.message));
  assert.equal(status.data.success, true);
  const who = await client.rpc("stack_probe_whoami");
  assert.deepEqual(who.data, { uid: admin.id, role: "authenticated", email: admin.email });
  const orgs = await client.from("organizations").select("id");
  assert.deepEqual(orgs.data, [{ id: admin.organizationId }]);
});

Deno.test("every seeded user signs in with demo-password", async () => {
  for (const user of DEMO_USERS) {
    const session = await signIn(user.email, DEMO_PASSWORD);
    assert.equal(session.user.id, user.id, user.email);
  }
});

Deno.test("bad credentials: GoTrue's 400 invalid_credentials, in both error formats", async () => {
  const wrong = await token({ email: admin.email, password: "not-it" });
  assert.equal(wrong.status, 400);
  assert.deepEqual(wrong.body, {
    code: 400,
    error_code: "invalid_credentials",
    msg: "Invalid login credentials",
  });
  const unknown = await token({ email: "nobody@demo.local", password: DEMO_PASSWORD });
  assert.deepEqual(unknown.body, wrong.body, "an unknown email looks the same");
  // supabase-js sends X-Supabase-Api-Version and gets the 2024-01-01 shape.
  const versioned = await token({ email: admin.email, password: "not-it" }, "password", {
    "x-supabase-api-version": "2024-01-01",
  });
  assert.deepEqual(versioned.body, {
    code: "invalid_credentials",
    message: "Invalid login credentials",
  });
  assert.equal(versioned.headers.get("x-supabase-api-version"), "2024-01-01");
  const client = createClient(stack.url, stack.anonKey, noSession);
  const { error } = await client.auth.signInWithPassword({ email: admin.email, password: "x" });
  assert.equal(error?.status, 400);
  assert.equal(error?.code, "invalid_credentials");
  assert.equal(error?.message, "Invalid login credentials");
});

Deno.test("an unconfirmed email: the right password still gets no session", async () => {
  const sql = db();
  const user = await passwordUser(sql, { confirmed: false });
  try {
    const res = await token({ email: user.email, password: user.password });
    assert.equal(res.status, 400);
    assert.deepEqual(res.body, {
      code: 400,
      error_code: "email_not_confirmed",
      msg: "Email not confirmed",
    });
    const wrong = await token({ email: user.email, password: "nope" });
    assert.equal(wrong.body.error_code, "invalid_credentials", "the password is checked first");
  } finally {
    await sql`delete from auth.users where id = ${user.id}`;
    await sql.end({ timeout: 5 });
  }
});

Deno.test("NULL token columns break sign-in as they break GoTrue's", async () => {
  const sql = db();
  const broken = await passwordUser(sql, { nullTokens: true });
  const fine = await passwordUser(sql);
  try {
    const res = await token({ email: broken.email, password: broken.password });
    assert.equal(res.status, 500);
    assert.deepEqual(res.body, {
      code: 500,
      error_code: "unexpected_failure",
      msg: "Database error querying schema",
    });
    const ok = await token({ email: fine.email, password: fine.password });
    assert.equal(ok.status, 200, "the same row with '' signs in");
  } finally {
    await sql`delete from auth.users where id in (${broken.id}, ${fine.id})`;
    await sql.end({ timeout: 5 });
  }
});

Deno.test("the seed writes what a real GoTrue needs to sign its users in", async () => {
  const ids = DEMO_USERS.map((u) => u.id);
  const sql = db();
  const users = await sql`
    select id, instance_id, aud, role, encrypted_password, email_confirmed_at, raw_app_meta_data,
           confirmation_token, recovery_token, email_change_token_new, email_change,
           email_change_token_current, phone_change, phone_change_token, reauthentication_token
      from auth.users where id in ${sql(ids)}`;
  assert.equal(users.length, ids.length);
  for (const u of users) {
    assert.equal(u.instance_id, "00000000-0000-0000-0000-000000000000");
    assert.equal(u.aud, "authenticated");
    assert.equal(u.role, "authenticated");
    assert.match(u.encrypted_password, /^\$2[aby]\$\d\d\$/, "bcrypt, as GoTrue stores");
    assert.ok(u.email_confirmed_at);
    assert.deepEqual(u.raw_app_meta_data, { provider: "email", providers: ["email"] });
    for (
      const column of [
        "confirmation_token",
        "recovery_token",
        "email_change_token_new",
        "email_change",
        "email_change_token_current",
        "phone_change",
        "phone_change_token",
        "reauthentication_token",
      ]
    ) {
      assert.equal(u[column], "", `${u.id}.${column} must be '' (NULL breaks GoTrue)`);
    }
  }
  const identities = await sql`
    select user_id, provider, provider_id, identity_data, email
      from auth.identities where user_id in ${sql(ids)}`;
  assert.equal(identities.length, ids.length, "one identity per user");
  for (const i of identities) {
    const user = DEMO_USERS.find((u) => u.id === i.user_id)!;
    assert.equal(i.provider, "email");
    assert.equal(i.provider_id, user.id);
    assert.deepEqual(i.identity_data, { sub: user.id, email: user.email, email_verified: true });
    assert.equal(i.email, user.email);
  }
  await sql.end({ timeout: 5 });
});

Deno.test("refresh rotates the refresh token; a used one is refused", async () => {
  const first = await signIn(admin.email, DEMO_PASSWORD);
  const refreshed = await token({ refresh_token: first.refresh_token }, "refresh_token");
  assert.equal(refreshed.status, 200);
  assert.notEqual(refreshed.body.refresh_token, first.refresh_token);
  const before = jose.decodeJwt(first.access_token);
  const after = jose.decodeJwt(refreshed.body.access_token);
  assert.equal(after.session_id, before.session_id, "same session");
  assert.equal(after.sub, admin.id);
  const reused = await token({ refresh_token: first.refresh_token }, "refresh_token");
  assert.equal(reused.status, 400);
  assert.equal(reused.body.error_code, "refresh_token_already_used");
  const unknown = await token({ refresh_token: "nosuchtoken0" }, "refresh_token");
  assert.equal(unknown.body.error_code, "refresh_token_not_found");
});

Deno.test("GET /user answers the user; after POST /logout the session is gone", async () => {
  const session = await signIn(admin.email, DEMO_PASSWORD);
  const headers = { apikey: stack.anonKey, authorization: `Bearer ${session.access_token}` };
  const user = await fetch(`${stack.url}/auth/v1/user`, { headers });
  assert.equal(user.status, 200);
  const body = await user.json();
  assert.equal(body.id, admin.id);
  assert.equal(body.email, admin.email);
  const out = await fetch(`${stack.url}/auth/v1/logout`, { method: "POST", headers });
  await out.body?.cancel();
  assert.equal(out.status, 204);
  const after = await fetch(`${stack.url}/auth/v1/user`, { headers });
  assert.equal(after.status, 403);
  assert.deepEqual(await after.json(), {
    code: 403,
    error_code: "session_not_found",
    msg: "Session from session_id claim in JWT does not exist",
  });
  const refresh = await token({ refresh_token: session.refresh_token }, "refresh_token");
  assert.equal(refresh.status, 400, "the session's refresh token died with it");
});

Deno.test("the token's signature is checked by /user", async () => {
  const session = await signIn(admin.email, DEMO_PASSWORD);
  const [h, p] = session.access_token.split(".");
  const forged = `${h}.${p}.${"A".repeat(43)}`;
  const res = await fetch(`${stack.url}/auth/v1/user`, {
    headers: { apikey: stack.anonKey, authorization: `Bearer ${forged}` },
  });
  assert.equal(res.status, 403);
  assert.equal((await res.json()).error_code, "bad_jwt");
  const keys = await projectKeys();
  assert.ok(!JSON.stringify(session).includes(keys.jwtSecret));
});

Deno.test("the demo page's sign-in (dev/demo/api.js) gets a working session", async () => {
  const g = globalThis as { supabase?: unknown };
  g.supabase = await import("@supabase/supabase-js");
  try {
    const { signIn: pageSignIn } = await import("../../dev/demo/api.js");
    const config = await (await fetch(`${stack.url}/demo/config`)).json();
    const session = await pageSignIn(stack.url, config, "owner");
    const owner = demoUser("owner");
    assert.equal(session.user.id, owner.id);
    const { payload } = await jose.jwtVerify(
      session.access_token,
      new TextEncoder().encode(stack.jwtSecret),
    );
    assert.equal(payload.iss, `${stack.url}/auth/v1`, "issued by the auth service, not minted");
  } finally {
    delete g.supabase;
  }
});
