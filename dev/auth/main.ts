// The auth stand-in as its own process, as GoTrue is its own service:
//   deno run -A dev/auth/main.ts --port 54327
// Environment: AUTH_DB_URL (supabase_auth_admin's URL), JWT_SECRET, AUTH_SIGNING (hs256|es256),
// AUTH_ES256_JWK (the private signing key, JSON), AUTH_ISSUER, AUTH_JWT_EXPIRY (seconds).
import postgres from "postgres";
import { buildProjectKeys, type SigningMode } from "../stack/keys.ts";
import { createAuthHandler } from "./server.ts";

function env(name: string, fallback?: string): string {
  const value = Deno.env.get(name) ?? fallback;
  if (value === undefined) {
    console.error(`auth: ${name} is not set`);
    Deno.exit(2);
  }
  return value;
}

const portAt = Deno.args.indexOf("--port");
const port = Number(portAt >= 0 ? Deno.args[portAt + 1] : env("AUTH_PORT", "9999"));
const signing = env("AUTH_SIGNING", "hs256") as SigningMode;
const keys = await buildProjectKeys({
  jwtSecret: env("JWT_SECRET"),
  signing,
  es256PrivateJwk: JSON.parse(env("AUTH_ES256_JWK")),
});
const sql = postgres(env("AUTH_DB_URL"), {
  max: 4,
  onnotice: () => {},
  connection: { application_name: "auth-stand-in" },
});
const handler = createAuthHandler({
  sql,
  keys,
  issuer: env("AUTH_ISSUER"),
  jwtExpirySeconds: Number(env("AUTH_JWT_EXPIRY", "3600")),
});

const ac = new AbortController();
const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  signal: ac.signal,
  onListen: ({ port }) => console.log(`auth stand-in listening on 127.0.0.1:${port}`),
}, handler);

const stop = async () => {
  ac.abort();
  await server.finished;
  await sql.end({ timeout: 2 });
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
