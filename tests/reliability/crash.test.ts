// A function process killed in the middle of a create leaves its lease behind and nothing else:
// no half-written row. The panel's helper retries the lost answer on another process; until the
// lease runs out that retry is told to come back (a 409 the helper does not repeat); after it, the
// next click takes the lease over and finishes the provisioning.
import assert from "node:assert/strict";
import { crmHelper } from "../_support/crm-helper.ts";
import { closeDb, createOrg, events, integrations, sim, sql } from "../_support/wpp.ts";
import {
  clientsOf,
  inconsistencies,
  platformSessions,
  sleep,
  startOwnFunction,
  storedPair,
  test,
  TestGateway,
  waitFor,
} from "./_helpers.ts";

// The shortest lease the functions accept with this deadline (the lease must outlive it).
const ENV = { WPP_LEASE_SECONDS: "5", WPP_REQUEST_DEADLINE_MS: "4000" };

test("SIGKILL during a create: the lease stays, then the next click completes it", async () => {
  await sim.clearFaults();
  const gateway = new TestGateway();
  // The victim waits on a slow create with room to spare, so the kill lands mid-call.
  const victim = await startOwnFunction("wpp-create", { ...ENV, WPP_TIMEOUT_MS: "3500" });
  // The process the gateway sends the helper's retry to; it never waits for a lease.
  const survivor = await startOwnFunction("wpp-create", { ...ENV, WPP_BUSY_WAIT_MS: "0" });
  const org = await createOrg("admin");
  try {
    await sim.setFault({ op: "create", kind: "latency", ms: 3_000, times: 1 });
    const before = (await sim.calls()).create;
    const click = crmHelper({
      token: org.user.token,
      baseUrl: gateway.route({ "wpp-create": [victim.url, survivor.url] }),
    }).post("wpp-create", { add_new: false });
    await waitFor(
      "the create call to reach the platform",
      async () => (await sim.calls()).create > before ? true : undefined,
    );
    await sleep(100);
    await victim.kill();
    const r = await click;

    // The gateway answered 502 for the dead process; the helper's retry met the lease.
    assert.deepEqual(r.attempts.map((a) => a.status), [502, 409], JSON.stringify(r.attempts));
    assert.equal(r.data?.code, "provisioning_in_progress");
    const [held] = await integrations(org.orgId);
    assert.notEqual(held.lease_id, null, "the dead request's lease is still there");
    assert.deepEqual(storedPair(held.settings), { session: null, apiKey: null }, "nothing stored");

    await waitFor("the lease to expire", async () => {
      const [row] = await sql<{ expired: boolean }[]>`
        select s.lease_expires_at < now() as expired
          from public.wpp_integration_state s where s.organization_id = ${org.orgId}`;
      return row.expired ? true : undefined;
    }, 15_000);
    await sim.clearFaults();
    const next = await crmHelper({
      token: org.user.token,
      baseUrl: gateway.route({ "wpp-create": survivor.url }),
    }).post("wpp-create", { add_new: false });
    assert.equal(next.status, 200, JSON.stringify(next.data));
    assert.equal(next.data?.created, true);

    const [row] = await integrations(org.orgId);
    assert.equal(row.lease_id, null);
    assert.equal(storedPair(row.settings).session, next.data?.session);
    const actions = (await events(org.orgId)).map((e) => e.action);
    assert.ok(actions.includes("lease_taken_over"), actions.join());
    assert.ok(actions.includes("created"), actions.join());
    assert.deepEqual(await inconsistencies([org.orgId]), []);

    // The killed request's create went through on the platform once its connection dropped: a
    // client nobody stored, the documented price of a platform without idempotent creates.
    const onPlatform = clientsOf(await platformSessions(), org.orgId);
    console.log(
      `platform clients for the organisation: ${onPlatform.length} ` +
        `(stored: ${next.data?.session}; events: ${actions.join(", ")})`,
    );
    assert.ok(onPlatform.length <= 2);
    assert.ok(onPlatform.some((s) => s.session === next.data?.session));
  } finally {
    await sim.clearFaults();
    await victim.stop().catch(() => {});
    await survivor.stop();
    await gateway.close();
  }
});

test("crash: clean up", async () => {
  await closeDb();
});
