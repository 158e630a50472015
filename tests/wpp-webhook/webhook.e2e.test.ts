// wpp-webhook end to end: the simulator posts its events to the URL wpp-create registered, through
// the gateway, to the real function and database; wpp-status then answers from what they stored.
// Refused URLs change nothing and forward nothing; events never move the state backwards; every
// verified event reaches the CRM's receiver byte for byte, and a receiver that is down or slow
// never costs the platform its quick 200.
import assert from "node:assert/strict";
import {
  closeDb,
  createOrg,
  integrations,
  platformApiKey,
  sim,
  snapshot,
  sql,
} from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import {
  ageSession,
  connect,
  delivered,
  jsonLogLines,
  logLineOf,
  makeStale,
  NO_CALLS,
  platformCallsDuring,
  stateOf,
  status,
  test,
  waitFor,
  webhookPath,
  withVariants,
} from "../wpp-status/_e2e.ts";
import { type ForwardReceiver, hang, openForwardReceiver } from "./_forward.ts";

const FORWARD_TOKEN = stack.functionEnv.WPP_EVENTS_FORWARD_TOKEN;

/** Everything secret or private seen during this file, for the log scan at its end. */
const secretsSeen = new Set<string>();
const qrsSeen = new Set<string>();

interface Posted {
  status: number;
  json: Record<string, unknown>;
  ms: number;
}

