// Soak: the CRM panel's traffic, through its HTTP helper with the real retries, against the stack
// (gateway, two processes per function) while faults come and go on the platform: clicks, forced
// recreates, added numbers, status and QR polls of admins and members, disconnects, phones
// scanning QRs, and requests that must be refused. A 502/504 is fine only for a request that
// overlapped a fault; a 500, or a 5xx in calm weather, is not. The rows must be consistent
// throughout and afterwards, and the processes' memory must level off.
import assert from "node:assert/strict";
import type { FaultSpec, Operation } from "../../dev/wpp-simulator/admin-client.ts";
import { crmHelper, type HelperResult } from "../_support/crm-helper.ts";
import { closeDb, createOrg, sim, sql, type TestOrg } from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import {
  attemptProblems,
  countBy,
  FULL,
  functionPids,
  inconsistencies,
  rssMiB,
  sized,
  sleep,
  test,
  textTable,
} from "./_helpers.ts";

const SECONDS = sized(20, 120);
const WORKERS = 8;
const DEADLINE_MS = Number(stack.functionEnv.WPP_REQUEST_DEADLINE_MS);
const FAULT_OPS: Operation[] = ["create", "token", "webhook", "start", "status", "qr", "stop"];
const FAULTS: Omit<FaultSpec, "op">[] = [
  { kind: "status", status: 500 },
  { kind: "status", status: 503, phase: "after" },
  { kind: "status", status: 401 },
  { kind: "close" },
  { kind: "close", phase: "after" },
  { kind: "malformed" },
  { kind: "missing_field" },
  // Past the stack's WPP_TIMEOUT_MS (1500 in tests/fixtures/functions.env).
  { kind: "latency", ms: 2_000 },
  { kind: "hang" },
];

interface Tenant {
  org: TestOrg;
  member: string;
  /** The session and number the panel last showed. */
  session?: string;
  integrationId?: string;
}

interface Outcome {
  kind: string;
  start: number;
  end: number;
  result: HelperResult;
  expected: number[];
}

interface Window {
  start: number;
  end: number;
}

const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)];

interface Planned {
  kind: string;
  run: () => Promise<HelperResult>;
  /** What a healthy platform gives; 502/504 are added while a fault is active. */
  expected: number[];
}

/** One request of the panel's mix. */
function nextRequest(t: Tenant): Planned {
  const admin = crmHelper({ token: t.org.user.token });
  const member = crmHelper({ token: t.member });
  const r = Math.random();
  const session = t.session;
  if (r < 0.35 || !session) {
    return {
      kind: "click",
      run: () => admin.post("wpp-create", { add_new: false }),
      expected: [200, 409],
    };
  }
  if (r < 0.45) {
    return {
      kind: "force_recreate",
      run: () => admin.post("wpp-create", { add_new: false, force_recreate: true }),
      expected: [200, 409],
    };
  }
  if (r < 0.5) {
    return {
      kind: "add_new",
      run: () => admin.post("wpp-create", { add_new: true }),
      expected: [200, 409],
    };
  }
  if (r < 0.65) {
    return {
      kind: "status poll",
      run: () => admin.post("wpp-status", { session_name: session, force: true }),
      expected: [200],
    };
  }
  if (r < 0.75) {
    return {
      kind: "QR poll",
      run: () => admin.get("wpp-qr", { session }),
      expected: [200],
    };
  }
  if (r < 0.8) {
    return {
      kind: "member status",
      run: () => member.post("wpp-status", { session_name: session, force: true }),
      expected: [200],
    };
  }
  if (r < 0.82 && t.integrationId) {
    const id = t.integrationId;
    return {
      kind: "disconnect",
      run: () => admin.post("wpp-disconnect", { integration_id: id }),
      expected: [200, 409],
    };
  }
  return pick<Planned>([
    {
      kind: "unknown field",
      run: () => admin.post("wpp-create", { organization_id: t.org.orgId }),
      expected: [400],
    },
    {
      kind: "member click",
      run: () => member.post("wpp-create", { add_new: false }),
      expected: [403],
    },
    { kind: "member QR", run: () => member.get("wpp-qr", { session }), expected: [403] },
    {
      kind: "garbage token",
      run: () => crmHelper({ token: "not.a.jwt" }).post("wpp-status", {}),
      expected: [401],
    },
  ]);
}

