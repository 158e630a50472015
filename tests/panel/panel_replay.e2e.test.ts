// The CRM's «Подключить WhatsApp» panel, replayed call for call (/work/shared/crm-contract.md §2)
// through the panel's own HTTP helper (§3: its headers, its retries), signed in with supabase-js,
// against the stack with the simulator posting its webhook events to the real wpp-webhook:
// load, connect, poll every 2 s, scan, connected; a second number; «Попробовать снова» after a
// failed connect; «Отключить». The happy path must show no error card and make no refused or
// retried request, and "connected" must arrive through the webhook, not a platform status call.
import assert from "node:assert/strict";
import { crmHelper, type HelperResult } from "../_support/crm-helper.ts";
import { signIn, userClient } from "../_support/stack.ts";
import { closeDb, createOrg, sim } from "../_support/wpp.ts";
import { diffCalls, NO_CALLS, type OpCounts, test } from "../wpp-status/_e2e.ts";
import type { CallCounts } from "../../dev/wpp-simulator/admin-client.ts";

const TICK_MS = 2_000;
const MAX_TICKS = 10;

interface Logged {
  fn: string;
  phase: string;
  result: HelperResult;
  /** A failure this replay provokes on purpose. */
  expectedFailure: boolean;
}

interface Card {
  id: string;
  session: string | null;
  connection: string | null;
  /** What wpp-status {force:false} said on load; null for a row without a session. */
  status: string | null;
}

