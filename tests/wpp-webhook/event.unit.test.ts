// wpp-webhook's reading of the platform's events (event.ts): every known shape of the type, the
// account, the QR and the time, and what is not believed.
import assert from "node:assert/strict";
import { readEvent } from "../../supabase/functions/wpp-webhook/event.ts";

const NOW = Date.UTC(2031, 4, 6, 7, 8, 9);
const S = 1_700_000_000; // 2023-11-14T22:13:20Z, in seconds
const MS = S * 1000;
const QR = "2@pairing-string,AbCd==";

Deno.test("the type word: `type` or `event`, any case; session words map to a connection", () => {
  const cases: [Record<string, unknown>, string, string | null][] = [
    [{ type: "qr", qr: QR }, "qr", "qr"],
    [{ event: "qr", qr: QR }, "qr", "qr"],
    [{ type: "QR", qr: QR }, "qr", "qr"],
    [{ type: "connected" }, "connected", "connected"],
    [{ event: "ready" }, "ready", "connected"],
    [{ type: " Ready " }, "ready", "connected"],
    [{ type: "offline" }, "offline", "offline"],
    [{ event: "disconnected" }, "disconnected", "offline"],
    [{ type: "logout" }, "logout", "offline"],
    [{ type: "delivery", messageId: "m1", status: "read" }, "delivery", null],
    [{ type: "chat", from: "5511", text: "hi" }, "chat", null],
    [{ from: "5511", text: "no word at all" }, "unknown", null],
    // `type` wins when both are there (an inbound message's `type` is its kind).
    [{ type: "chat", event: "connected" }, "chat", null],
  ];
  for (const [body, type, connection] of cases) {
    const e = readEvent({ account: "0000000000001", ...body }, NOW);
    assert.ok(e, JSON.stringify(body));
    assert.equal(e.type, type, JSON.stringify(body));
    assert.equal(e.connection, connection, JSON.stringify(body));
    assert.equal(e.account, "0000000000001");
  }
});

Deno.test("the account: `account` or `data.account`, a string or a number", () => {
  assert.equal(
    readEvent({ type: "connected", account: "0000000000001" }, NOW)?.account,
    "0000000000001",
  );
  assert.equal(
    readEvent({ type: "connected", data: { account: "0000000000002" } }, NOW)?.account,
    "0000000000002",
  );
  assert.equal(readEvent({ type: "connected", account: 42 }, NOW)?.account, "42");
  assert.equal(readEvent({ type: "connected", account: " 7 " }, NOW)?.account, "7");
  assert.equal(
    readEvent({ type: "connected", account: "1", data: { account: "2" } }, NOW)?.account,
    "1",
    "the top-level account wins",
  );
  assert.equal(readEvent({ type: "connected" }, NOW)?.account, null, "none: the URL decides");
  // Whose event it is cannot be told: refused rather than guessed.
  for (const account of ["", "   ", -1, 1.5, { id: "1" }, ["1"], "x".repeat(129)]) {
    assert.equal(readEvent({ type: "connected", account }, NOW), null, JSON.stringify(account));
    assert.equal(readEvent({ type: "connected", data: { account } }, NOW), null);
  }
});

Deno.test("the QR: `data.qr`, then `qrcode`, then `qr`; only on qr events", () => {
  assert.equal(readEvent({ type: "qr", data: { qr: "A" }, qrcode: "B", qr: "C" }, NOW)?.qr, "A");
  assert.equal(readEvent({ type: "qr", qrcode: "B", qr: "C" }, NOW)?.qr, "B");
  assert.equal(readEvent({ type: "qr", qr: "C" }, NOW)?.qr, "C");
  const dataUrl = "data:image/png;base64,iVBORw0KGgo=";
  assert.equal(readEvent({ event: "qr", data: { qr: dataUrl } }, NOW)?.qr, dataUrl);
  // A rendered QR is kilobytes of base64: as long as the body fits its cap, it is a QR.
  const png = `data:image/png;base64,${"iVBORw0KGgoAAAANSUhEUgAA".repeat(400)}`;
  assert.ok(png.length > 9_000);
  assert.equal(readEvent({ type: "qr", qrcode: png }, NOW)?.qr, png);
  assert.equal(readEvent({ type: "qr", data: { qr: png } }, NOW)?.connection, "qr");
  // A qr event without a QR tells nothing about the connection.
  for (const body of [{ type: "qr" }, { type: "qr", qr: "" }, { type: "qr", qrcode: null }]) {
    const e = readEvent(body, NOW);
    assert.ok(e, JSON.stringify(body));
    assert.equal(e.connection, null);
    assert.equal(e.qr, null);
  }
  // A QR riding on another event is not stored as one.
  const linked = readEvent({ type: "connected", qr: QR }, NOW);
  assert.equal(linked?.connection, "connected");
  assert.equal(linked?.qr, null);
});

