// Project keys shaped like Supabase's: one symmetric JWT secret that signs the anon and
// service_role API keys, and user access tokens signed either with that secret (self-hosted
// default) or with an asymmetric ES256 key (what new Supabase projects use).
import * as jose from "jose";

/** Supabase's well-known local development secret; override with JWT_SECRET. */
export const DEV_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

export type SigningMode = "hs256" | "es256";

export interface ProjectKeys {
  jwtSecret: string;
  signing: SigningMode;
  anonKey: string;
  serviceRoleKey: string;
  /** Private ES256 key as JWK (only kept by the stack, never served). */
  es256PrivateJwk: jose.JWK;
  /** Public keys only: what /auth/v1/.well-known/jwks.json serves. */
  publicJwks: { keys: jose.JWK[] };
  /** What PostgREST gets as its JWT secret: the symmetric secret plus the public key. */
  postgrestJwks: { keys: jose.JWK[] };
}

// Fixed claims, as Supabase's own local keys have: the same JWT secret always gives the same
// anon and service_role keys, so a key copied from the README or an earlier start keeps working
// (Kong's key-auth, like the gateway, compares keys as exact strings).
const API_KEY_ISSUER = "supabase-demo";
/** The issuer of tokens minted without the auth service (`npm run token`, tests). */
const ISSUER = "supabase-local";
const API_KEY_EXPIRES_AT = 1983812996;

function secretKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

async function signApiKey(secret: string, role: "anon" | "service_role"): Promise<string> {
  return await new jose.SignJWT({ role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(API_KEY_ISSUER)
    .setExpirationTime(API_KEY_EXPIRES_AT)
    .sign(secretKey(secret));
}

export async function generateEs256Jwk(): Promise<jose.JWK> {
  const { privateKey } = await jose.generateKeyPair("ES256", { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  const kid = await jose.calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg: "ES256", use: "sig" };
}

function publicPart(jwk: jose.JWK): jose.JWK {
  const { kty, crv, x, y, kid, alg, use } = jwk;
  return { kty, crv, x, y, kid, alg, use, key_ops: ["verify"] };
}

export async function buildProjectKeys(
  opts: { jwtSecret: string; signing: SigningMode; es256PrivateJwk: jose.JWK },
): Promise<ProjectKeys> {
  if (opts.jwtSecret.length < 32) {
    throw new Error("JWT_SECRET must be at least 32 characters (PostgREST refuses shorter ones)");
  }
  const pub = publicPart(opts.es256PrivateJwk);
  const oct: jose.JWK = {
    kty: "oct",
    k: jose.base64url.encode(secretKey(opts.jwtSecret)),
    alg: "HS256",
  };
  return {
    jwtSecret: opts.jwtSecret,
    signing: opts.signing,
    anonKey: await signApiKey(opts.jwtSecret, "anon"),
    serviceRoleKey: await signApiKey(opts.jwtSecret, "service_role"),
    es256PrivateJwk: opts.es256PrivateJwk,
    // The asymmetric key is published whichever mode mints user tokens, as Supabase does once a
    // project has a signing key: verifiers then accept both while a project migrates.
    publicJwks: { keys: [pub] },
    postgrestJwks: { keys: [oct, pub] },
  };
}

export interface UserTokenInput {
  sub: string;
  email?: string;
  expiresInSeconds?: number;
  /** Overrides for tests that need odd claims (e.g. a wrong audience). */
  claims?: Record<string, unknown>;
}

/**
 * Signs a complete claim set as the project signs user access tokens: ES256 with the signing key
 * (its kid in the header, so verifiers pick it from the JWKS) or HS256 with the JWT secret.
 */
export async function signAccessToken(
  keys: ProjectKeys,
  claims: jose.JWTPayload,
): Promise<string> {
  const jwt = new jose.SignJWT(claims);
  if (keys.signing === "es256") {
    const key = await jose.importJWK(keys.es256PrivateJwk, "ES256");
    return await jwt
      .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: keys.es256PrivateJwk.kid })
      .sign(key);
  }
  return await jwt.setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(
    secretKey(keys.jwtSecret),
  );
}

/** A user access token shaped like the ones Supabase Auth issues. */
export async function mintUserToken(keys: ProjectKeys, input: UserTokenInput): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await signAccessToken(keys, {
    aud: "authenticated",
    role: "authenticated",
    email: input.email ?? "",
    phone: "",
    session_id: crypto.randomUUID(),
    aal: "aal1",
    amr: [{ method: "password", timestamp: now }],
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    is_anonymous: false,
    ...input.claims,
    sub: input.sub,
    iss: `${ISSUER}/auth/v1`,
    iat: now,
    exp: now + (input.expiresInSeconds ?? 3600),
  });
}

/**
 * Verifies a project JWT the way Supabase's gateway does for `verify_jwt = true`:
 * any token signed by the project (API keys included), unexpired.
 */
export async function verifyProjectJwt(
  keys: ProjectKeys,
  token: string,
): Promise<jose.JWTPayload> {
  const header = jose.decodeProtectedHeader(token);
  if (header.alg === "HS256") {
    const { payload } = await jose.jwtVerify(token, secretKey(keys.jwtSecret), {
      algorithms: ["HS256"],
    });
    return payload;
  }
  const jwks = jose.createLocalJWKSet({
    keys: keys.postgrestJwks.keys.filter((k) => k.kty !== "oct"),
  });
  const { payload } = await jose.jwtVerify(token, jwks, { algorithms: ["ES256"] });
  return payload;
}
