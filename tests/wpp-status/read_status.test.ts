// readStatus with a scripted platform and store: the branches the simulator does not reach on
// its own (a start that answers without a QR, a failing token cache, odd platform words).
import assert from "node:assert/strict";
import type { SessionPort } from "../../supabase/functions/_shared/platform-port.ts";
import type { SessionInput, StartResult } from "../../supabase/functions/_shared/wpp/mod.ts";
import {
  WppInvalidApiKeyError,
  WppServerError,
  WppTimeoutError,
} from "../../supabase/functions/_shared/wpp/mod.ts";
import { AppError } from "../../supabase/functions/_shared/errors.ts";
import { readStatus, type StatusEnv } from "../../supabase/functions/wpp-status/status.ts";
import type { StatusIntegration } from "../../supabase/functions/wpp-status/store.ts";

const NOW = 1_800_000_000_000;

const INTEGRATION: StatusIntegration = {
  integration_id: "int-1",
  session: "0000000000007",
  api_key: "key-abcdefghijkl",
  jwt_token: "stored-token",
  jwt_expires_at: Date.now() + 600_000,
  session_created_at: NOW - 3_600_000,
  session_state: "ok",
  valid: true,
  provisioning: false,
};

interface Script {
  status?: string | Error;
  qr?: string | null;
  start?: StartResult;
  newToken?: boolean;
}

function env(
  script: Script,
  opts: { storeFails?: boolean; integration?: Partial<StatusIntegration> } = {},
) {
  const calls: string[] = [];
  const stored: unknown[][] = [];
  const warnings: string[] = [];
  const inputs: SessionInput[] = [];
  const client: SessionPort = {
    getToken: () => Promise.reject(new Error("not used")),
    accountStatus: () => {
      calls.push("status");
      if (script.status instanceof Error) return Promise.reject(script.status);
      const word = script.status ?? "qr";
      return Promise.resolve({ connected: ["connected", "ready"].includes(word), status: word });
    },
    getQr: () => {
      calls.push("qr");
      return Promise.resolve(script.qr ?? null);
    },
    startAccount: () => {
      calls.push("start");
      return Promise.resolve(script.start ?? { state: "starting", raw: "starting" });
    },
    registerWebhook: () => Promise.reject(new Error("a status read registers nothing")),
    stop: () => Promise.reject(new Error("a status read stops nothing")),
    newToken: () => script.newToken ? { token: "fresh-token", expiresAt: 123 } : null,
  };
  const e: StatusEnv = {
    store: {
      callerContext: () => Promise.reject(new Error("not used")),
      integrationForStatus: () => Promise.resolve({ ...INTEGRATION, ...opts.integration }),
      storeToken: (...args) => {
        stored.push(args);
        return opts.storeFails ? Promise.reject(new Error("db down")) : Promise.resolve(true);
      },
    },
    platform: {
      forSession: (input) => {
        inputs.push(input);
        return client;
      },
    },
    deadline: Date.now() + 5_000,
    now: () => NOW,
    freshKeyGraceMs: 60_000,
    warn: (what) => warnings.push(what),
  };
  return { env: e, calls, stored, warnings, inputs };
}

Deno.test("the stored token is handed to the platform client", async () => {
  const t = env({ status: "connected" });
  await readStatus(t.env, "org");
  assert.deepEqual(t.inputs, [{
    apiKey: INTEGRATION.api_key,
    session: INTEGRATION.session,
    storedToken: { token: "stored-token", expiresAt: INTEGRATION.jwt_expires_at },
  }]);
});

Deno.test("no QR and a start that only says starting: starting", async () => {
  const t = env({ status: "pending", qr: null });
  const out = await readStatus(t.env, "org");
  assert.equal(out.status, "starting");
  assert.deepEqual(t.calls, ["status", "qr", "start"]);
});

Deno.test("a start that finds the account linked: connected", async () => {
  const t = env({ status: "starting", start: { state: "connected", raw: "ready" } });
  assert.equal((await readStatus(t.env, "org")).status, "connected");
});

Deno.test("offline words are matched without regard to case, and nothing is started", async () => {
  for (const word of ["offline", "LOGOUT", "Disconnected", "logged_out"]) {
    const t = env({ status: word });
    assert.equal((await readStatus(t.env, "org")).status, "disconnected", word);
    assert.deepEqual(t.calls, ["status"]);
  }
});

Deno.test("a fetched token is cached; a failing cache only leaves a warning", async () => {
  const ok = env({ status: "connected", newToken: true });
  await readStatus(ok.env, "org");
  assert.deepEqual(ok.stored, [["int-1", INTEGRATION.session, "fresh-token", 123]]);

  const failing = env({ status: "qr", qr: "2@abc", newToken: true }, { storeFails: true });
  const out = await readStatus(failing.env, "org");
  assert.equal(out.status, "qr_issued");
  assert.equal(out.qrcode, "2@abc");
  assert.deepEqual(failing.warnings, ["store_token"]);
});

Deno.test("platform failures become the shared 502/504 errors", async () => {
  const down = env({ status: new WppServerError({ op: "status", status: 503, message: "x" }) });
  await assert.rejects(readStatus(down.env, "org"), (e) => {
    assert.ok(e instanceof AppError);
    assert.equal(e.code, "platform_error");
    assert.equal(e.status, 502);
    return true;
  });
  const slow = env({ status: new WppTimeoutError({ op: "status", message: "x" }) });
  await assert.rejects(readStatus(slow.env, "org"), (e) => {
    assert.ok(e instanceof AppError);
    assert.equal(e.status, 504);
    return true;
  });
});

Deno.test("a refused apiKey: activating while the session is young, dead after", async () => {
  const refused = new WppInvalidApiKeyError({ op: "token", status: 403, message: "x" });
  const young = env({ status: refused }, { integration: { session_created_at: NOW - 59_000 } });
  const settling = await readStatus(young.env, "org");
  assert.deepEqual([settling.status, settling.reason], ["starting", "activating"]);
  for (const created of [NOW - 61_000, null]) {
    const old = env({ status: refused }, { integration: { session_created_at: created } });
    const out = await readStatus(old.env, "org");
    assert.deepEqual([out.status, out.reason], ["not_configured", "dead_key"], String(created));
  }
});
