// The gateway guards what Kong guards in Supabase's kong.yml: key-auth on /rest/v1 and /auth/v1
// (open auth routes excepted), Authorization filled from the apikey, Kong's CORS answers; and
// /functions/v1 stays a passthrough without key-auth, preflights included.
import assert from "node:assert/strict";
import { mintUserToken, stack } from "../_support/stack.ts";

const alice = crypto.randomUUID();

async function call(path: string, init: RequestInit = {}) {
  const res = await fetch(`${stack.url}${path}`, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body };
}

Deno.test("key-auth: no apikey is a 401 with Kong's message, on REST and Auth alike", async () => {
  for (const path of ["/rest/v1/stack_probe_notes", "/auth/v1/user", "/auth/v1/token"]) {
    const res = await call(path, { headers: { authorization: `Bearer ${stack.anonKey}` } });
    assert.equal(res.status, 401, path);
    assert.deepEqual(res.body, { message: "No API key found in request" }, path);
    assert.equal(res.headers.get("www-authenticate"), 'Key realm="kong"');
  }
});

Deno.test("key-auth: only the anon and service_role keys are consumers; a user's JWT is not", async () => {
  const userJwt = await mintUserToken(alice);
  for (const key of [userJwt, "not-a-key", `${stack.anonKey}x`]) {
    const res = await call("/rest/v1/stack_probe_notes", { headers: { apikey: key } });
    assert.equal(res.status, 401);
    assert.deepEqual(res.body, { message: "Invalid authentication credentials" });
  }
});

Deno.test("key-auth: the apikey may come in the query string, and goes no further", async () => {
  const res = await call(`/rest/v1/stack_probe_notes?select=note&apikey=${stack.anonKey}`);
  // Forwarded, PostgREST would have refused the unknown 'apikey' filter with PGRST100.
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body, []);
  const missing = await call("/rest/v1/stack_probe_notes?select=note&apikey=");
  assert.equal(missing.status, 401);
});

Deno.test("without Authorization the apikey becomes the bearer; a sent Authorization wins", async () => {
  const asKey = (key: string) =>
    call("/rest/v1/rpc/stack_probe_whoami", {
      method: "POST",
      headers: { apikey: key, "content-type": "application/json" },
      body: "{}",
    });
  assert.deepEqual((await asKey(stack.anonKey)).body, { uid: null, role: "anon", email: null });
  assert.deepEqual((await asKey(stack.serviceRoleKey)).body, {
    uid: null,
    role: "service_role",
    email: null,
  });
  const token = await mintUserToken(alice, { email: "alice@test.local" });
  const asUser = await call("/rest/v1/rpc/stack_probe_whoami", {
    method: "POST",
    headers: {
      apikey: stack.serviceRoleKey,
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
    },
    body: "{}",
  });
  assert.deepEqual(asUser.body, { uid: alice, role: "authenticated", email: "alice@test.local" });
});

Deno.test("the open auth routes need no apikey; the others do", async () => {
  const jwks = await call("/auth/v1/.well-known/jwks.json");
  assert.equal(jwks.status, 200);
  assert.ok(Array.isArray((jwks.body as { keys: unknown[] }).keys));
  for (const path of ["/auth/v1/verify", "/auth/v1/callback", "/auth/v1/authorize"]) {
    const res = await call(path);
    // Past the gateway: the stand-in does not serve these flows (GoTrue would).
    assert.notEqual(res.status, 401, `${path} must not need an apikey`);
    assert.equal(res.status, 404, path);
  }
  const user = await call("/auth/v1/user");
  assert.equal(user.status, 401);
  assert.deepEqual(user.body, { message: "No API key found in request" });
});

Deno.test("CORS on REST and Auth is Kong's: preflights answered without a key, any origin", async () => {
  for (const path of ["/rest/v1/stack_probe_notes", "/auth/v1/token?grant_type=password"]) {
    const res = await fetch(`${stack.url}${path}`, {
      method: "OPTIONS",
      headers: {
        origin: "http://page.test",
        "access-control-request-method": "POST",
        "access-control-request-headers": "apikey,authorization,content-type,x-client-info",
      },
    });
    await res.body?.cancel();
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.equal(
      res.headers.get("access-control-allow-headers"),
      "apikey,authorization,content-type,x-client-info",
    );
    assert.match(res.headers.get("access-control-allow-methods") ?? "", /POST/);
  }
  const refused = await fetch(`${stack.url}/rest/v1/stack_probe_notes`, {
    headers: { origin: "http://page.test" },
  });
  await refused.body?.cancel();
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get("access-control-allow-origin"), "*", "a browser can read why");
});

Deno.test("functions: no key-auth (a webhook has no apikey), OPTIONS reaches the function", async () => {
  // stack-probe has verify_jwt = true: a bearer is needed, an apikey is not.
  const res = await call("/functions/v1/stack-probe", {
    method: "POST",
    headers: { authorization: `Bearer ${stack.anonKey}` },
    body: "{}",
  });
  assert.equal(res.status, 200);
  const seen = res.body as { headers: Record<string, string> };
  assert.equal(seen.headers.apikey, undefined, "nothing adds an apikey on the way");
  const preflight = await call("/functions/v1/stack-probe", {
    method: "OPTIONS",
    headers: { origin: "http://page.test", "access-control-request-method": "POST" },
  });
  assert.equal(preflight.status, 200);
  assert.equal(
    (preflight.body as { method: string }).method,
    "OPTIONS",
    "answered by the function",
  );
});
