// The local stack is the real thing: PostgREST enforces RLS and JWTs, auth.* reads the claims,
// functions get Supabase's env through the gateway, and the JWKS verifies minted tokens.
import assert from "node:assert/strict";
import * as jose from "jose";
import { anonClient, mintUserToken, serviceClient, stack, userClient } from "../_support/stack.ts";

const alice = crypto.randomUUID();
const bob = crypto.randomUUID();

Deno.test("anon is refused by an RLS-protected table", async () => {
  const anon = anonClient();
  const insert = await anon.from("stack_probe_notes").insert({ owner_id: alice, note: "x" });
  assert.equal(insert.error?.code, "42501", "insert as anon must be refused by RLS/privileges");
  const read = await anon.from("stack_probe_notes").select("*");
  assert.equal(read.error, null);
  assert.deepEqual(read.data, []);
});

Deno.test("authenticated users see only the rows the policy allows; service_role sees all", async () => {
  const a = userClient(await mintUserToken(alice));
  const b = userClient(await mintUserToken(bob, { signing: "es256" }));
  assert.equal((await a.from("stack_probe_notes").insert({ note: "alice's" })).error, null);
  assert.equal((await b.from("stack_probe_notes").insert({ note: "bob's" })).error, null);
  const forged = await a.from("stack_probe_notes").insert({ owner_id: bob, note: "as bob" });
  assert.equal(forged.error?.code, "42501", "a user must not write rows for someone else");

  const seenByA = await a.from("stack_probe_notes").select("owner_id, note");
  assert.deepEqual(seenByA.data, [{ owner_id: alice, note: "alice's" }]);
  const seenByB = await b.from("stack_probe_notes").select("owner_id, note");
  assert.deepEqual(seenByB.data, [{ owner_id: bob, note: "bob's" }]);

  const all = await serviceClient().from("stack_probe_notes").select("owner_id").in("owner_id", [
    alice,
    bob,
  ]);
  assert.equal(all.data?.length, 2, "service_role bypasses RLS");
});

Deno.test("auth.uid(), auth.role() and auth.jwt() read the token's claims", async () => {
  for (const signing of ["hs256", "es256"] as const) {
    const token = await mintUserToken(alice, { email: "alice@test.local", signing });
    const { data, error } = await userClient(token).rpc("stack_probe_whoami");
    assert.equal(error, null);
    assert.deepEqual(data, { uid: alice, role: "authenticated", email: "alice@test.local" });
  }
  const anon = await anonClient().rpc("stack_probe_whoami");
  assert.deepEqual(anon.data, { uid: null, role: "anon", email: null });
});

