// Every platform fault the simulator can inject, at every platform step a click reaches, with the
// CRM panel's own HTTP helper as the client: its real retry policy (4 attempts, 1 s·2ⁿ ±25 %
// apart, retrying 408/429/5xx and network errors, never a 409 or another 4xx) turns one click
// into up to four requests. Whatever the fault, one click may create at most one platform client,
// every attempt must be answered within WPP_REQUEST_DEADLINE_MS + 1 s with a coded error or a
// success, an unknown create outcome is audited as such, and once the platform is healthy again
// the next click (or poll) works and leaves a consistent row.
//
// Faults are process-wide in a simulator, so each cell runs in a lane of its own: a simulator,
// and function processes talking only to it. Lanes run side by side, each cell on a new
// organisation, so the helper's real delays do not add up.
import assert from "node:assert/strict";
import type { FaultSpec } from "../../dev/wpp-simulator/admin-client.ts";
import { CRM_POLICY, crmHelper, type HelperResult } from "../_support/crm-helper.ts";
import { closeDb, createOrg, events, functionLogLines, sql } from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import {
  attemptProblems,
  callDelta,
  clientsOf,
  FULL,
  inconsistencies,
  type Lane,
  percentile,
  platformSessions,
  seconds,
  sized,
  startLane,
  stopLane,
  storedPair,
  test,
  TestGateway,
  textTable,
  waitFor,
} from "./_helpers.ts";

const STEPS = ["create", "token", "webhook", "start", "status", "qr", "stop"] as const;
type Step = typeof STEPS[number];

/** How each step is reached: what is set up first, and which request of the panel reaches it. */
const HOW: Record<Step, string> = {
  create: "first click",
  token: "first click",
  webhook: "first click",
  start: "first click",
  status: "click, stale stored state",
  qr: "panel's QR poll, stale state",
  stop: "force_recreate of an old session",
};

// The short form keeps the platform's timeouts short so a fault that runs out the clock does so
// in about a second; the full form uses the production defaults (supabase/functions/_shared/
// config.ts), so its answer times are the ones a user would see.
const TIMING = sized({
  WPP_TIMEOUT_MS: "600",
  WPP_REQUEST_DEADLINE_MS: "3000",
  WPP_FRESH_KEY_RETRY_MS: "800",
  WPP_BUSY_WAIT_MS: "1500",
  WPP_LEASE_SECONDS: "5",
}, {
  WPP_TIMEOUT_MS: "10000",
  WPP_REQUEST_DEADLINE_MS: "20000",
  WPP_FRESH_KEY_RETRY_MS: "8000",
  WPP_BUSY_WAIT_MS: "3000",
  WPP_LEASE_SECONDS: "60",
});
const ENV = {
  ...TIMING,
  WPP_CREATE_COOLDOWN_SECONDS: "30",
  WPP_REPEAT_WINDOW_SECONDS: "60",
  WPP_STATE_FRESH_SECONDS: "30",
  WPP_FRESH_KEY_GRACE_MS: "120000",
};
const DEADLINE_MS = Number(TIMING.WPP_REQUEST_DEADLINE_MS);
const TIMEOUT_MS = Number(TIMING.WPP_TIMEOUT_MS);
const FRESH_KEY_RETRY_MS = Number(TIMING.WPP_FRESH_KEY_RETRY_MS);
const LANES = sized(12, 12);
/** Lanes that also run wpp-qr, for the QR poll's cells. */
const QR_LANES = 3;

const PROXY_401 = "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n" +
  "<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx</center>\r\n" +
  "</body>\r\n</html>\r\n";
const PROXY_403 = "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n" +
  "<center><h1>403 Forbidden</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n" +
  "</html>\r\n";

interface FaultCase {
  label: string;
  spec: Omit<FaultSpec, "op">;
  /** Error bodies as the text given (a proxy's page), not the platform's JSON. */
  text?: boolean;
  /** Steps the fault exists for; every step otherwise. */
  steps?: Step[];
  /** At create, the platform may have created a client: the click must say so and cool down. */
  unknownAtCreate?: boolean;
  /** Cells that wait out timeouts: scheduled first so the lanes finish together. */
  slow?: boolean;
}

