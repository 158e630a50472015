import assert from "node:assert/strict";
import { SimulatorAdmin } from "../../dev/wpp-simulator/admin-client.ts";
import {
  type RunningSimulator,
  type SimulatorOptions,
  startSimulator,
} from "../../dev/wpp-simulator/server.ts";
import {
  isWppError,
  type WppCallEvent,
  type WppClientOptions,
  type WppError,
  type WppErrorCode,
  WppPlatformClient,
  type WppSessionClient,
} from "../../supabase/functions/_shared/wpp/mod.ts";

export interface Harness {
  sim: RunningSimulator;
  admin: SimulatorAdmin;
  /** A client on the simulator with quick retries; everything it logs is kept. */
  client(overrides?: Partial<WppClientOptions>): Observed;
  /** Creates a platform client and returns a session client for it. */
  newSession(
    overrides?: Partial<WppClientOptions>,
  ): Promise<Observed & { session: WppSessionClient; apiKey: string; id: string }>;
}

export interface Observed {
  client: WppPlatformClient;
  logs: Record<string, unknown>[];
  events: WppCallEvent[];
}

/** Fast settings so fault tests stay quick; each test overrides what it measures. */
export const QUICK: Partial<WppClientOptions> = {
  timeoutMs: 2_000,
  retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
  freshKeyRetryMs: 1_000,
  tokenSafetyMarginMs: 1_000,
};

/** A Deno test with its own simulator, closed afterwards whatever happens. */
export function simTest(
  name: string,
  fn: (h: Harness) => Promise<void>,
  simOptions: SimulatorOptions = {},
): void {
  Deno.test(name, async () => {
    const sim = await startSimulator({ port: 0, ...simOptions });
    try {
      await fn(harness(sim));
    } finally {
      await sim.close();
    }
  });
}

function harness(sim: RunningSimulator): Harness {
  const client = (overrides: Partial<WppClientOptions> = {}): Observed => {
    const logs: Record<string, unknown>[] = [];
    const events: WppCallEvent[] = [];
    const c = new WppPlatformClient({
      baseUrl: sim.url,
      secret: sim.secret,
      ...QUICK,
      onCall: (e) => events.push(e),
      log: (line) => logs.push(line),
      ...overrides,
    });
    return { client: c, logs, events };
  };
  return {
    sim,
    admin: new SimulatorAdmin(sim.url),
    client,
    newSession: async (overrides) => {
      const observed = client(overrides);
      const created = await observed.client.createClient("org-test");
      const session = observed.client.forSession({
        apiKey: created.apiKey,
        session: created.session,
      });
      return { ...observed, session, apiKey: created.apiKey, id: created.session };
    },
  };
}

/** Awaits a rejection and checks it is a WppError with the given code. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: WppErrorCode,
): Promise<WppError> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected a ${code} rejection, but the call succeeded`);
  assert.ok(isWppError(caught), `expected a WppError, got ${caught}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  return caught;
}

/** Runs `fn` and returns how long it took, in ms. */
export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

export function assertBetween(value: number, min: number, max: number, what: string): void {
  assert.ok(value >= min && value <= max, `${what}: ${Math.round(value)} not in [${min}, ${max}]`);
}

/** Fails if any of the texts contains any of the secrets. */
export function assertNoSecrets(texts: string[], secrets: string[]): void {
  for (const secret of secrets) {
    assert.ok(secret.length > 0);
    for (const text of texts) {
      assert.ok(!text.includes(secret), `a secret leaked into: ${text}`);
    }
  }
}

/** Polls until `check` returns a value, for effects that happen asynchronously. */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 2_000,
): Promise<T> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