Deno.test("PostgREST refuses forged, expired and unsigned tokens", async () => {
  const forged = await new jose.SignJWT({ role: "authenticated", sub: alice, aud: "authenticated" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode("another-secret-another-secret-another-secret"));
  const expired = await mintUserToken(alice, { expiresInSeconds: -60 });
  const unsigned = new jose.UnsecuredJWT({ role: "service_role", sub: alice }).encode();
  const [h, p] = (await mintUserToken(alice)).split(".");
  const tampered = `${h}.${p.slice(0, -2)}xx.${"A".repeat(43)}`;
  for (const [label, token] of Object.entries({ forged, expired, unsigned, tampered })) {
    const res = await fetch(`${stack.url}/rest/v1/stack_probe_notes`, {
      headers: { apikey: stack.anonKey, Authorization: `Bearer ${token}` },
    });
    const body = await res.json();
    assert.equal(res.status, 401, `${label} token must be refused`);
    assert.match(body.code, /^PGRST30/, `${label}: ${JSON.stringify(body)}`);
  }
});

Deno.test("a function process receives Supabase's env and the project's env file", async () => {
  const res = await fetch(`${stack.url}/functions/v1/stack-probe`, {
    method: "POST",
    headers: { Authorization: `Bearer ${stack.anonKey}` },
    body: "{}",
  });
  assert.equal(res.status, 200);
  const { env } = await res.json();
  assert.equal(env.SUPABASE_URL, stack.url);
  assert.equal(env.SUPABASE_ANON_KEY, stack.anonKey);
  assert.equal(env.SUPABASE_SERVICE_ROLE_KEY, stack.serviceRoleKey);
  assert.equal(env.SUPABASE_DB_URL, stack.dbUrl);
  assert.equal(env.STACK_PROBE_GREETING, "hello-from-env-file");
});

Deno.test("the gateway passes method, path, query, headers and body through untouched", async () => {
  const token = await mintUserToken(alice);
  const body = JSON.stringify({ emoji: "Подключить WhatsApp ✓", n: [1, 2, 3] });
  const res = await fetch(`${stack.url}/functions/v1/stack-probe/sub/path?x=1&y=two`, {
    method: "PUT",
    headers: {
      Authorization: `Bearer ${token}`,
      "content-type": "application/json; charset=utf-8",
      "x-custom": "kept",
    },
    body,
  });
  const seen = await res.json();
  assert.equal(seen.method, "PUT");
  assert.equal(seen.path, "/stack-probe/sub/path");
  assert.equal(seen.search, "?x=1&y=two");
  assert.equal(seen.body, body);
  assert.equal(seen.headers["x-custom"], "kept");
  assert.equal(seen.headers.authorization, `Bearer ${token}`);
  assert.equal(seen.headers["content-type"], "application/json; charset=utf-8");
});

Deno.test("the gateway round-robins over a function's processes", async () => {
  const pids = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${stack.url}/functions/v1/stack-probe`, {
      headers: { Authorization: `Bearer ${stack.anonKey}` },
    });
    pids.add((await res.json()).pid);
  }
  assert.equal(pids.size, stack.functionUrls["stack-probe"].length);
});

Deno.test("verify_jwt = true: the gateway refuses missing and invalid tokens, lets preflights by", async () => {
  const url = `${stack.url}/functions/v1/stack-probe`;
  const missing = await fetch(url, { method: "POST" });
  assert.equal(missing.status, 401);
  assert.match((await missing.json()).message, /Missing authorization header/);
  const bad = await fetch(url, { method: "POST", headers: { Authorization: "Bearer not.a.jwt" } });
  assert.equal(bad.status, 401);
  assert.match((await bad.json()).message, /Invalid JWT/);
  const expired = await fetch(url, {
    method: "POST",
    headers: { Authorization: `Bearer ${await mintUserToken(alice, { expiresInSeconds: -5 })}` },
  });
  assert.equal(expired.status, 401);
  await expired.body?.cancel();
  const preflight = await fetch(url, { method: "OPTIONS" });
  assert.equal(preflight.status, 200);
  assert.equal((await preflight.json()).method, "OPTIONS");
  const unknown = await fetch(`${stack.url}/functions/v1/no-such-function`, { method: "POST" });
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
});

Deno.test("JWKS publishes only public keys and verifies a minted ES256 token", async () => {
  const res = await fetch(`${stack.url}/auth/v1/.well-known/jwks.json`);
  assert.equal(res.status, 200);
  const jwks = await res.json();
  assert.ok(jwks.keys.length >= 1);
  for (const key of jwks.keys) {
    assert.notEqual(key.kty, "oct", "the symmetric secret must never be published");
    assert.equal(key.d, undefined, "no private key material");
    assert.equal(key.k, undefined);
  }
  assert.ok(!JSON.stringify(jwks).includes(stack.jwtSecret));
  const token = await mintUserToken(alice, { signing: "es256", email: "a@x.local" });
  const { payload, protectedHeader } = await jose.jwtVerify(
    token,
    jose.createLocalJWKSet(jwks),
    { audience: "authenticated" },
  );
  assert.equal(protectedHeader.alg, "ES256");
  assert.equal(payload.sub, alice);
  for (const claim of ["role", "aud", "email", "exp", "iat", "session_id"]) {
    assert.ok(claim in payload, `claim ${claim} present`);
  }
});

Deno.test("the health route probes every service and every function process", async () => {
  const res = await fetch(`${stack.url}/health`);
  assert.equal(res.status, 200);
  const health = await res.json();
  assert.equal(health.status, "ok");
  for (const service of ["postgres", "postgrest", "auth", "simulator"]) {
    assert.equal(health.services[service]?.status, "up", `${service}: ${JSON.stringify(health)}`);
    assert.equal(typeof health.services[service].pid, "number");
  }
  const processes = Object.keys(health.services.functions);
  for (const name of ["stack-probe#1", "stack-probe#2", "wpp-create#1", "wpp-status#1"]) {
    assert.ok(processes.includes(name), `${name} in ${processes}`);
    assert.equal(health.services.functions[name].status, "up");
  }
});
