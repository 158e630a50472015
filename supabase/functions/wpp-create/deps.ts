// The production wiring: real JWT verification, the database through PostgREST, the platform.
import type { ConfigResult } from "../_shared/config.ts";
import { createTokenVerifier } from "../_shared/auth.ts";
import { createSupabaseStore } from "../_shared/provisioning-store.ts";
import { createPlatformFactory } from "../_shared/platform-port.ts";
import { notConfigured, runtimeDeps } from "../_shared/runtime-deps.ts";
import type { HandlerDeps } from "./handler.ts";

export function productionDeps(result: ConfigResult): HandlerDeps {
  if (!result.ok) {
    return {
      ...runtimeDeps,
      verifyToken: notConfigured,
      store: notConfigured,
      platform: notConfigured,
    };
  }
  const c = result.config;
  return {
    ...runtimeDeps,
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
