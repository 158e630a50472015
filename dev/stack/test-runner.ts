// `deno task test`: starts a throwaway stack on free ports, runs every test against it, stops it.
// Two runs at once never collide: each has its own ports and its own temporary data directory.
//
// Then a second pass: every *.e2e.test.ts among the paths runs again against a second stack
// whose database held the host CRM's tables and rows (tests/fixtures/brownfield) before the
// migrations ran, as the CRM's production database will. That stack uses the first one's
// PostgreSQL (a database of its own on it), so no second cluster starts.
//
//   deno task test [deno test flags] [paths]     default path: tests/
//   TEST_BROWNFIELD=with-constraints (default) | without-constraints | off
//     which CRM variant the second pass installs into (the two constraints the contract leaves
//     open: unique webhook_key, one primary per organisation and messenger type); `off` skips
//     the pass and says so. tests/db/brownfield_install.test.ts installs into both.
import { join, relative, resolve } from "node:path";
import { freePort, type Stack, type StackOptions, startStack } from "./stack.ts";
import { ROOT } from "./paths.ts";
import { demoPageRoutes } from "./demo-page.ts";
import { brownfieldSql, isVariant } from "../../tests/fixtures/brownfield/mod.ts";

const brownfieldSetting = Deno.env.get("TEST_BROWNFIELD") || "with-constraints";
if (brownfieldSetting !== "off" && !isVariant(brownfieldSetting)) {
  console.error(
    `TEST_BROWNFIELD=${brownfieldSetting}: expected with-constraints, without-constraints or off`,
  );
  Deno.exit(2);
}
const dataDir = await Deno.makeTempDir({ prefix: "wpp-connect-test-" });
// Each stack's folder lives inside: the database server may run as another OS user, which must
// be able to reach it.
await Deno.chmod(dataDir, 0o755);
const log = (l: string) => console.log(`[stack] ${l}`);
const say = (l: string) => console.log(`[runner] ${l}`);
const quick = Deno.env.get("TEST_QUICK") === "1";
const keep = Deno.env.get("KEEP_TEST_DATA") === "1";

const E2E_SUFFIX = ".e2e.test.ts";
// deno test flags whose value may follow as a separate argument: that argument is not a path.
const FLAGS_WITH_VALUE = new Set([
  "--filter",
  "--reporter",
  "--location",
  "--seed",
  "--config",
  "-c",
  "--import-map",
  "--lock",
  "--cert",
  "--ignore",
]);

/** Splits `deno task test` arguments into flags (both passes) and paths. */
function splitArgs(args: string[]): { flags: string[]; paths: string[] } {
  const flags: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith("-")) {
      flags.push(a);
      if (!a.includes("=") && FLAGS_WITH_VALUE.has(a) && i + 1 < args.length) flags.push(args[++i]);
    } else paths.push(a);
  }
  return { flags, paths: paths.length ? paths : ["tests/"] };
}

async function e2eFiles(path: string, out: Set<string>): Promise<void> {
  const abs = resolve(ROOT, path);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(abs);
  } catch {
    return; // not a file or folder (a glob, a typo): deno test of the first pass reports it
  }
  if (info.isFile) {
    if (abs.endsWith(E2E_SUFFIX)) out.add(relative(ROOT, abs));
    return;
  }
  for await (const e of Deno.readDir(abs)) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const child = join(abs, e.name);
    if (e.isDirectory) await e2eFiles(child, out);
    else if (e.isFile && e.name.endsWith(E2E_SUFFIX)) out.add(relative(ROOT, child));
  }
}

interface Counts {
  passed: number;
  failed: number;
  ignored: number;
}

/**
 * Counts from Deno's JUnit report, one per <testcase> (a test or a step). An ignored test is
 * neither passed nor failed.
 */
async function junitSummary(path: string): Promise<Counts | null> {
  let xml: string;
  try {
    xml = await Deno.readTextFile(path);
  } catch {
    return null;
  }
  const counts = { passed: 0, failed: 0, ignored: 0 };
  for (const [, body] of xml.matchAll(/<testcase\b[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    if (/<(failure|error)\b/.test(body ?? "")) counts.failed++;
    else if (/<skipped\b/.test(body ?? "")) counts.ignored++;
    else counts.passed++;
  }
  return counts;
}

interface Pass {
  name: string;
  stack: Stack;
  forwardPort: number;
  logDir: string;
}

/** Stack options both passes share; the ports are free ones. */
function stackOptions(dir: string, forwardPort: number): StackOptions {
  return {
    dataDir: dir,
    ports: { gateway: 0, db: 0, postgrest: 0, postgrestAdmin: 0, simulator: 0 },
    ephemeral: true,
    envFile: join(ROOT, "tests/fixtures/functions.env"),
    // Where wpp-webhook forwards verified events. Nothing listens there unless a test opens a
    // receiver on this port, which is also how tests see the CRM's receiver being down.
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
    functionLogDir: join(dir, "function-logs"),
    log,
  };
}

const running: Stack[] = [];
let stopping: Promise<void> | undefined;
const stopAll = () =>
  stopping ??= (async () => {
    // The brownfield stack's database lives on the first stack's cluster: it goes first.
    for (const s of running.reverse()) await s.stop().catch((e) => log(`stop: ${e.message}`));
    if (keep) log(`kept ${dataDir} (function logs under */function-logs/)`);
    else await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  })();
const onSignal = async () => {
  await stopAll();
  Deno.exit(130);
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

/** Runs `deno test` against one stack; answers its exit code and JUnit counts. */
async function runPass(
  pass: Pass,
  args: string[],
  extraEnv: Record<string, string>,
): Promise<{ code: number; summary: Counts | null; died?: string }> {
  const { stack } = pass;
  const junitPath = join(dataDir, `junit-${pass.name}.xml`);
  const functionUrls: Record<string, string[]> = {};
  for (const f of stack.functions) (functionUrls[f.name] ??= []).push(f.url);
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
      STACK_FUNCTION_LOG_DIR: pass.logDir,
      STACK_FORWARD_PORT: String(pass.forwardPort),
      STACK_PASS: pass.name,
      ...extraEnv,
    },
    stdin: "null",
  }).spawn();
  // The stack stopping itself mid-run (PostgreSQL gone, a service out of restarts) fails the run
  // with its reason instead of a cascade of unrelated test failures.
  let died: string | undefined;
  stack.failure.then((reason) => {
    died = reason;
    try {
      child.kill("SIGTERM");
    } catch { /* already done */ }
  });
  let code = (await child.status).code;
  if (died) {
    console.error(`\nthe ${pass.name} stack stopped during the run: ${died}`);
    code = code || 1;
  }
  return { code, summary: await junitSummary(junitPath), died };
}

