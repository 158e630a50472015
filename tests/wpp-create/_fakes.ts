// In-memory stand-ins for everything wpp-create's handler is given, so its unit tests run with no
// network, no database and no platform, and can inspect every call the handler made.
import type { TokenVerifier } from "../../supabase/functions/_shared/auth.ts";
import type {
  BeginInput,
  BeginResult,
  CallerContext,
  CompleteInput,
  EventAction,
  ProvisioningStore,
  StoreFactory,
} from "../../supabase/functions/_shared/provisioning-store.ts";
import type {
  PlatformFactory,
  PlatformPort,
  SessionPort,
} from "../../supabase/functions/_shared/platform-port.ts";
import type {
  AccountStatus,
  CallOptions,
  CreatedClient,
  SessionInput,
  StartResult,
  TokenOptions,
  WppOperation,
  WppToken,
} from "../../supabase/functions/_shared/wpp/mod.ts";

/** A fixed instant, far from the real clock, so nothing can pass by reading Date.now(). */
export const T0 = Date.UTC(2031, 4, 6, 7, 8, 9);

export const REQUEST_ID = "11111111-2222-4333-8444-555555555555";
export const USER_ID = "7d3c1b9e-0a4f-4c2e-9b8d-2f6e5a4c3b21";
export const ORG_ID = "c0ffee00-1234-4abc-8def-0123456789ab";
export const INTEGRATION_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
export const LEASE_ID = "0badf00d-0000-4000-8000-00000000cafe";
export const WEBHOOK_KEY = "whk_9f8e7d6c5b4a39281706";

export const STORED_SESSION = "0000000000007";
export const STORED_API_KEY = "stored-apikey-QWERTY-0001";
export const STORED_JWT = "eyJstored.jwt-token-in-the-row.sig0001";
export const OLD_SESSION = "0000000000003";
export const OLD_API_KEY = "old-apikey-ASDFGH-0003";
export const NEW_SESSION = "0000000000042";
export const NEW_API_KEY = "fresh-apikey-ZXCVBN-0042";
export const NEW_JWT = "eyJfresh.jwt-token-from-platform.sig0042";
export const REFRESHED_JWT = "eyJrefreshed.jwt-token-for-reuse.sig0007";
export const QR = "2@pairing-string-for-the-qr-code,AbCdEf==";

export const BASE_ENV: Record<string, string | undefined> = {
  SUPABASE_URL: "http://127.0.0.1:54321",
  SUPABASE_SERVICE_ROLE_KEY: "service-role-key-0123456789",
  JWT_SECRET: "a-test-secret-that-is-long-enough-123456",
  WPP_BASE_URL: "http://127.0.0.1:9",
  WPP_SECRET: "wpp-secret-abcdef",
  WPP_BUSY_WAIT_MS: "1000",
};

/** Strings that must never reach a response body or a log line. */
export const SECRETS = [
  BASE_ENV.SUPABASE_SERVICE_ROLE_KEY!,
  BASE_ENV.JWT_SECRET!,
  BASE_ENV.WPP_SECRET!,
  STORED_API_KEY,
  STORED_JWT,
  OLD_API_KEY,
  NEW_API_KEY,
  NEW_JWT,
  REFRESHED_JWT,
];

/** Time moves only when the code under test sleeps, and a sleep returns at once. */
export class FakeClock {
  readonly sleeps: number[] = [];
  constructor(public t = T0) {}
  now = (): number => this.t;
  sleep = (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.t += ms;
    return Promise.resolve();
  };
}

export function reuseDecision(over: Partial<BeginResult> = {}): BeginResult {
  return {
    decision: "reuse",
    integration_id: INTEGRATION_ID,
    organization_id: ORG_ID,
    lease_id: null,
    reason: "valid_session",
    session: STORED_SESSION,
    api_key: STORED_API_KEY,
    jwt_token: STORED_JWT,
    jwt_expires_at: T0 + 600_000,
    webhook_key: WEBHOOK_KEY,
    old_session: null,
    old_api_key: null,
    retry_after_seconds: null,
    ...over,
  };
}

export function createDecision(over: Partial<BeginResult> = {}): BeginResult {
  return {
    decision: "create",
    integration_id: INTEGRATION_ID,
    organization_id: ORG_ID,
    lease_id: LEASE_ID,
    reason: "no_integration",
    session: null,
    api_key: null,
    jwt_token: null,
    jwt_expires_at: null,
    webhook_key: WEBHOOK_KEY,
    old_session: null,
    old_api_key: null,
    retry_after_seconds: null,
    ...over,
  };
}

export function busyDecision(retryAfterSeconds: number | null = 2): BeginResult {
  return {
    decision: "busy",
    integration_id: INTEGRATION_ID,
    organization_id: ORG_ID,
    lease_id: null,
    reason: "lease_held",
    session: STORED_SESSION,
    api_key: STORED_API_KEY,
    webhook_key: WEBHOOK_KEY,
    old_session: null,
    old_api_key: null,
    retry_after_seconds: retryAfterSeconds,
  };
}

export type StoreOp = keyof ProvisioningStore;

export interface StoreCall {
  op: StoreOp;
  args: unknown[];
}

export interface RecordedEvent {
  organizationId: string;
  integrationId: string | null;
  actor: string;
  action: EventAction;
  details: Record<string, unknown>;
}

export interface FailCall {
  integrationId: string;
  leaseId: string;
  reason: string;
  details: Record<string, unknown>;
  actor: string;
}

/**
 * A database that answers from a script: `begins` is consumed one decision per begin call, the
 * last one repeating; `errors` makes an operation fail instead of answering.
 */
