// A GET's query string, validated like a JSON body: the same strict schema, so an unknown
// parameter is refused the way an unknown field is.
import type { z } from "zod";
import { AppError } from "../errors.ts";
import { describeIssues } from "./body.ts";

export function readQuery<T extends z.ZodType>(
  req: Request,
  schema: T,
  kinds: Record<string, "boolean"> = {},
): z.infer<T> {
  const value: Record<string, unknown> = {};
  for (const [key, raw] of new URL(req.url).searchParams) {
    if (key in value) throw new AppError("invalid_body", `query parameter ${key} is repeated`);
    if (kinds[key] === "boolean") {
      if (raw !== "true" && raw !== "false") {
        throw new AppError("invalid_body", `${key} must be true or false`);
      }
      value[key] = raw === "true";
    } else {
      value[key] = raw;
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new AppError("invalid_body", describeIssues(parsed.error.issues));
  return parsed.data;
}
