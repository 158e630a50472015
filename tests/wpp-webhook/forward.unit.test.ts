// The forwarder to the CRM's own receiver (wpp-webhook/forward.ts): what it sends, what it
// retries and how often, and its timeout. The retry rules are driven by a scripted fetch; the
// bytes, the headers and the timeout by a real HTTP receiver on 127.0.0.1.
import assert from "node:assert/strict";
import { createForwarder } from "../../supabase/functions/wpp-webhook/forward.ts";

const URL_ = "http://127.0.0.1:9/events";
const TOKEN = "crm-forward-token-0123456789";
const BODY = new TextEncoder().encode('{"type":"chat","account":"0000000000001","text":"hi"}');

interface Seen {
  url: string;
  init: RequestInit;
}

/** A fetch answering from a script: a status, or "network" for a failed request. */
function scripted(answers: (number | "network")[]) {
  const seen: Seen[] = [];
  const sleeps: number[] = [];
  const fetch = ((url: string | URL | Request, init?: RequestInit) => {
    seen.push({ url: String(url), init: init ?? {} });
    const next = answers.shift() ?? 200;
    if (next === "network") return Promise.reject(new TypeError("connection refused"));
    return Promise.resolve(new Response(`answer ${next}`, { status: next }));
  }) as typeof globalThis.fetch;
  const sleep = (ms: number) => {
    sleeps.push(ms);
    return Promise.resolve();
  };
  return { fetch, sleep, seen, sleeps };
}

Deno.test("one POST with the body, its content type, the Bearer token and a timeout signal", async () => {
  const f = scripted([200]);
  const forward = createForwarder({
    url: URL_,
    token: TOKEN,
    timeoutMs: 3_000,
    attempts: 3,
    fetch: f.fetch,
    sleep: f.sleep,
  });
  const r = await forward(BODY, "application/json; charset=utf-8");
  assert.equal(r.ok, true);
  assert.equal(r.attempts, 1);
  assert.equal(r.status, 200);
  assert.equal(typeof r.ms, "number");
  assert.equal(f.seen.length, 1);
  const { url, init } = f.seen[0];
  assert.equal(url, URL_);
  assert.equal(init.method, "POST");
  assert.equal(init.body, BODY, "the very bytes received");
  assert.equal(init.redirect, "manual", "a redirect is an answer, not a second destination");
  assert.ok(init.signal instanceof AbortSignal);
  assert.deepEqual(init.headers, {
    "content-type": "application/json; charset=utf-8",
    "x-forwarded-by": "wpp-connect",
    authorization: `Bearer ${TOKEN}`,
  });
  assert.deepEqual(f.sleeps, []);
});

Deno.test("without a token no Authorization header; without a content type, JSON", async () => {
  const f = scripted([204]);
  const forward = createForwarder({
    url: URL_,
    timeoutMs: 3_000,
    attempts: 3,
    fetch: f.fetch,
    sleep: f.sleep,
  });
  const r = await forward(BODY, null);
  assert.equal(r.ok, true);
  assert.deepEqual(f.seen[0].init.headers, {
    "content-type": "application/json",
    "x-forwarded-by": "wpp-connect",
  });
});

Deno.test("network errors, 429 and 5xx are retried with a growing pause, up to the attempts", async () => {
  for (
    const [answers, attempts, expected] of [
      [["network", "network", "network"], 3, { ok: false, attempts: 3, status: 0 }],
      [[503, 502, 500], 3, { ok: false, attempts: 3, status: 500 }],
      [[429, 200], 3, { ok: true, attempts: 2, status: 200 }],
      [["network", 504, 201], 3, { ok: true, attempts: 3, status: 201 }],
      [[503, 503, 503, 503, 503, 200], 5, { ok: false, attempts: 5, status: 503 }],
      [[503], 1, { ok: false, attempts: 1, status: 503 }],
    ] as const
  ) {
    const f = scripted([...answers]);
    const forward = createForwarder({
      url: URL_,
      timeoutMs: 3_000,
      attempts,
      fetch: f.fetch,
      sleep: f.sleep,
    });
    const r = await forward(BODY, "application/json");
    assert.deepEqual(
      { ok: r.ok, attempts: r.attempts, status: r.status },
      expected,
      JSON.stringify(answers),
    );
    assert.equal(f.seen.length, expected.attempts, "bounded: never more than `attempts` calls");
    assert.deepEqual(
      f.sleeps,
      [200, 400, 800, 1600].slice(0, expected.attempts - 1),
      "200 ms, doubling, between attempts",
    );
    for (const s of f.seen) assert.equal(s.init.body, BODY, "every attempt sends the same bytes");
  }
});

