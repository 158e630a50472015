// Soak: mixed traffic (clicks, forced recreates, bad requests, phones scanning QRs) against the
// stack's wpp-create processes while faults come and go on the platform. A 502/504 is fine only
// for a request that overlapped a fault; a 500, or a 5xx in calm weather, is not. The rows must
// be consistent throughout and afterwards, and the processes' memory must level off.
import assert from "node:assert/strict";
import type { FaultSpec, Operation } from "../../dev/wpp-simulator/admin-client.ts";
import {
  callFunction,
  type CallResult,
  closeDb,
  createOrg,
  sim,
  type TestOrg,
} from "../_support/wpp.ts";
import {
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

const SECONDS = sized(15, 120);
const WORKERS = 6;
const FAULT_OPS: Operation[] = ["create", "token", "webhook", "start", "status", "stop"];
const FAULTS: Omit<FaultSpec, "op">[] = [
  { kind: "status", status: 500 },
  { kind: "status", status: 503 },
  { kind: "status", status: 401 },
  { kind: "close" },
  { kind: "malformed" },
  { kind: "missing_field" },
  // Past the stack's WPP_TIMEOUT_MS (1500 in tests/fixtures/functions.env).
  { kind: "latency", ms: 2_000 },
  { kind: "hang" },
];

interface Outcome {
  kind: string;
  start: number;
  end: number;
  status: number;
  expected: number[];
  text: string;
}

interface Window {
  start: number;
  end: number;
}

const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)];

interface Planned {
  kind: string;
  run: () => Promise<CallResult>;
  /** What a healthy platform gives; 502/504 are added while a fault is active. */
  expected: number[];
}

/** One request of the mix: mostly clicks, some forced recreates, the rest refused outright. */
function nextRequest(org: TestOrg, member: string): Planned {
  const token = org.user.token;
  const r = Math.random();
  if (r < 0.55) return { kind: "click", run: () => callFunction(token), expected: [200, 409] };
  if (r < 0.7) {
    return {
      kind: "force_recreate",
      run: () => callFunction(token, { body: { force_recreate: true } }),
      expected: [200, 409],
    };
  }
  return pick<Planned>([
    { kind: "invalid JSON", run: () => callFunction(token, { body: "{" }), expected: [400] },
    {
      kind: "unknown field",
      run: () => callFunction(token, { body: { organization_id: org.orgId } }),
      expected: [400],
    },
    { kind: "no token", run: () => callFunction(null), expected: [401] },
    { kind: "garbage token", run: () => callFunction("not.a.jwt"), expected: [401] },
    { kind: "member", run: () => callFunction(member), expected: [403] },
  ]);
}

test(`soak: ${SECONDS} s of mixed traffic with random platform faults`, async () => {
  await sim.clearFaults();
  const orgs: TestOrg[] = [];
  for (let i = 0; i < sized(6, 12); i++) orgs.push(await createOrg("admin"));
  const member = (await orgs[0].addUser("member")).token;
  const ids = orgs.map((o) => o.orgId);
  const pids = await functionPids();
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
      const { kind, run, expected } = nextRequest(pick(orgs), member);
      const start = performance.now();
      const res = await run();
      outcomes.push({
        kind,
        start,
        end: performance.now(),
        status: res.status,
        expected,
        text: res.text,
      });
      // A phone sometimes scans the QR it was shown, so connected sessions are in the mix.
      if (res.json.status === "qr_issued" && Math.random() < 0.3) {
        await sim.scan(String(res.json.session)).catch(() => {});
      }
    }
  };

  const injector = async () => {
    while (performance.now() < until - 2_000) {
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
      const found = await inconsistencies(ids);
      midRun.push(...found.filter((p) => !p.endsWith("lease left behind")));
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
  const unexpected = outcomes.filter((o) =>
    !o.expected.includes(o.status) && !((o.status === 502 || o.status === 504) && inFault(o))
  );
  const faulted = outcomes.filter((o) => o.status === 502 || o.status === 504);

  // Calm weather again: every organisation's next click works and leaves a clean row.
  const after = await Promise.all(orgs.map((o) => callFunction(o.user.token)));
  const finalProblems = await inconsistencies(ids);

  console.log(textTable(
    ["request", "count", "answers"],
    Object.entries(countBy(outcomes, (o) => o.kind)).map(([kind, n]) => [
      kind,
      String(n),
      Object.entries(countBy(outcomes.filter((o) => o.kind === kind), (o) => o.status))
        .map(([s, c]) => `${s}×${c}`).join(" "),
    ]),
  ));
  console.log(
    `${outcomes.length} requests in ${SECONDS} s (${FULL ? "full" : "short"} form), ` +
      `${windows.length} fault windows, ${faulted.length} answers 502/504 inside them, ` +
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

  assert.deepEqual(
    unexpected.slice(0, 10).map((o) => `${o.kind}: ${o.status} ${o.text.slice(0, 160)}`),
    [],
    "unexpected answers",
  );
  assert.deepEqual(midRun, [], "inconsistent rows during the run");
  assert.deepEqual(after.filter((r) => r.status !== 200).map((r) => r.text), []);
  assert.deepEqual(finalProblems, [], "inconsistent rows afterwards");
  // A leak grows with traffic; a warmed-up heap does not. Fifteen seconds are still warm-up, so
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

function mib(value: number): string {
  return `${value.toFixed(1)} MiB`;
}

test("soak: clean up", async () => {
  await closeDb();
});
