// Access tokens that must not get anyone in: expired, unsigned, signed with the wrong key or
// algorithm, with the wrong claims, or belonging to another project.
import * as jose from "jose";
import { mintUserToken, stack } from "../_support/stack.ts";

const enc = new TextEncoder();
const projectSecret = () => enc.encode(stack.jwtSecret);
const now = () => Math.floor(Date.now() / 1000);

/** The claims Supabase Auth puts in a user's access token, for `sub`. */
export function userClaims(sub: string): jose.JWTPayload {
  return { sub, aud: "authenticated", role: "authenticated", iat: now(), exp: now() + 3600 };
}

export async function hs(
  payload: Record<string, unknown>,
  opts: { alg?: string; secret?: Uint8Array; header?: Record<string, unknown> } = {},
): Promise<string> {
  const alg = opts.alg ?? "HS256";
  return await new jose.SignJWT(payload as jose.JWTPayload)
    .setProtectedHeader({ alg, typ: "JWT", ...opts.header })
    .sign(opts.secret ?? projectSecret());
}

/** HS256 over any header, including ones jose refuses to produce. */
async function rawHs256(
  header: Record<string, unknown>,
  payload: jose.JWTPayload,
): Promise<string> {
  const input = `${jose.base64url.encode(JSON.stringify(header))}.${
    jose.base64url.encode(JSON.stringify(payload))
  }`;
  const key = await crypto.subtle.importKey(
    "raw",
    projectSecret(),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(input)));
  return `${input}.${jose.base64url.encode(mac)}`;
}

async function foreign(
  alg: "ES256" | "RS256",
  payload: jose.JWTPayload,
  header: Record<string, unknown> = {},
): Promise<string> {
  const { privateKey } = await jose.generateKeyPair(alg);
  return await new jose.SignJWT(payload).setProtectedHeader({ alg, typ: "JWT", ...header })
    .sign(privateKey);
}

function unsigned(payload: jose.JWTPayload): string {
  return new jose.UnsecuredJWT(payload).encode();
}

/** Same header and signature, another payload: what a forger without the key can do. */
function swapPayload(token: string, payload: jose.JWTPayload): string {
  const [h, , s] = token.split(".");
  return `${h}.${jose.base64url.encode(JSON.stringify(payload))}.${s}`;
}

export interface Parties {
  adminA: string;
  adminB: string;
  tokenA: string;
  es256Kid: string;
}

/** [name, token, expected status] */
export async function badTokens(p: Parties): Promise<[string, string, number][]> {
  const a = userClaims(p.adminA);
  const b = userClaims(p.adminB);
  const other = enc.encode("another-projects-jwt-secret-with-at-least-32-characters");
  const omit = (claims: jose.JWTPayload, key: string) => {
    const copy = { ...claims };
    delete copy[key];
    return copy;
  };
  const [h, pl, sig] = p.tokenA.split(".");
  return [
    ["expired", await mintUserToken(p.adminA, { expiresInSeconds: -60 }), 401],
    ["not yet valid (nbf in an hour)", await hs({ ...a, nbf: now() + 3600 }), 401],
    ["alg none", unsigned(a), 401],
    ["alg none, another org's admin", unsigned(b), 401],
    ["wrong HS256 secret", await hs(a, { secret: other }), 401],
    [
      "another project's token",
      await hs({ ...b, iss: "https://other.supabase.co/auth/v1" }, { secret: other }),
      401,
    ],
    ["HS384 with the project secret", await hs(a, { alg: "HS384" }), 401],
    ["HS512 with the project secret", await hs(a, { alg: "HS512" }), 401],
    ["ES256 from an unknown key", await foreign("ES256", a, { kid: "unknown-kid" }), 401],
    [
      "ES256 from another key under the project's kid",
      await foreign("ES256", a, { kid: p.es256Kid }),
      401,
    ],
    [
      "ES256 with a jku pointing elsewhere",
      await foreign("ES256", a, { jku: "http://127.0.0.1:9/jwks" }),
      401,
    ],
    ["ES256 with a path in kid", await foreign("ES256", a, { kid: "../../../etc/passwd" }), 401],
    ["RS256 from an unknown key", await foreign("RS256", a), 401],
    [
      "HS256 signed with the anon key as secret",
      await hs(a, { secret: enc.encode(stack.anonKey) }),
      401,
    ],
    ["anon key", stack.anonKey, 401],
    ["service role key", stack.serviceRoleKey, 401],
    ["audience anon", await hs({ ...a, aud: "anon" }), 401],
    ["no audience", await hs(omit(a, "aud")), 401],
    ["audience of another app", await hs({ ...a, aud: ["other-app"] }), 401],
    ["no role", await hs(omit(a, "role")), 401],
    ["role service_role", await hs({ ...a, role: "service_role" }), 401],
    ["role anon", await hs({ ...a, role: "anon" }), 401],
    ["role postgres", await hs({ ...a, role: "postgres" }), 401],
    ["no sub", await hs(omit(a, "sub")), 401],
    ["sub not a uuid", await hs({ ...a, sub: "not-a-uuid" }), 401],
    ["sub a number", await hs({ ...a, sub: 12345 }), 401],
    ["sub with SQL in it", await hs({ ...a, sub: "' or 1=1 --" }), 401],
    ["exp as a string", await hs({ ...a, exp: String(now() + 3600) }), 401],
    ["iat as a string", await hs({ ...a, iat: String(now()) }), 401],
    [
      "critical header the verifier does not know",
      await rawHs256({ alg: "HS256", crit: ["x-bank"], "x-bank": 1 }, a),
      401,
    ],
    ["signature altered", `${h}.${pl}.${sig.slice(0, -4)}AAAA`, 401],
    ["payload swapped to another org's admin", swapPayload(p.tokenA, b), 401],
    ["signature missing", `${h}.${pl}`, 401],
    ["signature empty", `${h}.${pl}.`, 401],
    ["four segments", `${p.tokenA}.AAAA`, 401],
    ["five segments (JWE-shaped)", `${h}.AAAA.AAAA.AAAA.AAAA`, 401],
    ["header not JSON", `bm90IGpzb24.${pl}.${sig}`, 401],
    ["a user that does not exist", await mintUserToken(crypto.randomUUID()), 403],
  ];
}
