// One error model for every function: a stable code, an HTTP status decided here and only here,
// and a message written for the person reading the response (never a secret, never a stack).
//
// The CRM's HTTP helper retries 408, 429 and 5xx and never 409 or another 4xx, so a 409 is how a
// function says "do not repeat this now" (another click is creating, a create's outcome is
// unknown), and a 5xx is kept for failures a repeat may cure.

export const ERROR_STATUS = {
  invalid_json: 400,
  invalid_body: 400,
  invalid_header: 400,
  unauthorized: 401,
  forbidden: 403,
  no_organization: 403,
  not_found: 404,
  method_not_allowed: 405,
  provisioning_in_progress: 409,
  provisioning_conflict: 409,
  create_cooldown: 409,
  number_limit_reached: 409,
  idempotency_in_progress: 409,
  payload_too_large: 413,
  idempotency_key_reused: 422,
  not_configured: 500,
  internal_error: 500,
  platform_error: 502,
  platform_rejected: 502,
  platform_unreachable: 502,
  platform_unauthorized: 502,
  platform_malformed: 502,
  database_unavailable: 503,
  database_busy: 503,
  database_timeout: 503,
  platform_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: { retryAfterSeconds?: number; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "AppError";
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}