Deno.test("the time: seconds, milliseconds, numeric strings, ISO; `timestamp` or `data.timestamp`", () => {
  const at = (t: unknown, where: "top" | "data" = "top") =>
    readEvent(
      where === "top"
        ? { type: "connected", timestamp: t }
        : { type: "connected", data: { timestamp: t } },
      NOW,
    )?.at;
  assert.equal(at(S), MS, "seconds");
  assert.equal(at(MS), MS, "milliseconds");
  assert.equal(at(S + 0.25), MS + 250, "fractional seconds");
  assert.equal(at(String(S)), MS, "seconds as a string");
  assert.equal(at(String(MS)), MS, "milliseconds as a string");
  assert.equal(at("2023-11-14T22:13:20Z"), MS, "ISO");
  assert.equal(at("2023-11-14T23:13:20+01:00"), MS, "ISO with an offset");
  assert.equal(at(S, "data"), MS, "data.timestamp");
  assert.equal(
    readEvent({ type: "connected", timestamp: S, data: { timestamp: S + 5 } }, NOW)?.at,
    MS,
    "the top-level time wins",
  );
  assert.equal(at(undefined), null, "no time: the database's clock decides");
});

Deno.test("a clock far ahead is clamped to a minute from now; unreadable times count as absent", () => {
  const ahead = NOW + 86_400_000;
  assert.equal(readEvent({ type: "qr", qr: QR, timestamp: ahead }, NOW)?.at, NOW + 60_000);
  assert.equal(readEvent({ type: "qr", qr: QR, timestamp: ahead / 1000 }, NOW)?.at, NOW + 60_000);
  assert.equal(
    readEvent({ type: "qr", qr: QR, timestamp: new Date(ahead).toISOString() }, NOW)?.at,
    NOW + 60_000,
  );
  assert.equal(readEvent({ type: "qr", qr: QR, timestamp: NOW + 30_000 }, NOW)?.at, NOW + 30_000);
  for (const t of [null, 0, -5, "soon", "", "x".repeat(65), true, { s: 1 }]) {
    const e = readEvent({ type: "chat", account: "1", timestamp: t }, NOW);
    assert.ok(e, `an event with timestamp ${JSON.stringify(t)} is still an event`);
    assert.equal(e.at, null, JSON.stringify(t));
  }
});

Deno.test("fields this project reads but cannot use do not make the event unreadable", () => {
  // Seen in other gateways' payloads: nulls where nothing applies, numeric message types.
  for (
    const body of [
      { type: "connected", account: "1", qrcode: null, qr: null },
      { type: 3, account: "1", text: "numeric kind" },
      { type: "chat", account: "1", data: null },
      { type: "chat", account: "1", data: "not an object" },
      { type: "chat", account: "1", data: [1, 2] },
      { type: "", event: "ready", account: "1" },
    ]
  ) {
    assert.ok(readEvent(body, NOW), JSON.stringify(body));
  }
  assert.equal(readEvent({ type: "", event: "ready", account: "1" }, NOW)?.connection, "connected");
  assert.equal(readEvent({ type: 3, account: "1" }, NOW)?.type, "unknown");
});

Deno.test("not an object: no event", () => {
  for (const json of [null, [], [{ type: "qr" }], "qr", 1, true]) {
    assert.equal(readEvent(json, NOW), null, JSON.stringify(json));
  }
});
