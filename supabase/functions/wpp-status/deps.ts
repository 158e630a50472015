// The production wiring: real JWT verification, the database through PostgREST, the platform.
import type { ConfigResult } from "../_shared/config.ts";
import { createTokenVerifier } from "../_shared/auth.ts";
import { WppPlatformClient } from "../_shared/wpp/mod.ts";
import { notConfigured, runtimeDeps } from "../_shared/runtime-deps.ts";
import { createStatusStore } from "./store.ts";
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
    store: createStatusStore({
      supabaseUrl: c.SUPABASE_URL,
      serviceRoleKey: c.SUPABASE_SERVICE_ROLE_KEY,
    }),
    // Built without WPP_SECRET: a status read must never create a platform client, and without
    // the secret this client cannot.
    platform: (onCall) =>
      new WppPlatformClient({ baseUrl: c.WPP_BASE_URL, timeoutMs: c.WPP_TIMEOUT_MS, onCall }),
  };
}