const FAULTS: FaultCase[] = [
  { label: "500", spec: { kind: "status", status: 500 }, unknownAtCreate: true },
  { label: "502", spec: { kind: "status", status: 502 }, unknownAtCreate: true },
  { label: "503", spec: { kind: "status", status: 503 }, unknownAtCreate: true },
  { label: "401 JSON", spec: { kind: "status", status: 401 } },
  { label: "403 JSON", spec: { kind: "status", status: 403 } },
  {
    label: "401 proxy page",
    spec: { kind: "status", status: 401, message: PROXY_401 },
    text: true,
  },
  {
    label: "403 proxy page",
    spec: { kind: "status", status: 403, message: PROXY_403 },
    text: true,
  },
  { label: "404 Express page", spec: { kind: "status", status: 404 } },
  { label: "hang", spec: { kind: "hang" }, unknownAtCreate: true, slow: true },
  { label: "close", spec: { kind: "close" }, unknownAtCreate: true },
  { label: "malformed JSON", spec: { kind: "malformed" }, unknownAtCreate: true },
  { label: "missing fields", spec: { kind: "missing_field" }, unknownAtCreate: true },
  {
    label: "latency > timeout",
    spec: { kind: "latency", ms: Math.round(TIMEOUT_MS * 2.5) },
    unknownAtCreate: true,
    slow: true,
  },
  {
    label: "after: 503",
    spec: { kind: "status", status: 503, phase: "after" },
    unknownAtCreate: true,
  },
  {
    label: "after: hang",
    spec: { kind: "hang", phase: "after" },
    unknownAtCreate: true,
    slow: true,
  },
  { label: "after: close", spec: { kind: "close", phase: "after" }, unknownAtCreate: true },
  {
    label: "after: malformed",
    spec: { kind: "malformed", phase: "after" },
    unknownAtCreate: true,
  },
  {
    label: "new key refused < window",
    spec: { kind: "fresh_key_refusal", ms: Math.round(FRESH_KEY_RETRY_MS / 2) },
    steps: ["token"],
  },
  {
    label: "new key refused > window",
    spec: { kind: "fresh_key_refusal", ms: FRESH_KEY_RETRY_MS * 4 },
    steps: ["token"],
  },
];

interface Cell {
  fault: FaultCase;
  step: Step;
  click?: HelperResult;
  /** Platform clients the click's attempts created. */
  clients: number;
  createCalls: number;
  recovery?: HelperResult;
  problems: string[];
  /** Answer bodies seen, for the secret scan. */
  texts: string[];
  /** What the matrix should say about a cell beyond its figures. */
  notes: string[];
}

/**
 * A fault that makes the simulator answer 200 before acting: for calls whose answer body is
 * ignored (webhook registration, stop) nobody can tell that from success.
 */
function ackedWithoutActing(f: FaultCase): boolean {
  return f.spec.kind === "malformed" && f.spec.phase !== "after";
}

const gateway = new TestGateway();
const lanes: Lane[] = [];

async function makeStale(orgId: string) {
  await sql`update public.wpp_integration_state set checked_at = now() - interval '1 hour'
             where organization_id = ${orgId}`;
}

