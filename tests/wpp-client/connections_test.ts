// How the client uses connections, seen on the wire, and how it tells a dead key from a proxy's
// refusal. Create travels alone on a connection of its own (Deno.createHttpClient, closed after
// the answer) and says `connection: close`: fetch re-sends a request whose reused keep-alive
// connection is cut before the answer, and a re-sent create would be a second platform client.
// Every other call is safe to repeat and keeps its connection alive.
import assert from "node:assert/strict";
import { rejectsWith, simTest } from "./helpers.ts";

interface WireRequest {
  method: string;
  path: string;
  connection: string | null;
  /** The client's port: requests with the same one came over the same TCP connection. */
  port: number;
}

/** A pass-through proxy in front of the simulator that records each request's connection. */
function wireRecorder(upstream: string) {
  const seen: WireRequest[] = [];
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    async (req, info) => {
      const url = new URL(req.url);
      seen.push({
        method: req.method,
        path: url.pathname,
        connection: req.headers.get("connection"),
        port: info.remoteAddr.port,
      });
      const headers = new Headers(req.headers);
      headers.delete("connection");
      const answer = await fetch(upstream + url.pathname + url.search, {
        method: req.method,
        headers,
        body: req.body ? await req.arrayBuffer() : undefined,
      });
      return new Response(await answer.arrayBuffer(), {
        status: answer.status,
        headers: answer.headers,
      });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    close: () => server.shutdown(),
  };
}

simTest(
  "connections: create goes alone with connection: close, other calls keep theirs",
  async (h) => {
    const wire = wireRecorder(h.sim.url);
    try {
      const { client } = h.client({ baseUrl: wire.url });
      const first = await client.createClient("org-wire");
      const session = client.forSession({ apiKey: first.apiKey, session: first.session });
      await session.getToken();
      await session.registerWebhook("https://hooks.example.test/w");
      await session.startAccount();
      await session.accountStatus();
      await session.getQr();
      await client.createClient("org-wire");
      await session.accountStatus();
      await session.stop();

      const creates = wire.seen.filter((r) => r.path.endsWith("/wpp/create"));
      const others = wire.seen.filter((r) => !r.path.endsWith("/wpp/create"));
      assert.equal(creates.length, 2);
      assert.equal(others.length, 7);
      for (const c of creates) assert.equal(c.connection, "close", "create says connection: close");
      for (const o of others) assert.notEqual(o.connection, "close", `${o.path} keeps alive`);
      // Each create had a connection nobody else used, before or after it.
      for (const c of creates) {
        assert.equal(wire.seen.filter((r) => r.port === c.port).length, 1, "create's connection");
      }
      // The other calls, create or not in between, rode one kept-alive connection.
      assert.equal(new Set(others.map((o) => o.port)).size, 1, JSON.stringify(wire.seen));
    } finally {
      await wire.close();
    }
  },
);

simTest("connections: a create cut after the platform acted is never sent twice", async (h) => {
  const { client, events } = h.client();
  // Warm the pool: a kept-alive connection is there for fetch to reuse, and to re-send on.
  const first = await client.createClient("org-a");
  const session = client.forSession({ apiKey: first.apiKey, session: first.session });
  await session.getToken();
  await session.accountStatus();
  for (let i = 0; i < 3; i++) {
    await h.admin.setFault({ op: "create", kind: "close", phase: "after", times: 1 });
    await rejectsWith(client.createClient(`org-lost-${i}`), "platform_unreachable");
    await session.accountStatus();
  }
  const state = await h.admin.state();
  // One session per create call the client made: the cut ones were created once, not twice.
  assert.equal((await h.admin.calls()).create, 4);
  assert.deepEqual(
    state.sessions.map((s) => s.organizationId).sort(),
    ["org-a", "org-lost-0", "org-lost-1", "org-lost-2"],
  );
  assert.deepEqual(
    events.filter((e) => e.op === "create").map((e) => [e.attempt, e.ok]),
    [[1, true], [1, false], [1, false], [1, false]],
  );
});

