// The production wiring of wpp-webhook: the database, and the forwarder to the CRM's receiver.
import type { ConfigResult } from "../_shared/config.ts";
import { tuningFrom } from "../_shared/deps.ts";
import { createServiceClient } from "../_shared/db/rpc.ts";
import { createSupabaseStore } from "../_shared/db/store.ts";
import { notConfigured, runtimeDeps } from "../_shared/runtime-deps.ts";
import { createForwarder } from "./forward.ts";
import { SecretCache } from "./secret-cache.ts";
import type { WebhookDeps } from "./handler.ts";

interface EdgeRuntimeGlobal {
  EdgeRuntime?: { waitUntil(p: Promise<unknown>): void };
}

/** Supabase's runtime ends a worker's work with its answer unless told to wait. */
function background(work: Promise<unknown>): void {
  const edge = (globalThis as EdgeRuntimeGlobal).EdgeRuntime;
  const settled = work.catch(() => {});
  if (edge) edge.waitUntil(settled);
}

export function webhookDeps(result: ConfigResult): WebhookDeps {
  const base = {
    now: runtimeDeps.now,
    requestId: runtimeDeps.requestId,
    log: runtimeDeps.log,
    background,
  };
  if (!result.ok) return { ...base, store: notConfigured, forward: null, secretCache: null };
  const c = result.config;
  return {
    ...base,
    store: createSupabaseStore(
      createServiceClient(c.SUPABASE_URL, c.SUPABASE_SERVICE_ROLE_KEY),
      tuningFrom(c),
    ),
    forward: c.WPP_EVENTS_FORWARD_URL
      ? createForwarder({
        url: c.WPP_EVENTS_FORWARD_URL,
        token: c.WPP_EVENTS_FORWARD_TOKEN,
        timeoutMs: c.WPP_EVENTS_FORWARD_TIMEOUT_MS,
        attempts: c.WPP_EVENTS_FORWARD_ATTEMPTS,
      })
      : null,
    secretCache: c.WPP_WEBHOOK_SECRET_CACHE_MS > 0
      ? new SecretCache(c.WPP_WEBHOOK_SECRET_CACHE_MS, runtimeDeps.now)
      : null,
  };
}
