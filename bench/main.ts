// `deno task bench`: starts its own throwaway stack (free ports, temporary directory, simulator
// with no added latency, one wpp-create process), measures both paths of wpp-create under load
// plus the floors, cold start and memory, prints the tables and writes docs/benchmarks.md.
import { join } from "node:path";
import postgres from "postgres";
import { startStack } from "../dev/stack/stack.ts";
import { ROOT } from "../dev/stack/paths.ts";
import { SimulatorAdmin } from "../dev/wpp-simulator/admin-client.ts";
import { createTenants } from "./fixtures.ts";
import { FunctionLog } from "./function-log.ts";
import { enableStatements } from "./db-stats.ts";
import { type CellRun, createCell, reuseCell, TenantPool } from "./scenarios.ts";
import { measureFloors } from "./floors.ts";
import { type ColdStart, measureColdStart } from "./cold-start.ts";
import { memoryOf } from "./process-stats.ts";
import { describeMachine, loadAverage } from "./machine.ts";
import { renderReport } from "./report.ts";

const CONCURRENCY = [1, 10, 50];
const REUSE_SECONDS = 6;
/** Requests per create cell: about as many as the path serves in a few seconds at that load. */
const CREATE_AMOUNT: Record<number, number> = { 1: 150, 10: 400, 50: 600 };
const CREATE_WARMUP = 30;
const FLOOR_SAMPLES = 300;
const COLD_STARTS = 3;

const say = (line: string) => console.error(`[bench] ${line}`);
const t0 = performance.now();
const loadAtStart = await loadAverage();
const dataDir = await Deno.makeTempDir({ prefix: "wpp-connect-bench-" });
const logDir = join(dataDir, "function-logs");
const stack = await startStack({
  dataDir,
  ports: { gateway: 0, db: 0, postgrest: 0, postgrestAdmin: 0, simulator: 0 },
  ephemeral: true,
  envFile: join(ROOT, "bench/functions.env"),
  functionInstances: 1,
  functionLogDir: logDir,
});
const sql = postgres(stack.superuserUrl, { max: 4, onnotice: () => {} });
// Ctrl-C must not leave PostgreSQL and friends running on their free ports.
const interrupted = async () => {
  await stack.stop();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  Deno.exit(130);
};
Deno.addSignalListener("SIGINT", interrupted);
Deno.addSignalListener("SIGTERM", interrupted);
const sim = new SimulatorAdmin(stack.simulatorUrl!);

async function click(token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${stack.url}/functions/v1/wpp-create`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: "{}",
  });
  const body = await res.json();
  if (res.status !== 200) {
    throw new Error(`setup click answered ${res.status}: ${JSON.stringify(body)}`);
  }
  return body;
}

try {
  say(`stack up in ${stack.startupMs} ms`);
  await enableStatements(sql);
  const fn = stack.functions.find((f) => f.name === "wpp-create")!;
  const ctx = {
    functionUrl: `${stack.url}/functions/v1/wpp-create`,
    sql,
    log: new FunctionLog(join(logDir, "wpp-create.log")),
  };

  // Reuse path: one organisation, provisioned once and linked by a scan.
  const [linked] = await createTenants(sql, stack.keys, 1);
  const first = await click(linked.token);
  await sim.scan(String(first.session));
  const again = await click(linked.token);
  if (again.status !== "connected") throw new Error(`linked session reports ${again.status}`);

  const runs: CellRun[] = [];
  await reuseCell(ctx, linked, 10, 2);
  for (const c of CONCURRENCY) {
    say(`reuse path, ${c} connection(s), ${REUSE_SECONDS} s`);
    runs.push(await reuseCell(ctx, linked, c, REUSE_SECONDS));
  }

  const total = CREATE_WARMUP + CONCURRENCY.reduce((s, c) => s + CREATE_AMOUNT[c], 0);
  const pool = new TenantPool(await createTenants(sql, stack.keys, total));
  await createCell(ctx, pool, 5, CREATE_WARMUP);
  for (const c of CONCURRENCY) {
    say(`create path, ${c} connection(s), ${CREATE_AMOUNT[c]} new organisations`);
    runs.push(await createCell(ctx, pool, c, CREATE_AMOUNT[c]));
  }
  const loadedMemory = await memoryOf(fn.child.pid);

  say("floors");
  const revealed = await sim.state({ reveal: true });
  const session = revealed.sessions.find((s) => s.session === String(first.session))!;
  const floors = await measureFloors({
    gatewayUrl: stack.url,
    serviceRoleKey: stack.keys.serviceRoleKey,
    userId: linked.userId,
    simulatorUrl: stack.simulatorUrl!,
    apiKey: session.apiKey,
    n: FLOOR_SAMPLES,
  });

  say("cold starts");
  const colds: ColdStart[] = [];
  for (let i = 0; i < COLD_STARTS; i++) {
    colds.push(await measureColdStart(stack.functionEnv, linked.token));
  }

  const report = renderReport({
    machine: await describeMachine(sql, loadAtStart),
    runs,
    floors,
    colds,
    loadedMemory,
    benchSeconds: (performance.now() - t0) / 1000,
  });
  console.log(report.console);
  await Deno.writeTextFile(join(ROOT, "docs/benchmarks.md"), report.markdown);
  say(`wrote docs/benchmarks.md in ${Math.round((performance.now() - t0) / 1000)} s`);
} finally {
  Deno.removeSignalListener("SIGINT", interrupted);
  Deno.removeSignalListener("SIGTERM", interrupted);
  await sql.end({ timeout: 5 });
  await stack.stop();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}
