// The functions' configuration: read from the environment once, at start-up, and validated.
// A bad or missing variable does not crash the process: every request then answers 500
// `not_configured` naming the variable, which is easier to diagnose from the UI than a dead worker.
import { z } from "zod";

const url = z.url({ protocol: /^https?$/ });
const ms = (fallback: number, max: number) =>
  z.coerce.number().int().min(1).max(max).default(fallback);

export const ConfigSchema = z.object({
  SUPABASE_URL: url,
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(20),
  JWT_SECRET: z.string().min(32).optional(),
  SUPABASE_JWKS_URL: url.optional(),
  WPP_BASE_URL: url,
  WPP_SECRET: z.string().min(8),
  SELF_HOSTED_URL: url.optional(),
  /** Per platform HTTP call. */
  WPP_TIMEOUT_MS: ms(10_000, 120_000),
  /** The whole request, below the gateway's own limit. */
  WPP_REQUEST_DEADLINE_MS: z.coerce.number().int().min(3_000).max(140_000).default(20_000),
  /** How long a fresh apiKey's refusal is retried right after a create. */
  WPP_FRESH_KEY_RETRY_MS: ms(8_000, 60_000),
  /** A stored session younger than this whose apiKey is refused is still settling, not dead. */
  WPP_FRESH_KEY_GRACE_MS: z.coerce.number().int().min(0).max(3_600_000).default(120_000),
  WPP_LEASE_SECONDS: z.coerce.number().int().min(5).max(600).default(60),
  /** How long a click waits for another click's provisioning before answering 409. */
  WPP_BUSY_WAIT_MS: z.coerce.number().int().min(0).max(30_000).default(3_000),
  CORS_ALLOWED_ORIGINS: z.string().default("*"),
});

export type Config = z.infer<typeof ConfigSchema> & {
  corsOrigins: "*" | string[];
  webhookBaseUrl: string;
  jwksUrl: string;
};

export type ConfigResult =
  | { ok: true; config: Config }
  | { ok: false; variable: string; problem: string };

export function parseConfig(env: Record<string, string | undefined>): ConfigResult {
  // Compose files and .env templates often leave optional variables set but empty.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ""),
  );
  const parsed = ConfigSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue.path[0] ?? "environment");
    const problem = env[variable] === undefined || env[variable] === ""
      ? `${variable} is not set`
      : `${variable} is invalid: ${issue.message}`;
    return { ok: false, variable, problem };
  }
  const c = parsed.data;
  const origins = c.CORS_ALLOWED_ORIGINS.trim();
  return {
    ok: true,
    config: {
      ...c,
      corsOrigins: origins === "*" ? "*" : origins.split(",").map((o) => o.trim()).filter(Boolean),
      webhookBaseUrl: (c.SELF_HOSTED_URL ?? c.SUPABASE_URL).replace(/\/+$/, ""),
      jwksUrl: c.SUPABASE_JWKS_URL ??
        `${c.SUPABASE_URL.replace(/\/+$/, "")}/auth/v1/.well-known/jwks.json`,
    },
  };
}

export function loadConfig(): ConfigResult {
  const result = parseConfig(Deno.env.toObject());
  if (!result.ok) {
    console.error(
      JSON.stringify({ level: "error", msg: "invalid configuration", problem: result.problem }),
    );
  }
  return result;
}
