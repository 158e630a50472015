// How a failed platform call is told to the caller: one AppError per client error code, with a
// message that names the step and never repeats the platform's own text (it may echo secrets).
import { AppError } from "../errors.ts";
import type { WppError } from "./mod.ts";

export function platformFailure(e: WppError): AppError {
  const what = `WPP Platform ${e.op} call failed`;
  switch (e.code) {
    case "platform_timeout":
      return new AppError("platform_timeout", `${what}: no answer in time`);
    case "platform_unreachable":
      return new AppError("platform_unreachable", `${what}: the platform is unreachable`);
    case "platform_unauthorized":
      return new AppError("platform_unauthorized", `${what}: the platform refused WPP_SECRET`);
    case "platform_malformed":
      return new AppError("platform_malformed", `${what}: the platform answered garbage`);
    case "platform_error":
      return new AppError("platform_error", `${what}: platform error (HTTP ${e.status ?? "5xx"})`);
    case "invalid_api_key":
      return new AppError(
        "platform_rejected",
        `${what}: the platform refused the session's apiKey`,
      );
    default:
      return new AppError(
        "platform_rejected",
        `${what}: the platform refused the request (HTTP ${e.status ?? "4xx"})`,
      );
  }
}