test("panel replay: connect, poll, scan, a second number, try again, disconnect", async () => {
  const password = `pw-${crypto.randomUUID()}`;
  const org = await createOrg("admin", { password });
  const auth = await signIn(org.user.email, password);
  assert.equal(auth.user.id, org.user.userId);
  const token = auth.access_token;
  const api = crmHelper({ token });
  const rest = userClient(token);

  const transcript: Logged[] = [];
  const platform: Record<string, OpCounts> = {};
  const timings: Record<string, number> = {};
  let phase = "load";
  let failing = false;
  let callsAt: CallCounts = await sim.calls();

  const enter = async (next: string) => {
    const now = await sim.calls();
    const delta = diffCalls(callsAt, now);
    platform[phase] = platform[phase] ? add(platform[phase], delta) : delta;
    callsAt = now;
    phase = next;
  };
  const post = async (fn: string, body: Record<string, unknown>) => {
    const result = await api.post(fn, body);
    transcript.push({ fn, phase, result, expectedFailure: failing });
    return result;
  };
  const get = async (fn: string, query: Record<string, string>) => {
    const result = await api.get(fn, query);
    transcript.push({ fn, phase, result, expectedFailure: failing });
    return result;
  };

  /** On load: the organisation's wpp rows from the REST view, then each one's stored status. */
  const load = async (): Promise<Card[]> => {
    const { data, error } = await rest
      .from("messenger_integrations_public")
      .select(
        "id, session, provider, messenger_type, is_active, is_primary, connection, created_at",
      )
      .eq("provider", "wpp")
      .eq("messenger_type", "whatsapp")
      .order("created_at");
    assert.equal(error, null, `the view refused: ${JSON.stringify(error)}`);
    const cards: Card[] = [];
    for (const row of data ?? []) {
      let status: string | null = null;
      if (row.session) {
        const r = await post("wpp-status", { session_name: row.session, force: false });
        assert.ok(r.ok, `load status: ${r.error}`);
        status = r.data!.status as string;
      }
      cards.push({ id: row.id, session: row.session, connection: row.connection, status });
    }
    return cards;
  };

  /** The button's label decides add_new. */
  const connectButton = (cards: Card[]) =>
    cards.length === 0 ? "Подключить WhatsApp" : "Подключить ещё один WhatsApp";

  /** Polls every 2 s (wpp-qr and wpp-status in parallel) until "connected"; scans after tick 1. */
  const pollUntilConnected = async (session: string, shownQr: string) => {
    let qrOnScreen = shownQr;
    let scannedAt = 0;
    let scannedAtEpoch = 0;
    // The panel's interval: a tick every 2 s from the connect's answer, however long each takes.
    const startedAt = performance.now();
    for (let tick = 1; tick <= MAX_TICKS; tick++) {
      const wait = startedAt + tick * TICK_MS - performance.now();
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      const [qr, st] = await Promise.all([
        get("wpp-qr", { session }),
        post("wpp-status", { session_name: session, force: true }),
      ]);
      assert.ok(qr.ok && st.ok, `tick ${tick}: ${qr.error ?? st.error}`);
      if (typeof qr.data!.qr === "string") qrOnScreen = qr.data!.qr;
      if (st.data!.status === "connected") {
        assert.ok(scannedAt > 0, "connected only after the scan");
        assert.equal(qr.data!.qr, null, "no QR once linked");
        // When the platform's event was stored, as opposed to when the next tick saw it.
        const [event] = await sim.deliveries({ session, type: "connected" });
        assert.equal(event?.status, 200, "connected came through the webhook");
        return {
          ticks: tick,
          scanToConnectedMs: Math.round(performance.now() - scannedAt),
          scanToWebhookMs: event.at + (event.ms ?? 0) - scannedAtEpoch,
        };
      }
      assert.equal(st.data!.status, "qr_issued", `tick ${tick}`);
      assert.equal(st.data!.qrcode, qrOnScreen, "wpp-status and wpp-qr show the same QR");
      if (tick === 1) {
        // The user scans the QR on screen with the phone.
        const shown = (await sim.state()).sessions.find((s) => s.session === session)?.qr;
        assert.equal(shown, qrOnScreen, "the QR on screen is the one the platform shows");
        scannedAtEpoch = Date.now();
        await sim.scan(session);
        scannedAt = performance.now();
      }
    }
    throw new Error(`not connected after ${MAX_TICKS} ticks`);
  };

  // 1. Load: nothing yet.
  let cards = await load();
  assert.deepEqual(cards, []);
  assert.equal(connectButton(cards), "Подключить WhatsApp");

  // 2. Connect; the QR; polling; the scan; connected.
  await enter("connect #1");
  const first = await post("wpp-create", { add_new: false });
  timings["click → QR #1"] = first.ms;
  assert.ok(first.ok, first.error ?? "");
  assert.equal(first.data!.status, "qr_issued");
  assert.equal(typeof first.data!.qrcode, "string");
  const s1 = first.data!.session as string;
  await enter("poll #1");
  const poll1 = await pollUntilConnected(s1, first.data!.qrcode as string);
  timings["scan → connected #1"] = poll1.scanToConnectedMs;
  timings["scan → webhook stored #1"] = poll1.scanToWebhookMs;

  // 3. Reload: one connected number; the button now adds another.
  await enter("load");
  cards = await load();
  assert.deepEqual(cards.map((c) => [c.session, c.status, c.connection]), [[
    s1,
    "connected",
    "connected",
  ]]);
  assert.equal(connectButton(cards), "Подключить ещё один WhatsApp");

  // 4. A second number: its own QR, its own scan; the first stays connected.
  await enter("connect #2");
  const second = await post("wpp-create", { add_new: true });
  timings["click → QR #2"] = second.ms;
  assert.ok(second.ok, second.error ?? "");
  assert.equal(second.data!.status, "qr_issued");
  const s2 = second.data!.session as string;
  assert.notEqual(s2, s1);
  assert.notEqual(second.data!.integration_id, first.data!.integration_id);
  await enter("poll #2");
  const poll2 = await pollUntilConnected(s2, second.data!.qrcode as string);
  timings["scan → connected #2"] = poll2.scanToConnectedMs;
  timings["scan → webhook stored #2"] = poll2.scanToWebhookMs;
  await enter("load");
  cards = await load();
  assert.deepEqual(cards.map((c) => [c.session, c.status]), [[s1, "connected"], [s2, "connected"]]);

  // 5. A connect that fails (the platform answers 503 to the create), then «Попробовать снова».
  await enter("failed connect");
  failing = true;
  await sim.setFault({ op: "create", kind: "status", status: 503, times: 1 });
  let failed: HelperResult;
  try {
    failed = await post("wpp-create", { add_new: true });
  } finally {
    await sim.clearFaults("create");
  }
  failing = false;
  assert.equal(failed.ok, false, "an error card");
  assert.deepEqual(
    failed.attempts.map((a) => a.status),
    [502, 409],
    "the helper retried the 502 once; the retry met the cooldown (409), which it never retries",
  );
  assert.match(failed.error!, /no new session is created until the cooldown ends/);
  await enter("try again");
  const again = await post("wpp-create", { add_new: false });
  assert.ok(again.ok, again.error ?? "");
  assert.equal(again.data!.status, "connected", "toast «WhatsApp уже подключен!»");
  assert.equal(again.data!.session, s1, "the organisation's primary number");

  // 6. «Отключить» the second number.
  await enter("disconnect");
  const off = await post("wpp-disconnect", { integration_id: second.data!.integration_id });
  assert.ok(off.ok, off.error ?? "");
  assert.equal(off.data!.success, true);
  await enter("load");
  cards = await load();
  const bySession = new Map(cards.map((c) => [c.session, c]));
  assert.equal(bySession.get(s1)?.status, "connected", "the first number is untouched");
  assert.equal(bySession.get(s2)?.status, "disconnected");
  assert.equal(bySession.get(s2)?.connection, "disconnected");
  await enter("end");

  // No error card and no refused or retried request anywhere but the provoked failure.
  const happy = transcript.filter((t) => !t.expectedFailure);
  for (const t of happy) {
    assert.ok(t.result.ok, `${t.phase} ${t.fn}: ${t.result.error}`);
    assert.equal(t.result.data?.success, true, `${t.phase} ${t.fn}: the panel reads success`);
    assert.deepEqual(
      t.result.attempts.map((a) => a.status),
      [200],
      `${t.phase} ${t.fn}: one attempt, no retry`,
    );
  }
  // "connected" came from the webhook: while polling, the platform was not asked for a status
  // (nor a QR, nor a start: the stored ones were fresh).
  for (const p of ["poll #1", "poll #2"]) {
    assert.deepEqual(platform[p], NO_CALLS, `${p}: ${JSON.stringify(platform[p])}`);
  }
  assert.deepEqual(pick(platform["connect #1"]), { create: 1, start: 1, status: 0 });
  assert.deepEqual(pick(platform["connect #2"]), { create: 1, start: 1, status: 0 });
  assert.equal(platform["failed connect"].create, 1, "one click, one create, despite the retry");
  assert.deepEqual(platform["try again"], NO_CALLS);
  assert.equal(platform["disconnect"].stop, 1);

  // The transcript summary.
  const perFunction: Record<string, { calls: number; attempts: number; maxMs: number }> = {};
  for (const t of transcript) {
    const f = perFunction[t.fn] ??= { calls: 0, attempts: 0, maxMs: 0 };
    f.calls++;
    f.attempts += t.result.attempts.length;
    f.maxMs = Math.max(f.maxMs, ...t.result.attempts.map((a) => a.ms));
  }
  const platformTotal = Object.values(platform).reduce(add, { ...NO_CALLS });
  console.log("\n--- panel replay transcript ---");
  console.log("calls per function:", JSON.stringify(perFunction));
  console.log("platform calls per phase:");
  for (const [p, c] of Object.entries(platform)) console.log(`  ${p.padEnd(16)} ${compact(c)}`);
  console.log(`platform calls in all: ${compact(platformTotal)}`);
  console.log(`ticks to connected: #1 ${poll1.ticks}, #2 ${poll2.ticks}`);
  for (const [k, v] of Object.entries(timings)) console.log(`${k}: ${v} ms`);
  console.log("--- end of transcript ---");
  assert.ok(timings["click → QR #1"] < 5_000);
  for (const n of [1, 2]) {
    assert.ok(timings[`scan → connected #${n}`] <= TICK_MS + 1_500, `#${n}: seen at the next tick`);
    assert.ok(timings[`scan → webhook stored #${n}`] < 1_000, `#${n}: the event came at once`);
  }
});

function add(a: OpCounts, b: OpCounts): OpCounts {
  const out = { ...a };
  for (const k of Object.keys(b) as (keyof OpCounts)[]) out[k] = (out[k] ?? 0) + b[k];
  return out;
}

function pick(c: OpCounts) {
  return { create: c.create, start: c.start, status: c.status };
}

function compact(c: OpCounts): string {
  return Object.entries(c).filter(([, n]) => n).map(([k, n]) => `${k}=${n}`).join(" ") || "none";
}

test("teardown: close the database connection", async () => {
  await closeDb();
});
