// wpp-webhook's handler driven directly with a fake store and a fake forwarder: which URLs reach
// the database at all, what the database is told for each event shape, and that the forward to
// the CRM's receiver is scheduled only for verified events and never delays the platform's 200.
import assert from "node:assert/strict";
import { createHandler, type WebhookDeps } from "../../supabase/functions/wpp-webhook/handler.ts";
import type { Forwarder, ForwardResult } from "../../supabase/functions/wpp-webhook/forward.ts";
import type { WebhookEventResult } from "../../supabase/functions/_shared/db/store.ts";
import { SecretCache } from "../../supabase/functions/wpp-webhook/secret-cache.ts";
import { AppError } from "../../supabase/functions/_shared/errors.ts";
import {
  answer,
  assertNoSecrets,
  FakeClock,
  FakeStore,
  INTEGRATION_ID,
  ORG_ID,
  QR,
  REQUEST_ID,
  SECRETS,
  STORED_SESSION,
  T0,
  testConfig,
} from "../_support/fakes.ts";

const FN = "wpp-webhook";
// What wpp_provision_complete makes: base64url of 32 random bytes.
const SECRET = "q3Jx0Vn8kQe2r-Yb_5sT1uWc7hLm9pZa4dGf6oKi2Nw";
const FOUND: WebhookEventResult = {
  found: true,
  integration_id: INTEGRATION_ID,
  organization_id: ORG_ID,
  applied: true,
  forward: true,
};

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

interface Forwarded {
  body: Uint8Array;
  contentType: string | null;
  settle: (r: Partial<ForwardResult>) => void;
}

function setup(
  opts: { env?: Record<string, string>; forward?: boolean; cacheMs?: number } = {},
) {
  const store = new FakeStore();
  const clock = new FakeClock();
  const logs: Record<string, unknown>[] = [];
  const background: Promise<unknown>[] = [];
  const forwarded: Forwarded[] = [];
  // Each forward stays pending until the test settles it: the answer must not wait for it.
  const forward: Forwarder = (body, contentType) =>
    new Promise((resolve) => {
      forwarded.push({
        body: new Uint8Array(body as Uint8Array),
        contentType,
        settle: (r) => resolve({ ok: true, attempts: 1, status: 200, ms: 5, ...r }),
      });
    });
  const deps: WebhookDeps = {
    store: store.factory,
    forward: opts.forward === false ? null : forward,
    background: (work) => background.push(work),
    now: clock.now,
    requestId: () => REQUEST_ID,
    log: (line) => logs.push(structuredClone(line)),
    secretCache: opts.cacheMs ? new SecretCache(opts.cacheMs, clock.now) : null,
  };
  const handler = createHandler(testConfig(opts.env, []), deps);
  const post = async (
    path: string,
    body: BodyInit | null,
    init: { method?: string; headers?: Record<string, string> } = {},
  ) => {
    const before = logs.length;
    const res = await answer(handler(
      new Request(`http://127.0.0.1${path}`, {
        method: init.method ?? "POST",
        headers: { "content-type": "application/json", ...init.headers },
        body,
      }),
    ));
    return { ...res, logs: logs.slice(before) };
  };
  const event = (body: unknown, secret = SECRET) =>
    post(`/${FN}/${secret}`, typeof body === "string" ? body : JSON.stringify(body));
  return { store, clock, logs, background, forwarded, handler, post, event };
}

/** No secret, no QR, no body in anything the handler wrote or answered. */
function assertClean(texts: string[], extra: string[] = []): void {
  assertNoSecrets(texts, [...SECRETS, SECRET, QR, ...extra]);
}

Deno.test("a URL without a secret, or with one of the wrong shape: 404, the database never asked", async () => {
  const s = setup();
  const paths = [
    `/${FN}`,
    `/${FN}/`,
    `/${FN}/short`,
    `/${FN}/${"a".repeat(31)}`,
    `/${FN}/${"a".repeat(129)}`,
    `/${FN}/${SECRET.slice(0, 40)}!!!`,
    `/${FN}/${SECRET}%2Fx`,
    `/${FN}/%ZZ${SECRET}`,
    `/${FN}/${SECRET}/extra`,
    `/${FN}/${encodeURIComponent(SECRET + "=")}`,
    `/other/${SECRET}`,
  ];
  const messages = new Set<string>();
  for (const path of paths) {
    const r = await s.post(path, JSON.stringify({ type: "connected" }));
    assert.equal(r.status, 404, `${path}: ${r.text}`);
    assert.equal(r.json.code, "not_found");
    messages.add(String(r.json.error));
    assert.equal(r.headers.get("x-request-id"), REQUEST_ID);
    assert.equal(r.logs.length, 1, "one log line per request");
    assertClean([r.text, JSON.stringify(r.logs)]);
  }
  assert.equal(messages.size, 1, "every refusal says the same thing: nothing to learn from it");
  assert.equal(s.store.calls.length, 0);
  assert.equal(s.forwarded.length, 0);
});

