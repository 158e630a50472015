// A function process killed in the middle of a create leaves its lease behind and nothing else:
// no half-written row. Until the lease runs out other clicks are told to come back; after it,
// the next click takes the lease over and finishes the provisioning.
import assert from "node:assert/strict";
import {
  callFunction,
  closeDb,
  createOrg,
  events,
  integrations,
  sim,
  sql,
} from "../_support/wpp.ts";
import {
  inconsistencies,
  platformSessions,
  sleep,
  startExtraFunction,
  storedPair,
  test,
} from "./_helpers.ts";

// The shortest lease the function accepts (config.ts: WPP_LEASE_SECONDS >= 5).
const LEASE_SECONDS = "5";

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("SIGKILL during a create: the lease stays, then the next click completes it", async () => {
  await sim.clearFaults();
  // The victim waits on a slow create with room to spare, so the kill lands mid-call.
  const victim = await startExtraFunction({
    WPP_LEASE_SECONDS: LEASE_SECONDS,
    WPP_TIMEOUT_MS: "20000",
    WPP_REQUEST_DEADLINE_MS: "30000",
  });
  // A second process that never waits for a lease, to see the 409 while it is held.
  const impatient = await startExtraFunction({
    WPP_LEASE_SECONDS: LEASE_SECONDS,
    WPP_BUSY_WAIT_MS: "0",
  });
  const org = await createOrg("admin");
  try {
    await sim.setFault({ op: "create", kind: "latency", ms: 8_000, times: 1 });
    const before = (await sim.calls()).create;
    const doomed = callFunction(org.user.token, { baseUrl: victim.url }).catch((e) => e);
    await waitFor(
      "the create call to reach the platform",
      10_000,
      async () => (await sim.calls()).create > before ? true : undefined,
    );
    await sleep(100);
    await victim.kill();
    assert.ok((await doomed) instanceof Error, "the caller of a killed process gets no answer");

    const [held] = await integrations(org.orgId);
    assert.notEqual(held.provision_lease_id, null, "the dead request's lease is still there");
    assert.deepEqual(storedPair(held.settings), { session: null, apiKey: null }, "nothing stored");

    const busy = await callFunction(org.user.token, { baseUrl: impatient.url });
    assert.equal(busy.status, 409, busy.text);
    assert.equal(busy.json.code, "provisioning_in_progress");
    assert.ok(Number(busy.headers.get("retry-after")) >= 1);

    await waitFor("the lease to expire", 15_000, async () => {
      const [row] = await sql<{ expired: boolean }[]>`
        select provision_lease_expires_at < now() as expired
          from public.messenger_integrations where organization_id = ${org.orgId}`;
      return row.expired ? true : undefined;
    });
    await sim.clearFaults();
    const next = await callFunction(org.user.token);
    assert.equal(next.status, 200, next.text);
    assert.equal(next.json.created, true);

    const [row] = await integrations(org.orgId);
    assert.equal(row.provision_lease_id, null);
    assert.equal(storedPair(row.settings).session, next.json.session);
    const actions = (await events(org.orgId)).map((e) => e.action);
    assert.ok(actions.includes("lease_taken_over"), actions.join());
    assert.ok(actions.includes("created"), actions.join());
    assert.deepEqual(await inconsistencies([org.orgId]), []);

    // The killed request's create still went through on the platform once its connection
    // dropped: that client is an orphan nobody stored, which is the documented price of a
    // platform without idempotent creates.
    const onPlatform = (await platformSessions()).filter((s) => s.organizationId === org.orgId);
    console.log(
      `platform clients for the organisation: ${onPlatform.length} ` +
        `(stored: ${next.json.session}; events: ${actions.join(", ")})`,
    );
    assert.ok(onPlatform.some((s) => s.session === next.json.session));
  } finally {
    await sim.clearFaults();
    await victim.stop().catch(() => {});
    await impatient.stop();
  }
});

test("crash: clean up", async () => {
  await closeDb();
});
