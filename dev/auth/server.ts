// A small stand-in for Supabase Auth (GoTrue): password sign-in, refresh, the current user and
// sign-out, on GoTrue's own tables (auth.users, auth.identities, auth.sessions,
// auth.refresh_tokens) and with GoTrue's request and answer shapes, so supabase-js's auth client
// works against it unchanged. Behaviour follows supabase/auth (internal/api/token.go, user.go,
// logout.go, errors.go; internal/tokens/service.go; internal/models/user.go).
import type postgres from "postgres";
import type * as jose from "jose";
import { type ProjectKeys, signAccessToken, verifyProjectJwt } from "../stack/keys.ts";

export interface AuthOptions {
  /** Connected as supabase_auth_admin, as GoTrue connects. */
  sql: postgres.Sql;
  keys: ProjectKeys;
  /** `iss` of the access tokens: the project's URL + /auth/v1. */
  issuer: string;
  /** Access token lifetime (GoTrue's JWT_EXP, Supabase's default 3600). */
  jwtExpirySeconds: number;
}

const NIL_UUID = "00000000-0000-0000-0000-000000000000";
const AUD = "authenticated";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const API_VERSION_HEADER = "x-supabase-api-version";
const API_VERSION_2024 = "2024-01-01";
const INVALID_LOGIN = "Invalid login credentials";
// GoTrue scans these columns into Go strings: a NULL in any of them fails the whole lookup.
const NON_NULL_STRINGS = [
  "confirmation_token",
  "recovery_token",
  "email_change_token_new",
  "email_change",
  "email_change_token_current",
  "phone_change",
  "phone_change_token",
  "reauthentication_token",
] as const;

type Row = Record<string, unknown>;

class AuthError extends Error {
  constructor(readonly status: number, readonly errorCode: string, message: string) {
    super(message);
  }
}

/** OAuth-style errors ({error, error_description}) GoTrue still answers on /token. */
class OAuthError extends Error {
  constructor(readonly error: string, readonly description: string) {
    super(description);
  }
}

/** supabase-js sends X-Supabase-Api-Version: 2024-01-01 and gets {code, message} errors. */
function wantsNewErrors(req: Request): boolean {
  const v = req.headers.get(API_VERSION_HEADER);
  return !!v && /^\d{4}-\d{2}-\d{2}$/.test(v) && v >= API_VERSION_2024;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function errorResponse(req: Request, e: unknown): Response {
  const versioned = wantsNewErrors(req);
  const headers: Record<string, string> = versioned
    ? { [API_VERSION_HEADER]: API_VERSION_2024 }
    : {};
  if (e instanceof OAuthError) {
    return json(400, {
      error: e.error,
      ...(e.description ? { error_description: e.description } : {}),
    }, headers);
  }
  const err = e instanceof AuthError ? e : new AuthError(
    500,
    "unexpected_failure",
    "Unexpected failure, please check server logs for more information",
  );
  if (!(e instanceof AuthError)) console.error(`auth: ${(e as Error)?.message ?? e}`);
  return versioned
    ? json(err.status, { code: err.errorCode, message: err.message }, headers)
    : json(err.status, { code: err.status, error_code: err.errorCode, msg: err.message }, headers);
}

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : v ?? undefined);

function identityJson(row: Row): Row {
  return {
    identity_id: row.id,
    id: row.provider_id,
    user_id: row.user_id,
    identity_data: row.identity_data ?? undefined,
    provider: row.provider,
    last_sign_in_at: iso(row.last_sign_in_at),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    email: row.email ?? undefined,
  };
}

