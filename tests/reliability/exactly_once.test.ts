// Exactly-once at scale, through the CRM panel's HTTP helper: however many clicks arrive at once,
// on however many function processes, and however the helper retries them, an organisation gets
// one platform client. Clicks that lose the race wait for the winner and answer with its session,
// or get a 409 (which the helper does not retry); none may be a 5xx.
import assert from "node:assert/strict";
import { crmHelper, type HelperResult } from "../_support/crm-helper.ts";
import { closeDb, createOrg, sim, type TestOrg } from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import {
  attemptProblems,
  callDelta,
  clientsOf,
  countBy,
  inconsistencies,
  type OwnFunction,
  percentile,
  platformSessions,
  pool,
  seconds,
  sized,
  startOwnFunction,
  test,
  TestGateway,
} from "./_helpers.ts";

const DEADLINE_MS = Number(stack.functionEnv.WPP_REQUEST_DEADLINE_MS);
const gateway = new TestGateway();
let third: OwnFunction | undefined;

/** The stack's two wpp-create processes plus one this file starts, in turn. */
async function threeProcesses(): Promise<string> {
  third ??= await startOwnFunction("wpp-create");
  return gateway.route({ "wpp-create": [...stack.functionUrls["wpp-create"], third.url] });
}

function checkAnswers(results: HelperResult[]): void {
  const problems = results.flatMap((r) => attemptProblems(r, DEADLINE_MS));
  assert.deepEqual(problems.slice(0, 10), [], "attempts within the deadline, coded, no 500");
  const bad = results.filter((r) => r.status !== 200 && r.status !== 409);
  assert.deepEqual(bad.map((r) => `${r.status} ${JSON.stringify(r.data)}`), [], "only 200 or 409");
  for (const r of results.filter((r) => r.status === 409)) {
    assert.equal(r.data?.code, "provisioning_in_progress", JSON.stringify(r.data));
  }
}

function describe(results: HelperResult[]): string {
  const times = results.flatMap((r) => r.attempts.map((a) => a.ms));
  return `answers ${JSON.stringify(countBy(results, (r) => r.status))}, attempts per click ${
    JSON.stringify(countBy(results, (r) => r.attempts.length))
  }, answer p50 ${seconds(percentile(times, 50))} max ${seconds(Math.max(...times))}`;
}

test("100 concurrent clicks of one organisation on 3 processes make exactly 1 create", async () => {
  await sim.clearFaults();
  const base = await threeProcesses();
  const org = await createOrg("admin");
  const before = await sim.calls();
  const started = performance.now();
  const results = await Promise.all(
    Array.from(
      { length: 100 },
      () =>
        crmHelper({ token: org.user.token, baseUrl: base }).post("wpp-create", { add_new: false }),
    ),
  );
  const delta = callDelta(before, await sim.calls());
  console.log(
    `100 clicks in ${seconds(performance.now() - started)}: ${describe(results)}, ` +
      `platform calls ${JSON.stringify(delta)}`,
  );

  checkAnswers(results);
  assert.equal(delta.create, 1, "exactly one platform client");
  const sessions = new Set(results.filter((r) => r.status === 200).map((r) => r.data?.session));
  assert.equal(sessions.size, 1, "every successful click got the same session");
  assert.equal(clientsOf(await platformSessions(), org.orgId).length, 1);
  assert.deepEqual(await inconsistencies([org.orgId]), []);
});

test("many organisations × 5 concurrent clicks make one create each", async () => {
  await sim.clearFaults();
  const base = await threeProcesses();
  const orgCount = sized(20, 200);
  const perOrg = 5;
  const orgs: TestOrg[] = [];
  for (let i = 0; i < orgCount; i++) orgs.push(await createOrg("admin"));
  const before = await sim.calls();
  const started = performance.now();
  // Organisations overlap 20 at a time (100 clicks in flight): enough to mix them on every
  // process, bounded so two cores keep up without turning the test into a CPU benchmark.
  const results = (await pool(orgs, 20, (org) =>
    Promise.all(
      Array.from(
        { length: perOrg },
        () =>
          crmHelper({ token: org.user.token, baseUrl: base }).post("wpp-create", {
            add_new: false,
          }),
      ),
    ))).flat();
  const delta = callDelta(before, await sim.calls());
  console.log(
    `${orgCount} orgs × ${perOrg} clicks in ${seconds(performance.now() - started)}: ` +
      `${describe(results)}, creates ${delta.create}`,
  );

  checkAnswers(results);
  assert.equal(delta.create, orgCount, "one platform client per organisation");
  const ids = new Set(orgs.map((o) => o.orgId));
  const sessions = await platformSessions();
  const perOrgOnPlatform = orgs.map((o) => clientsOf(sessions, o.orgId).length);
  assert.ok(perOrgOnPlatform.every((n) => n === 1), `clients per org: ${perOrgOnPlatform}`);
  assert.deepEqual(await inconsistencies([...ids], sessions), []);
});

test("exactly-once: clean up", async () => {
  await third?.stop();
  await gateway.close();
  await closeDb();
});
