/**
 * Runs the WPP Platform simulator on its own:
 *   deno run -A dev/wpp-simulator/main.ts [--port 54330] [--hostname 127.0.0.1]
 *     [--env-file .env] [--quiet]
 * Settings come from flags, then the environment, then the env file: WPP_SECRET,
 * WPP_SIM_TOKEN_TTL (seconds), WPP_SIM_QR_ROTATE_MS, WPP_SIM_PORT, WPP_SIM_HOSTNAME.
 */
import { parseArgs } from "node:util";
import { parseEnvFile } from "./env-file.ts";
import { startSimulator } from "./server.ts";

const DEFAULT_PORT = 54330;
// Fixed rather than random so a local stack can be configured once; it guards nothing real.
const DEV_SECRET = "wpp-simulator-dev-secret";

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string" },
      hostname: { type: "string" },
      "env-file": { type: "string" },
      quiet: { type: "boolean", default: false },
    },
  });
  const fromFile = values["env-file"]
    ? parseEnvFile(await Deno.readTextFile(values["env-file"]))
    : {};
  const setting = (name: string) => Deno.env.get(name) ?? fromFile[name];

  const port = toNumber(values.port ?? setting("WPP_SIM_PORT"), "port") ?? DEFAULT_PORT;
  const hostname = values.hostname ?? setting("WPP_SIM_HOSTNAME") ?? "127.0.0.1";
  const sim = await startSimulator({
    port,
    hostname,
    secret: setting("WPP_SECRET") || DEV_SECRET,
    tokenTtlSeconds: toNumber(setting("WPP_SIM_TOKEN_TTL"), "WPP_SIM_TOKEN_TTL"),
    qrRotateMs: toNumber(setting("WPP_SIM_QR_ROTATE_MS"), "WPP_SIM_QR_ROTATE_MS"),
    log: !values.quiet,
  });
  console.log(`WPP simulator listening on ${sim.url}`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await sim.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}

function toNumber(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
  return n;
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`WPP simulator: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