Deno.test("an unknown secret: looked up by its SHA-256 only, 404, nothing forwarded", async () => {
  const s = setup();
  const r = await s.event({ type: "connected", account: STORED_SESSION });
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.code, "not_found");
  const [input] = s.store.inputs("webhookEvent");
  assert.equal(input.secretHash, await sha256Hex(SECRET));
  assert.ok(!JSON.stringify(s.store.calls).includes(SECRET), "the secret itself never leaves");
  assert.equal(s.store.calls.length, 1);
  assert.equal(s.forwarded.length, 0);
  assert.equal(s.background.length, 0);
  assertClean([r.text, JSON.stringify(r.logs)]);
});

Deno.test("methods: only POST (405 naming it); a preflight answers 204", async () => {
  const s = setup();
  for (const method of ["GET", "PUT", "DELETE"]) {
    const r = await s.post(`/${FN}/${SECRET}`, method === "GET" ? null : "{}", { method });
    assert.equal(r.status, 405, `${method}: ${r.text}`);
    assert.equal(r.headers.get("allow"), "POST, OPTIONS");
  }
  const pre = await s.post(`/${FN}/${SECRET}`, null, { method: "OPTIONS" });
  assert.equal(pre.status, 204);
  assert.equal(s.store.calls.length, 0);
});

Deno.test("a body over WPP_WEBHOOK_MAX_BYTES: 413, declared or streamed, before the database", async () => {
  const s = setup({ env: { WPP_WEBHOOK_MAX_BYTES: "1024" } });
  const big = JSON.stringify({ type: "chat", account: STORED_SESSION, text: "x".repeat(1100) });
  const declared = await s.event(big);
  assert.equal(declared.status, 413, declared.text);
  assert.equal(declared.json.code, "payload_too_large");

  // No content-length: the cap is counted while reading.
  const chunks = [
    new TextEncoder().encode(big.slice(0, 600)),
    new TextEncoder().encode(big.slice(600)),
  ];
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      const next = chunks.shift();
      if (next) c.enqueue(next);
      else c.close();
    },
  });
  const streamed = await s.post(`/${FN}/${SECRET}`, stream);
  assert.equal(streamed.status, 413, streamed.text);

  const fits = await s.event({ type: "chat", account: STORED_SESSION, text: "x".repeat(900) });
  assert.equal(fits.status, 404, "under the cap it is read (and this secret is unknown)");
  assert.equal(s.store.count("webhookEvent"), 1, "only the one under the cap reached the database");
});

