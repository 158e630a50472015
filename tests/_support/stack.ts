// What the test runner (dev/stack/test-runner.ts) tells the tests about the stack it started.
import { createClient, type Session, type SupabaseClient } from "@supabase/supabase-js";
import postgres from "postgres";
import type * as jose from "jose";
import {
  buildProjectKeys,
  mintUserToken as mint,
  type ProjectKeys,
  type SigningMode,
} from "../../dev/stack/keys.ts";

function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) {
    throw new Error(
      `${name} is not set: run the tests through \`deno task test\`, which starts the stack`,
    );
  }
  return value;
}

export const stack = {
  url: required("STACK_URL"),
  anonKey: required("STACK_ANON_KEY"),
  serviceRoleKey: required("STACK_SERVICE_ROLE_KEY"),
  jwtSecret: required("STACK_JWT_SECRET"),
  /** `postgres`, not a superuser: what Supabase gives as the database URL. */
  dbUrl: required("STACK_DB_URL"),
  /** The cluster's superuser (supabase_admin). */
  superuserUrl: required("STACK_DB_SUPERUSER_URL"),
  postgrestUrl: required("STACK_POSTGREST_URL"),
  simulatorUrl: Deno.env.get("STACK_SIM_URL") ?? "",
  simulatorSecret: Deno.env.get("STACK_SIM_SECRET") ?? "",
  functionUrls: JSON.parse(Deno.env.get("STACK_FUNCTION_URLS") ?? "{}") as Record<string, string[]>,
  functionEnv: JSON.parse(Deno.env.get("STACK_FUNCTION_ENV") ?? "{}") as Record<string, string>,
  startupMs: Number(Deno.env.get("STACK_STARTUP_MS") ?? "0"),
  /** wpp-webhook forwards events to http://127.0.0.1:<port>/events; a test may listen there. */
  forwardPort: Number(Deno.env.get("STACK_FORWARD_PORT") ?? "0"),
};

const es256Jwk = JSON.parse(required("STACK_ES256_JWK")) as jose.JWK;
const keyCache = new Map<SigningMode, Promise<ProjectKeys>>();

export function projectKeys(signing: SigningMode = "hs256"): Promise<ProjectKeys> {
  let keys = keyCache.get(signing);
  if (!keys) {
    keys = buildProjectKeys({ jwtSecret: stack.jwtSecret, signing, es256PrivateJwk: es256Jwk });
    keyCache.set(signing, keys);
  }
  return keys;
}

/** A Supabase-shaped user access token; HS256 unless `signing: "es256"`. */
export async function mintUserToken(
  userId: string,
  opts: {
    email?: string;
    expiresInSeconds?: number;
    signing?: SigningMode;
    claims?: Record<string, unknown>;
  } = {},
): Promise<string> {
  return await mint(await projectKeys(opts.signing), {
    sub: userId,
    email: opts.email,
    expiresInSeconds: opts.expiresInSeconds,
    claims: opts.claims,
  });
}

const noSession = { auth: { persistSession: false, autoRefreshToken: false } } as const;

export function anonClient(): SupabaseClient {
  return createClient(stack.url, stack.anonKey, noSession);
}

export function serviceClient(): SupabaseClient {
  return createClient(stack.url, stack.serviceRoleKey, noSession);
}

/** A client acting as a signed-in user: the anon key as apikey, the user's token as bearer. */
export function userClient(accessToken: string): SupabaseClient {
  return createClient(stack.url, stack.anonKey, {
    ...noSession,
    global: { headers: { Authorization: `Bearer ${accessToken}` } },
  });
}

/** A superuser connection for setup and before/after snapshots; call `.end()` when done. */
export function db() {
  return postgres(stack.superuserUrl, { max: 4, onnotice: () => {} });
}

/** The password supabase/seed.sql gives every demo user. */
export const DEMO_PASSWORD = "demo-password";

/**
 * Signs in through Supabase Auth's API as the UI does (supabase-js `signInWithPassword`) and
 * answers the session, or throws the Auth error.
 */
export async function signIn(email: string, password: string): Promise<Session> {
  const client = createClient(stack.url, stack.anonKey, noSession);
  const { data, error } = await client.auth.signInWithPassword({ email, password });
  if (error) throw error;
  return data.session;
}
