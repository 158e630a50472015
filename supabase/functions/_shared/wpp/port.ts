// What the functions need from the WPP Platform client, as interfaces, so a handler can be driven
// by the real client in production and end-to-end tests, or by a fake in unit tests.
import {
  type AccountStatus,
  type CallOptions,
  type CreatedClient,
  type SessionInput,
  type StartResult,
  type TokenOptions,
  type WppCallEvent,
  WppPlatformClient,
  type WppToken,
} from "./mod.ts";

export interface SessionPort {
  getToken(opts?: TokenOptions): Promise<WppToken>;
  startAccount(opts?: CallOptions): Promise<StartResult>;
  accountStatus(opts?: CallOptions): Promise<AccountStatus>;
  getQr(opts?: CallOptions): Promise<string | null>;
  registerWebhook(url: string, opts?: CallOptions): Promise<void>;
  stop(opts?: CallOptions): Promise<void>;
  newToken(): WppToken | null;
}

export interface PlatformPort {
  createClient(organizationId: string, opts?: CallOptions): Promise<CreatedClient>;
  forSession(input: SessionInput): SessionPort;
}

/** Builds a platform client per request, so each request's log gets its own call timings. */
export type PlatformFactory = (onCall: (e: WppCallEvent) => void) => PlatformPort;

export function createPlatformFactory(opts: {
  baseUrl: string;
  /** Only wpp-create passes it: without it no platform client can be created. */
  secret?: string;
  timeoutMs: number;
  freshKeyRetryMs: number;
}): PlatformFactory {
  return (onCall) =>
    new WppPlatformClient({
      baseUrl: opts.baseUrl,
      secret: opts.secret,
      timeoutMs: opts.timeoutMs,
      freshKeyRetryMs: opts.freshKeyRetryMs,
      onCall,
    });
}
