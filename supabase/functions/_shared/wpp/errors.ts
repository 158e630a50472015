// The platform client's errors: one class per way a call can fail, with a stable code.
/** The platform calls this client makes; used to label errors, logs and timings. */
export type WppOperation = "create" | "token" | "start" | "status" | "qr" | "webhook" | "stop";

export type WppErrorCode =
  | "platform_unreachable"
  | "platform_timeout"
  | "platform_unauthorized"
  | "invalid_api_key"
  | "platform_rejected"
  | "platform_error"
  | "platform_malformed";

export interface WppErrorInit {
  op: WppOperation;
  /** Must already be free of secrets: callers build it from scrubbed text only. */
  message: string;
  status?: number;
  platformMessage?: string;
  cause?: unknown;
}

/**
 * Every failure of a platform call surfaces as one of these. Callers branch on `code`, because
 * the platform's wording is undocumented and may change under us.
 */
export class WppError extends Error {
  readonly code: WppErrorCode;
  readonly op: WppOperation;
  readonly status?: number;
  readonly platformMessage?: string;

  constructor(code: WppErrorCode, init: WppErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "WppError";
    this.code = code;
    this.op = init.op;
    if (init.status !== undefined) this.status = init.status;
    if (init.platformMessage !== undefined) this.platformMessage = init.platformMessage;
  }
}

/** Connection refused, reset or closed before a full answer arrived. */
export class WppUnreachableError extends WppError {
  declare readonly code: "platform_unreachable";
  constructor(init: WppErrorInit) {
    super("platform_unreachable", init);
    this.name = "WppUnreachableError";
  }
}

/** An attempt outlived its timeout, or the caller's deadline passed. */
export class WppTimeoutError extends WppError {
  declare readonly code: "platform_timeout";
  constructor(init: WppErrorInit) {
    super("platform_timeout", init);
    this.name = "WppTimeoutError";
  }
}

/** WPP_SECRET was refused when creating a client. */
export class WppUnauthorizedError extends WppError {
  declare readonly code: "platform_unauthorized";
  constructor(init: WppErrorInit) {
    super("platform_unauthorized", init);
    this.name = "WppUnauthorizedError";
  }
}

/** The apiKey cannot be exchanged for a token. */
export class WppInvalidApiKeyError extends WppError {
  declare readonly code: "invalid_api_key";
  constructor(init: WppErrorInit) {
    super("invalid_api_key", init);
    this.name = "WppInvalidApiKeyError";
  }
}

/** Any other 4xx answer. */
export class WppRejectedError extends WppError {
  declare readonly code: "platform_rejected";
  constructor(init: WppErrorInit) {
    super("platform_rejected", init);
    this.name = "WppRejectedError";
  }
}

/** A 5xx answer. */
export class WppServerError extends WppError {
  declare readonly code: "platform_error";
  constructor(init: WppErrorInit) {
    super("platform_error", init);
    this.name = "WppServerError";
  }
}

/** A 2xx answer whose body is not what the contract allows. */
export class WppMalformedError extends WppError {
  declare readonly code: "platform_malformed";
  /**
   * A create answer that named a session but was unusable (no apiKey): that client now exists on
   * the platform unrecorded, so the id is kept for the audit trail. A session id is no secret.
   */
  orphanSession?: string;
  constructor(init: WppErrorInit) {
    super("platform_malformed", init);
    this.name = "WppMalformedError";
  }
}

const byCode: Record<WppErrorCode, new (init: WppErrorInit) => WppError> = {
  platform_unreachable: WppUnreachableError,
  platform_timeout: WppTimeoutError,
  platform_unauthorized: WppUnauthorizedError,
  invalid_api_key: WppInvalidApiKeyError,
  platform_rejected: WppRejectedError,
  platform_error: WppServerError,
  platform_malformed: WppMalformedError,
};

/** Builds the subclass matching `code`, so `instanceof` and `code` always agree. */
export function wppError(code: WppErrorCode, init: WppErrorInit): WppError {
  return new byCode[code](init);
}

export function isWppError(e: unknown): e is WppError {
  return e instanceof WppError;
}

/** Failures that may go away on their own, so an idempotent call may be tried again. */
export function isTransient(e: unknown): boolean {
  return isWppError(e) &&
    (e.code === "platform_unreachable" || e.code === "platform_timeout" ||
      e.code === "platform_error");
}
