// `deno task bench`: issue #13's targets, measured in one run on a throwaway stack of its own
// (free ports, temporary directory, simulator with no added latency, one process per function):
// the floors, the fast paths (reuse click, status poll), the first 60 s of waiting for a scan as
// the CRM's panel polls, the webhook receiver under 10,000 events, cold start and memory. Prints
// the tables with each target's verdict, writes docs/benchmarks.md, and exits non-zero if a
// target was missed.
import { join } from "node:path";
import postgres from "postgres";
import { freePort, startStack } from "../dev/stack/stack.ts";
import { ROOT } from "../dev/stack/paths.ts";
import { SimulatorAdmin } from "../dev/wpp-simulator/admin-client.ts";
import { createTenants, type Tenant } from "./fixtures.ts";
import { FunctionLog } from "./function-log.ts";
import { enableStatements } from "./db-stats.ts";
import {
  type FastCell,
  fastCell,
  type FastContext,
  type FastTarget,
  freshen,
} from "./scenarios.ts";
import { cpuSnapshot, type CpuUse, cpuUse } from "./cpu.ts";
import { measureFloors } from "./floors.ts";
import { type ColdStart, measureColdStart } from "./cold-start.ts";
import { type Memory, memoryOf } from "./process-stats.ts";
import { describeMachine, loadAverage, otherRuns } from "./machine.ts";
import { type CreateSample, renderReport } from "./report.ts";
import { panel } from "./panel.ts";
import { runScanWait, type WaitVariant } from "./scan-wait.ts";
import { ForwardReceiver, runWebhookBench } from "./webhook.ts";
import { runCell } from "./load.ts";
import type { SessionConnection, Target } from "./webhook-events.ts";

/** [path, connections, seconds] in the order they run. */
const FAST_CELLS: [FastCell["path"], number, number][] = [
  ["reuse", 1, 5],
  ["reuse", 10, 4],
  ["reuse", 50, 4],
  ["reuse_qr", 1, 4],
  ["status", 1, 5],
  ["status", 10, 4],
];
const FLOOR_ROUNDS = 400;
const CREATE_WARMUP = 5;
const CREATE_SAMPLES = 40;
const COLD_STARTS = 3;
const WEBHOOK_TARGETS = 4;
const WEBHOOK_EVENTS = 10_000;
const WEBHOOK_CONNECTIONS = 4;
/** Processes per function, as the test stack runs them (the edge runtime scales by workers). */
const FUNCTION_INSTANCES = 2;
/**
 * The run the latency target is read from: few connections, each sending its next event when the
 * last is answered, so the events flow at the rate the stack sustains without a queue of the
 * sender's making (autocannon's overallRate sends each second's quota in one burst, which
 * measures the burst, not the receiver).
 */
const WEBHOOK_STEADY_CONNECTIONS = 2;
const WEBHOOK_WARMUP = 400;
const FRESH_SECONDS = 30;

