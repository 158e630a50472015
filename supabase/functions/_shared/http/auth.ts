// Verifies the caller's Supabase access token locally with jose: HS256 tokens against the
// project's JWT secret (self-hosted default), asymmetric ones against the project's JWKS.
// Only signed-in users pass: the anon and service_role keys are project keys, not users.
import * as jose from "jose";
import { AppError } from "../errors.ts";

export interface Caller {
  userId: string;
}

export type TokenVerifier = (authorization: string | null) => Promise<Caller>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ASYMMETRIC = ["ES256", "RS256", "EdDSA"];

export function createTokenVerifier(
  opts: { jwtSecret?: string; jwksUrl: string; issuer?: string; now?: () => number },
): TokenVerifier {
  const secret = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : undefined;
  // jose caches the key set and refetches it on an unknown kid (key rotation), with a cooldown.
  const jwks = jose.createRemoteJWKSet(new URL(opts.jwksUrl), {
    cooldownDuration: 30_000,
    cacheMaxAge: 600_000,
    timeoutDuration: 3_000,
  });
  const unauthorized = (why: string) => new AppError("unauthorized", why);

  return async (authorization) => {
    if (!authorization) {
      throw unauthorized("missing Authorization header: send 'Bearer <access token>'");
    }
    const match = authorization.match(/^Bearer\s+([A-Za-z0-9_.-]+)\s*$/i);
    if (!match) {
      throw unauthorized("malformed Authorization header: expected 'Bearer <access token>'");
    }
    const token = match[1];
    let alg: string | undefined;
    try {
      alg = jose.decodeProtectedHeader(token).alg;
    } catch {
      throw unauthorized("the access token is not a JWT");
    }
    let payload: jose.JWTPayload;
    try {
      const options: jose.JWTVerifyOptions = {
        audience: "authenticated",
        // A token without an expiry would be a credential for ever.
        requiredClaims: ["exp"],
        issuer: opts.issuer,
        currentDate: opts.now ? new Date(opts.now()) : undefined,
      };
      if (alg === "HS256") {
        if (!secret) throw unauthorized("HS256 tokens are not accepted by this project");
        ({ payload } = await jose.jwtVerify(token, secret, { ...options, algorithms: ["HS256"] }));
      } else if (alg && ASYMMETRIC.includes(alg)) {
        ({ payload } = await jose.jwtVerify(token, jwks, { ...options, algorithms: ASYMMETRIC }));
      } else {
        throw unauthorized(`tokens signed with '${alg}' are not accepted`);
      }
    } catch (e) {
      if (e instanceof AppError) throw e;
      if (e instanceof jose.errors.JWTExpired) throw unauthorized("the access token has expired");
      if (e instanceof jose.errors.JWTClaimValidationFailed) {
        throw unauthorized(
          e.reason === "missing"
            ? `the access token has no ${e.claim} claim`
            : `the access token is not a user token for this project (${e.claim} claim)`,
        );
      }
      if (e instanceof jose.errors.JWKSTimeout || !(e instanceof jose.errors.JOSEError)) {
        throw unauthorized("the access token could not be verified");
      }
      throw unauthorized("the access token signature is invalid");
    }
    if (payload.role !== "authenticated") {
      throw unauthorized(
        "an API key is not a user token: sign in and send the user's access token",
      );
    }
    if (typeof payload.sub !== "string" || !UUID.test(payload.sub)) {
      throw unauthorized("the access token has no user id");
    }
    return { userId: payload.sub.toLowerCase() };
  };
}
