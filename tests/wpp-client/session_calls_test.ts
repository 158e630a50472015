import assert from "node:assert/strict";
import type { Variants } from "../../dev/wpp-simulator/types.ts";
import { simTest } from "./helpers.ts";

const QR_FIELDS: Variants["qrField"][] = ["qr", "qrCode", "qrcode", "data.qr"];

simTest("start: asks for a scan with a new QR each time", async ({ newSession, admin }) => {
  const { session, id } = await newSession();
  const first = await session.startAccount();
  assert.equal(first.state, "qr");
  assert.equal(first.raw, "qr");
  assert.ok(first.qr?.startsWith("2@"));
  const second = await session.startAccount();
  assert.notEqual(second.qr, first.qr);
  const state = await admin.state();
  assert.equal(state.sessions.find((s) => s.session === id)?.qr, second.qr);
});

for (const qrField of QR_FIELDS) {
  simTest(`start: finds the QR under ${qrField}`, async ({ newSession, admin }) => {
    await admin.setVariants({ qrField });
    const { session } = await newSession();
    const started = await session.startAccount();
    assert.equal(started.state, "qr");
    assert.ok(started.qr?.startsWith("2@"));
  });

  simTest(`qr: finds the QR under ${qrField}`, async ({ newSession, admin }) => {
    await admin.setVariants({ qrField });
    const { session, id } = await newSession();
    await session.startAccount();
    const qr = await session.getQr();
    assert.equal(qr, (await admin.state()).sessions.find((s) => s.session === id)?.qr);
  });
}

for (const startAnswer of ["starting", "pending"] as const) {
  simTest(`start: "${startAnswer}" means not connected yet`, async ({ newSession, admin }) => {
    await admin.setVariants({ startAnswer, stateField: "state" });
    const { session } = await newSession();
    const started = await session.startAccount();
    assert.deepEqual(started, { state: "starting", raw: startAnswer });
    // The QR is still there to fetch.
    assert.ok((await session.getQr())?.startsWith("2@"));
  });
}

for (const connectedWord of ["connected", "ready"] as const) {
  for (const stateField of ["status", "state"] as const) {
    simTest(`start/status: "${connectedWord}" in ${stateField} is connected`, async (h) => {
      await h.admin.setVariants({ connectedWord, stateField });
      const { session, id } = await h.newSession();
      await session.startAccount();
      await h.admin.scan(id);
      assert.deepEqual(await session.startAccount(), { state: "connected", raw: connectedWord });
      assert.deepEqual(await session.accountStatus(), {
        connected: true,
        status: connectedWord,
      });
    });
  }
}

simTest("status: follows the session's life", async ({ newSession, admin }) => {
  const { session, id } = await newSession();
  assert.deepEqual(await session.accountStatus(), { connected: false, status: "starting" });
  await session.startAccount();
  assert.deepEqual(await session.accountStatus(), { connected: false, status: "qr" });
  await admin.scan(id);
  assert.deepEqual(await session.accountStatus(), { connected: true, status: "connected" });
  await session.stop();
  assert.deepEqual(await session.accountStatus(), { connected: false, status: "offline" });
});

simTest("qr: null before start and after the scan", async ({ newSession, admin }) => {
  const { session, id } = await newSession();
  assert.equal(await session.getQr(), null);
  await session.startAccount();
  assert.ok(await session.getQr());
  await admin.scan(id);
  assert.equal(await session.getQr(), null);
});

simTest("qr: a data URL is returned as it is", async ({ newSession, admin }) => {
  await admin.setVariants({ qrFormat: "data-url", qrField: "qrcode" });
  const { session } = await newSession();
  const started = await session.startAccount();
  assert.ok(started.qr?.startsWith("data:image/png;base64,"));
  const qr = await session.getQr() ?? "";
  assert.ok(qr.startsWith("data:image/png;base64,"));
  assert.ok(atob(qr.slice("data:image/png;base64,".length)).startsWith("2@"));
});

simTest("webhook: the platform keeps the URL", async ({ newSession, admin }) => {
  const { session, id } = await newSession();
  await session.registerWebhook("https://hooks.example.test/wpp?key=s3cr3t-hook-key");
  const revealed = await admin.state({ reveal: true });
  assert.equal(
    revealed.sessions.find((s) => s.session === id)?.webhookUrl,
    "https://hooks.example.test/wpp?key=s3cr3t-hook-key",
  );
  const masked = await admin.state();
  assert.equal(masked.sessions[0].webhookUrl, "https://hooks.example.test/***");
});

simTest("stop: the session goes offline", async ({ newSession, admin }) => {
  const { session, id } = await newSession();
  await session.startAccount();
  await session.stop();
  assert.equal((await admin.state()).sessions.find((s) => s.session === id)?.state, "offline");
  // Stopping again changes nothing and is not an error.
  await session.stop();
});

simTest("onCall: one event per HTTP attempt with its duration", async ({ newSession }) => {
  const { session, events } = await newSession();
  await session.startAccount();
  assert.deepEqual(events.map((e) => [e.op, e.ok, e.status, e.attempt]), [
    ["create", true, 200, 1],
    ["token", true, 200, 1],
    ["start", true, 200, 1],
  ]);
  assert.ok(events.every((e) => typeof e.ms === "number" && e.ms >= 0));
});
