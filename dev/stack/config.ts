// The stack's own settings, read from the environment once and validated.
import { z } from "zod";
import { join } from "node:path";
import { ROOT } from "./paths.ts";

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

export const StackEnvSchema = z.object({
  API_PORT: port(54321),
  DB_PORT: port(54322),
  POSTGREST_PORT: port(54325),
  POSTGREST_ADMIN_PORT: port(54326),
  WPP_SIM_PORT: port(54330),
  AUTH_PORT: port(54328),
  JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  AUTH_SIGNING: z.enum(["hs256", "es256"]).default("hs256"),
  DB_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
  DB_PASSWORD: z.string().min(1).default("postgres"),
  STACK_DATA_DIR: z.string().default(join(ROOT, ".local/stack")),
  FUNCTIONS_ENV_FILE: z.string().optional(),
  WPP_SIMULATOR: z.enum(["on", "off"]).default("on"),
  FUNCTION_INSTANCES: z.coerce.number().int().min(1).max(8).default(1),
});

export type StackEnv = z.infer<typeof StackEnvSchema>;

export function loadStackEnv(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): StackEnv {
  const parsed = StackEnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid stack configuration: ${problems.join("; ")}`);
  }
  return parsed.data;
}
