// wpp/: the WPP Platform, as this project talks to it: the client, its port and its error mapping.
export { WppPlatformClient } from "./client.ts";
export { WppSessionClient } from "./session.ts";
export {
  isWppError,
  WppError,
  type WppErrorCode,
  WppInvalidApiKeyError,
  WppMalformedError,
  type WppOperation,
  WppRejectedError,
  WppServerError,
  WppTimeoutError,
  WppUnauthorizedError,
  WppUnreachableError,
} from "./errors.ts";
export { maskSecret } from "./mask.ts";
export type {
  AccountStatus,
  CallOptions,
  CreatedClient,
  RetryOptions,
  SessionInput,
  StartResult,
  TokenOptions,
  WppCallEvent,
  WppClientOptions,
  WppToken,
} from "./types.ts";
