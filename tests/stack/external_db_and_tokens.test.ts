// An existing PostgreSQL server can stand in for the embedded one (DB_URL), and the token CLI
// mints tokens the stack accepts.
import assert from "node:assert/strict";
import { join } from "node:path";
import * as jose from "jose";
import postgres from "postgres";
import { startStack } from "../../dev/stack/stack.ts";
import { DEV_JWT_SECRET } from "../../dev/stack/keys.ts";
import { demoUser } from "../../dev/stack/demo-users.ts";
import { ROOT } from "../../dev/stack/paths.ts";
import { stack } from "../_support/stack.ts";

const ports = { gateway: 0, db: 0, postgrest: 0, postgrestAdmin: 0, simulator: 0 };

Deno.test("with DB_URL the stack migrates a database of its own on that server and drops it after", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wpp-extdb-" });
  const server = postgres(stack.superuserUrl, { max: 1, onnotice: () => {} });
  const ours = () =>
    server<{ datname: string }[]>`
      select datname from pg_database where datname like 'wpp_connect_test_%'`;
  try {
    const before = (await ours()).length;
    const external = await startStack({
      dataDir,
      ports,
      ephemeral: true,
      externalDbUrl: stack.superuserUrl,
      simulator: false,
      skipProjectFunctions: true,
    });
    try {
      assert.equal((await ours()).length, before + 1, "a throwaway database was created");
      assert.notEqual(new URL(external.dbUrl).pathname, new URL(stack.dbUrl).pathname);
      // This server's `postgres` is an ordinary role the password logs in: it migrates.
      assert.equal(external.migrator, "postgres");
      assert.equal(new URL(external.dbUrl).username, "postgres");
      // Migrated and seeded: the seeded organisation is there, behind RLS, through its PostgREST.
      const res = await fetch(`${external.restUrl}/organizations?select=id`, {
        headers: {
          apikey: external.keys.serviceRoleKey,
          Authorization: `Bearer ${external.keys.serviceRoleKey}`,
        },
      });
      assert.equal(res.status, 200);
      const orgs = await res.json();
      assert.ok(orgs.some((o: { id: string }) => o.id === demoUser("admin").organizationId));
    } finally {
      await external.stop();
    }
    assert.equal((await ours()).length, before, "the throwaway database is dropped on stop");
  } finally {
    await server.end({ timeout: 5 });
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("deno task token mints a Supabase-shaped user token the REST API accepts", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wpp-token-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        join(ROOT, "dev/stack/token-cli.ts"),
        "admin@demo.local",
        "--expires",
        "120",
      ],
      cwd: ROOT,
      env: { STACK_DATA_DIR: dataDir, JWT_SECRET: stack.jwtSecret },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const token = new TextDecoder().decode(out.stdout).trim();
    const { payload } = await jose.jwtVerify(token, new TextEncoder().encode(stack.jwtSecret));
    const admin = demoUser("admin");
    assert.equal(payload.sub, admin.id);
    assert.equal(payload.email, admin.email);
    assert.equal(payload.role, "authenticated");
    assert.equal(payload.aud, "authenticated");
    assert.ok(typeof payload.session_id === "string");
    assert.ok(payload.exp! - payload.iat! === 120);
    assert.equal(stack.jwtSecret, DEV_JWT_SECRET, "the test stack uses the dev secret");

    const res = await fetch(`${stack.url}/rest/v1/rpc/stack_probe_whoami`, {
      method: "POST",
      headers: {
        apikey: stack.anonKey,
        Authorization: `Bearer ${token}`,
        "content-type": "application/json",
      },
      body: "{}",
    });
    assert.deepEqual(await res.json(), {
      uid: admin.id,
      role: "authenticated",
      email: admin.email,
    });

    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "dev/stack/token-cli.ts"), "nobody"],
      cwd: ROOT,
      env: { STACK_DATA_DIR: dataDir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(bad.code, 2);
    assert.match(new TextDecoder().decode(bad.stderr), /not a user id, demo email or demo key/);
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
