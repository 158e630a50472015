// Every simulator fault at every platform step of wpp-create. The expectations follow what
// provision.ts promises: a failure before the new client is stored leaves the row as it was; a
// failure after it leaves the new pair in place for the next click to reuse; a failed stop of
// the replaced session never fails the click. In every case the lease is released, the failure
// is in integration_events, and session and apiKey are never half-written.
import assert from "node:assert/strict";
import type { FaultSpec } from "../../dev/wpp-simulator/admin-client.ts";
import { callFunction, closeDb, createOrg, events, integrations, sim } from "../_support/wpp.ts";
import {
  type ExtraFunction,
  inconsistencies,
  platformSessions,
  sleep,
  startExtraFunction,
  type StoredPair,
  storedPair,
  test,
  textTable,
} from "./_helpers.ts";

const STEPS = ["create", "token", "webhook", "start", "status", "stop"] as const;
type Step = typeof STEPS[number];

// Short limits so a fault that must run out the clock does so in about a second.
const TIMEOUT_MS = 500;
const FRESH_KEY_RETRY_MS = 600;
const ENV = {
  WPP_TIMEOUT_MS: String(TIMEOUT_MS),
  WPP_REQUEST_DEADLINE_MS: "6000",
  WPP_FRESH_KEY_RETRY_MS: String(FRESH_KEY_RETRY_MS),
  WPP_BUSY_WAIT_MS: "0",
};

interface FaultCase {
  label: string;
  fault: Omit<FaultSpec, "op">;
  /** Faults that only exist for some steps (a refused new key follows a create). */
  only?: Step[];
}

const CASES: FaultCase[] = [
  { label: "latency past the timeout", fault: { kind: "latency", ms: TIMEOUT_MS * 2.5 } },
  { label: "no answer (hang)", fault: { kind: "hang" } },
  { label: "HTTP 500", fault: { kind: "status", status: 500 } },
  { label: "HTTP 503", fault: { kind: "status", status: 503 } },
  { label: "HTTP 401", fault: { kind: "status", status: 401 } },
  { label: "HTTP 403", fault: { kind: "status", status: 403 } },
  { label: "malformed JSON", fault: { kind: "malformed" } },
  { label: "missing fields", fault: { kind: "missing_field" } },
  { label: "connection closed", fault: { kind: "close" } },
  { label: "closed after acting", fault: { kind: "close", phase: "after" } },
  {
    label: "new key refused > retry window",
    fault: { kind: "fresh_key_refusal", ms: FRESH_KEY_RETRY_MS * 2.5, times: 1 },
    only: ["create"],
  },
  {
    label: "new key refused < retry window",
    fault: { kind: "fresh_key_refusal", ms: FRESH_KEY_RETRY_MS / 2, times: 1 },
    only: ["create"],
  },
];

/** Where in the flow a step's failure lands. */
type Stage = "before_store" | "after_store" | "reuse" | "stop";

interface Expected {
  http: number;
  code?: string;
  settings: "unchanged" | "new";
  event: { action: string; stage?: string };
}

/** The failure a fault causes at a step, or null when the client shrugs it off. */
function failureOf(c: FaultCase, step: Step): { code: string; http: number; stage: Stage } | null {
  const f = c.fault;
  const stage: Stage = step === "create"
    ? "before_store"
    : step === "status"
    ? "reuse"
    : step === "stop"
    ? "stop"
    : "after_store";
  switch (f.kind) {
    case "latency":
    case "hang":
      return { code: "platform_timeout", http: 504, stage };
    case "close":
      return { code: "platform_unreachable", http: 502, stage };
    case "status":
      if (f.status! >= 500) return { code: "platform_error", http: 502, stage };
      // WPP_SECRET refused on create; on token the key is refused, then retried as a fresh
      // key until the window closes; elsewhere a second 401 after a new token, or a 403.
      return {
        code: step === "create" ? "platform_unauthorized" : "platform_rejected",
        http: 502,
        stage,
      };
    case "malformed":
    case "missing_field":
      // webhook and stop answers are not read, so neither fault can break them.
      return step === "webhook" || step === "stop"
        ? null
        : { code: "platform_malformed", http: 502, stage };
    case "fresh_key_refusal":
      // Felt by the token call right after the create, once the new pair is stored.
      return f.ms! > FRESH_KEY_RETRY_MS
        ? { code: "platform_rejected", http: 502, stage: "after_store" }
        : null;
    default:
      throw new Error(`no expectation for ${f.kind}`);
  }
}

function expected(c: FaultCase, step: Step): Expected {
  const failure = failureOf(c, step);
  if (!failure) {
    if (step === "status") return { http: 200, settings: "unchanged", event: { action: "reused" } };
    if (step === "stop") {
      return { http: 200, settings: "new", event: { action: "session_stopped" } };
    }
    return { http: 200, settings: "new", event: { action: "created" } };
  }
  switch (failure.stage) {
    case "before_store":
      return { ...failure, settings: "unchanged", event: { action: "failed", stage: "create" } };
    case "after_store":
      return { ...failure, settings: "new", event: { action: "failed", stage: "after_store" } };
    case "reuse":
      return { ...failure, settings: "unchanged", event: { action: "failed", stage: "reuse" } };
    case "stop":
      return { http: 200, settings: "new", event: { action: "stop_failed" } };
  }
}

