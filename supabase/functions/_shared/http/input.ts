// What a caller asked for, from a POST's JSON body or a GET's query string, validated by the same
// strict schema either way.
import type { z } from "zod";
import { parseJsonBody } from "./body.ts";
import { readQuery } from "./query.ts";

export async function readInput<T extends z.ZodType>(
  req: Request,
  schema: T,
  kinds: Record<string, "boolean"> = {},
): Promise<z.infer<T>> {
  return req.method === "GET" ? readQuery(req, schema, kinds) : await parseJsonBody(req, schema);
}
