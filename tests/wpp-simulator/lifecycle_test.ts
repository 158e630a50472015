import assert from "node:assert/strict";
import { SimulatorAdmin } from "../../dev/wpp-simulator/admin-client.ts";
import type { WebhookPayload } from "../../dev/wpp-simulator/types.ts";
import { WppPlatformClient } from "../../supabase/functions/_shared/wpp/mod.ts";
import { eventually, QUICK } from "../wpp-client/helpers.ts";
import { eventTest, receivedAtLeast, type Receiver, startReceiver } from "./_receiver.ts";

/** Waits for an event of this type that arrived after the first `after` ones. */
function nextOfType(rx: Receiver, type: string, after: number): Promise<WebhookPayload> {
  return eventually(
    () => rx.received.slice(after).find((r) => r.body.type === type)?.body,
    `a ${type} event`,
    3_000,
  );
}

function qrsOf(rx: Receiver): string[] {
  return rx.received.map((r) => r.body.qr).filter((qr): qr is string => qr !== undefined);
}

function assertClean(lines: string[], secrets: string[]): void {
  for (const secret of secrets) {
    assert.ok(secret.length >= 8, `too short to search for: ${secret}`);
    const leak = lines.findIndex((line) => line.includes(secret));
    // Only the line's number: printing the line would print what leaked into it.
    assert.equal(leak, -1, `log line ${leak} holds a QR, the webhook URL or a secret`);
  }
}

const logged: string[] = [];

eventTest("lifecycle: rotation, scan and stop emit events; logs hold no QR or URL", async (t) => {
  const first = (await t.session.startAccount()).qr!;
  const rotated = await eventually(
    () => new Set(qrsOf(t.rx)).size >= 3 ? qrsOf(t.rx) : undefined,
    "three rotated QRs",
  );
  assert.equal(rotated[0], first);
  assert.ok(t.rx.received.every((r) => r.body.type === "qr" && r.body.account === t.id));

  let seen = t.rx.received.length;
  await t.admin.scan(t.id);
  await nextOfType(t.rx, "connected", seen);
  seen = t.rx.received.length;
  await t.session.stop();
  await nextOfType(t.rx, "disconnected", seen);

  // Faulted deliveries log too: a drop, a 503 retried, a timeout, a refused connection.
  await t.admin.setEventFault({ kind: "drop", times: 1 });
  await t.admin.emitEvent(t.id, { type: "qr", qr: "2@dropped-qr-value,xyz" });
  t.rx.respond = async (n) => {
    if (n % 2 === 0) await t.rx.sleep(400);
    return new Response(null, { status: 503 });
  };
  await t.admin.setEventFault({ kind: "retry", attempts: 2, timeoutMs: 200 });
  await t.admin.emitEvent(t.id, { type: "qr", qr: "2@retried-qr-value,xyz" });
  const dead = startReceiver();
  await dead.close();
  const other = await t.newSession();
  await other.session.registerWebhook(dead.url);
  const otherQr = (await other.session.startAccount()).qr!;
  const webhookLines = await eventually(() => {
    const lines = logged.filter((l) => JSON.parse(l).event === "webhook");
    return lines.some((l) => l.includes("TimeoutError")) &&
        lines.some((l) => JSON.parse(l).session === other.id)
      ? lines
      : undefined;
  }, "the faulted deliveries' log lines");
  const parsed = webhookLines.map((l) => JSON.parse(l));
  assert.ok(parsed.some((l) => l.dropped === true));
  assert.ok(parsed.some((l) => l.status === 503));
  assert.ok(parsed.some((l) => l.session === other.id && l.error));

  const state = await t.admin.state({ reveal: true });
  const qrs = [...qrsOf(t.rx), otherQr, "2@dropped-qr-value,xyz", "2@retried-qr-value,xyz"];
  assertClean(logged, [
    ...qrs,
    ...state.sessions.map((s) => s.qr).filter((q): q is string => q !== null),
    t.rx.secret,
    dead.secret,
    "/hooks/wpp/",
  ]);
}, { qrRotateMs: 40, log: (line) => logged.push(JSON.stringify(line)) });

Deno.test("lifecycle: the CLI's WPP_SIM_QR_ROTATE_MS emits qr events; its log stays clean", async () => {
  const secret = `cli-secret-${crypto.randomUUID()}`;
  const rx = startReceiver();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "dev/wpp-simulator/main.ts", "--port", "0"],
    env: { WPP_SECRET: secret, WPP_SIM_QR_ROTATE_MS: "50", WPP_SIM_TOKEN_TTL: "60" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const readAll = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      out += value;
    }
  })();
  let stopped = false;
  try {
    const url = await eventually(
      () => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1],
      "the listening line",
      10_000,
    );
    const admin = new SimulatorAdmin(url);
    const client = new WppPlatformClient({ baseUrl: url, secret, ...QUICK });
    const created = await client.createClient("org-cli-events");
    const session = client.forSession(created);
    await session.registerWebhook(rx.url);
    const first = (await session.startAccount()).qr!;
    await eventually(() => new Set(qrsOf(rx)).size >= 3 || undefined, "rotated QRs", 3_000);
    assert.equal(qrsOf(rx)[0], first);

    let seen = rx.received.length;
    await admin.scan(created.session);
    await nextOfType(rx, "connected", seen);
    seen = rx.received.length;
    await session.stop();
    await nextOfType(rx, "disconnected", seen);

    await admin.setVariants({ offlineEvent: "logout", connectedEvent: "ready" });
    await session.startAccount();
    seen = rx.received.length;
    await admin.scan(created.session);
    await nextOfType(rx, "ready", seen);
    await admin.disconnect(created.session);
    await nextOfType(rx, "logout", seen);
    await admin.sendMessage(created.session, { from: "5511999990000", text: "hello" });
    await receivedAtLeast(rx, seen + 3);
    const report = await admin.burst({ session: created.session, count: 5 });
    assert.equal(report.delivered, 5);

    child.kill("SIGTERM");
    stopped = true;
    assert.equal((await child.status).code, 0);
    await readAll;
    const lines = out.trim().split("\n").slice(1);
    const parsed = lines.map((l) => JSON.parse(l));
    const webhookLines = parsed.filter((l) => l.event === "webhook");
    // Bursts log one summary line instead of one per delivery.
    assert.equal(webhookLines.length, rx.received.length - 5);
    assert.ok(webhookLines.every((l) => l.ok && l.status === 200 && l.eventId));
    assert.equal(parsed.filter((l) => l.event === "burst").length, 1);
    assertClean(lines, [...qrsOf(rx), rx.secret, secret, created.apiKey, "/hooks/wpp/"]);
  } finally {
    if (!stopped) child.kill("SIGTERM");
    await child.status;
    await readAll;
    await rx.close();
  }
});