function compare(before: StoredPair, after: StoredPair): "unchanged" | "new" | "half" {
  if (after.session === before.session && after.apiKey === before.apiKey) return "unchanged";
  const whollyNew = after.session !== null && after.apiKey !== null &&
    after.session !== before.session && after.apiKey !== before.apiKey;
  return whollyNew ? "new" : "half";
}

interface CellResult {
  text: string;
  problems: string[];
}

async function runCell(fn: ExtraFunction, c: FaultCase, step: Step): Promise<CellResult> {
  const org = await createOrg("admin");
  const click = (force = false) =>
    callFunction(org.user.token, { baseUrl: fn.url, body: force ? { force_recreate: true } : {} });
  if (step === "status" || step === "stop") {
    const setup = await click();
    if (setup.status !== 200) return { text: "setup", problems: [`setup: ${setup.text}`] };
  }
  const before = storedPair((await integrations(org.orgId))[0]?.settings);
  const eventsBefore = (await events(org.orgId)).length;
  const sessionsBefore = new Set(
    (await platformSessions()).filter((s) => s.organizationId === org.orgId).map((s) => s.session),
  );

  await sim.setFault(c.fault.kind === "fresh_key_refusal" ? c.fault : { ...c.fault, op: step });
  let res;
  try {
    res = await click(step === "stop");
  } finally {
    await sim.clearFaults();
  }

  const want = expected(c, step);
  const problems: string[] = [];
  const rows = await integrations(org.orgId);
  const after = storedPair(rows[0]?.settings);
  const settings = compare(before, after);
  const newEvents = (await events(org.orgId)).slice(eventsBefore);
  const event = newEvents.find((e) =>
    e.action === want.event.action &&
    (want.event.stage === undefined || e.details.stage === want.event.stage)
  );
  if (res.status !== want.http) {
    problems.push(`HTTP ${res.status}, expected ${want.http}: ${res.text}`);
  }
  if (want.code && res.json.code !== want.code) {
    problems.push(`code ${res.json.code}, expected ${want.code}`);
  }
  if (res.status >= 400 && !(typeof res.json.error === "string" && res.json.error)) {
    problems.push("error answer without a message");
  }
  if (settings !== want.settings) problems.push(`settings ${settings}, expected ${want.settings}`);
  if (!event) {
    problems.push(`no ${JSON.stringify(want.event)} event in ${newEvents.map((e) => e.action)}`);
  }
  problems.push(...await inconsistencies([org.orgId]));

  // The next click, with the platform healthy again, must work and build on what is stored.
  if (c.fault.kind === "fresh_key_refusal") await sleep(c.fault.ms!);
  const next = await click();
  if (next.status !== 200) problems.push(`next click: HTTP ${next.status} ${next.text}`);
  const stored = storedPair((await integrations(org.orgId))[0]?.settings);
  if (settings === "new" && next.json.session !== after.session) {
    problems.push("next click did not reuse the stored session");
  }
  if (settings === "new" && next.json.created !== false) problems.push("next click created again");
  problems.push(...await inconsistencies([org.orgId]));
  const unused =
    (await platformSessions()).filter((s) =>
      s.organizationId === org.orgId && !sessionsBefore.has(s.session) &&
      s.session !== stored.session
    ).length;

  const mark = problems.length ? "✗" : "✓";
  const orphan = unused ? ` +${unused} orphan` : "";
  return { text: `${mark} ${res.status} ${settings}${orphan}`, problems };
}

test("fault matrix: every fault at every step", async () => {
  await sim.clearFaults();
  const fn = await startExtraFunction(ENV);
  const failures: string[] = [];
  const rows: string[][] = [];
  const started = performance.now();
  try {
    for (const c of CASES) {
      const row = [c.label];
      for (const step of STEPS) {
        if (c.only && !c.only.includes(step)) {
          row.push("n/a");
          continue;
        }
        const cell = await runCell(fn, c, step);
        row.push(cell.text);
        for (const p of cell.problems) failures.push(`${c.label} @ ${step}: ${p}`);
      }
      rows.push(row);
    }
  } finally {
    await sim.clearFaults();
    await fn.stop();
  }
  console.log(
    textTable(["fault \\ step", ...STEPS.map((s) => s === "stop" ? "stop (force)" : s)], rows),
  );
  console.log(
    "cell: ✓/✗ all checks, HTTP status, stored pair (unchanged | new), platform clients left " +
      `unused; ${Math.round((performance.now() - started) / 1000)} s`,
  );
  assert.deepEqual(failures, []);
});

test("fault matrix: clean up", async () => {
  await closeDb();
});
