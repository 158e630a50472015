import assert from "node:assert/strict";
import { SimulatorAdmin } from "../../dev/wpp-simulator/admin-client.ts";
import type { WebhookPayload } from "../../dev/wpp-simulator/types.ts";
import { eventually, rejectsWith, simTest } from "./helpers.ts";

simTest("simulator: sessions are numbered in sequence and reset starts over", async (h) => {
  const { client } = h.client();
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await client.createClient(`org-${i}`)).session);
  assert.deepEqual(ids, ["0000000000001", "0000000000002", "0000000000003"]);
  await h.admin.setFault({ op: "status", kind: "hang" });
  await h.admin.setVariants({ qrField: "qrcode" });

  await h.admin.reset();
  const state = await h.admin.state();
  assert.deepEqual([state.sessions.length, state.tokens.length, state.faults.length], [0, 0, 0]);
  assert.equal(state.variants.qrField, "qr");
  assert.equal((await h.admin.calls()).create, 0);
  assert.equal((await client.createClient("org-again")).session, "0000000000001");
});

simTest("simulator: scan connects, disconnect takes it offline", async (h) => {
  const { session, id } = await h.newSession();
  await assert.rejects(h.admin.scan(id), /409/);
  await session.startAccount();
  const scanned = await h.admin.scan(id);
  assert.equal(scanned.state, "connected");
  assert.equal((await session.accountStatus()).connected, true);
  await h.admin.disconnect(id);
  assert.deepEqual(await session.accountStatus(), { connected: false, status: "offline" });
  await assert.rejects(h.admin.scan("0000000000099"), /404/);
});

simTest("simulator: webhook events reach the registered URL", async (h) => {
  const received: { url: string; body: WebhookPayload }[] = [];
  const receiver = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      received.push({ url: req.url, body: await req.json() });
      return new Response("ok");
    },
  );
  try {
    const { session, id } = await h.newSession();
    const hook = `http://127.0.0.1:${receiver.addr.port}/hooks/wpp?secret=hook-secret`;
    await session.registerWebhook(hook);
    const started = await session.startAccount();
    const qrEvent = await eventually(() => received.find((r) => r.body.type === "qr"), "qr event");
    const { timestamp, ...qrBody } = qrEvent.body;
    assert.deepEqual(qrBody, { type: "qr", account: id, qr: started.qr });
    assert.ok(typeof timestamp === "number" && Math.abs(Date.now() - timestamp) < 5_000);
    assert.equal(qrEvent.url, hook);

    await h.admin.scan(id);
    await eventually(() => received.find((r) => r.body.type === "connected"), "connected event");
    await session.stop();
    const gone = await eventually(
      () => received.find((r) => r.body.type === "disconnected"),
      "disconnected event",
    );
    assert.deepEqual(gone.body, {
      type: "disconnected",
      account: id,
      timestamp: gone.body.timestamp,
    });
    const deliveries = (await h.admin.state()).deliveries;
    assert.deepEqual(deliveries.map((d) => [d.type, d.ok]), [
      ["qr", true],
      ["connected", true],
      ["disconnected", true],
    ]);
  } finally {
    await receiver.shutdown();
  }
});

simTest("simulator: a dead webhook receiver is recorded, nothing more", async (h) => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = probe.addr.port;
  probe.close();
  const { session } = await h.newSession();
  await session.registerWebhook(`http://127.0.0.1:${deadPort}/gone`);
  await session.startAccount();
  const delivery = await eventually(async () => (await h.admin.state()).deliveries[0], "delivery");
  assert.equal(delivery.ok, false);
  assert.ok(delivery.error);
  assert.equal((await session.accountStatus()).status, "qr");
});

simTest("simulator: a token only works on its own session", async (h) => {
  const first = await h.newSession();
  const second = await first.client.createClient("org-other");
  const mixed = first.client.forSession({ apiKey: first.apiKey, session: second.session });
  const e = await rejectsWith(mixed.accountStatus(), "platform_rejected");
  assert.equal(e.status, 403);
  const raw = await fetch(`${h.sim.url}/api/accounts/start`, {
    method: "POST",
    headers: { authorization: `Bearer ${(await first.session.getToken()).token}` },
    body: JSON.stringify({ number: second.session }),
  });
  assert.equal(raw.status, 403);
  assert.deepEqual(await raw.json(), { error: "Forbidden" });
});