Deno.test("any other answer is final: 4xx (but 429) and 3xx are not retried", async () => {
  for (const status of [400, 401, 403, 404, 409, 413, 422, 301, 302]) {
    const f = scripted([status, 200]);
    const forward = createForwarder({
      url: URL_,
      timeoutMs: 3_000,
      attempts: 5,
      fetch: f.fetch,
      sleep: f.sleep,
    });
    const r = await forward(BODY, "application/json");
    assert.deepEqual({ ok: r.ok, attempts: r.attempts, status: r.status }, {
      ok: false,
      attempts: 1,
      status,
    });
    assert.equal(f.seen.length, 1, `${status} is not retried`);
  }
});

/** A real receiver on 127.0.0.1 that records raw requests and answers what it is told. */
function receiver(respond: (n: number) => Promise<Response> | Response) {
  const got: { body: Uint8Array; headers: Headers; at: number }[] = [];
  const closing = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {}, signal: closing.signal },
    async (req) => {
      got.push({
        body: new Uint8Array(await req.arrayBuffer()),
        headers: req.headers,
        at: Date.now(),
      });
      return await respond(got.length);
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/events`,
    got,
    close: async () => {
      closing.abort();
      await server.finished;
    },
  };
}

Deno.test("over real HTTP: the receiver gets the exact bytes and the Bearer token", async () => {
  const rx = receiver(() => new Response("ok"));
  try {
    const bytes = new TextEncoder().encode(
      '{ "text" : "caf\u00e9 \\u00e9\\n",\n  "account":"0000000000001" }\r\n',
    );
    const forward = createForwarder({ url: rx.url, token: TOKEN, timeoutMs: 2_000, attempts: 3 });
    const r = await forward(bytes, "application/json");
    assert.equal(r.ok, true);
    assert.equal(rx.got.length, 1);
    assert.deepEqual(rx.got[0].body, bytes);
    assert.equal(rx.got[0].headers.get("authorization"), `Bearer ${TOKEN}`);
    assert.equal(rx.got[0].headers.get("content-type"), "application/json");
    assert.equal(rx.got[0].headers.get("x-forwarded-by"), "wpp-connect");
  } finally {
    await rx.close();
  }
});

Deno.test("over real HTTP: a receiver that does not answer is cut at the timeout, then retried", async () => {
  const hold = new AbortController();
  // The first attempt hangs (until the test ends); the second is answered.
  const rx = receiver((n) =>
    n === 1
      ? new Promise<Response>((resolve) =>
        hold.signal.addEventListener("abort", () => resolve(new Response("late")))
      )
      : new Response("ok")
  );
  try {
    const sleeps: number[] = [];
    const forward = createForwarder({
      url: rx.url,
      timeoutMs: 300,
      attempts: 3,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    });
    const t0 = performance.now();
    // Without a timeout the forward would wait for ever: fail instead of hanging the run.
    let guard: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      forward(BODY, "application/json"),
      new Promise<never>((_, reject) => {
        guard = setTimeout(() => reject(new Error("the hung attempt was never cut")), 5_000);
      }),
    ]).finally(() => clearTimeout(guard));
    const took = performance.now() - t0;
    assert.deepEqual({ ok: r.ok, attempts: r.attempts, status: r.status }, {
      ok: true,
      attempts: 2,
      status: 200,
    });
    assert.ok(took >= 280 && took < 2_000, `the hung attempt was cut at ~300 ms (${took} ms)`);
    assert.deepEqual(sleeps, [200]);
    assert.equal(rx.got.length, 2);
  } finally {
    hold.abort();
    await rx.close();
  }
});

Deno.test("over real HTTP: nobody listening counts as a network error, retried within bounds", async () => {
  // A port that was just free: connections are refused.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const sleeps: number[] = [];
  const forward = createForwarder({
    url: `http://127.0.0.1:${port}/events`,
    timeoutMs: 1_000,
    attempts: 3,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  });
  const r = await forward(BODY, "application/json");
  assert.deepEqual({ ok: r.ok, attempts: r.attempts, status: r.status }, {
    ok: false,
    attempts: 3,
    status: 0,
  });
  assert.deepEqual(sleeps, [200, 400]);
});