export class FakeStore {
  readonly calls: StoreCall[] = [];
  /** Shared with a FakePlatform, it shows how database and platform calls interleave. */
  constructor(readonly journal: string[] = []) {}
  factoryCalls = 0;
  context: CallerContext = { organization_id: ORG_ID, role: "owner" };
  begins: BeginResult[] = [reuseDecision()];
  errors: Partial<Record<StoreOp, unknown>> = {};

  readonly factory: StoreFactory = () => {
    this.factoryCalls++;
    return this.port;
  };

  /** Rejects rather than throws, as the real store's async RPCs do (callers use .catch). */
  private answer<T>(op: StoreOp, args: unknown[], value: () => T): Promise<T> {
    this.calls.push({ op, args });
    this.journal.push(`db:${op}`);
    if (op in this.errors) return Promise.reject(this.errors[op]);
    try {
      return Promise.resolve(value());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private readonly port: ProvisioningStore = {
    callerContext: (userId) =>
      this.answer("callerContext", [userId], () => structuredClone(this.context)),
    begin: (input) =>
      this.answer("begin", [input], () => {
        if (this.begins.length === 0) throw new Error("FakeStore: no begin decision scripted");
        return structuredClone(this.begins.length > 1 ? this.begins.shift()! : this.begins[0]);
      }),
    complete: (input) => this.answer("complete", [input], () => undefined),
    fail: (integrationId, leaseId, reason, details, actor) =>
      this.answer(
        "fail",
        [{ integrationId, leaseId, reason, details, actor } satisfies FailCall],
        () => undefined,
      ),
    storeToken: (integrationId, session, token, expiresAt) =>
      this.answer("storeToken", [integrationId, session, token, expiresAt], () => true),
    recordEvent: (organizationId, integrationId, actor, action, details) =>
      this.answer(
        "recordEvent",
        [{ organizationId, integrationId, actor, action, details } satisfies RecordedEvent],
        () => undefined,
      ),
  };

  of(op: StoreOp): unknown[][] {
    return this.calls.filter((c) => c.op === op).map((c) => c.args);
  }

  beginInputs(): BeginInput[] {
    return this.of("begin").map((a) => a[0] as BeginInput);
  }

  events(): RecordedEvent[] {
    return this.of("recordEvent").map((a) => a[0] as RecordedEvent);
  }

  fails(): FailCall[] {
    return this.of("fail").map((a) => a[0] as FailCall);
  }

  completes(): CompleteInput[] {
    return this.of("complete").map((a) => a[0] as CompleteInput);
  }
}

export interface PlatformCall {
  op: WppOperation;
  /** The session the call was made for; null for create. */
  session: string | null;
  apiKey: string | null;
  arg?: string;
  opts?: CallOptions | TokenOptions;
}

/**
 * A platform whose answers are fields of this object; `failWith` decides, per call, whether that
 * call throws (return the error) or answers (return undefined).
 */
export class FakePlatform {
  readonly calls: PlatformCall[] = [];
  constructor(readonly journal: string[] = []) {}
  readonly sessionInputs: SessionInput[] = [];
  factoryCalls = 0;
  created: CreatedClient = { session: NEW_SESSION, apiKey: NEW_API_KEY, status: "starting" };
  status: AccountStatus = { connected: false, status: "offline" };
  start: StartResult = { state: "qr", qr: QR, raw: "qr" };
  token: WppToken = { token: NEW_JWT, expiresAt: T0 + 900_000 };
  /** What a session client reports as a token it had to fetch during the request. */
  newTokenFor: (session: string) => WppToken | null = () => null;
  failWith: (call: PlatformCall) => unknown = () => undefined;

  readonly factory: PlatformFactory = () => {
    this.factoryCalls++;
    return this.port;
  };

  private call<T>(c: PlatformCall, answer: () => T): Promise<T> {
    this.calls.push(c);
    this.journal.push(`wpp:${c.op}`);
    const error = this.failWith(c);
    if (error !== undefined) return Promise.reject(error);
    return Promise.resolve(answer());
  }

  private session(input: SessionInput): SessionPort {
    const at = (op: WppOperation, opts?: CallOptions, arg?: string): PlatformCall => ({
      op,
      session: input.session,
      apiKey: input.apiKey,
      opts,
      ...(arg === undefined ? {} : { arg }),
    });
    return {
      getToken: (opts) => this.call(at("token", opts), () => structuredClone(this.token)),
      startAccount: (opts) => this.call(at("start", opts), () => structuredClone(this.start)),
      accountStatus: (opts) => this.call(at("status", opts), () => structuredClone(this.status)),
      getQr: (opts) => this.call(at("qr", opts), () => this.start.qr ?? null),
      registerWebhook: (url, opts) => this.call(at("webhook", opts, url), () => undefined),
      stop: (opts) => this.call(at("stop", opts), () => undefined),
      newToken: () => this.newTokenFor(input.session),
    };
  }

  private readonly port: PlatformPort = {
    createClient: (organizationId, opts) =>
      this.call(
        { op: "create", session: null, apiKey: null, arg: organizationId, opts },
        () => structuredClone(this.created),
      ),
    forSession: (input) => {
      this.sessionInputs.push(structuredClone(input));
      return this.session(input);
    },
  };

  ops(): string[] {
    return this.calls.map((c) => c.session ? `${c.op}:${c.session}` : c.op);
  }
}

/** A verifier that skips JWTs: tests of everything after authentication do not need them. */
export function fakeVerifier(calls: (string | null)[]): TokenVerifier {
  return (authorization) => {
    calls.push(authorization);
    return Promise.resolve({ userId: USER_ID, email: "owner@example.test" });
  };
}