/** models.User as GoTrue serialises it (omitempty fields left out when null). */
function userJson(user: Row, identities: Row[]): Row {
  return JSON.parse(JSON.stringify({
    id: user.id,
    aud: user.aud ?? "",
    role: user.role ?? "",
    email: user.email ?? "",
    email_confirmed_at: iso(user.email_confirmed_at),
    invited_at: iso(user.invited_at),
    phone: user.phone ?? "",
    phone_confirmed_at: iso(user.phone_confirmed_at),
    confirmation_sent_at: iso(user.confirmation_sent_at),
    confirmed_at: iso(user.confirmed_at),
    recovery_sent_at: iso(user.recovery_sent_at),
    new_email: user.email_change || undefined,
    email_change_sent_at: iso(user.email_change_sent_at),
    new_phone: user.phone_change || undefined,
    phone_change_sent_at: iso(user.phone_change_sent_at),
    reauthentication_sent_at: iso(user.reauthentication_sent_at),
    last_sign_in_at: iso(user.last_sign_in_at),
    app_metadata: user.raw_app_meta_data ?? {},
    user_metadata: user.raw_user_meta_data ?? {},
    identities: identities.map(identityJson),
    created_at: iso(user.created_at) ?? "0001-01-01T00:00:00Z",
    updated_at: iso(user.updated_at) ?? "0001-01-01T00:00:00Z",
    banned_until: iso(user.banned_until),
    deleted_at: iso(user.deleted_at),
    is_anonymous: user.is_anonymous ?? false,
  }));
}