/** Thrown to end the run early once the reason is recorded in the closing lines. */
class PassesDone extends Error {}

let code = 1;
const totals = { passed: 0, failed: 0 };
const lines: string[] = [];
const count = (name: string, r: { code: number; summary: Counts | null }) => {
  if (r.summary) {
    totals.passed += r.summary.passed;
    totals.failed += r.summary.failed;
    lines.push(
      `${name}: ${r.summary.passed} passed, ${r.summary.failed} failed` +
        (r.summary.ignored ? `, ${r.summary.ignored} ignored` : ""),
    );
  } else {
    // No report (the run could not start, or was killed): it must not read as green.
    totals.failed += 1;
    lines.push(`${name}: no test report (deno test exited with ${r.code})`);
  }
};

try {
  const { flags, paths } = splitArgs(Deno.args);
  const found = new Set<string>();
  for (const p of paths) await e2eFiles(p, found);
  const brownfieldFiles = [...found].sort();

  const freshDir = join(dataDir, "fresh");
  const freshForward = freePort();
  const fresh = await startStack({
    ...stackOptions(freshDir, freshForward),
    externalDbUrl: Deno.env.get("DB_URL") || undefined,
  });
  running.push(fresh);
  log(`ready in ${fresh.startupMs} ms at ${fresh.url} (${JSON.stringify(fresh.timings)})`);

  say(`pass 1/2 "fresh": ${paths.join(" ")} on a new database (stand-ins for the CRM's tables)`);
  const first = await runPass(
    {
      name: "fresh",
      stack: fresh,
      forwardPort: freshForward,
      logDir: join(freshDir, "function-logs"),
    },
    [...flags, ...paths],
    { STACK_DB_SHAPE: "fresh" },
  );
  count("pass 1/2 fresh", first);
  code = first.code;

  if (brownfieldSetting === "off") {
    say("pass 2/2 brownfield: skipped (TEST_BROWNFIELD=off)");
    lines.push("pass 2/2 brownfield: skipped (TEST_BROWNFIELD=off)");
  } else if (!brownfieldFiles.length) {
    say(`pass 2/2 brownfield: no *${E2E_SUFFIX} file among ${paths.join(" ")}`);
    lines.push("pass 2/2 brownfield: no e2e file among the paths");
  } else if (first.died) {
    lines.push("pass 2/2 brownfield: not run (the first stack stopped)");
    code = code || 1;
  } else {
    const variant = brownfieldSetting as Parameters<typeof brownfieldSql>[0];
    const bfDir = join(dataDir, "brownfield");
    const bfForward = freePort();
    log(`starting the brownfield stack (CRM database, ${variant}) on the same PostgreSQL`);
    let bf: Stack;
    try {
      bf = await startStack({
        ...stackOptions(bfDir, bfForward),
        externalDbUrl: fresh.superuserUrl,
        preMigrationSql: await brownfieldSql(variant),
      });
    } catch (e) {
      // A migration that fails on the CRM's database is a finding, not a crash of the runner.
      console.error(`\nthe brownfield stack did not start: ${e instanceof Error ? e.message : e}`);
      lines.push(`pass 2/2 brownfield (${variant}): the stack did not start`);
      totals.failed += 1;
      throw new PassesDone();
    }
    running.push(bf);
    log(`brownfield stack ready in ${bf.startupMs} ms at ${bf.url}`);
    say(
      `pass 2/2 "brownfield" (${variant}): ${brownfieldFiles.length} e2e file(s) on a database ` +
        `that held the CRM's tables and rows before the migrations`,
    );
    const second = await runPass(
      {
        name: "brownfield",
        stack: bf,
        forwardPort: bfForward,
        logDir: join(bfDir, "function-logs"),
      },
      [...flags, ...brownfieldFiles],
      { STACK_DB_SHAPE: "brownfield", STACK_BROWNFIELD_VARIANT: variant },
    );
    count(`pass 2/2 brownfield (${variant})`, second);
    code = code || second.code;
  }
} catch (e) {
  if (!(e instanceof PassesDone)) console.error(e instanceof Error ? e.stack ?? e.message : e);
  code = code || 1;
} finally {
  await stopAll();
}
if (lines.length) {
  // A plain closing line that any CI reads, whatever it knows of Deno's own report.
  console.log(`\n${lines.join("\n")}`);
  console.log(`tests: ${totals.passed} passed, ${totals.failed} failed`);
  if (totals.failed && !code) code = 1;
}
Deno.exit(code);
