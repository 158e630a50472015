// The functions' configuration: read from the environment once, at start-up, and validated.
// A bad or missing variable does not crash the process: every request then answers 500
// `not_configured` naming the variable, which is easier to diagnose from the UI than a dead worker.
import { z } from "zod";

const url = z.url({ protocol: /^https?$/ });
const int = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

export const ConfigSchema = z.object({
  SUPABASE_URL: url,
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(20),
  /** Verifies HS256 user tokens (the self-hosted default). */
  JWT_SECRET: z.string().min(32).optional(),
  /** Verifies asymmetric user tokens; SUPABASE_URL/auth/v1/.well-known/jwks.json otherwise. */
  SUPABASE_JWKS_URL: url.optional(),
  /** When set, a user token must carry exactly this `iss`. */
  JWT_ISSUER: z.string().min(1).optional(),
  WPP_BASE_URL: url.optional(),
  /** Only wpp-create needs it: it is what creates platform clients. */
  WPP_SECRET: z.string().min(8).optional(),
  /** Public base URL the platform posts events to; SUPABASE_URL otherwise. */
  SELF_HOSTED_URL: url.optional(),
  /** Per platform HTTP call. */
  WPP_TIMEOUT_MS: int(10_000, 1, 120_000),
  /** The whole request, database calls included; below the gateway's own limit. */
  WPP_REQUEST_DEADLINE_MS: int(20_000, 3_000, 140_000),
  /** How long a fresh apiKey's refusal is retried right after a create. */
  WPP_FRESH_KEY_RETRY_MS: int(8_000, 1, 60_000),
  /** A stored session younger than this whose apiKey is refused is still settling, not dead. */
  WPP_FRESH_KEY_GRACE_MS: int(120_000, 0, 3_600_000),
  /** Provisioning lease; must outlive the request deadline (checked below). */
  WPP_LEASE_SECONDS: int(60, 5, 600),
  /** How long a click waits for another click's provisioning or refresh before answering. */
  WPP_BUSY_WAIT_MS: int(3_000, 0, 30_000),
  /** No create for this long after a create whose outcome is unknown. */
  WPP_CREATE_COOLDOWN_SECONDS: int(30, 5, 3_600),
  /** A recreate or add_new repeated within this window gets the session the first one made. */
  WPP_REPEAT_WINDOW_SECONDS: int(60, 0, 3_600),
  /** WhatsApp numbers per organisation. */
  WPP_MAX_NUMBERS: int(10, 1, 100),
  /** Stored connection state younger than this is answered without asking the platform. */
  WPP_STATE_FRESH_SECONDS: int(30, 1, 3_600),
  /** The CRM's own event receiver; every verified platform event is forwarded there unchanged. */
  WPP_EVENTS_FORWARD_URL: url.optional(),
  /** Sent as `Authorization: Bearer <token>` with each forwarded event. */
  WPP_EVENTS_FORWARD_TOKEN: z.string().min(1).optional(),
  WPP_EVENTS_FORWARD_TIMEOUT_MS: int(3_000, 100, 30_000),
  WPP_EVENTS_FORWARD_ATTEMPTS: int(3, 1, 10),
  WPP_WEBHOOK_MAX_BYTES: int(64 * 1024, 1_024, 1_048_576),
  /** How long wpp-webhook trusts a URL the database confirmed, for messages (0: never). */
  WPP_WEBHOOK_SECRET_CACHE_MS: int(1_000, 0, 60_000),
  CORS_ALLOWED_ORIGINS: z.string().default("*"),
}).superRefine((c, ctx) => {
  // A lease that ends before the request does would let a second request create while the
  // first is still talking to the platform.
  if (c.WPP_LEASE_SECONDS * 1000 <= c.WPP_REQUEST_DEADLINE_MS) {
    ctx.addIssue({
      code: "custom",
      path: ["WPP_LEASE_SECONDS"],
      message: `must be longer than WPP_REQUEST_DEADLINE_MS (${c.WPP_REQUEST_DEADLINE_MS} ms)`,
    });
  }
});

export type Config = z.infer<typeof ConfigSchema> & {
  corsOrigins: "*" | string[];
  webhookBaseUrl: string;
  jwksUrl: string;
};

/** Variables a function cannot work without, beyond the ones every function needs. */
export type Requirement = "WPP_BASE_URL" | "WPP_SECRET";

export type ConfigResult =
  | { ok: true; config: Config }
  | { ok: false; variable: string; problem: string };

export function parseConfig(
  env: Record<string, string | undefined>,
  required: readonly Requirement[] = [],
): ConfigResult {
  // Compose files and .env templates often leave optional variables set but empty.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ""),
  );
  const parsed = ConfigSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue.path[0] ?? "environment");
    const problem = present[variable] === undefined
      ? `${variable} is not set`
      : `${variable} is invalid: ${issue.message}`;
    return { ok: false, variable, problem };
  }
  const missing = required.find((name) => parsed.data[name] === undefined);
  if (missing) return { ok: false, variable: missing, problem: `${missing} is not set` };
  const c = parsed.data;
  const origins = c.CORS_ALLOWED_ORIGINS.trim();
  const base = c.SUPABASE_URL.replace(/\/+$/, "");
  return {
    ok: true,
    config: {
      ...c,
      corsOrigins: origins === "*" ? "*" : origins.split(",").map((o) => o.trim()).filter(Boolean),
      webhookBaseUrl: (c.SELF_HOSTED_URL ?? c.SUPABASE_URL).replace(/\/+$/, ""),
      jwksUrl: c.SUPABASE_JWKS_URL ?? `${base}/auth/v1/.well-known/jwks.json`,
    },
  };
}

export function loadConfig(required: readonly Requirement[] = []): ConfigResult {
  const result = parseConfig(Deno.env.toObject(), required);
  if (!result.ok) {
    console.error(
      JSON.stringify({ level: "error", msg: "invalid configuration", problem: result.problem }),
    );
  }
  return result;
}
