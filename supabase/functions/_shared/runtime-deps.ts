// The parts of a function's production wiring that do not depend on the function.
import { AppError } from "./errors.ts";

export const runtimeDeps = {
  now: () => Date.now(),
  sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
  requestId: () => crypto.randomUUID(),
  log: (line: Record<string, unknown>) => console.log(JSON.stringify(line)),
};

/**
 * Stands in for every config-dependent dependency when the config is invalid: the envelope
 * answers not_configured before any of them could be called.
 */
export const notConfigured = (): never => {
  throw new AppError("not_configured", "the function is not configured");
};
