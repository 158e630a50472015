// The platform client's public types.
import type { WppErrorCode, WppOperation } from "./errors.ts";

export interface CallOptions {
  /** ms epoch by which the whole call, retries and waits included, must have settled. */
  deadline?: number;
  /** Aborting rejects the call with the signal's reason. */
  signal?: AbortSignal;
}

export interface TokenOptions extends CallOptions {
  /**
   * Set right after a create: the platform has been seen refusing a brand-new apiKey for a
   * while, so a refusal is retried (within `freshKeyRetryMs`) instead of declaring it dead.
   */
  freshKey?: boolean;
}

export interface WppToken {
  token: string;
  /** ms epoch */
  expiresAt: number;
}

export interface CreatedClient {
  session: string;
  apiKey: string;
  status: string;
}

export interface StartResult {
  state: "connected" | "qr" | "starting";
  qr?: string;
  /** The platform's own word for the state ("qr" when it only sent a QR). */
  raw: string;
}

export interface AccountStatus {
  connected: boolean;
  status: string;
}

export interface WppCallEvent {
  op: WppOperation;
  ms: number;
  ok: boolean;
  status?: number;
  code?: WppErrorCode;
  /** 1 for the first HTTP attempt of a call, then counting up through retries. */
  attempt: number;
}

export interface RetryOptions {
  /** Total HTTP attempts for a retried call, the first one included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface WppClientOptions {
  baseUrl: string;
  /** WPP_SECRET; only needed to create clients. */
  secret?: string;
  timeoutMs?: number;
  retry?: RetryOptions;
  freshKeyRetryMs?: number;
  tokenSafetyMarginMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onCall?: (event: WppCallEvent) => void;
  log?: (line: Record<string, unknown>) => void;
}

export interface SessionInput {
  apiKey: string;
  session: string;
  storedToken?: WppToken;
}
