// The production wiring: real JWT verification, the database through PostgREST, the platform.
import type { ConfigResult } from "../_shared/config.ts";
import { createTokenVerifier } from "../_shared/auth.ts";
import { WppPlatformClient } from "../_shared/wpp/mod.ts";
import { AppError } from "../_shared/errors.ts";
import { createStatusStore } from "./store.ts";
import type { HandlerDeps } from "./handler.ts";

const notConfigured = () => {
  throw new AppError("not_configured", "the function is not configured");
};

export function productionDeps(result: ConfigResult): HandlerDeps {
  const base = {
    now: () => Date.now(),
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
