// wpp-create end to end against a misbehaving platform, one fault per case: the HTTP answer
// (status and code the panel sees, CORS included), what is left in the database (a lease never
// held, a new session kept once stored, nothing stored that the platform did not confirm), the
// audit, and what the next click does once the fault is gone.
import assert from "node:assert/strict";
import { createOrg, events, integrations, platformApiKey, sim } from "../_support/wpp.ts";
import type { FaultSpec } from "../../dev/wpp-simulator/admin-client.ts";
import { call, SecretBook, SESSION_RE, stateOf, test } from "./_e2e.ts";

const book = new SecretBook();

interface Case {
  name: string;
  fault: FaultSpec;
  status: number;
  code: string;
  /** The new session was stored before the failure. */
  stored: boolean;
  /** The platform may have created a client: the audit says so and a cooldown runs. */
  outcomeUnknown?: boolean;
  /** The client's word for it in the audit, when it differs from the answer's code. */
  auditCode?: string;
  /** The platform keeps refusing after the fault is cleared (a key refused for a minute). */
  stillRefused?: boolean;
}

const CASES: Case[] = [
  {
    name: "create 500",
    fault: { op: "create", kind: "status", status: 500 },
    status: 502,
    code: "platform_error",
    stored: false,
    outcomeUnknown: true,
  },
  {
    name: "create 401 (bad secret)",
    fault: { op: "create", kind: "status", status: 401 },
    status: 502,
    code: "platform_unauthorized",
    stored: false,
  },
  {
    name: "create 404 page",
    fault: { op: "create", kind: "status", status: 404 },
    status: 502,
    code: "platform_rejected",
    stored: false,
  },
  {
    name: "create hangs",
    fault: { op: "create", kind: "hang" },
    status: 504,
    code: "platform_timeout",
    stored: false,
    outcomeUnknown: true,
  },
  {
    name: "create malformed JSON",
    fault: { op: "create", kind: "malformed" },
    status: 502,
    code: "platform_malformed",
    stored: false,
    outcomeUnknown: true,
  },
  {
    name: "create without apiKey",
    fault: { op: "create", kind: "missing_field", field: "apiKey" },
    status: 502,
    code: "platform_malformed",
    stored: false,
    outcomeUnknown: true,
  },
  {
    name: "create without session",
    fault: { op: "create", kind: "missing_field", field: "session" },
    status: 502,
    code: "platform_malformed",
    stored: false,
    outcomeUnknown: true,
  },
  {
    name: "create connection closed",
    fault: { op: "create", kind: "close" },
    status: 502,
    code: "platform_unreachable",
    stored: false,
    outcomeUnknown: true,
  },
  {
    name: "token 503 after create",
    fault: { op: "token", kind: "status", status: 503 },
    status: 502,
    code: "platform_error",
    stored: true,
  },
  {
    name: "fresh key refused past the bound",
    fault: { kind: "fresh_key_refusal", ms: 60_000 },
    status: 502,
    code: "platform_rejected",
    auditCode: "invalid_api_key",
    stored: true,
    stillRefused: true,
  },
  {
    name: "webhook 500",
    fault: { op: "webhook", kind: "status", status: 500 },
    status: 502,
    code: "platform_error",
    stored: true,
  },
  {
    name: "start hangs",
    fault: { op: "start", kind: "hang" },
    status: 504,
    code: "platform_timeout",
    stored: true,
  },
];

for (const c of CASES) {
  test(`faults e2e: ${c.name} → ${c.status} ${c.code}, and the next click`, async () => {
    await book.harvest();
    await sim.reset();
    const org = await createOrg("admin");
    book.secret(org.user.token);
    await sim.setFault(c.fault);
    const res = await call(book, org.user.token, { body: { add_new: false } });
    assert.equal(res.status, c.status, res.text);
    assert.equal(res.json.code, c.code);
    assert.equal(res.json.success, false);
    assert.equal(res.json.status, "error");
    assert.ok(typeof res.json.error === "string" && res.json.error.length > 10);
    assert.equal(res.headers.get("access-control-allow-origin"), "*", "CORS on errors");
    assert.equal((await sim.calls()).create, 1, "one create, never retried");

    const [row] = await integrations(org.orgId);
    assert.equal(row.lease_id, null, "the lease is released");
    const s = row.settings;
    if (c.stored) {
      assert.match(String(s.wppAccountNumber), SESSION_RE, "the new session is kept");
      assert.equal(s.wppApiKey, await platformApiKey(String(s.wppAccountNumber)));
    } else {
      assert.equal(s.wppAccountNumber, undefined, "nothing unconfirmed is stored");
      assert.equal(s.wppApiKey, undefined);
    }
    const audit = await events(org.orgId);
    const failure = audit.find((e) =>
      e.action === (c.outcomeUnknown ? "create_outcome_unknown" : "failed")
    );
    assert.ok(failure, `${c.name}: ${audit.map((e) => e.action).join()}`);
    assert.equal(failure.details.code, c.auditCode ?? c.code);
    if (c.name === "create without apiKey") {
      // The platform made a client nobody can use: its id stays in the audit trail.
      assert.match(String(failure.details.orphan_session), SESSION_RE);
    }
    const cooldown = (await stateOf(row.id)).cooldown_until;
    assert.equal(cooldown !== null && cooldown > new Date(), c.outcomeUnknown === true);

    // The next click, the fault gone.
    await sim.clearFaults();
    const next = await call(book, org.user.token, { body: { add_new: false } });
    const creates = (await sim.calls()).create;
    if (c.outcomeUnknown) {
      assert.equal(next.status, 409, next.text);
      assert.equal(next.json.code, "create_cooldown");
      assert.match(next.headers.get("retry-after") ?? "", /^\d+$/);
      assert.equal(creates, 1, "no second create while the first one's fate is unknown");
    } else if (c.stillRefused) {
      // Still refused, and still young: reported again, never replaced by a second create.
      assert.equal(next.status, 502, next.text);
      assert.equal(creates, 1);
      assert.equal(
        (await integrations(org.orgId))[0].settings.wppAccountNumber,
        s.wppAccountNumber,
      );
    } else if (c.stored) {
      assert.equal(next.status, 200, next.text);
      assert.equal(next.json.created, false, "the stored session is reused");
      assert.equal(next.json.session, s.wppAccountNumber);
      assert.equal(creates, 1);
    } else {
      assert.equal(next.status, 200, next.text);
      assert.equal(next.json.created, true);
      assert.equal(next.json.integration_id, row.id, "the same row is filled");
      assert.equal(creates, 2);
    }
  });
}

test("faults e2e: a fresh apiKey refused for a while is waited out within the bound", async () => {
  await book.harvest();
  await sim.reset();
  const org = await createOrg("admin");
  book.secret(org.user.token);
  await sim.setFault({ kind: "fresh_key_refusal", ms: 800 });
  const t0 = performance.now();
  const res = await call(book, org.user.token, { body: { add_new: false } });
  const ms = performance.now() - t0;
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.created, true);
  assert.equal(res.json.status, "qr_issued");
  assert.ok(ms >= 700, `the token was retried until the key became valid (${ms} ms)`);
  assert.ok((await sim.calls()).token >= 2);
});

test("faults e2e: no secret reached an answer or a function log line in this file", async () => {
  const scanned = await book.assertNoneLeaked();
  assert.ok(scanned.secrets >= 10, JSON.stringify(scanned));
});