const say = (line: string) => console.error(`[bench] ${line}`);
const t0 = performance.now();
const atStart = { load: await loadAverage(), others: await otherRuns() };
if (atStart.others > 0) {
  say(`warning: ${atStart.others} other test/bench run(s) share this machine: figures will suffer`);
}
const dataDir = await Deno.makeTempDir({ prefix: "wpp-connect-bench-" });
const logDir = join(dataDir, "function-logs");
const forwardPort = freePort();
const forwardToken = `bench-forward-${crypto.randomUUID()}`;
const receiver = new ForwardReceiver();
await receiver.start(forwardPort, forwardToken);
const stack = await startStack({
  dataDir,
  ports: { gateway: 0, db: 0, postgrest: 0, postgrestAdmin: 0, simulator: 0 },
  ephemeral: true,
  envFile: join(ROOT, "bench/functions.env"),
  extraFunctionEnv: {
    WPP_EVENTS_FORWARD_URL: `http://127.0.0.1:${forwardPort}/events`,
    WPP_EVENTS_FORWARD_TOKEN: forwardToken,
    WPP_STATE_FRESH_SECONDS: String(FRESH_SECONDS),
  },
  functionInstances: FUNCTION_INSTANCES,
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
const logOf = (fn: string) =>
  new FunctionLog(
    Array.from(
      { length: FUNCTION_INSTANCES },
      (_, i) => join(logDir, FUNCTION_INSTANCES > 1 ? `${fn}-${i + 1}.log` : `${fn}.log`),
    ),
  );
const fnByPid = new Map(stack.functions.map((f) => [f.child.pid, f.name]));
const cpu = () =>
  cpuSnapshot(({ pid, comm, cmd, thread }) => {
    if (pid === Deno.pid) {
      return thread?.startsWith("worker-") ? "load generator + receiver" : "gateway";
    }
    if (fnByPid.has(pid)) return fnByPid.get(pid)!;
    if (comm === "postgres") return "PostgreSQL";
    if (comm === "postgrest") return "PostgREST";
    if (cmd.includes("wpp-simulator/main.ts")) return "simulator";
    if (cmd.includes("dev/auth/main.ts")) return "auth";
    return comm;
  });

/** The panel's connect click; a linked number is scanned and waited for until stored. */
async function connect(tenant: Tenant, link: boolean): Promise<FastTarget> {
  const p = panel(stack.url, stack.keys.anonKey, tenant.token);
  const first = await p.post("wpp-create", { add_new: false });
  if (first.status !== 200 || first.body?.status !== "qr_issued" || first.attempts !== 1) {
    throw new Error(`setup click answered ${first.status}: ${first.body?.status}`);
  }
  const target = {
    tenant,
    integrationId: String(first.body.integration_id),
    session: String(first.body.session),
  };
  if (link) {
    await sim.scan(target.session);
    const until = Date.now() + 10_000;
    while (true) {
      const [row] = await sql<{ connection: string }[]>`
        select connection from public.wpp_integration_state
         where integration_id = ${target.integrationId}`;
      if (row?.connection === "connected") break;
      if (Date.now() > until) throw new Error("the scan's connected event was not stored");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return target;
}

/** Runs one phase of the benchmark, recording the CPU the machine spent meanwhile. */
const phases: { name: string; cpu: CpuUse }[] = [];
async function phase<T>(name: string, work: () => Promise<T>): Promise<T> {
  const before = await cpu();
  const result = await work();
  phases.push({ name, cpu: cpuUse(before, await cpu()) });
  return result;
}

let exitCode = 0;
try {
  say(`stack up in ${stack.startupMs} ms`);
  await enableStatements(sql);
  const tenants = await createTenants(sql, stack.keys, 5 + WEBHOOK_TARGETS);
  const [linkedTenant, qrTenant, usual, rotation, dropped, ...webhookTenants] = tenants;
  const createTenantsPool = await createTenants(sql, stack.keys, CREATE_WARMUP + CREATE_SAMPLES);
  const linked = await connect(linkedTenant, true);
  const qrShown = await connect(qrTenant, false);
  const webhookTargets: Target[] = [];
  for (const t of webhookTenants) {
    const c = await connect(t, true);
    const [{ secret }] = await sql<{ secret: string }[]>`
      select webhook_secret as secret from public.wpp_integration_state
       where integration_id = ${c.integrationId}`;
    webhookTargets.push({ integrationId: c.integrationId, session: c.session, secret });
  }

  const ctx: FastContext = {
    gatewayUrl: stack.url,
    anonKey: stack.keys.anonKey,
    sql,
    sim,
    logs: { create: logOf("wpp-create"), status: logOf("wpp-status") },
    cpu,
  };
  // Warms the processes and the connection pools along the path; not recorded.
  await fastCell(ctx, "reuse", linked, 10, 1);
  await fastCell(ctx, "status", linked, 10, 1);

  say("floors and fast paths, one request at a time, interleaved");
  const revealed = await sim.state({ reveal: true });
  await freshen(sql, linked.integrationId);
  await freshen(sql, qrShown.integrationId);
  const floors = await phase("floors and fast paths, one at a time", () =>
    measureFloors({
      gatewayUrl: stack.url,
      serviceRoleKey: stack.keys.serviceRoleKey,
      anonKey: stack.keys.anonKey,
      userId: linkedTenant.userId,
      freshSeconds: FRESH_SECONDS,
      simulatorUrl: stack.simulatorUrl!,
      session: linked.session,
      apiKey: revealed.sessions.find((s) => s.session === linked.session)!.apiKey,
      rounds: FLOOR_ROUNDS,
      paths: {
        reuse: { fn: "wpp-create", token: linkedTenant.token, body: {} },
        reuse_qr: { fn: "wpp-create", token: qrTenant.token, body: {} },
        status: {
          fn: "wpp-status",
          token: linkedTenant.token,
          body: { session_name: linked.session, force: true },
        },
      },
    }));

  say(`first clicks: ${CREATE_SAMPLES} creates, one at a time`);
  const createLog = logOf("wpp-create");
  await createLog.mark();
  const creates: CreateSample[] = [];
  for (const [i, t] of createTenantsPool.entries()) {
    const answer = await panel(stack.url, stack.keys.anonKey, t.token).post("wpp-create", {
      add_new: false,
    });
    if (answer.status !== 200 || answer.attempts !== 1) {
      throw new Error(`a first click answered ${answer.status}`);
    }
    if (i >= CREATE_WARMUP) {
      creates.push({ ms: answer.ms, requestId: String(answer.body?.request_id) });
    }
  }
  const createLines = await createLog.requests(createTenantsPool.length);
  for (const c of creates) c.line = createLines.find((l) => l.request_id === c.requestId);

  const cells: FastCell[] = [];
  for (const [path, connections, seconds] of FAST_CELLS) {
    say(`${path}, ${connections} connection(s), ${seconds} s`);
    cells.push(
      await fastCell(ctx, path, path === "reuse_qr" ? qrShown : linked, connections, seconds),
    );
  }

  say("waiting for a scan: 60 s, three variants side by side");
  const waitTenants: Record<WaitVariant, Tenant> = { usual, rotation, dropped };
  const wait = await phase("waiting for a scan", () =>
    runScanWait(
      {
        gatewayUrl: stack.url,
        anonKey: stack.keys.anonKey,
        sim,
        logs: { qr: logOf("wpp-qr"), status: logOf("wpp-status") },
      },
      waitTenants,
    ));

  say(`webhook receiver: ${WEBHOOK_EVENTS} events`);
  // Warm-up: messages only (they change no connection), then the receiver forgets them.
  await runCell({
    url: stack.url,
    method: "POST",
    headers: { "content-type": "application/json" },
    connections: WEBHOOK_CONNECTIONS,
    sequence: Array.from({ length: WEBHOOK_WARMUP }, (_, i) => {
      const t = webhookTargets[i % webhookTargets.length];
      return {
        path: `/functions/v1/wpp-webhook/${encodeURIComponent(t.secret)}`,
        body: JSON.stringify({
          account: t.session,
          from: "5511900000000",
          raw_from: "5511900000000@c.us",
          text: `warm-up ${i}`,
          type: "chat",
          messageId: `WARMUP${i}`,
          fromMe: false,
        }),
      };
    }),
  });
  await new Promise((r) => setTimeout(r, 500));
  await receiver.reset();
  const webhookPlan = {
    total: WEBHOOK_EVENTS,
    copyShare: 0.1,
    sessionEventsPerTarget: 30,
    deliveryShare: 0.1,
    finals: ["connected", "qr", "offline", "connected"] as SessionConnection[],
  };
  // First a steady flow, which the targets are read from (its rate must reach 500/s); then as
  // many connections as keep the stack busy, which shows what it can carry.
  const webhookSteady = await runWebhookBench({
    gatewayUrl: stack.url,
    sql,
    log: logOf("wpp-webhook"),
    receiver,
    targets: webhookTargets,
    connections: WEBHOOK_STEADY_CONNECTIONS,
    plan: webhookPlan,
    cpu,
  });
  await receiver.reset();
  const webhook = await runWebhookBench({
    gatewayUrl: stack.url,
    sql,
    log: logOf("wpp-webhook"),
    receiver,
    targets: webhookTargets,
    connections: WEBHOOK_CONNECTIONS,
    plan: webhookPlan,
    cpu,
  });

  const memory: Record<string, Memory> = {};
  for (const f of stack.functions) memory[f.name] = await memoryOf(f.child.pid);

  say("cold starts");
  const colds: ColdStart[] = [];
  for (let i = 0; i < COLD_STARTS; i++) {
    await sql`update public.wpp_integration_state set checked_at = now()
               where integration_id = ${linked.integrationId}`;
    colds.push(await measureColdStart(stack.functionEnv, linkedTenant.token));
  }

  const report = renderReport({
    machine: await describeMachine(sql, atStart),
    floors,
    creates,
    cells,
    wait,
    phases,
    webhook,
    webhookSteady,
    colds,
    memory,
    benchSeconds: (performance.now() - t0) / 1000,
  });
  console.log(report.console);
  await Deno.writeTextFile(join(ROOT, "docs/benchmarks.md"), report.markdown);
  say(`wrote docs/benchmarks.md in ${Math.round((performance.now() - t0) / 1000)} s`);
  if (report.missed.length) {
    exitCode = 1;
    console.error(`\n[bench] ${report.missed.length} target(s) MISSED:`);
    for (const m of report.missed) console.error(`[bench]   - ${m}`);
  } else {
    say("every target met");
  }
} finally {
  Deno.removeSignalListener("SIGINT", interrupted);
  Deno.removeSignalListener("SIGTERM", interrupted);
  await receiver.stop().catch(() => {});
  await sql.end({ timeout: 5 });
  await stack.stop();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}
Deno.exit(exitCode);
