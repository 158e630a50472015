// `deno task test`: starts a throwaway stack on free ports, runs every test against it, stops it.
// Two runs at once never collide: each has its own ports and its own temporary data directory.
import { join } from "node:path";
import { freePort, startStack } from "./stack.ts";
import { ROOT } from "./paths.ts";
import { demoPageRoutes } from "./demo-page.ts";

const dataDir = await Deno.makeTempDir({ prefix: "wpp-connect-test-" });
const log = (l: string) => console.log(`[stack] ${l}`);
const quick = Deno.env.get("TEST_QUICK") === "1";
let code = 1;
// Where wpp-webhook forwards verified events. Nothing listens there unless a test opens a
// receiver on this port, which is also how tests see the CRM's receiver being down.
const forwardPort = freePort();
const stack = await startStack({
  dataDir,
  ports: { gateway: 0, db: 0, postgrest: 0, postgrestAdmin: 0, simulator: 0 },
  ephemeral: true,
  externalDbUrl: Deno.env.get("DB_URL") || undefined,
  envFile: join(ROOT, "tests/fixtures/functions.env"),
  extraFunctionEnv: { WPP_EVENTS_FORWARD_URL: `http://127.0.0.1:${forwardPort}/events` },
  simulator: Deno.env.get("WPP_SIMULATOR") !== "off",
  functionInstances: 2,
  extraFunctions: [{
    name: "stack-probe",
    entry: join(ROOT, "tests/fixtures/functions/stack-probe/index.ts"),
    verifyJwt: true,
  }],
  extraMigrationDirs: [join(ROOT, "tests/fixtures/migrations")],
  extraRoutes: demoPageRoutes,
  functionLogDir: join(dataDir, "function-logs"),
  log,
});
log(`ready in ${stack.startupMs} ms at ${stack.url} (${JSON.stringify(stack.timings)})`);

const junitPath = join(dataDir, "junit.xml");

/** Counts from Deno's JUnit report: test cases (steps are not counted) and their failures. */
async function junitSummary(path: string): Promise<{ passed: number; failed: number } | null> {
  try {
    const xml = await Deno.readTextFile(path);
    const head = xml.match(/<testsuites\b[^>]*>/)?.[0] ?? "";
    const num = (attr: string) => Number(head.match(new RegExp(`${attr}="(\\d+)"`))?.[1] ?? 0);
    const failed = num("failures") + num("errors");
    return { passed: num("tests") - failed, failed };
  } catch {
    return null;
  }
}

const keep = Deno.env.get("KEEP_TEST_DATA") === "1";
const stop = async () => {
  await stack.stop();
  if (keep) log(`kept ${dataDir} (function logs under function-logs/)`);
  else await Deno.remove(dataDir, { recursive: true }).catch(() => {});
};
const onSignal = async () => {
  await stop();
  Deno.exit(130);
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

try {
  const functionUrls: Record<string, string[]> = {};
  for (const f of stack.functions) (functionUrls[f.name] ??= []).push(f.url);
  const args = Deno.args.length ? Deno.args : ["tests/"];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "-A",
      "--no-prompt",
      `--junit-path=${junitPath}`,
      ...(quick ? ["--no-check"] : []),
      ...args,
    ],
    cwd: ROOT,
    env: {
      STACK_URL: stack.url,
      STACK_ANON_KEY: stack.keys.anonKey,
      STACK_SERVICE_ROLE_KEY: stack.keys.serviceRoleKey,
      STACK_JWT_SECRET: stack.keys.jwtSecret,
      STACK_ES256_JWK: JSON.stringify(stack.keys.es256PrivateJwk),
      STACK_DB_URL: stack.dbUrl,
      STACK_DB_SUPERUSER_URL: stack.superuserUrl,
      STACK_POSTGREST_URL: stack.postgrestUrl,
      STACK_SIM_URL: stack.simulatorUrl ?? "",
      STACK_SIM_SECRET: stack.simulatorSecret ?? "",
      STACK_FUNCTION_URLS: JSON.stringify(functionUrls),
      STACK_FUNCTION_ENV: JSON.stringify(stack.functionEnv),
      STACK_STARTUP_MS: String(stack.startupMs),
      STACK_FUNCTION_LOG_DIR: join(dataDir, "function-logs"),
      STACK_FORWARD_PORT: String(forwardPort),
    },
    stdin: "null",
  }).spawn();
  // The stack stopping itself mid-run (PostgreSQL gone, a service out of restarts) fails the run
  // with its reason instead of a cascade of unrelated test failures.
  let stackFailure: string | undefined;
  stack.failure.then((reason) => {
    stackFailure = reason;
    try {
      child.kill("SIGTERM");
    } catch { /* already done */ }
  });
  code = (await child.status).code;
  if (stackFailure) {
    console.error(`\nthe test stack stopped during the run: ${stackFailure}`);
    code = code || 1;
  }
  const summary = await junitSummary(junitPath);
  // A plain closing line that any CI reads, whatever it knows of Deno's own report.
  if (summary) console.log(`\ntests: ${summary.passed} passed, ${summary.failed} failed`);
} finally {
  await stop();
}
Deno.exit(code);