async function runCell(lane: Lane, fault: FaultCase, step: Step): Promise<Cell> {
  const cell: Cell = {
    fault,
    step,
    clients: 0,
    createCalls: 0,
    problems: [],
    texts: [],
    notes: [],
  };
  const { admin } = lane;
  const org = await createOrg("admin");
  const helper = crmHelper({ token: org.user.token, baseUrl: lane.base });
  const clients = async () => clientsOf(await platformSessions(admin), org.orgId);
  const record = (r: HelperResult) => {
    for (const a of r.attempts) cell.texts.push(JSON.stringify(a.body));
  };

  // Set up the state that makes the click reach the step.
  let old: string | undefined;
  if (step === "status" || step === "qr" || step === "stop") {
    const setup = await helper.post("wpp-create", { add_new: false });
    record(setup);
    if (setup.status !== 200) {
      cell.problems.push(`setup click: ${setup.status} ${JSON.stringify(setup.data)}`);
      return cell;
    }
    old = String(setup.data?.session);
    // The platform's QR event must have landed, or it would make the state fresh again.
    await waitFor(`the QR event of ${old}`, async () => {
      const d = await admin.deliveries({ session: old, type: "qr" });
      return d.some((x) => x.attempt > 0) ? true : undefined;
    });
    if (step === "stop") {
      await sql`update public.wpp_integration_state
                   set session_created_at = now() - interval '2 hours'
                 where organization_id = ${org.orgId}`;
    } else {
      await makeStale(org.orgId);
    }
  }
  const request = () =>
    step === "qr"
      ? helper.get("wpp-qr", { session: old! })
      : helper.post("wpp-create", step === "stop" ? { force_recreate: true } : { add_new: false });

  const oldQr = old ? (await platformSessions(admin)).find((s) => s.session === old)?.qr : null;
  const clientsBefore = (await clients()).length;
  const callsBefore = await admin.calls();
  const eventsBefore = (await events(org.orgId)).length;
  if (fault.text) await admin.setVariants({ errorBody: "text" });
  await admin.setFault(
    fault.spec.kind === "fresh_key_refusal" ? fault.spec : { ...fault.spec, op: step },
  );
  let click: HelperResult;
  try {
    click = await request();
  } finally {
    await admin.clearFaults();
    if (fault.text) await admin.setVariants({ errorBody: "json" });
  }
  cell.click = click;
  record(click);
  cell.clients = (await clients()).length - clientsBefore;
  cell.createCalls = callDelta(callsBefore, await admin.calls()).create;
  const audit = (await events(org.orgId)).slice(eventsBefore);
  const p = cell.problems;

  p.push(...attemptProblems(click, DEADLINE_MS));
  if (cell.clients > 1) p.push(`${cell.clients} platform clients for one click`);
  if ((step === "status" || step === "qr") && cell.clients > 0) {
    p.push("a click on a stored session created a client");
  }
  const after = click.attempts.slice(1);
  for (const a of click.attempts) {
    if (
      a.status === 409 &&
      !["create_cooldown", "provisioning_in_progress"].includes(String(a.body?.code))
    ) {
      p.push(`409 ${a.body?.code}`);
    }
    if (a.status === 503) p.push(`503 ${a.body?.code} with a healthy database`);
  }
  if (step === "create" && fault.unknownAtCreate) {
    const unknown = audit.find((e) => e.action === "create_outcome_unknown");
    if (!unknown) p.push(`no create_outcome_unknown event in ${audit.map((e) => e.action)}`);
    else {
      if (unknown.details.op !== "create") p.push(`outcome unknown, op ${unknown.details.op}`);
      if (fault.spec.kind === "status" && unknown.details.http_status !== fault.spec.status) {
        p.push(`outcome unknown without the platform's status: ${JSON.stringify(unknown.details)}`);
      }
      if (fault.spec.kind === "status" && !unknown.details.platform_said) {
        p.push(`outcome unknown without what the platform said`);
      }
    }
    // Every retry of the click met the cooldown, and none of them reached the platform.
    if (after.some((a) => a.status !== 409 || a.body?.code !== "create_cooldown")) {
      p.push(`retries during the cooldown: ${after.map((a) => `${a.status} ${a.body?.code}`)}`);
    }
    if (cell.createCalls !== 1) p.push(`${cell.createCalls} create calls during a cooldown`);
  }
  if (
    step === "create" && fault.spec.kind === "status" && !fault.unknownAtCreate &&
    audit.some((e) => e.action === "create_outcome_unknown")
  ) {
    p.push("a refused create was taken for an unknown outcome");
  }

  // The platform is healthy again and the cooldown is over: the next request works.
  await sql`update public.wpp_integration_state set cooldown_until = now()
             where organization_id = ${org.orgId} and cooldown_until > now()`;
  const recovery = await request();
  cell.recovery = recovery;
  record(recovery);
  if (recovery.status !== 200) {
    p.push(`next ${step === "qr" ? "poll" : "click"}: ${recovery.status} ${recovery.error}`);
  } else if (step === "qr") {
    if (typeof recovery.data?.qr !== "string") p.push("next poll: no QR");
  } else {
    const rows = await sql<{ settings: Record<string, unknown> }[]>`
      select settings from public.messenger_integrations
       where id = ${String(recovery.data?.integration_id)}`;
    const stored = storedPair(rows[0]?.settings);
    if (recovery.data?.session !== stored.session) p.push("next click: not the stored session");
    if (old && step === "stop" && recovery.data?.session === old) {
      p.push("next click handed out the replaced session");
    }
  }
  const sessions = await platformSessions(admin);
  p.push(...await inconsistencies([org.orgId], sessions));

  // A replaced session is never started again: it is offline, or (its stop failed) still shows
  // the QR it showed before the recreate; each start would have issued a new one.
  if (step === "stop" && old) {
    const stopped = audit.some((e) => e.action === "session_stopped" && e.details.session === old);
    const failed = audit.some((e) => e.action === "stop_failed" && e.details.session === old);
    if (!stopped && !failed) p.push(`no session_stopped/stop_failed for ${old}`);
    const view = sessions.find((s) => s.session === old);
    const untouched = view?.state === "offline" || (view?.state === "qr" && view.qr === oldQr);
    if (!untouched) p.push(`replaced session ${old} was started again (${view?.state})`);
    if (stopped && view?.state !== "offline") {
      if (ackedWithoutActing(fault)) {
        cell.notes.push(
          `the simulator answered the stop 200 without stopping ${old}; a stop's body is ` +
            "ignored, so session_stopped was recorded",
        );
      } else p.push(`replaced session ${old} is ${view?.state} after session_stopped`);
    }
  }
  if (step === "webhook" && ackedWithoutActing(fault) && click.status === 200) {
    cell.notes.push(
      "the simulator answered the registration 200 without registering; its body is ignored, " +
        "so the click believed it",
    );
  }
  return cell;
}

