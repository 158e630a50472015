// Helpers for tests of the WhatsApp functions: throwaway organisations and users, calls through
// the gateway, and looks at the database and the platform simulator.
import { SimulatorAdmin } from "../../dev/wpp-simulator/admin-client.ts";
import { db, mintUserToken, stack } from "./stack.ts";

export const sim = new SimulatorAdmin(stack.simulatorUrl);

export type Role = "owner" | "admin" | "member";

export interface TestUser {
  userId: string;
  email: string;
  token: string;
  /** Set when the user was created with one: they can sign in through /auth/v1. */
  password?: string;
}

export interface UserOptions {
  /** Stored as GoTrue stores it (bcrypt), with a confirmed email, so a password sign-in works. */
  password?: string;
}

export interface TestOrg {
  orgId: string;
  user: TestUser;
  /** Adds another user to this organisation. */
  addUser(role: Role, opts?: UserOptions): Promise<TestUser>;
}

const sql = db();

export async function closeDb(): Promise<void> {
  await sql.end({ timeout: 5 });
}

export { sql };

export async function createUser(
  orgId: string | null,
  role: Role,
  opts: UserOptions = {},
): Promise<TestUser> {
  const userId = crypto.randomUUID();
  const email = `${userId.slice(0, 8)}@test.local`;
  if (opts.password === undefined) {
    await sql`insert into auth.users (id, email) values (${userId}, ${email})`;
  } else {
    // As supabase/seed.sql does: the auth service looks users up by instance and audience, and
    // refuses a row whose token columns are NULL.
    await sql`
      insert into auth.users
        (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
         raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
         confirmation_token, recovery_token, email_change_token_new, email_change,
         email_change_token_current, phone_change, phone_change_token, reauthentication_token)
      values
        ('00000000-0000-0000-0000-000000000000', ${userId}, 'authenticated', 'authenticated',
         ${email}, extensions.crypt(${opts.password}, extensions.gen_salt('bf')), now(),
         '{"provider": "email", "providers": ["email"]}'::jsonb, '{}'::jsonb, false, now(), now(),
         '', '', '', '', '', '', '', '')`;
    await sql`
      insert into auth.identities
        (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
      values (${userId}, ${userId},
              ${sql.json({ sub: userId, email, email_verified: true })}, 'email', now(), now(),
              now())`;
  }
  if (orgId) {
    await sql`insert into public.profiles (id, organization_id, email) values (${userId}, ${orgId}, ${email})`;
    // The CRM's roles: owner and admin may connect; a 'manager' is one of the CRM's other roles.
    await sql`insert into public.user_roles (user_id, role) values (${userId}, ${
      role === "member" ? "manager" : role
    })`;
  }
  return {
    userId,
    email,
    token: await mintUserToken(userId, { email }),
    ...(opts.password === undefined ? {} : { password: opts.password }),
  };
}

/** A new organisation with one user of the given role. */
export async function createOrg(role: Role = "admin", opts: UserOptions = {}): Promise<TestOrg> {
  const orgId = crypto.randomUUID();
  await sql`insert into public.organizations (id, name) values (${orgId}, ${
    "Test org " + orgId.slice(0, 8)
  })`;
  return {
    orgId,
    user: await createUser(orgId, role, opts),
    addUser: (r, o) => createUser(orgId, r, o),
  };
}

export interface CallOptions {
  body?: string | Record<string, unknown>;
  method?: string;
  headers?: Record<string, string>;
  /** Call one function process directly instead of through the gateway. */
  baseUrl?: string;
  fn?: string;
}

export interface CallResult {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
  text: string;
}

/** POST /functions/v1/<fn> as the UI does: the user's token plus the project's anon key. */
export async function callFunction(
  token: string | null,
  opts: CallOptions = {},
): Promise<CallResult> {
  const fn = opts.fn ?? "wpp-create";
  const url = opts.baseUrl ? `${opts.baseUrl}/${fn}` : `${stack.url}/functions/v1/${fn}`;
  const headers: Record<string, string> = {
    apikey: stack.anonKey,
    "content-type": "application/json",
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...opts.headers,
  };
  const method = opts.method ?? "POST";
  const body = method === "GET" || method === "HEAD"
    ? undefined
    : typeof opts.body === "string"
    ? opts.body
    : JSON.stringify(opts.body ?? {});
  const res = await fetch(url, { method, headers, body });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = {};
  }
  return { status: res.status, headers: res.headers, json, text };
}

export interface IntegrationRow {
  id: string;
  organization_id: string;
  settings: Record<string, unknown>;
  is_active: boolean;
  is_primary: boolean;
  /** The CRM's own key (shown to members), not this project's webhook secret. */
  webhook_key: string;
  /** From wpp_integration_state (null when the row has none yet). */
  session_state: string | null;
  lease_id: string | null;
  webhook_secret: string | null;
  connection: string | null;
  qr: string | null;
}

export async function integrations(orgId: string): Promise<IntegrationRow[]> {
  return await sql<IntegrationRow[]>`
    select i.id, i.organization_id, i.settings, i.is_active, i.is_primary, i.webhook_key,
           s.session_state, s.lease_id, s.webhook_secret, s.connection, s.qr
      from public.messenger_integrations i
      left join public.wpp_integration_state s on s.integration_id = i.id
     where i.organization_id = ${orgId} and i.provider = 'wpp'
     order by i.created_at, i.id`;
}

export async function events(
  orgId: string,
): Promise<{ action: string; details: Record<string, unknown> }[]> {
  return await sql<{ action: string; details: Record<string, unknown> }[]>`
    select action, details from public.wpp_integration_events
     where organization_id = ${orgId} order by created_at, id`;
}

/** Everything the functions could change, to prove a refused request changed nothing. */
export async function snapshot(): Promise<string> {
  const [rows] = await sql`
    select (select coalesce(jsonb_agg(to_jsonb(m) order by m.id), '[]') from public.messenger_integrations m) as integrations,
           (select count(*) from public.wpp_integration_events) as events,
           (select coalesce(jsonb_agg(to_jsonb(s) order by s.integration_id), '[]') from public.wpp_integration_state s) as state`;
  const calls = await sim.calls();
  return JSON.stringify({ rows, calls });
}

/** The platform-side apiKey of a session, as the simulator knows it (for secret scans). */
export async function platformApiKey(session: string): Promise<string> {
  const state = await sim.state({ reveal: true });
  const found = state.sessions.find((s) => s.session === session);
  if (!found) throw new Error(`simulator has no session ${session}`);
  return found.apiKey;
}

/** Every line the function processes have logged so far. */
export async function functionLogLines(fn = "wpp-create"): Promise<string[]> {
  const dir = Deno.env.get("STACK_FUNCTION_LOG_DIR");
  if (!dir) throw new Error("STACK_FUNCTION_LOG_DIR is not set: run through `deno task test`");
  const lines: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.startsWith(fn)) continue;
    lines.push(...(await Deno.readTextFile(`${dir}/${e.name}`)).split("\n").filter(Boolean));
  }
  return lines;
}