test(`soak: ${SECONDS} s of the panel's traffic with random platform faults`, async () => {
  await sim.clearFaults();
  const tenants: Tenant[] = [];
  for (let i = 0; i < sized(6, 12); i++) {
    const org = await createOrg("admin");
    tenants.push({ org, member: (await org.addUser("member")).token });
  }
  const ids = tenants.map((t) => t.org.orgId);
  const pids = await functionPids("wpp-create");
  assert.ok(pids.length >= 1, "found the stack's wpp-create processes");
  const rssBefore = await Promise.all(pids.map(rssMiB));

  const t0 = performance.now();
  const until = t0 + SECONDS * 1000;
  const outcomes: Outcome[] = [];
  const windows: Window[] = [];
  const midRun: string[] = [];
  const rssSeries: number[][] = [];

  const worker = async () => {
    while (performance.now() < until) {
      const t = pick(tenants);
      const { kind, run, expected } = nextRequest(t);
      const start = performance.now();
      const result = await run();
      outcomes.push({ kind, start, end: performance.now(), result, expected });
      const data = result.data;
      if (result.status === 200 && typeof data?.session === "string" && kind !== "add_new") {
        t.session = data.session;
        t.integrationId = String(data.integration_id);
      }
      // A phone sometimes scans the QR it was shown, so connected sessions are in the mix.
      if (data?.status === "qr_issued" && typeof data.session === "string" && Math.random() < 0.3) {
        await sim.scan(data.session).catch(() => {});
      }
    }
  };

  const injector = async () => {
    while (performance.now() < until - 4_000) {
      await sleep(500 + Math.random() * 1_000);
      if (Math.random() < 0.4) continue;
      const forMs = 800 + Math.floor(Math.random() * 1_200);
      const start = performance.now();
      await sim.setFault({ ...pick(FAULTS), op: pick(FAULT_OPS), forMs });
      windows.push({ start, end: performance.now() + forMs });
    }
  };

  // Leases are legitimately held mid-run; a half-written or foreign pair never is.
  const watcher = async () => {
    while (performance.now() < until) {
      await sleep(2_000);
      midRun.push(...await inconsistencies(ids, undefined, { leasesMayBeHeld: true }));
      rssSeries.push(await Promise.all(pids.map(rssMiB)));
    }
  };

  try {
    await Promise.all([...Array.from({ length: WORKERS }, worker), injector(), watcher()]);
  } finally {
    await sim.clearFaults();
  }
  const rssAfter = await Promise.all(pids.map(rssMiB));

  const inFault = (o: Outcome) => windows.some((w) => o.start < w.end && o.end > w.start);
  const unexpected = outcomes.filter((o) => {
    const s = o.result.status;
    return !o.expected.includes(s) && !((s === 502 || s === 504) && inFault(o));
  });
  const attemptIssues = outcomes.flatMap((o) =>
    attemptProblems(o.result, DEADLINE_MS).map((p) => `${o.kind}: ${p}`)
  );
  const faulted = outcomes.filter((o) => o.result.status === 502 || o.result.status === 504);
  const retried = outcomes.filter((o) => o.result.attempts.length > 1);

  // Calm weather again (cooldowns ended): every organisation's next click works.
  await sql`update public.wpp_integration_state set cooldown_until = now()
             where organization_id = any(${ids}::uuid[]) and cooldown_until > now()`;
  const after = await Promise.all(
    tenants.map((t) =>
      crmHelper({ token: t.org.user.token }).post("wpp-create", { add_new: false })
    ),
  );
  const finalProblems = await inconsistencies(ids);

  console.log(textTable(
    ["request", "count", "answers", "retried by the helper"],
    Object.entries(countBy(outcomes, (o) => o.kind)).map(([kind, n]) => {
      const mine = outcomes.filter((o) => o.kind === kind);
      return [
        kind,
        String(n),
        Object.entries(countBy(mine, answerOf)).map(([s, c]) => `${s}×${c}`).join(" "),
        String(mine.filter((o) => o.result.attempts.length > 1).length),
      ];
    }),
  ));
  console.log(
    `${outcomes.length} panel calls (${
      outcomes.reduce((n, o) => n + o.result.attempts.length, 0)
    } requests) in ${SECONDS} s (${FULL ? "full" : "short"} form), ${windows.length} fault ` +
      `windows, ${faulted.length} final 502/504 inside them, ${retried.length} retried, ` +
      `${unexpected.length} unexpected`,
  );
  console.log(textTable(
    ["wpp-create pid", "VmRSS before", "peak", "last quarter of the run", "after"],
    pids.map((pid, i) => {
      const series = rssSeries.map((sample) => sample[i]);
      const tail = series.slice(-Math.max(1, Math.floor(series.length / 4)));
      return [
        String(pid),
        mib(rssBefore[i]),
        mib(Math.max(...series)),
        `${mib(Math.min(...tail))} – ${mib(Math.max(...tail))}`,
        mib(rssAfter[i]),
      ];
    }),
  ));

  assert.ok(outcomes.length > WORKERS * 2, `only ${outcomes.length} calls`);
  assert.deepEqual(
    unexpected.slice(0, 10).map((o) =>
      `${o.kind}: ${o.result.status} ${JSON.stringify(o.result.data).slice(0, 160)}`
    ),
    [],
    "unexpected answers",
  );
  assert.deepEqual(attemptIssues.slice(0, 10), [], "attempts past the deadline, uncoded or 500");
  assert.deepEqual(midRun, [], "inconsistent rows during the run");
  assert.deepEqual(
    after.filter((r) => r.status !== 200).map((r) => `${r.status} ${JSON.stringify(r.data)}`),
    [],
  );
  assert.deepEqual(finalProblems, [], "inconsistent rows afterwards");
  // A leak grows with traffic; a warmed-up heap does not. Twenty seconds are still warm-up, so
  // the short form only guards against a blow-up; the full form compares the end with the
  // largest size seen in the first half, with room for the collector's timing.
  const firstHalf = rssSeries.slice(0, Math.max(1, Math.floor(rssSeries.length / 2)));
  pids.forEach((pid, i) => {
    const settled = Math.max(rssBefore[i], ...firstHalf.map((s) => s[i]));
    const limit = FULL ? settled * 1.25 + 16 : 512;
    assert.ok(
      rssAfter[i] <= limit,
      `process ${pid} grew from ${settled.toFixed(1)} to ${rssAfter[i].toFixed(1)} MiB`,
    );
  });
});

/** The final status, with the code of a refusal: `409 create_cooldown`. */
function answerOf(o: Outcome): string {
  const r = o.result;
  return r.status === 200 || typeof r.data?.code !== "string"
    ? String(r.status)
    : `${r.status} ${r.data.code}`;
}

function mib(value: number): string {
  return `${value.toFixed(1)} MiB`;
}

test("soak: clean up", async () => {
  await closeDb();
});
