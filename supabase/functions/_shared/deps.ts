// The production wiring shared by the functions that serve signed-in users: JWT verification,
// the database through PostgREST, the platform. Tests build HandlerDeps of their own.
import type { Config, ConfigResult } from "./config.ts";
import { createTokenVerifier, type TokenVerifier } from "./http/auth.ts";
import { createSupabaseStore, type StoreFactory, type Tuning } from "./db/store.ts";
import { createServiceClient } from "./db/rpc.ts";
import { createPlatformFactory, type PlatformFactory } from "./wpp/port.ts";
import { notConfigured, runtimeDeps } from "./runtime-deps.ts";

export interface HandlerDeps {
  verifyToken: TokenVerifier;
  store: StoreFactory;
  platform: PlatformFactory;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  requestId: () => string;
  log: (line: Record<string, unknown>) => void;
}

export function tuningFrom(c: Config): Tuning {
  return {
    leaseSeconds: c.WPP_LEASE_SECONDS,
    repeatWindowSeconds: c.WPP_REPEAT_WINDOW_SECONDS,
    maxNumbers: c.WPP_MAX_NUMBERS,
    freshSeconds: c.WPP_STATE_FRESH_SECONDS,
    cooldownSeconds: c.WPP_CREATE_COOLDOWN_SECONDS,
    // A refresh lives within one request; a crashed holder blocks others no longer than that.
    refreshLeaseSeconds: Math.ceil(c.WPP_REQUEST_DEADLINE_MS / 1000) + 1,
  };
}

/**
 * `createsClients`: only wpp-create gets WPP_SECRET; built without it, the platform client of the
 * other functions cannot create a platform client even by mistake.
 */
export function productionDeps(
  result: ConfigResult,
  opts: { createsClients: boolean },
): HandlerDeps {
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
    verifyToken: createTokenVerifier({
      jwtSecret: c.JWT_SECRET,
      jwksUrl: c.jwksUrl,
      issuer: c.JWT_ISSUER,
    }),
    store: createSupabaseStore(
      createServiceClient(c.SUPABASE_URL, c.SUPABASE_SERVICE_ROLE_KEY),
      tuningFrom(c),
    ),
    platform: createPlatformFactory({
      baseUrl: c.WPP_BASE_URL!,
      secret: opts.createsClients ? c.WPP_SECRET : undefined,
      timeoutMs: c.WPP_TIMEOUT_MS,
      freshKeyRetryMs: c.WPP_FRESH_KEY_RETRY_MS,
    }),
  };
}