function cellText(c: Cell): string {
  if (!c.click) return `✗ setup`;
  const r = c.click;
  const mark = c.problems.length ? "✗" : c.notes.length ? "*" : "✓";
  const maxMs = Math.max(...r.attempts.map((a) => a.ms));
  return `${mark} ${r.status} ${c.clients}c ${r.attempts.length}a ${seconds(maxMs)}`;
}

/** What a click's final answer was, in the panel's terms. */
function finalCode(c: Cell): string {
  const r = c.click;
  if (!r) return "setup";
  return r.status === 200 ? "200" : `${r.status} ${r.data?.code ?? "?"}`;
}

export interface FaultFigures {
  fault: string;
  cells: number;
  maxClientsPerClick: number;
  attempts: number;
  p50Ms: number;
  maxMs: number;
  finals: Record<string, number>;
}

test("fault matrix: every fault at every step, through the CRM helper's retries", async () => {
  const started = performance.now();
  const planned: { fault: FaultCase; step: Step }[] = [];
  for (const fault of FAULTS) {
    for (const step of STEPS) {
      if (!fault.steps || fault.steps.includes(step)) planned.push({ fault, step });
    }
  }
  // Cells that run out every attempt's clock go first, so no lane is left with them at the end.
  const slowFirst = (x: { fault: FaultCase; step: Step }) =>
    x.fault.slow && x.step !== "create" && x.step !== "stop" ? 0 : 1;
  const queue = [...planned].sort((a, b) => slowFirst(a) - slowFirst(b));

  const laneStart = performance.now();
  for (let i = 0; i < LANES; i++) {
    lanes.push(
      await startLane(i, gateway, i < QR_LANES ? ["wpp-create", "wpp-qr"] : ["wpp-create"], ENV),
    );
  }
  const laneMs = performance.now() - laneStart;

  const cells: Cell[] = [];
  await Promise.all(lanes.map(async (lane) => {
    while (true) {
      const i = queue.findIndex((c) => c.step !== "qr" || lane.fns["wpp-qr"]);
      if (i < 0) return;
      const [next] = queue.splice(i, 1);
      try {
        cells.push(await runCell(lane, next.fault, next.step));
      } catch (e) {
        cells.push({
          ...next,
          clients: 0,
          createCalls: 0,
          problems: [`threw: ${e instanceof Error ? e.stack : e}`],
          texts: [],
          notes: [],
        });
        await lane.admin.clearFaults().catch(() => {});
      }
    }
  }));
  const ms = performance.now() - started;

  const cellOf = (f: FaultCase, s: Step) => cells.find((c) => c.fault === f && c.step === s);
  console.log(
    `\nfault matrix (${FULL ? "full" : "short"} form): ${cells.length} cells in ${
      seconds(ms)
    } on ${LANES} lanes (started in ${seconds(laneMs)}); policy ${CRM_POLICY.attempts} attempts, ` +
      `${CRM_POLICY.baseDelayMs} ms·2ⁿ ±${CRM_POLICY.jitter * 100} %; ` +
      Object.entries(TIMING).map(([k, v]) => `${k}=${v}`).join(" "),
  );
  console.log(textTable(
    ["fault \\ step", ...STEPS],
    FAULTS.map((
      f,
    ) => [f.label, ...STEPS.map((s) => cellOf(f, s) ? cellText(cellOf(f, s)!) : "n/a")]),
  ));
  console.log(
    "cell: ✓/✗ every check (* passed, with a note below), the click's final HTTP status, platform clients it created (c), " +
      "the helper's attempts (a), the slowest attempt's answer time.\nsteps reached by: " +
      STEPS.map((s) => `${s} = ${HOW[s]}`).join("; "),
  );
  for (const c of cells) {
    for (const n of c.notes) console.log(`* ${c.fault.label} @ ${c.step}: ${n}`);
  }
  console.log(textTable(
    ["fault \\ step: final answer", ...STEPS],
    FAULTS.map((
      f,
    ) => [f.label, ...STEPS.map((s) => cellOf(f, s) ? finalCode(cellOf(f, s)!) : "n/a")]),
  ));

  const figures: FaultFigures[] = FAULTS.map((f) => {
    const mine = cells.filter((c) => c.fault === f && c.click);
    const times = mine.flatMap((c) => c.click!.attempts.map((a) => a.ms));
    const finals: Record<string, number> = {};
    for (const c of mine) finals[finalCode(c)] = (finals[finalCode(c)] ?? 0) + 1;
    return {
      fault: f.label,
      cells: mine.length,
      maxClientsPerClick: Math.max(0, ...mine.map((c) => c.clients)),
      attempts: times.length,
      p50Ms: percentile(times, 50),
      maxMs: Math.max(0, ...times),
      finals,
    };
  });
  console.log(textTable(
    ["fault", "cells", "clients/click (max)", "attempts", "answer p50", "answer max", "deadline"],
    figures.map((f) => [
      f.fault,
      String(f.cells),
      String(f.maxClientsPerClick),
      String(f.attempts),
      seconds(f.p50Ms),
      seconds(f.maxMs),
      seconds(DEADLINE_MS),
    ]),
  ));
  const figuresPath = Deno.env.get("RELIABILITY_FIGURES");
  if (figuresPath) {
    await Deno.writeTextFile(
      figuresPath,
      JSON.stringify({ form: FULL ? "full" : "short", timing: TIMING, figures }, null, 2),
    );
  }

  // Nothing secret in any answer or any function's log line.
  const secrets = new Set<string>([stack.serviceRoleKey, stack.jwtSecret]);
  for (const lane of lanes) {
    secrets.add(lane.sim.secret);
    const state = await lane.admin.state({ reveal: true });
    for (const s of state.sessions) {
      secrets.add(s.apiKey);
      if (s.webhookUrl) secrets.add(decodeURIComponent(s.webhookUrl.split("/").pop()!));
    }
    for (const t of state.tokens) secrets.add(t.token);
  }
  const logs = [...await functionLogLines("wpp-create"), ...await functionLogLines("wpp-qr")];
  const texts = cells.flatMap((c) => c.texts);
  const leaks: string[] = [];
  for (const secret of [...secrets].filter((s) => s.length >= 16)) {
    if (texts.some((t) => t.includes(secret))) leaks.push(`an answer holds ${secret.slice(0, 4)}…`);
    if (logs.some((t) => t.includes(secret))) leaks.push(`a log line holds ${secret.slice(0, 4)}…`);
  }

  const failures = cells.flatMap((c) =>
    c.problems.map((p) => `${c.fault.label} @ ${c.step}: ${p}`)
  );
  assert.equal(cells.length, planned.length, "every cell ran");
  assert.ok(texts.length > cells.length && secrets.size > LANES * 2, "the secret scan had data");
  assert.deepEqual([...failures, ...leaks], []);
});

test("fault matrix: clean up", async () => {
  await Promise.all(lanes.map(stopLane));
  await gateway.close();
  await closeDb();
});
