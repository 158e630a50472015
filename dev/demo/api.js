// The two edge functions, called as the CRM's UI calls them: supabase-js's functions client
// sends the project's anon key as `apikey` and the signed-in user's token as the bearer.

/**
 * Every answer comes back in one shape, failures included, so the page never has to tell a
 * thrown error from a refused request: { ok, status, body, retryAfter }. status 0: no answer.
 */
async function invoke(client, name, options) {
  let result;
  try {
    result = await client.functions.invoke(name, options);
  } catch {
    return { ok: false, status: 0, body: { code: "network" } };
  }
  if (!result.error) return { ok: true, status: 200, body: result.data ?? {} };
  const response = result.error.context instanceof Response ? result.error.context : null;
  if (!response) return { ok: false, status: 0, body: { code: "network" } };
  let body = {};
  try {
    body = await response.json();
  } catch {
    // A gateway error page is not JSON; the status alone still says what happened.
  }
  return {
    ok: false,
    status: response.status,
    body,
    retryAfter: response.headers.get("retry-after"),
  };
}

export function createApi(apiUrl, anonKey, accessToken) {
  const client = globalThis.supabase.createClient(apiUrl, anonKey, {
    accessToken: () => Promise.resolve(accessToken()),
  });
  return {
    status: () => invoke(client, "wpp-status", { method: "GET" }),
    connect: (force) =>
      invoke(client, "wpp-create", { body: force ? { force_recreate: true } : {} }),
  };
}

/** What supabase/seed.sql gives every demo user. */
const DEMO_PASSWORD = "demo-password";

/**
 * Demo users sign in as a CRM's users do: Supabase Auth's password grant through supabase-js. A
 * bare user id (`?user_id=`) has no password, so the stack's dev-only token helper stands in.
 */
export async function signIn(apiUrl, config, choice) {
  if (choice.startsWith("id:")) {
    const response = await fetch(
      `${apiUrl}/demo/token?user_id=${encodeURIComponent(choice.slice(3))}`,
    );
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
    return body;
  }
  const user = config.users.find((u) => u.key === choice);
  if (!user) throw new Error(`no demo user '${choice}'`);
  const client = globalThis.supabase.createClient(apiUrl, config.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
  const { data, error } = await client.auth.signInWithPassword({
    email: user.email,
    password: DEMO_PASSWORD,
  });
  if (error) throw new Error(error.message);
  return data.session;
}

export async function loadConfig(apiUrl) {
  const response = await fetch(`${apiUrl}/demo/config`);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return await response.json();
}
