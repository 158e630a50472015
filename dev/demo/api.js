// How the page talks to the backend, as the CRM's panel does: supabase-js for sign-in and for the
// list of numbers (with the user's session, so row-level security applies), and the panel's own
// HTTP helper for the functions (/work/shared/crm-contract.md §3), retries included, so the demo
// sends what the real panel sends, as often as it sends it.

/** What supabase/seed.sql gives every demo user. */
export const DEMO_PASSWORD = "demo-password";

/** The panel's retry policy: 4 attempts in all, 1 s·2ⁿ ±25 % apart, at most 10 s. */
export const PANEL_POLICY = { attempts: 4, baseDelayMs: 1_000, maxDelayMs: 10_000, jitter: 0.25 };

// 409 and every other 4xx mean "do not repeat this now": never retried.
const RETRIED = new Set([408, 429, 500, 502, 503, 504]);

/** The columns the panel shows; the view has no secrets, but a list names what it reads. */
const NUMBER_COLUMNS =
  "id, name, is_active, is_primary, session, connection, connection_checked_at, created_at";

function delayFor(policy, retry) {
  const base = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.round(base * (1 + policy.jitter * (Math.random() * 2 - 1)));
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** The panel's text for a failure: the answer's `error`, else `message`, else `HTTP <status>`. */
function errorText(status, body, networkError) {
  if (body && typeof body.error === "string") return body.error;
  if (body && typeof body.message === "string") return body.message;
  if (status === 0) return `network error: ${networkError ?? "no answer"}`;
  return `HTTP ${status}`;
}

/**
 * The panel's HTTP helper for `<apiUrl>/functions/v1/<name>`. Every call resolves (never throws,
 * except when `signal` aborts it) to `{ok, status, data, error, code, requestId, attempts}`;
 * status 0: no answer (a refused CORS preflight looks the same to a page).
 */
export function createPanelApi({ apiUrl, anonKey, accessToken, signal, policy = PANEL_POLICY }) {
  const headers = {
    "Content-Type": "application/json",
    apikey: anonKey,
    Authorization: `Bearer ${accessToken}`,
  };

  async function call(path, init) {
    let attempts = 0;
    for (let n = 0;; n++) {
      attempts++;
      let status = 0;
      let body = null;
      let networkError;
      try {
        const response = await fetch(`${apiUrl}/functions/v1/${path}`, {
          ...init,
          headers,
          signal,
        });
        status = response.status;
        try {
          const parsed = await response.json();
          body = parsed !== null && typeof parsed === "object" ? parsed : null;
        } catch {
          // A gateway's HTML error page: the status alone says what happened.
        }
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        networkError = e?.message ?? String(e);
      }
      const retry = status === 0 || RETRIED.has(status);
      if (!retry || n + 1 >= policy.attempts) {
        const ok = status >= 200 && status < 300 && body?.success !== false;
        return {
          ok,
          status,
          data: body,
          error: ok ? null : errorText(status, body, networkError),
          code: ok ? null : (body?.code ?? (status === 0 ? "network" : `http_${status}`)),
          requestId: body?.request_id ?? null,
          attempts,
        };
      }
      await sleep(delayFor(policy, n), signal);
    }
  }

  const post = (name, body) => call(name, { method: "POST", body: JSON.stringify(body) });

  return {
    /** «Подключить WhatsApp» (add_new false) or «Подключить ещё один WhatsApp» (add_new true). */
    connect: (addNew) => post("wpp-create", { add_new: addNew }),
    status: (session, force) => post("wpp-status", { session_name: session, force }),
    qr: (session) => call(`wpp-qr?${new URLSearchParams({ session })}`, { method: "GET" }),
    disconnect: (integrationId) => post("wpp-disconnect", { integration_id: integrationId }),
  };
}

/**
 * Signs in through Supabase Auth (the password grant) with a client of its own, whose session
 * then carries every table read. Nothing is persisted: a reload signs out.
 */
export async function signInClient(apiUrl, anonKey, email, password) {
  const client = globalThis.supabase.createClient(apiUrl, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
  const { data, error } = await client.auth.signInWithPassword({ email, password });
  if (error) throw new Error(error.message);
  return { client, session: data.session };
}

/** A demo user (by key) or any email, with the demo password unless another is given. */
export async function signIn(apiUrl, config, who, password = DEMO_PASSWORD) {
  const demo = config.users.find((u) => u.key === who);
  const { session } = await signInClient(apiUrl, config.anonKey, demo?.email ?? who, password);
  return session;
}

/**
 * The signed-in user's organisation and role, read as the CRM keeps them: the organisation in
 * `profiles.organization_id`, the roles in `user_roles` (several per user; owner and admin may
 * connect). The server decides for itself on every call; this only shapes the buttons.
 */
export async function loadAccess(client, userId) {
  const profile = await client.from("profiles").select("organization_id").eq("id", userId)
    .maybeSingle();
  if (profile.error) throw new Error(profile.error.message);
  const orgId = profile.data?.organization_id ?? null;
  if (!orgId) return { orgId: null, orgName: null, role: null };
  const [roles, org] = await Promise.all([
    client.from("user_roles").select("role").eq("user_id", userId),
    client.from("organizations").select("name").eq("id", orgId).maybeSingle(),
  ]);
  if (roles.error) throw new Error(roles.error.message);
  const held = new Set((roles.data ?? []).map((r) => r.role));
  const role = held.has("owner") ? "owner" : held.has("admin") ? "admin" : "member";
  return { orgId, orgName: org.data?.name ?? null, role };
}

/** The organisation's WhatsApp numbers through the secret-free view, oldest first. */
export async function loadNumbers(client) {
  const { data, error } = await client
    .from("messenger_integrations_public")
    .select(NUMBER_COLUMNS)
    .eq("messenger_type", "whatsapp")
    .eq("provider", "wpp")
    .order("created_at", { ascending: true })
    .order("id", { ascending: true });
  if (error) throw new Error(error.message);
  return data ?? [];
}

export async function loadConfig(apiUrl) {
  const response = await fetch(`${apiUrl}/demo/config`);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return await response.json();
}
