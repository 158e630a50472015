// `deno task token <user-id|email|demo key> [--expires 3600]`: prints a user access token shaped
// like Supabase Auth's, signed with the stack's keys (JWT_SECRET or the saved ES256 key).
// `deno task token --anon` / `--service-role` prints the project's API key instead.
import { join } from "node:path";
import { loadStackEnv } from "./config.ts";
import { buildProjectKeys, DEV_JWT_SECRET, generateEs256Jwk, mintUserToken } from "./keys.ts";
import { DEMO_USERS } from "./demo-users.ts";

const [who, ...rest] = Deno.args;
if (!who) {
  console.error(
    "usage: deno task token <user-id|email|owner|admin|member|other_admin|loner> [--expires SECONDS]\n" +
      "       deno task token --anon | --service-role",
  );
  Deno.exit(2);
}
const env = loadStackEnv();
if (who === "--anon" || who === "--service-role") {
  // API keys do not depend on the signing key: only on JWT_SECRET.
  const keys = await buildProjectKeys({
    jwtSecret: env.JWT_SECRET ?? DEV_JWT_SECRET,
    signing: "hs256",
    es256PrivateJwk: await generateEs256Jwk(),
  });
  console.log(who === "--anon" ? keys.anonKey : keys.serviceRoleKey);
  Deno.exit(0);
}
const expiresAt = rest.indexOf("--expires");
const expiresInSeconds = expiresAt >= 0 ? Number(rest[expiresAt + 1]) : 3600;
const demo = DEMO_USERS.find((u) => u.key === who || u.email === who || u.id === who);
const sub = demo?.id ?? who;
if (!/^[0-9a-f-]{36}$/i.test(sub)) {
  console.error(`not a user id, demo email or demo key: ${who}`);
  Deno.exit(2);
}
let jwk;
try {
  jwk = JSON.parse(await Deno.readTextFile(join(env.STACK_DATA_DIR, "signing-key.json")));
} catch {
  if (env.AUTH_SIGNING === "es256") {
    console.error("no ES256 key saved yet: start the stack once (deno task start) first");
    Deno.exit(1);
  }
  jwk = await generateEs256Jwk();
}
const keys = await buildProjectKeys({
  jwtSecret: env.JWT_SECRET ?? DEV_JWT_SECRET,
  signing: env.AUTH_SIGNING,
  es256PrivateJwk: jwk,
});
console.log(await mintUserToken(keys, { sub, email: demo?.email, expiresInSeconds }));