Deno.test("not JSON: 400 invalid_json; JSON but not an event object: 400 invalid_body", async () => {
  const s = setup();
  s.store.handle("webhookEvent", () => Promise.resolve(FOUND));
  for (const body of ["{", "", "type=qr", "\u0000"]) {
    const r = await s.event(body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.code, "invalid_json");
  }
  const notUtf8 = await s.post(`/${FN}/${SECRET}`, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
  assert.equal(notUtf8.status, 400);
  assert.equal(notUtf8.json.code, "invalid_json");
  for (const body of ["[]", "null", '"qr"', "42", '{"account": {"id": 1}}']) {
    const r = await s.event(body);
    assert.equal(r.status, 400, `${body}: ${r.text}`);
    assert.equal(r.json.code, "invalid_body");
  }
  assert.equal(s.store.calls.length, 0);
  assert.equal(s.forwarded.length, 0, "nothing unreadable is forwarded");
});

Deno.test("every event shape reaches the database as one observation", async () => {
  const cases: [Record<string, unknown>, {
    account: string | null;
    connection: string | null;
    qr: string | null;
    eventAt: number | null;
  }][] = [
    [
      { type: "qr", account: STORED_SESSION, qr: QR, timestamp: T0 - 1_000 },
      { account: STORED_SESSION, connection: "qr", qr: QR, eventAt: T0 - 1_000 },
    ],
    [
      { event: "qr", data: { account: STORED_SESSION, qr: QR } },
      { account: STORED_SESSION, connection: "qr", qr: QR, eventAt: null },
    ],
    [
      { type: "qr", account: STORED_SESSION, qrcode: QR, timestamp: (T0 - 2_000) / 1000 },
      { account: STORED_SESSION, connection: "qr", qr: QR, eventAt: T0 - 2_000 },
    ],
    [
      { type: "connected", account: STORED_SESSION, timestamp: new Date(T0 - 3_000).toISOString() },
      { account: STORED_SESSION, connection: "connected", qr: null, eventAt: T0 - 3_000 },
    ],
    [
      { event: "ready", data: { account: STORED_SESSION, timestamp: T0 - 4_000 } },
      { account: STORED_SESSION, connection: "connected", qr: null, eventAt: T0 - 4_000 },
    ],
    [
      { type: "logout", account: STORED_SESSION, timestamp: T0 + 86_400_000 },
      { account: STORED_SESSION, connection: "offline", qr: null, eventAt: T0 + 60_000 },
    ],
    [
      { type: "disconnected" },
      { account: null, connection: "offline", qr: null, eventAt: null },
    ],
    [
      { type: "delivery", account: STORED_SESSION, messageId: "m1", status: "read" },
      { account: STORED_SESSION, connection: null, qr: null, eventAt: null },
    ],
    [
      { account: STORED_SESSION, from: "5511", text: "hi", type: "chat", timestamp: null },
      { account: STORED_SESSION, connection: null, qr: null, eventAt: null },
    ],
  ];
  const s = setup();
  s.store.handle("webhookEvent", () => Promise.resolve(FOUND));
  const hash = await sha256Hex(SECRET);
  for (const [body, expected] of cases) {
    const r = await s.event(body);
    assert.equal(r.status, 200, `${JSON.stringify(body)}: ${r.text}`);
    assert.deepEqual(r.json, { success: true, request_id: REQUEST_ID });
    assert.deepEqual(
      s.store.inputs("webhookEvent").at(-1),
      { secretHash: hash, ...expected },
      JSON.stringify(body),
    );
    assertClean([r.text, JSON.stringify(r.logs)]);
  }
  // The deadline of each request bounds its database call.
  assert.ok(s.store.deadlines.every((d) => d === T0 + 8_000));
});

Deno.test("a verified event is forwarded byte for byte, after the 200 and without delaying it", async () => {
  const s = setup();
  s.store.handle("webhookEvent", () => Promise.resolve(FOUND));
  // Odd spacing, key order, escapes and non-ASCII: re-serialising would change the bytes.
  const raw = '{ "account":"0000000000007" ,"type":"chat","text":"\\u00e9 é\\n","from":"5511"}\n';
  const r = await s.post(`/${FN}/${SECRET}`, raw, {
    headers: { "content-type": "application/json; charset=utf-8" },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(s.forwarded.length, 1, "scheduled");
  assert.equal(s.background.length, 1, "kept alive after the answer");
  assert.deepEqual(s.forwarded[0].body, new TextEncoder().encode(raw));
  assert.equal(s.forwarded[0].contentType, "application/json; charset=utf-8");
  // The answer came while the forward was still pending; its result is logged once it settles.
  assert.equal(s.logs.filter((l) => l.msg === "forward").length, 0);
  assert.equal(r.logs[0].forward, "scheduled");
  s.forwarded[0].settle({ ok: false, attempts: 3, status: 503, ms: 1234 });
  await Promise.all(s.background);
  const line = s.logs.find((l) => l.msg === "forward");
  assert.deepEqual(line, {
    level: "error",
    fn: FN,
    msg: "forward",
    request_id: REQUEST_ID,
    integration_id: INTEGRATION_ID,
    ok: false,
    status: 503,
    attempts: 3,
    ms: 1234,
  });
  assertClean([JSON.stringify(s.logs)], ["\\u00e9 é"]);
});

Deno.test("nothing is forwarded for an event of another account, an unknown URL, or no forward URL", async () => {
  let s = setup();
  s.store.handle(
    "webhookEvent",
    () => Promise.resolve({ ...FOUND, applied: false, forward: false, reason: "other_account" }),
  );
  let r = await s.event({ type: "chat", account: "0000000000999", text: "not yours" });
  assert.equal(r.status, 200, "the platform gets its 200 either way");
  assert.equal(r.logs[0].reason, "other_account");
  assert.equal(r.logs[0].applied, false);
  assert.equal(s.forwarded.length, 0);
  assert.equal(s.background.length, 0);

  s = setup({ forward: false });
  s.store.handle("webhookEvent", () => Promise.resolve(FOUND));
  r = await s.event({ type: "chat", account: STORED_SESSION, text: "hi" });
  assert.equal(r.status, 200);
  assert.equal(s.background.length, 0, "WPP_EVENTS_FORWARD_URL unset: nothing scheduled");
  assert.equal(r.logs[0].forward, undefined);

  s = setup();
  r = await s.event({ type: "chat", account: STORED_SESSION, text: "hi" });
  assert.equal(r.status, 404);
  assert.equal(s.forwarded.length, 0);
});

Deno.test("the database failing: 503 (the platform may send again), nothing forwarded", async () => {
  const s = setup();
  s.store.failAlways(
    "webhookEvent",
    new AppError("database_timeout", "the database did not answer in time"),
  );
  const r = await s.event({ type: "connected", account: STORED_SESSION });
  assert.equal(r.status, 503, r.text);
  assert.equal(r.json.code, "database_timeout");
  assert.equal(s.forwarded.length, 0);
});

Deno.test("the log line names the event and the integration, never the URL, the body or the QR", async () => {
  const s = setup();
  s.store.handle("webhookEvent", () => Promise.resolve(FOUND));
  const r = await s.event({ type: "qr", account: STORED_SESSION, qr: QR, timestamp: T0 });
  assert.equal(r.logs.length, 1);
  const line = r.logs[0];
  assert.equal(line.fn, FN);
  assert.equal(line.status, 200);
  assert.equal(line.event, "qr");
  assert.equal(line.connection, "qr");
  assert.equal(line.integration_id, INTEGRATION_ID);
  assert.equal(line.organization_id, ORG_ID);
  assert.equal(line.applied, true);
  assertClean([JSON.stringify(line)]);
});

Deno.test("a URL confirmed a moment ago: messages skip the database, session events never do", async () => {
  const s = setup({ cacheMs: 1_000 });
  s.store.handle("webhookEvent", () => Promise.resolve({ ...FOUND, session: STORED_SESSION }));
  const message = { type: "chat", account: STORED_SESSION, text: "hi", from: "5511" };
  assert.equal((await s.event(message)).status, 200);
  assert.equal(s.store.count("webhookEvent"), 1, "the first event asks the database");

  const cached = await s.event(message);
  assert.equal(cached.status, 200);
  assert.equal(cached.logs[0].source, "cache");
  assert.equal(cached.logs[0].integration_id, INTEGRATION_ID);
  assert.equal(s.forwarded.length, 2, "forwarded all the same");
  assert.equal((await s.event({ type: "delivery", messageId: "m1", status: "read" })).status, 200);
  assert.equal(s.store.count("webhookEvent"), 1, "a message and a delivery: no database call");

  // Session events are ordered by the database, whatever the cache holds.
  assert.equal((await s.event({ type: "connected", account: STORED_SESSION })).status, 200);
  assert.equal(s.store.count("webhookEvent"), 2);
  // Another account than the confirmed session is the database's to judge.
  await s.event({ ...message, account: "0000000000999" });
  assert.equal(s.store.count("webhookEvent"), 3);

  // The confirmation expires: the database is asked again, and its "unknown" (a rotated
  // secret) is final.
  s.clock.advance(1_000);
  s.store.handle("webhookEvent", () => Promise.resolve({ found: false }));
  const refused = await s.event(message);
  assert.equal(refused.status, 404);
  assert.equal(s.store.count("webhookEvent"), 4);
  assert.equal((await s.event(message)).status, 404, "nothing cached for a refused URL");
});

Deno.test("without the cache (WPP_WEBHOOK_SECRET_CACHE_MS=0) every event asks the database", async () => {
  const s = setup();
  s.store.handle("webhookEvent", () => Promise.resolve({ ...FOUND, session: STORED_SESSION }));
  for (let i = 0; i < 3; i++) {
    assert.equal((await s.event({ type: "chat", account: STORED_SESSION })).status, 200);
  }
  assert.equal(s.store.count("webhookEvent"), 3);
});

Deno.test("a forward that succeeds at once writes no line of its own; a retried one does", async () => {
  const s = setup();
  s.store.handle("webhookEvent", () => Promise.resolve(FOUND));
  await s.event({ type: "chat", account: STORED_SESSION, text: "one" });
  await s.event({ type: "chat", account: STORED_SESSION, text: "two" });
  s.forwarded[0].settle({ ok: true, attempts: 1, status: 200 });
  s.forwarded[1].settle({ ok: true, attempts: 2, status: 200 });
  await Promise.all(s.background);
  const lines = s.logs.filter((l) => l.msg === "forward");
  assert.equal(lines.length, 1);
  assert.deepEqual([lines[0].ok, lines[0].attempts, lines[0].level], [true, 2, "warn"]);
});
