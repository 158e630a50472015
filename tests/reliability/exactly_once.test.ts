// Exactly-once at scale: however many clicks arrive at once, on however many processes, an
// organisation gets one platform client. Clicks that lose the race wait for the winner and
// reuse its session, or get 409 with Retry-After; neither may be a 5xx.
import assert from "node:assert/strict";
import {
  callFunction,
  type CallResult,
  closeDb,
  createOrg,
  sim,
  type TestOrg,
} from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import {
  callDelta,
  countBy,
  type ExtraFunction,
  inconsistencies,
  platformSessions,
  pool,
  sized,
  startExtraFunction,
  test,
} from "./_helpers.ts";

let third: ExtraFunction | undefined;

/** The stack's two wpp-create processes plus one this file starts, hit directly in turn. */
async function processes(): Promise<string[]> {
  third ??= await startExtraFunction();
  return [...stack.functionUrls["wpp-create"], third.url];
}

function checkAnswers(results: CallResult[]): void {
  const bad = results.filter((r) => r.status !== 200 && r.status !== 409);
  assert.deepEqual(bad.map((r) => `${r.status} ${r.text}`), [], "only 200 or 409");
  for (const r of results.filter((r) => r.status === 409)) {
    assert.equal(r.json.code, "provisioning_in_progress");
    assert.ok(Number(r.headers.get("retry-after")) >= 1, "409 carries Retry-After");
  }
}

test("100 concurrent clicks of one organisation on 3 processes make exactly 1 create", async () => {
  await sim.clearFaults();
  const targets = await processes();
  const org = await createOrg("admin");
  const clicks = 100;
  const before = await sim.calls();
  const started = performance.now();
  const results = await Promise.all(
    Array.from(
      { length: clicks },
      (_, i) => callFunction(org.user.token, { baseUrl: targets[i % targets.length] }),
    ),
  );
  const ms = Math.round(performance.now() - started);
  const delta = callDelta(before, await sim.calls());
  console.log(
    `${clicks} clicks in ${ms} ms: ${JSON.stringify(countBy(results, (r) => r.status))}, ` +
      `platform calls ${JSON.stringify(delta)}`,
  );

  checkAnswers(results);
  assert.equal(delta.create, 1, "exactly one platform client");
  const sessions = new Set(results.filter((r) => r.status === 200).map((r) => r.json.session));
  assert.equal(sessions.size, 1, "every successful click got the same session");
  const onPlatform = (await platformSessions()).filter((s) => s.organizationId === org.orgId);
  assert.equal(onPlatform.length, 1);
  assert.deepEqual(await inconsistencies([org.orgId]), []);
});

test("many organisations × 5 concurrent clicks make one create each", async () => {
  await sim.clearFaults();
  const targets = await processes();
  const orgCount = sized(20, 200);
  const perOrg = 5;
  const orgs: TestOrg[] = [];
  for (let i = 0; i < orgCount; i++) orgs.push(await createOrg("admin"));
  const before = await sim.calls();
  const started = performance.now();
  let next = 0;
  // Organisations overlap 20 at a time (100 clicks in flight): enough to mix them on every
  // process, bounded so two cores keep up without turning the test into a CPU benchmark.
  const results = (await pool(orgs, 20, (org) =>
    Promise.all(
      Array.from({ length: perOrg }, () =>
        callFunction(org.user.token, { baseUrl: targets[next++ % targets.length] })),
    ))).flat();
  const ms = Math.round(performance.now() - started);
  const delta = callDelta(before, await sim.calls());
  console.log(
    `${orgCount} orgs × ${perOrg} clicks in ${ms} ms: ` +
      `${JSON.stringify(countBy(results, (r) => r.status))}, creates ${delta.create}`,
  );

  checkAnswers(results);
  assert.equal(delta.create, orgCount, "one platform client per organisation");
  const ids = new Set(orgs.map((o) => o.orgId));
  const perOrgOnPlatform = countBy(
    (await platformSessions()).filter((s) => ids.has(s.organizationId)),
    (s) => s.organizationId,
  );
  assert.equal(Object.keys(perOrgOnPlatform).length, orgCount);
  assert.ok(Object.values(perOrgOnPlatform).every((n) => n === 1), "no organisation got two");
  assert.deepEqual(await inconsistencies([...ids]), []);
});

test("exactly-once: clean up", async () => {
  await third?.stop();
  await closeDb();
});
