// What one signed-in request works with: who the caller is to the project (organisation, role,
// the integration the request is about), a store and a platform client bound to the request's
// deadline and log.
import type { Config } from "./config.ts";
import { AppError } from "./errors.ts";
import type { HandlerDeps } from "./deps.ts";
import type { EnsureEnv, StepKind } from "./sessions/ensure.ts";
import type { CallerContext, WppStore } from "./db/store.ts";
import type { RequestLog } from "./http/request-log.ts";
import { warnInto } from "./http/envelope.ts";

/** Room kept after the platform calls for the database writes that close a request. */
const PLATFORM_RESERVE_MS = 1_000;

export interface RequestScope {
  store: WppStore;
  env: EnsureEnv;
}

export function openScope(
  config: Config,
  deps: HandlerDeps,
  log: RequestLog,
  callerId: string,
): RequestScope {
  const started = deps.now();
  const steps: { step: StepKind; platform_calls: number }[] = [];
  const store = deps.store({
    deadline: started + config.WPP_REQUEST_DEADLINE_MS,
    timing: log.onDbCall,
  });
  return {
    store,
    env: {
      store,
      platform: deps.platform(log.onPlatformCall),
      callerId,
      now: deps.now,
      sleep: deps.sleep,
      deadline: started + config.WPP_REQUEST_DEADLINE_MS - PLATFORM_RESERVE_MS,
      busyWaitMs: config.WPP_BUSY_WAIT_MS,
      freshKeyGraceMs: config.WPP_FRESH_KEY_GRACE_MS,
      webhookBaseUrl: config.webhookBaseUrl,
      warn: warnInto(log),
      platformCalls: () => log.platform.length,
      traceStep: (step, platformCalls) => {
        steps.push({ step, platform_calls: platformCalls });
        log.set({ steps });
      },
    },
  };
}

export type Role = "owner" | "admin" | "member";

/** The caller belongs to an organisation; the log learns which. */
export function requireMember(
  ctx: CallerContext,
  log: RequestLog,
): { organizationId: string; role: Role } {
  if (!ctx.organization_id || !ctx.role) {
    throw new AppError("no_organization", "your account is not a member of any organisation");
  }
  log.set({ organization_id: ctx.organization_id, role: ctx.role });
  return { organizationId: ctx.organization_id, role: ctx.role };
}

export function mayManage(role: Role): boolean {
  return role === "owner" || role === "admin";
}

export function requireManager(ctx: CallerContext, log: RequestLog, what: string): string {
  const { organizationId, role } = requireMember(ctx, log);
  if (!mayManage(role)) {
    throw new AppError("forbidden", `only an owner or an admin of the organisation may ${what}`);
  }
  return organizationId;
}