simTest("simulator: the platform's own error answers", async (h) => {
  const unknown = await fetch(`${h.sim.url}/api/nowhere`, { method: "POST" });
  assert.equal(unknown.status, 404);
  assert.match(unknown.headers.get("content-type") ?? "", /text\/html/);
  assert.match(await unknown.text(), /<pre>Cannot POST \/api\/nowhere<\/pre>/);

  const badSecret = await fetch(`${h.sim.url}/api/integrations/wpp/create`, {
    method: "POST",
    headers: { authorization: "Bearer nope" },
    body: JSON.stringify({ organizationId: "o" }),
  });
  assert.equal(badSecret.status, 401);
  assert.deepEqual(await badSecret.json(), { error: "Invalid token" });

  const badKey = await fetch(`${h.sim.url}/auth/token`, {
    method: "POST",
    body: JSON.stringify({ apiKey: "wpk_unknown" }),
  });
  assert.equal(badKey.status, 403);
  assert.deepEqual(await badKey.json(), { error: "Invalid API key" });

  const noToken = await fetch(`${h.sim.url}/api/accounts/0000000000001/status`);
  assert.equal(noToken.status, 401);
  assert.deepEqual(await noToken.json(), { error: "Invalid token" });
  assert.equal((await h.admin.calls()).unknown, 1);
});

simTest("simulator: state masks credentials unless revealed", async (h) => {
  const { apiKey, session } = await h.newSession();
  const token = (await session.getToken()).token;
  const masked = JSON.stringify(await h.admin.state());
  assert.ok(!masked.includes(apiKey) && !masked.includes(token));
  const revealed = await h.admin.state({ reveal: true });
  assert.equal(revealed.sessions[0].apiKey, apiKey);
  assert.equal(revealed.tokens[0].token, token);
});

simTest("simulator: calls are counted per operation and per route", async (h) => {
  const { session } = await h.newSession();
  await session.accountStatus();
  await session.accountStatus();
  const calls = await h.admin.calls();
  assert.deepEqual(
    [calls.create, calls.token, calls.status, calls.start],
    [1, 1, 2, 0],
  );
  assert.equal(calls.routes["GET /api/accounts/:session/status"], 2);
  assert.equal(calls.routes["POST /api/integrations/wpp/create"], 1);
});

simTest("simulator: the admin API refuses bad fault and variant bodies", async (h) => {
  await assert.rejects(h.admin.setFault({ op: "status", kind: "status" }), /400/);
  await assert.rejects(h.admin.setFault({ kind: "hang" }), /400/);
  await assert.rejects(
    h.admin.setVariants({ qrField: "qr_code" } as unknown as { qrField: "qr" }),
    /400/,
  );
  const fault = await h.admin.setFault({ op: "qr", kind: "status", status: 500, times: 2 });
  assert.equal(fault.remaining, 2);
  await h.admin.clearFaults("qr");
  assert.deepEqual(await h.admin.faults(), []);
});

simTest("simulator: QRs on show rotate on a timer", async (h) => {
  const { session } = await h.newSession();
  const first = (await session.startAccount()).qr;
  const rotated = await eventually(async () => {
    const qr = await session.getQr();
    return qr !== first ? qr : undefined;
  }, "a rotated QR");
  assert.ok(rotated?.startsWith("2@"));
}, { qrRotateMs: 50 });

Deno.test("simulator: the CLI listens, serves and stops on SIGTERM", async () => {
  const envFile = await Deno.makeTempFile({ suffix: ".env" });
  try {
    await Deno.writeTextFile(envFile, 'WPP_SECRET="cli-test-secret-value"\nWPP_SIM_TOKEN_TTL=30\n');
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "dev/wpp-simulator/main.ts", "--port", "0", "--env-file", envFile],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
    }
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    assert.ok(url, `unexpected first line: ${out}`);
    const created = await fetch(`${url}/api/integrations/wpp/create`, {
      method: "POST",
      headers: { authorization: "Bearer cli-test-secret-value" },
      body: JSON.stringify({ organizationId: "org-cli" }),
    });
    assert.equal(created.status, 200);
    const { apiKey } = await created.json();
    const token = await (await fetch(`${url}/auth/token`, {
      method: "POST",
      body: JSON.stringify({ apiKey }),
    })).json();
    assert.equal(token.expiresIn, 30);
    assert.ok((await new SimulatorAdmin(url).calls()).token === 1);

    child.kill("SIGTERM");
    while (true) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
    }
    const status = await child.status;
    assert.equal(status.code, 0);
    const logLines = out.trim().split("\n").slice(1).map((l) => JSON.parse(l));
    assert.deepEqual(logLines.slice(0, 2).map((l) => [l.method, l.path, l.status]), [
      ["POST", "/api/integrations/wpp/create", 200],
      ["POST", "/auth/token", 200],
    ]);
    assert.ok(logLines.every((l) => typeof l.ms === "number"));
    assert.ok(!out.includes("cli-test-secret-value") && !out.includes(apiKey));
    assert.ok(!out.includes(token.token));
  } finally {
    await Deno.remove(envFile);
  }
});