simTest("connections: a create that hangs after acting is one create, one timeout", async (h) => {
  const { client } = h.client({ timeoutMs: 300 });
  await client.createClient("org-warm");
  await h.admin.setFault({ op: "create", kind: "hang", phase: "after", times: 1 });
  await rejectsWith(client.createClient("org-hang"), "platform_timeout");
  assert.equal((await h.admin.calls()).create, 2);
  assert.equal((await h.admin.state()).sessions.length, 2);
});

// ---------------------------------------------------------------------------------------------
// Token refusals: the platform's own word condemns a key, a proxy's page does not.

const NGINX_403 = "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n" +
  "<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>";

simTest("refusal: an HTML 403 on token is a transient platform_error, retried", async (h) => {
  const { session, events } = await h.newSession();
  await h.admin.setVariants({ errorBody: "text" });
  await h.admin.setFault({
    op: "token",
    kind: "status",
    status: 403,
    message: NGINX_403,
    times: 1,
  });
  const token = await session.getToken();
  assert.ok(token.token, "the second attempt got a token");
  assert.deepEqual(
    events.filter((e) => e.op === "token").map((e) => [e.attempt, e.ok, e.status, e.code]),
    [[1, false, 403, "platform_error"], [2, true, 200, undefined]],
  );
});

simTest(
  "refusal: an HTML 403 that persists ends as platform_error, never invalid_api_key",
  async (h) => {
    const { session } = await h.newSession();
    await h.admin.setVariants({ errorBody: "text" });
    await h.admin.setFault({ op: "token", kind: "status", status: 403, message: NGINX_403 });
    const e = await rejectsWith(session.getToken(), "platform_error");
    assert.equal(e.status, 403);
    assert.equal(e.platformMessage, "403 Forbidden nginx");
    assert.equal((await h.admin.calls()).token, 3, "retried like any transient failure");
  },
);

simTest("refusal: a JSON 403 on token is invalid_api_key, not retried", async (h) => {
  const { session } = await h.newSession();
  await h.admin.setFault({ op: "token", kind: "status", status: 403 });
  const e = await rejectsWith(session.getToken(), "invalid_api_key");
  assert.equal(e.platformMessage, "Invalid API key");
  assert.equal((await h.admin.calls()).token, 1);
});

simTest("refusal: a JSON 401 with any error text on token is invalid_api_key", async (h) => {
  const { session } = await h.newSession();
  await h.admin.setFault({ op: "token", kind: "status", status: 401, message: "Unauthorized" });
  await rejectsWith(session.getToken(), "invalid_api_key");
  assert.equal((await h.admin.calls()).token, 1);
});

simTest("refusal: a short plain text about the key is invalid_api_key", async (h) => {
  const { session } = await h.newSession();
  await h.admin.setVariants({ errorBody: "text" });
  await h.admin.setFault({ op: "token", kind: "status", status: 403 });
  const e = await rejectsWith(session.getToken(), "invalid_api_key");
  assert.equal(e.platformMessage, "Invalid API key");
});

simTest("refusal: a plain 403 that says nothing of a key is platform_error", async (h) => {
  const { session } = await h.newSession();
  await h.admin.setVariants({ errorBody: "text" });
  await h.admin.setFault({ op: "token", kind: "status", status: 403, message: "Forbidden" });
  await rejectsWith(session.getToken(), "platform_error");
  assert.equal((await h.admin.calls()).token, 3);
});

simTest("refusal: an empty 401 on token is platform_error", async (h) => {
  const { session } = await h.newSession();
  await h.admin.setVariants({ errorBody: "text" });
  await h.admin.setFault({ op: "token", kind: "status", status: 401, message: "" });
  await rejectsWith(session.getToken(), "platform_error");
});

simTest("refusal: an HTML 403 on a fresh key is not waited out as a refusal", async (h) => {
  const { session, logs } = await h.newSession({ freshKeyRetryMs: 2_000 });
  await h.admin.setVariants({ errorBody: "text" });
  await h.admin.setFault({ op: "token", kind: "status", status: 403, message: NGINX_403 });
  await rejectsWith(session.getToken({ freshKey: true }), "platform_error");
  assert.ok(!logs.some((l) => l.event === "wpp.fresh_key_wait"));
});
