// Helpers every admin route uses to read and refuse bodies.
import type { z } from "zod";
import { json } from "./responses.ts";

export async function readBody(req: Request): Promise<unknown> {
  try {
    return await req.json();
  } catch {
    return undefined;
  }
}

export function invalid(error: z.ZodError): Response {
  return json(400, {
    error: error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ` : "") + i.message)
      .join("; "),
  });
}

export function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
