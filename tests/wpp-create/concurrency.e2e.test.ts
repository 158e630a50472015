// wpp-create end to end under the conditions that make duplicates: a create whose answer is lost
// while the CRM's panel retries, bursts of clicks over both function processes, and clicks
// overlapping a recreate. The platform is asked to create once per intent, and a replaced
// session is never started again nor handed out.
import assert from "node:assert/strict";
import {
  callFunction,
  type CallResult,
  createOrg,
  events,
  integrations,
  sim,
} from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import { crmHelper } from "../_support/crm-helper.ts";
import type { FaultSpec } from "../../dev/wpp-simulator/admin-client.ts";
import {
  ageSessions,
  call,
  eventsDelivered,
  makeStale,
  pick,
  platformCallsDuring,
  SecretBook,
  stateOf,
  test,
  waitFor,
} from "./_e2e.ts";

const book = new SecretBook();

async function freshPlatform(): Promise<void> {
  await book.harvest();
  await sim.reset();
}

async function newOrg() {
  const org = await createOrg("admin");
  book.secret(org.user.token);
  return org;
}

/** The gateway and each wpp-create process in turn, so a burst reaches both processes. */
function spread(token: string, n: number, body: Record<string, unknown> = { add_new: false }) {
  const processes = stack.functionUrls["wpp-create"] ?? [];
  assert.ok(processes.length >= 2, "the test stack runs two wpp-create processes");
  return Array.from({ length: n }, async (_, i) => {
    const res = await callFunction(token, {
      body,
      ...(i % 3 === 0 ? {} : { baseUrl: processes[i % processes.length] }),
    });
    book.text(res.text);
    return res;
  });
}

const LOST_ANSWERS: {
  fault: FaultSpec;
  first: number;
  code: string;
  said: string | null;
}[] = [
  {
    fault: { op: "create", kind: "status", status: 503, phase: "after", times: 1 },
    first: 502,
    code: "platform_error",
    said: "Service Unavailable",
  },
  {
    fault: { op: "create", kind: "hang", phase: "after", times: 1 },
    first: 504,
    code: "platform_timeout",
    said: null,
  },
  {
    fault: { op: "create", kind: "close", phase: "after", times: 1 },
    first: 502,
    code: "platform_unreachable",
    said: null,
  },
];

for (const c of LOST_ANSWERS) {
  const label = c.fault.kind === "status" ? `${c.fault.status}` : c.fault.kind;
  test(`concurrency e2e: a create whose answer is lost (${label}) is one create; the panel's retry gets 409`, async () => {
    await freshPlatform();
    const org = await newOrg();
    await sim.setFault(c.fault);
    const panel = crmHelper({ token: org.user.token });
    const result = await panel.post("wpp-create", { add_new: false });
    book.text(JSON.stringify(result));

    assert.deepEqual(result.attempts.map((a) => a.status), [c.first, 409]);
    assert.equal(result.attempts[0].body?.code, c.code);
    assert.equal(result.data?.code, "create_cooldown");
    assert.equal(typeof result.error, "string", "the panel shows the cooldown's text");
    const calls = await sim.calls();
    assert.equal(calls.create, 1, "exactly one platform create for the click");
    const platform = await sim.state();
    assert.equal(platform.sessions.length, 1, "the platform did create one client");

    const [row] = await integrations(org.orgId);
    assert.equal(row.settings.wppAccountNumber, undefined, "nothing unconfirmed is stored");
    assert.ok((await stateOf(row.id)).cooldown_until! > new Date(), "a cooldown is running");
    const unknown = (await events(org.orgId)).filter((e) => e.action === "create_outcome_unknown");
    assert.equal(unknown.length, 1);
    assert.equal(unknown[0].details.code, c.code);
    assert.equal(unknown[0].details.op, "create");
    assert.equal(unknown[0].details.platform_said ?? null, c.said, "what the platform said");
    if (c.fault.kind === "status") assert.equal(unknown[0].details.http_status, 503);
  });
}