/** POSTs an event as the platform does: no apikey, no signature, the secret in the URL. */
async function postEvent(
  secret: string,
  body: string | Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Posted> {
  return await postTo(webhookPath(secret), body, headers);
}

async function postTo(
  path: string,
  body: string | Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Posted> {
  const t0 = performance.now();
  const res = await fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch { /* the assertion on status tells */ }
  return { status: res.status, json, ms };
}

/** A connected number of a new organisation, with the secret its webhook URL carries. */
async function connectedNumber() {
  const org = await createOrg("admin");
  const created = await connect(org.user.token);
  const session = created.json.session as string;
  const integrationId = created.json.integration_id as string;
  await delivered(session, "qr");
  await sim.scan(session);
  await waitFor(
    "connected stored",
    async () => (await stateOf(integrationId)).connection === "connected" ? true : undefined,
  );
  const secret = (await stateOf(integrationId)).webhook_secret!;
  secretsSeen.add(secret);
  secretsSeen.add(await platformApiKey(session));
  qrsSeen.add(created.json.qrcode as string);
  return { org, session, integrationId, secret };
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

test("the simulator posts to the URL wpp-create registered, and wpp-status answers from its events", async () => {
  const org = await createOrg("admin");
  const created = await connect(org.user.token);
  const session = created.json.session as string;
  const integrationId = created.json.integration_id as string;
  const state0 = await stateOf(integrationId);
  secretsSeen.add(state0.webhook_secret!);
  qrsSeen.add(created.json.qrcode as string);

  const registered = (await sim.state({ reveal: true })).sessions.find((s) =>
    s.session === session
  );
  assert.equal(registered?.webhookUrl, `${stack.url}${webhookPath(state0.webhook_secret!)}`);

  // The QR the start issued arrives as an event and is stored.
  const [qrDelivery] = await delivered(session, "qr");
  assert.equal(qrDelivery.status, 200);
  const shown = registered!.qr!;
  qrsSeen.add(shown);
  assert.equal((await stateOf(integrationId)).qr, shown);

  // The phone scans: "connected" arrives through the webhook; the poll asks the platform nothing.
  await sim.scan(session);
  const [linked] = await delivered(session, "connected");
  assert.equal(linked.status, 200);
  const afterScan = await stateOf(integrationId);
  assert.equal(afterScan.connection, "connected");
  assert.equal(afterScan.qr, null, "the QR is forgotten once linked");
  assert.ok(afterScan.ever_connected_at);
  const [polled, pollCalls] = await platformCallsDuring(() =>
    status(org.user.token, { session_name: session, force: true })
  );
  assert.equal(polled.json.status, "connected", polled.text);
  assert.deepEqual(pollCalls, NO_CALLS, "no platform status call: the event told");

  // The phone unlinks: "disconnected" arrives; the poll reports it, again without asking.
  await sim.disconnect(session);
  const [unlinked] = await delivered(session, "disconnected");
  assert.equal(unlinked.status, 200);
  assert.equal((await stateOf(integrationId)).connection, "offline");
  const [offline, offlineCalls] = await platformCallsDuring(() =>
    status(org.user.token, { session_name: session, force: true })
  );
  assert.equal(offline.json.status, "disconnected", offline.text);
  assert.equal(offline.json.reason, "offline");
  assert.deepEqual(offlineCalls, NO_CALLS);
});

test("refused URLs: forged, guessed, the CRM's webhook_key, the OLD secret after a recreate → 404, no write, nothing forwarded", async () => {
  const org = await createOrg("admin");
  const created = await connect(org.user.token);
  const oldSession = created.json.session as string;
  const integrationId = created.json.integration_id as string;
  const oldSecret = (await stateOf(integrationId)).webhook_secret!;
  await delivered(oldSession, "qr");
  await ageSession(integrationId);
  const recreated = await connect(org.user.token, { force_recreate: true });
  const newSession = recreated.json.session as string;
  assert.notEqual(newSession, oldSession);
  const newSecret = (await stateOf(integrationId)).webhook_secret!;
  assert.notEqual(newSecret, oldSecret, "a new session gets a new secret");
  secretsSeen.add(oldSecret);
  secretsSeen.add(newSecret);

  // The stopped old session's own "disconnected" event went to the old URL: refused.
  const [stopped] = await delivered(oldSession, "disconnected");
  assert.equal(stopped.status, 404, "the platform's event to the replaced URL is refused");
  await delivered(newSession, "qr");
  const [row] = await integrations(org.orgId);
  const rx = openForwardReceiver();
  try {
    const before = await snapshot();
    // Marked, so forwards still in flight from earlier events cannot be taken for these.
    const marker = crypto.randomUUID();
    const event = { type: "connected", account: newSession, timestamp: Date.now(), marker };
    const attempts: [string, Posted][] = [
      ["forged", await postEvent(randomSecret(), event)],
      ["the old secret", await postEvent(oldSecret, event)],
      [
        "the old secret, old account",
        await postEvent(oldSecret, { ...event, account: oldSession }),
      ],
      ["the CRM's webhook_key", await postEvent(row.webhook_key, event)],
      ["the secret's hash", await postEvent(await sha256Hex(newSecret), event)],
      ["a guess", await postEvent("abc", event)],
      ["the secret, cut", await postEvent(newSecret.slice(0, -1), event)],
      ["no secret", await postTo("/functions/v1/wpp-webhook", event)],
      ["an extra segment", await postTo(`${webhookPath(newSecret)}/x`, event)],
    ];
    for (const [what, r] of attempts) {
      assert.equal(r.status, 404, `${what}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.code, "not_found", what);
      assert.equal(r.json.error, "unknown webhook URL", `${what}: says nothing more`);
    }
    assert.equal(await snapshot(), before, "no database write, no platform call");
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!rx.got.some((g) => g.text.includes(marker)), "nothing forwarded");
    assert.equal((await stateOf(integrationId)).connection, "qr", "still waiting for the scan");

    // The current URL works, which is what makes the refusals above mean something.
    const ok = await postEvent(newSecret, event);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal((await stateOf(integrationId)).connection, "connected");
    const accepted = await waitFor("the forward of the accepted event", () => {
      const mine = rx.got.filter((g) => g.text.includes(marker));
      return mine.length ? mine : undefined;
    });
    assert.equal(accepted.length, 1);
    assert.deepEqual(JSON.parse(accepted[0].text), event);
  } finally {
    await rx.close();
  }
});

test("every event shape the simulator can send is applied", async () => {
  const { org, session, integrationId } = await connectedNumber();
  const shapes = [
    { eventTypeField: "event", eventAccountField: "data.account", eventQrField: "data.qr" },
    { eventQrField: "qrcode", eventTimestamp: false },
    { eventQrField: "qr", eventQrFormat: "data-url" },
  ] as const;
  let n = 0;
  for (const shape of shapes) {
    await withVariants(shape, async () => {
      for (
        const [word, expected] of [
          ["qr", "qr"],
          ["ready", "connected"],
          ["logout", "offline"],
          ["qr", "qr"],
          ["connected", "connected"],
          ["offline", "offline"],
          ["qr", "qr"],
          ["disconnected", "offline"],
        ] as const
      ) {
        const qr = `2@shape-${n++}-${crypto.randomUUID()}`;
        const emitted = await sim.emitEvent(
          session,
          word === "qr" ? { type: "qr", qr } : { type: word },
        );
        const [d] = await waitFor(`delivery of ${emitted.eventId}`, async () => {
          const ds = await sim.deliveries({ eventId: emitted.eventId });
          return ds.length && ds[0].status !== undefined ? ds : undefined;
        });
        assert.equal(d.status, 200, `${JSON.stringify(shape)} ${word}`);
        const state = await stateOf(integrationId);
        assert.equal(state.connection, expected, `${JSON.stringify(shape)} ${word}`);
        if (word === "qr") {
          qrsSeen.add(state.qr!);
          if ("eventQrFormat" in shape) {
            assert.match(state.qr!, /^data:image\/png;base64,/);
          } else {
            assert.equal(state.qr, qr, `${JSON.stringify(shape)}: the QR is stored as sent`);
          }
        }
      }
    });
  }
  // Messages and deliveries keep a connected state fresh, and change nothing else.
  await sim.emitEvent(session, { type: "connected" });
  await waitFor(
    "connected",
    async () => (await stateOf(integrationId)).connection === "connected" ? true : undefined,
  );
  await makeStale(integrationId);
  // Staleness is faked in the database: the function still holds the URL it confirmed for the
  // "connected" event a moment ago, and takes its messages without the database for
  // WPP_WEBHOOK_SECRET_CACHE_MS (1 s). A real silence of 30 s lets that expire first.
  await new Promise((r) => setTimeout(r, 1_100));
  const message = await sim.sendMessage(session, { from: "5511999990000", text: "olá" });
  await waitFor("the message delivered", async () => {
    const ds = await sim.deliveries({ eventId: message.eventId });
    return ds.length && ds[0].status === 200 ? true : undefined;
  });
  const fresh = await stateOf(integrationId);
  assert.equal(fresh.connection, "connected");
  assert.ok(fresh.checked_at!.getTime() > Date.now() - 10_000, "fresh again");
  const [polled, calls] = await platformCallsDuring(() =>
    status(org.user.token, { session_name: session, force: true })
  );
  assert.equal(polled.json.status, "connected");
  assert.deepEqual(calls, NO_CALLS, "a message is news enough that the session is alive");
});

test("event order: replays and late events never move the state backwards", async () => {
  const { session, integrationId, secret } = await connectedNumber();
  const t = Date.now();
  const post = async (body: Record<string, unknown>) => {
    const r = await postEvent(secret, { account: session, ...body });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return await stateOf(integrationId);
  };
  // A QR produced before the link arrives after it: ignored.
  let s = await post({ type: "qr", qr: "2@late-qr", timestamp: t - 60_000 });
  assert.equal(s.connection, "connected");
  assert.equal(s.qr, null);

  s = await post({ type: "offline", timestamp: t + 1_000 });
  assert.equal(s.connection, "offline");
  // The link before it, replayed byte for byte: still offline.
  s = await post({ type: "connected", timestamp: t });
  assert.equal(s.connection, "offline");
  s = await post({ type: "connected", timestamp: Math.floor(t / 1000) });
  assert.equal(s.connection, "offline", "the same time in seconds is older still");

  s = await post({ type: "connected", timestamp: t + 2_000 });
  assert.equal(s.connection, "connected");
  assert.equal(s.connection_at!.getTime(), t + 2_000);
  // At the very instant of the link, a QR is the older of the two.
  s = await post({ type: "qr", qr: "2@same-instant", timestamp: t + 2_000 });
  assert.equal(s.connection, "connected");
  s = await post({
    type: "qr",
    qr: "2@same-instant",
    timestamp: new Date(t + 2_000).toISOString(),
  });
  assert.equal(s.connection, "connected");

  // A newer QR (the phone unlinked and a start showed one) does apply.
  s = await post({ type: "qr", qr: "2@newer-qr-after-unlink", timestamp: t + 3_000 });
  assert.equal(s.connection, "qr");
  assert.equal(s.qr, "2@newer-qr-after-unlink");
  qrsSeen.add("2@newer-qr-after-unlink");
  s = await post({ type: "connected", timestamp: t + 4_000 });
  assert.equal(s.connection, "connected");
  // Another account's event on this URL: not applied.
  s = await post({ type: "offline", account: "0000000009999", timestamp: t + 5_000 });
  assert.equal(s.connection, "connected");
});

test("event order: the simulator's duplicates and reordered bursts end in the latest state", async () => {
  const { session, integrationId } = await connectedNumber();
  // Duplicates: every copy is accepted and the state is the event's.
  await sim.setEventFault({ kind: "duplicate", session, copies: 3 });
  try {
    const e = await sim.emitEvent(session, { type: "offline" });
    const copies = await waitFor("3 copies", async () => {
      const ds = (await sim.deliveries({ eventId: e.eventId })).filter((d) => d.status);
      return ds.length === 3 ? ds : undefined;
    });
    assert.deepEqual(copies.map((d) => d.status), [200, 200, 200]);
    assert.equal((await stateOf(integrationId)).connection, "offline");
  } finally {
    await sim.clearEventFaults("duplicate");
  }

  // Reordered: held, then sent in another order than produced. The last produced wins anyway.
  for (
    const [round, words, last] of [
      [1, ["qr", "connected", "offline"], "offline"],
      [2, ["offline", "qr", "connected"], "connected"],
      [3, ["connected", "offline", "qr", "qr"], "qr"],
    ] as const
  ) {
    await sim.setEventFault({ kind: "reorder", session, windowMs: 400 });
    const ids: string[] = [];
    let lastQr = "";
    try {
      for (const word of words) {
        lastQr = `2@round-${round}-${ids.length}`;
        const e = await sim.emitEvent(
          session,
          word === "qr" ? { type: "qr", qr: lastQr } : { type: word },
        );
        ids.push(e.eventId);
        // Distinct timestamps: the order the platform produced them in is knowable.
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      await sim.clearEventFaults("reorder");
    }
    const ds = await waitFor(`round ${round} delivered`, async () => {
      const all = (await Promise.all(ids.map((eventId) => sim.deliveries({ eventId })))).flat();
      return all.filter((d) => d.status).length === ids.length ? all : undefined;
    }, 5_000);
    assert.ok(ds.every((d) => d.status === 200));
    assert.ok(ds.some((d) => d.reordered), `round ${round} really arrived out of order`);
    const state = await stateOf(integrationId);
    assert.equal(state.connection, last, `round ${round}: ${words.join(", ")}`);
    if (last === "qr") {
      assert.equal(state.qr, lastQr, "the last QR produced, not the last to arrive");
      qrsSeen.add(lastQr);
    }
  }
});

test("forwarding: verified events reach the CRM's receiver byte for byte, with the Bearer token", async () => {
  assert.ok(FORWARD_TOKEN, "tests/fixtures/functions.env sets WPP_EVENTS_FORWARD_TOKEN");
  const { session, integrationId, secret } = await connectedNumber();
  const rx = openForwardReceiver();
  try {
    // A hand-made event: spacing, key order, escapes and non-ASCII survive as they were.
    const raw = `{"text":"привет \\u00e9","account" : "${session}",\n "type":"chat","from":"5511"}`;
    const posted = await postEvent(secret, raw);
    assert.equal(posted.status, 200);
    const [first] = await waitFor("the forward", () => {
      const mine = rx.got.filter((g) => g.text.includes("привет"));
      return mine.length ? mine : undefined;
    });
    assert.equal(first.method, "POST");
    assert.equal(first.path, "/events");
    assert.deepEqual(first.body, new TextEncoder().encode(raw), "byte for byte");
    assert.equal(first.headers.get("authorization"), `Bearer ${FORWARD_TOKEN}`);
    assert.equal(first.headers.get("content-type"), "application/json");

    // The simulator's own inbound message, delivery status and session event.
    const message = await sim.sendMessage(session, { from: "5511999990000", text: "oi" });
    const delivery = await sim.emitDelivery(session, message.messageId!, "read");
    await sim.emitEvent(session, { type: "connected" });
    const parsed = () =>
      rx.got.map((g) => JSON.parse(g.text) as Record<string, unknown>).filter((b) =>
        b.account === session
      );
    const bodies = await waitFor("the simulator's three events, forwarded", () => {
      const b = parsed();
      const ok = b.some((x) => x.messageId === message.messageId && x.type === "chat") &&
        b.some((x) => x.type === "delivery" && x.messageId === message.messageId) &&
        b.some((x) => x.type === "connected");
      return ok ? b : undefined;
    });
    const msg = bodies.find((b) => b.messageId === message.messageId && b.type === "chat")!;
    assert.equal(msg.text, "oi");
    assert.equal(msg.from, "5511999990000");
    assert.equal(
      bodies.find((b) => b.type === "delivery")?.status,
      "read",
      `delivery ${delivery.eventId}`,
    );
    for (const g of rx.got) {
      assert.equal(g.headers.get("authorization"), `Bearer ${FORWARD_TOKEN}`);
    }

    // Not this URL's account: neither applied nor forwarded.
    await makeStale(integrationId);
    const before = await stateOf(integrationId);
    const foreignText = `not yours ${crypto.randomUUID()}`;
    const foreign = await postEvent(secret, {
      type: "chat",
      account: "0000000009999",
      text: foreignText,
    });
    assert.equal(foreign.status, 200);
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(
      !rx.got.some((g) => g.text.includes(foreignText)),
      "an event naming another account is not forwarded",
    );
    assert.deepEqual(await stateOf(integrationId), before, "nor applied");
  } finally {
    await rx.close();
  }
});

test("forwarding: a receiver down, failing or hanging never delays the platform's 200", async () => {
  const { session, integrationId, secret } = await connectedNumber();

  // Down (nothing listens): the state is still updated, the 200 is quick, the forward retried
  // within its bounds.
  const down = await postEvent(secret, {
    type: "offline",
    account: session,
    timestamp: Date.now(),
  });
  assert.equal(down.status, 200);
  // Quick even on a busy machine; the hanging receiver below is what proves no waiting.
  assert.ok(down.ms < 2_500, `answered in ${down.ms} ms`);
  assert.equal((await stateOf(integrationId)).connection, "offline");
  const downLine = await forwardLine(down.json.request_id as string);
  assert.equal(downLine.ok, false);
  assert.equal(downLine.status, 0);
  assert.equal(downLine.attempts, 3, "WPP_EVENTS_FORWARD_ATTEMPTS, not more");
  assert.equal(downLine.level, "error");
  assert.equal(downLine.integration_id, integrationId);

  // Each request below is marked: forwards of earlier events may still be retrying meanwhile.
  const marked = (rx: ForwardReceiver, marker: string) =>
    rx.got.filter((g) => g.text.includes(marker));

  // Failing with 503: retried, three requests in all.
  let rx = openForwardReceiver(() => new Response("busy", { status: 503 }));
  try {
    const marker = crypto.randomUUID();
    const r = await postEvent(secret, { type: "chat", account: session, text: marker });
    assert.equal(r.status, 200);
    const line = await forwardLine(r.json.request_id as string);
    assert.deepEqual([line.ok, line.status, line.attempts], [false, 503, 3]);
    assert.equal(marked(rx, marker).length, 3);
  } finally {
    await rx.close();
  }

  // Refusing with 400: final at once.
  rx = openForwardReceiver(() => new Response("no", { status: 400 }));
  try {
    const marker = crypto.randomUUID();
    const r = await postEvent(secret, { type: "chat", account: session, text: marker });
    const line = await forwardLine(r.json.request_id as string);
    assert.deepEqual([line.ok, line.status, line.attempts], [false, 400, 1]);
    assert.equal(marked(rx, marker).length, 1);
  } finally {
    await rx.close();
  }

  // Hanging on the first attempt (cut at WPP_EVENTS_FORWARD_TIMEOUT_MS), answering the second.
  const marker = crypto.randomUUID();
  rx = openForwardReceiver((_n, req) =>
    req.text.includes(marker) && marked(rx, marker).length === 1 ? hang(rx) : new Response("ok")
  );
  try {
    const r = await postEvent(secret, {
      type: "connected",
      account: session,
      timestamp: Date.now(),
      marker,
    });
    assert.equal(r.status, 200);
    // The first forward attempt hangs for WPP_EVENTS_FORWARD_TIMEOUT_MS (3 s).
    assert.ok(r.ms < 2_500, `the 200 did not wait for the hanging receiver (${r.ms} ms)`);
    assert.equal((await stateOf(integrationId)).connection, "connected");
    const line = await forwardLine(r.json.request_id as string, 10_000);
    assert.deepEqual([line.ok, line.status, line.attempts], [true, 200, 2]);
    assert.ok((line.ms as number) >= 3_000, `the first attempt waited its timeout (${line.ms} ms)`);
    const mine = marked(rx, marker);
    assert.equal(mine.length, 2);
    assert.deepEqual(mine[0].body, mine[1].body, "the retry sends the same bytes");
  } finally {
    await rx.close();
  }
});

/** wpp-webhook's `msg: "forward"` line of a request. */
function forwardLine(requestId: string, timeoutMs = 5_000) {
  return waitFor(
    `the forward line of ${requestId}`,
    async () =>
      (await jsonLogLines("wpp-webhook")).find((l) =>
        l.msg === "forward" && l.request_id === requestId
      ),
    timeoutMs,
    100,
  );
}

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

test("wpp-webhook's log lines: one per request, and not one secret or QR in any of them", async () => {
  // A last request, so the scan below includes an accepted QR event's line.
  const { session, integrationId, secret } = await connectedNumber();
  const qr = `2@last-${crypto.randomUUID()}`;
  qrsSeen.add(qr);
  const r = await postEvent(secret, { type: "qr", account: session, qr, timestamp: Date.now() });
  assert.equal(r.status, 200);
  const line = await logLineOf("wpp-webhook", r.json.request_id as string);
  assert.equal(line.event, "qr");
  assert.equal(line.connection, "qr");
  assert.equal(line.applied, true);
  assert.equal(line.integration_id, integrationId);

  const lines = await jsonLogLines("wpp-webhook");
  assert.ok(lines.length >= 20, `the whole file's traffic is scanned (${lines.length} lines)`);
  const all = JSON.stringify(lines);
  const sim_ = await sim.state({ reveal: true });
  for (const s of sim_.sessions) {
    secretsSeen.add(s.apiKey);
    if (s.qr) qrsSeen.add(s.qr);
  }
  for (const t of sim_.tokens) secretsSeen.add(t.token);
  const forbidden = [
    ...secretsSeen,
    ...qrsSeen,
    FORWARD_TOKEN!,
    stack.functionEnv.WPP_SECRET,
    stack.serviceRoleKey,
  ];
  assert.ok(forbidden.length > 10);
  for (const secret of forbidden) {
    assert.ok(secret && secret.length >= 8, `a real value to look for: ${JSON.stringify(secret)}`);
    assert.ok(!all.includes(secret), `a secret or QR (${secret.slice(0, 6)}…) reached the log`);
  }
  // Every webhook secret stored right now, whichever test made it.
  const [{ secrets }] = await sql<{ secrets: string[] }[]>`
    select coalesce(array_agg(webhook_secret), '{}') as secrets from public.wpp_integration_state
     where webhook_secret is not null`;
  assert.ok(secrets.length >= 5, "the secrets of this file's numbers at least");
  for (const secret of secrets) {
    assert.ok(!all.includes(secret), "a webhook secret reached the log");
  }
});

test("teardown: close the database connection", async () => {
  await closeDb();
});