/** A refresh token as GoTrue's legacy format has it: 12 URL-safe characters. */
function newRefreshToken(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

async function readJson(req: Request): Promise<Row> {
  const text = await req.text();
  try {
    const body = text ? JSON.parse(text) : {};
    if (body && typeof body === "object" && !Array.isArray(body)) return body;
  } catch { /* below */ }
  throw new AuthError(400, "bad_json", "Could not parse request body as JSON");
}

function bearer(req: Request): string {
  const token = req.headers.get("authorization")?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  if (!token) {
    throw new AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token");
  }
  return token;
}

export function createAuthHandler(opts: AuthOptions): (req: Request) => Promise<Response> {
  const { sql } = opts;
  const jwksBody = JSON.stringify(opts.keys.publicJwks);

  function checkScannable(user: Row): void {
    if (NON_NULL_STRINGS.some((c) => user[c] === null)) {
      throw new AuthError(500, "unexpected_failure", "Database error querying schema");
    }
  }

  async function identitiesOf(tx: postgres.Sql | postgres.TransactionSql, userId: string) {
    return await tx<Row[]>`
      select * from auth.identities where user_id = ${userId} order by created_at, id`;
  }

  async function accessToken(user: Row, sessionId: string, signedInAt: Date) {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + opts.jwtExpirySeconds;
    const claims: jose.JWTPayload = {
      aud: (user.aud as string) || AUD,
      exp,
      iat: now,
      iss: opts.issuer,
      sub: user.id as string,
      email: (user.email as string) ?? "",
      phone: (user.phone as string) ?? "",
      app_metadata: user.raw_app_meta_data ?? {},
      user_metadata: user.raw_user_meta_data ?? {},
      role: (user.role as string) || AUD,
      aal: "aal1",
      amr: [{ method: "password", timestamp: Math.floor(signedInAt.getTime() / 1000) }],
      session_id: sessionId,
      is_anonymous: user.is_anonymous ?? false,
    };
    return { token: await signAccessToken(opts.keys, claims), exp };
  }

  async function session(user: Row, sessionId: string, signedInAt: Date, refreshToken: string) {
    const identities = await identitiesOf(sql, user.id as string);
    const { token, exp } = await accessToken(user, sessionId, signedInAt);
    return json(200, {
      access_token: token,
      token_type: "bearer",
      expires_in: opts.jwtExpirySeconds,
      expires_at: exp,
      refresh_token: refreshToken,
      user: userJson(user, identities),
    });
  }

  async function passwordGrant(req: Request): Promise<Response> {
    const body = await readJson(req);
    const email = typeof body.email === "string" ? body.email : "";
    const phone = typeof body.phone === "string" ? body.phone : "";
    const password = typeof body.password === "string" ? body.password : "";
    if (email && phone) {
      throw new AuthError(
        422,
        "validation_failed",
        "Only an email address or phone number should be provided on login.",
      );
    }
    if (!email && !phone) throw new AuthError(400, "validation_failed", "missing email or phone");
    const [user] = email
      ? await sql<Row[]>`
          select * from auth.users
           where instance_id = ${NIL_UUID} and lower(email) = ${email.toLowerCase()}
             and aud = ${AUD} and is_sso_user = false
           limit 1`
      : await sql<Row[]>`
          select * from auth.users
           where instance_id = ${NIL_UUID} and phone = ${phone} and aud = ${AUD}
             and is_sso_user = false
           limit 1`;
    if (!user) throw new AuthError(400, "invalid_credentials", INVALID_LOGIN);
    checkScannable(user);
    if (!user.encrypted_password) throw new AuthError(400, "invalid_credentials", INVALID_LOGIN);
    if (user.banned_until instanceof Date && user.banned_until > new Date()) {
      throw new AuthError(400, "user_banned", "User is banned");
    }
    // GoTrue stores bcrypt; pgcrypto's crypt() recomputes it with the stored salt and cost.
    const [{ ok }] = await sql<{ ok: boolean }[]>`
      select ${user.encrypted_password as string} = extensions.crypt(${password}, ${user
      .encrypted_password as string}) as ok`;
    if (!ok) throw new AuthError(400, "invalid_credentials", INVALID_LOGIN);
    if (email && !user.email_confirmed_at) {
      throw new AuthError(400, "email_not_confirmed", "Email not confirmed");
    }
    if (phone && !user.phone_confirmed_at) {
      throw new AuthError(400, "phone_not_confirmed", "Phone not confirmed");
    }
    const sessionId = crypto.randomUUID();
    const refreshToken = newRefreshToken();
    const signedInAt = new Date();
    const userAgent = req.headers.get("user-agent");
    const updated = await sql.begin(async (tx) => {
      await tx`insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent)
               values (${sessionId}, ${user.id as string}, ${signedInAt}, ${signedInAt}, 'aal1',
                       ${userAgent})`;
      await tx`insert into auth.refresh_tokens
                 (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
               values (${NIL_UUID}, ${refreshToken}, ${user.id as string}, false, ${signedInAt},
                       ${signedInAt}, ${sessionId})`;
      const [row] = await tx<Row[]>`
        update auth.users set last_sign_in_at = ${signedInAt}, updated_at = ${signedInAt}
         where id = ${user.id as string} returning *`;
      return row;
    });
    return await session(updated, sessionId, signedInAt, refreshToken);
  }

  async function refreshGrant(req: Request): Promise<Response> {
    const body = await readJson(req);
    const presented = typeof body.refresh_token === "string" ? body.refresh_token : "";
    if (!presented) throw new OAuthError("invalid_request", "refresh_token required");
    return await sql.begin(async (tx) => {
      const [found] = await tx<Row[]>`
        select rt.id as token_id, rt.revoked, s.id as session_id, s.created_at as signed_in_at,
               s.not_after
          from auth.refresh_tokens rt
          left join auth.sessions s on s.id = rt.session_id
         where rt.token = ${presented}
         for update of rt`;
      if (!found) {
        throw new AuthError(
          400,
          "refresh_token_not_found",
          "Invalid Refresh Token: Refresh Token Not Found",
        );
      }
      if (!found.session_id) {
        throw new AuthError(
          400,
          "session_not_found",
          "Invalid Refresh Token: No Valid Session Found",
        );
      }
      if (found.not_after instanceof Date && found.not_after < new Date()) {
        throw new AuthError(400, "session_expired", "Invalid Refresh Token: Session Expired");
      }
      if (found.revoked) {
        throw new AuthError(
          400,
          "refresh_token_already_used",
          "Invalid Refresh Token: Already Used",
        );
      }
      const [user] = await tx<Row[]>`
        select u.* from auth.users u join auth.sessions s on s.user_id = u.id
         where s.id = ${found.session_id as string} and u.instance_id = ${NIL_UUID}`;
      if (!user) throw new AuthError(404, "user_not_found", "User not found");
      checkScannable(user);
      if (user.banned_until instanceof Date && user.banned_until > new Date()) {
        throw new AuthError(400, "user_banned", "Invalid Refresh Token: User Banned");
      }
      const next = newRefreshToken();
      const now = new Date();
      await tx`update auth.refresh_tokens set revoked = true, updated_at = ${now}
                where id = ${found.token_id as string}`;
      await tx`insert into auth.refresh_tokens
                 (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
               values (${NIL_UUID}, ${next}, ${user.id as string}, false, ${now}, ${now},
                       ${presented}, ${found.session_id as string})`;
      await tx`update auth.sessions set refreshed_at = ${now}, updated_at = ${now}
                where id = ${found.session_id as string}`;
      return {
        user,
        sessionId: found.session_id as string,
        signedInAt: found.signed_in_at as Date,
        next,
      };
    }).then((r) => session(r.user, r.sessionId, r.signedInAt, r.next));
  }

  /** GoTrue's requireAuthentication: a valid JWT whose user and session still exist. */
  async function authenticate(req: Request): Promise<{ user: Row; sessionId: string | null }> {
    const token = bearer(req);
    let claims: jose.JWTPayload;
    try {
      claims = await verifyProjectJwt(opts.keys, token);
    } catch (e) {
      throw new AuthError(
        403,
        "bad_jwt",
        `invalid JWT: unable to parse or verify signature, ${(e as Error).message}`,
      );
    }
    if (typeof claims.sub !== "string" || !claims.sub) {
      throw new AuthError(403, "bad_jwt", "invalid claim: missing sub claim");
    }
    if (!UUID.test(claims.sub)) {
      throw new AuthError(400, "bad_jwt", "invalid claim: sub claim must be a UUID");
    }
    const [user] = await sql<Row[]>`
      select * from auth.users where instance_id = ${NIL_UUID} and id = ${claims.sub}`;
    if (!user) {
      throw new AuthError(403, "user_not_found", "User from sub claim in JWT does not exist");
    }
    checkScannable(user);
    const sessionId = typeof claims.session_id === "string" ? claims.session_id : null;
    if (sessionId) {
      const [found] = UUID.test(sessionId)
        ? await sql`select 1 from auth.sessions where id = ${sessionId} and user_id = ${claims.sub}`
        : [];
      if (!found) {
        throw new AuthError(
          403,
          "session_not_found",
          "Session from session_id claim in JWT does not exist",
        );
      }
    }
    return { user, sessionId };
  }

  async function getUser(req: Request): Promise<Response> {
    const { user } = await authenticate(req);
    return json(200, userJson(user, await identitiesOf(sql, user.id as string)));
  }

  async function logout(req: Request): Promise<Response> {
    const { user, sessionId } = await authenticate(req);
    const scope = new URL(req.url).searchParams.get("scope") ?? "global";
    const userId = user.id as string;
    if (scope === "local") {
      if (sessionId) await sql`delete from auth.sessions where id = ${sessionId}`;
    } else if (scope === "others") {
      await sql`delete from auth.sessions where user_id = ${userId} and id is distinct from ${sessionId}`;
    } else if (scope === "global") {
      await sql`delete from auth.sessions where user_id = ${userId}`;
    } else {
      throw new AuthError(400, "validation_failed", `Unsupported logout scope "${scope}"`);
    }
    return new Response(null, { status: 204 });
  }

  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const route = `${req.method} ${url.pathname.replace(/\/+$/, "") || "/"}`;
    try {
      switch (route) {
        case "GET /health":
          return json(200, {
            version: "wpp-connect-local",
            name: "GoTrue",
            description: "Local stand-in for Supabase Auth (password sign-in only)",
          });
        case "GET /.well-known/jwks.json":
          return new Response(jwksBody, {
            headers: { "content-type": "application/json", "cache-control": "public, max-age=600" },
          });
        case "POST /token": {
          const grant = url.searchParams.get("grant_type");
          if (grant === "password") return await passwordGrant(req);
          if (grant === "refresh_token") return await refreshGrant(req);
          throw new OAuthError("unsupported_grant_type", "");
        }
        case "GET /user":
          return await getUser(req);
        case "POST /logout":
          return await logout(req);
        default:
          throw new AuthError(
            404,
            "not_found",
            `${route} is not served by the local auth stand-in`,
          );
      }
    } catch (e) {
      return errorResponse(req, e);
    }
  };
}
