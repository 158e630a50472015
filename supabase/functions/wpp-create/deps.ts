// The production wiring: real JWT verification, the database through PostgREST, the platform.
import type { ConfigResult } from "../_shared/config.ts";
import { createTokenVerifier } from "../_shared/auth.ts";
import { createSupabaseStore } from "../_shared/provisioning-store.ts";
import { createPlatformFactory } from "../_shared/platform-port.ts";
import { AppError } from "../_shared/errors.ts";
import type { HandlerDeps } from "./handler.ts";

const notConfigured = () => {
  throw new AppError("not_configured", "the function is not configured");
};

export function productionDeps(result: ConfigResult): HandlerDeps {
  const base = {
    now: () => Date.now(),
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
    requestId: () => crypto.randomUUID(),
    log: (line: Record<string, unknown>) => console.log(JSON.stringify(line)),
  };
  if (!result.ok) {
    // The handler answers not_configured before it would use any of these.
    return { ...base, verifyToken: notConfigured, store: notConfigured, platform: notConfigured };
  }
  const c = result.config;
  return {
    ...base,
    verifyToken: createTokenVerifier({ jwtSecret: c.JWT_SECRET, jwksUrl: c.jwksUrl }),
    store: createSupabaseStore({
      supabaseUrl: c.SUPABASE_URL,
      serviceRoleKey: c.SUPABASE_SERVICE_ROLE_KEY,
    }),
    platform: createPlatformFactory({
      baseUrl: c.WPP_BASE_URL,
      secret: c.WPP_SECRET,
      timeoutMs: c.WPP_TIMEOUT_MS,
      freshKeyRetryMs: c.WPP_FRESH_KEY_RETRY_MS,
    }),
  };
}