test("concurrency e2e: 50 concurrent first clicks over both processes make one create", async () => {
  await freshPlatform();
  const org = await newOrg();
  // A slow create keeps the lease held while the burst arrives.
  await sim.setFault({ op: "create", kind: "latency", ms: 300, times: 1 });
  const [results, calls] = await platformCallsDuring(() => Promise.all(spread(org.user.token, 50)));
  const statuses = results.map((r) => r.status);
  assert.ok(statuses.every((s) => s === 200 || s === 409), statuses.join());
  assert.equal(calls.create, 1, "exactly one platform create");
  const ok = results.filter((r) => r.status === 200);
  assert.ok(ok.length >= 45, `most clicks wait for the first one's session: ${statuses.join()}`);
  assert.equal(new Set(ok.map((r) => r.json.session)).size, 1, "every success names one session");
  assert.equal(results.filter((r) => r.json.created === true).length, 1);
  for (const r of results.filter((r) => r.status === 409)) {
    assert.equal(r.json.code, "provisioning_in_progress");
    assert.match(r.headers.get("retry-after") ?? "", /^\d+$/);
  }
  assert.equal((await integrations(org.orgId)).length, 1);
  assert.equal(calls.start, 1, "one start: the others waited for its QR");
  // Only the request holding the refresh asks for the new apiKey's token, so clicks that arrive
  // right after the create do not each fetch one.
  assert.equal(calls.token, 1, "one token for the new apiKey");
});

test("concurrency e2e: 30 concurrent clicks on a stale session make one start, one registration", async () => {
  await freshPlatform();
  const org = await newOrg();
  const first = await call(book, org.user.token, { body: { add_new: false } });
  const session = String(first.json.session);
  await eventsDelivered(session, 1);
  await makeStale(org.orgId);

  const [results, calls] = await platformCallsDuring(() => Promise.all(spread(org.user.token, 30)));
  for (const r of results) assert.equal(r.status, 200, r.text);
  assert.deepEqual(pick(calls, "create", "status", "webhook", "start"), {
    create: 0,
    status: 1,
    webhook: 1,
    start: 1,
  });
  assert.ok(results.every((r) => r.json.session === session));
  assert.ok(results.every((r) => r.json.status === "qr_issued"), "every click shows the QR");
  assert.equal(new Set(results.map((r) => r.json.qrcode)).size, 1, "one QR for all of them");
  assert.notEqual(results[0].json.qrcode, first.json.qrcode, "a new QR was issued");
});

test("concurrency e2e: a click overlapping a recreate never restarts or hands out the replaced session", async () => {
  await freshPlatform();
  const org = await newOrg();
  const first = await call(book, org.user.token, { body: { add_new: false } });
  const oldSession = String(first.json.session);
  const integrationId = String(first.json.integration_id);
  await eventsDelivered(oldSession, 1);
  await ageSessions(org.orgId);
  await makeStale(org.orgId);
  // A slow create: plain clicks arrive before, during and after the replacement.
  await sim.setFault({ op: "create", kind: "latency", ms: 600, times: 1 });

  let recreatedAt = Infinity;
  const forced = call(book, org.user.token, { body: { force_recreate: true } }).then((r) => {
    recreatedAt = performance.now();
    return r;
  });
  const clicks: Promise<{ sentAt: number; res: CallResult }>[] = [];
  // Until a few clicks went out after the recreate answered, however slow the machine is.
  for (let after = 0; clicks.length < 150 && after < 4;) {
    if (recreatedAt !== Infinity) after++;
    const sentAt = performance.now();
    clicks.push(
      call(book, org.user.token, { body: { add_new: false } }).then((res) => ({
        sentAt,
        res,
      })),
    );
    await new Promise((r) => setTimeout(r, 60));
  }
  const recreate = await forced;
  const plain = await Promise.all(clicks);

  assert.equal(recreate.status, 200, recreate.text);
  assert.equal(recreate.json.created, true);
  const newSession = String(recreate.json.session);
  assert.notEqual(newSession, oldSession);
  for (const { sentAt, res } of plain) {
    assert.ok(res.status === 200 || res.status === 409, res.text);
    if (res.status !== 200) continue;
    assert.ok([oldSession, newSession].includes(String(res.json.session)), res.text);
    if (sentAt > recreatedAt) {
      assert.equal(res.json.session, newSession, "after the recreate only the new session");
    }
  }
  assert.ok(
    plain.some(({ sentAt }) => sentAt > recreatedAt),
    "some clicks were sent after the recreate answered",
  );
  // The old session was stopped and stays stopped: nothing started it again.
  await eventsDelivered(newSession, 1);
  await waitFor("the old session stopped", async () => {
    const s = (await sim.state()).sessions.find((x) => x.session === oldSession);
    return s?.state === "offline" ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 300));
  const platform = await sim.state();
  assert.equal(platform.sessions.find((s) => s.session === oldSession)?.state, "offline");
  assert.equal((await sim.calls()).create, 2);
  const state = await stateOf(integrationId);
  assert.equal(state.session, newSession);
  assert.deepEqual(state.replaced_sessions, [oldSession]);
});

test("concurrency e2e: no secret reached an answer or a function log line in this file", async () => {
  const scanned = await book.assertNoneLeaked();
  assert.ok(scanned.secrets >= 10, JSON.stringify(scanned));
});
