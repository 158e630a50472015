// wpp-create end to end: through the gateway, into its own Deno processes, against real
// PostgreSQL/PostgREST and the platform simulator.
import assert from "node:assert/strict";
import {
  callFunction,
  closeDb,
  createOrg,
  events,
  functionLogLines,
  integrations,
  platformApiKey,
  sim,
  sql,
} from "../_support/wpp.ts";
import { mintUserToken, stack } from "../_support/stack.ts";
import * as jose from "jose";

const SESSION_RE = /^\d{13}$/;

async function resetSimulator() {
  await sim.reset();
}

Deno.test({
  name: "wpp-create end to end",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await t.step(
      "first click creates a session and stores it in the organisation's row",
      async () => {
        await resetSimulator();
        const org = await createOrg("admin");
        const res = await callFunction(org.user.token);
        assert.equal(res.status, 200, res.text);
        const body = res.json;
        assert.equal(body.success, true);
        assert.equal(body.created, true);
        assert.match(String(body.session), SESSION_RE);
        assert.equal(body.status, "qr_issued");
        assert.ok(typeof body.qrcode === "string" && body.qrcode.length > 10);
        assert.match(String(body.request_id), /^[0-9a-f-]{36}$/);

        const apiKey = await platformApiKey(String(body.session));
        assert.equal(body.apiKey, `${apiKey.slice(0, 6)}••••••${apiKey.slice(-4)}`);
        assert.ok(!res.text.includes(apiKey), "the full apiKey never leaves the function");

        const [row] = await integrations(org.orgId);
        assert.equal(row.id, body.integration_id);
        assert.equal(row.settings.wppAccountNumber, body.session);
        assert.equal(row.settings.wppApiKey, apiKey);
        assert.equal(typeof row.settings.wppJwtToken, "string");
        assert.ok(Number(row.settings.wppJwtExpiresAt) > Date.now());
        assert.equal(row.lease_id, null, "the lease is released");

        const calls = await sim.calls();
        assert.deepEqual(
          [calls.create, calls.token, calls.webhook, calls.start],
          [1, 1, 1, 1],
          JSON.stringify(calls),
        );
        const state = await sim.state({ reveal: true });
        const session = state.sessions.find((s) => s.session === body.session)!;
        assert.equal(
          session.webhookUrl,
          `${stack.url}/functions/v1/wpp-webhook/${encodeURIComponent(row.webhook_key)}`,
        );
        assert.equal(session.organizationId, org.orgId);
        assert.ok((await events(org.orgId)).some((e) => e.action === "created"));
      },
    );

    await t.step("second click reuses the session and the cached platform token", async () => {
      await resetSimulator();
      const org = await createOrg("owner");
      const first = await callFunction(org.user.token);
      assert.equal(first.status, 200, first.text);
      const before = await sim.calls();
      const second = await callFunction(org.user.token);
      assert.equal(second.status, 200, second.text);
      assert.equal(second.json.created, false);
      assert.equal(second.json.session, first.json.session);
      assert.equal(second.json.integration_id, first.json.integration_id);
      const after = await sim.calls();
      assert.equal(after.create, before.create, "no second platform client");
      assert.equal(after.token, before.token, "the stored token is reused, not fetched anew");
      assert.equal(after.status, before.status + 1);
      assert.equal((await integrations(org.orgId)).length, 1);
      assert.ok((await events(org.orgId)).some((e) => e.action === "reused"));

      await sim.scan(String(first.json.session));
      const third = await callFunction(org.user.token);
      assert.equal(third.json.status, "connected");
      assert.equal(third.json.qrcode, undefined);
    });

    await t.step(
      "a legacy client_system row is fixed on the first click, in the same row",
      async () => {
        await resetSimulator();
        const org = await createOrg("admin");
        const [legacy] = await sql`
        insert into public.messenger_integrations
          (organization_id, messenger_type, provider, name, is_active, is_primary, settings)
        values (${org.orgId}, 'whatsapp', 'wpp', 'WhatsApp', true, true,
                ${
          sql.json({
            wppAccountNumber: "client_system",
            wppApiKey: "old-legacy-key-000000",
            greeting: "Здравствуйте",
          })
        })
        returning id`;
        const res = await callFunction(org.user.token);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.created, true);
        assert.equal(res.json.integration_id, legacy.id, "the row id survives");
        const rows = await integrations(org.orgId);
        assert.equal(rows.length, 1, "nothing deleted, nothing duplicated");
        assert.equal(rows[0].settings.wppAccountNumber, res.json.session);
        assert.notEqual(rows[0].settings.wppAccountNumber, "client_system");
        assert.equal(rows[0].settings.greeting, "Здравствуйте", "other settings are kept");
        assert.equal((await sim.calls()).create, 1);
      },
    );

    await t.step(
      "force_recreate replaces the session in the same row and stops the old one",
      async () => {
        await resetSimulator();
        const org = await createOrg("admin");
        const first = await callFunction(org.user.token);
        const oldSession = String(first.json.session);
        const res = await callFunction(org.user.token, { body: { force_recreate: true } });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.created, true);
        assert.notEqual(res.json.session, oldSession);
        assert.equal(res.json.integration_id, first.json.integration_id);
        const [row] = await integrations(org.orgId);
        assert.equal(row.settings.wppAccountNumber, res.json.session);
        assert.equal(row.settings.wppApiKey, await platformApiKey(String(res.json.session)));
        const state = await sim.state();
        assert.equal(state.sessions.find((s) => s.session === oldSession)?.state, "offline");
        const actions = (await events(org.orgId)).map((e) => e.action);
        assert.ok(actions.includes("recreated"), actions.join());
        assert.ok(actions.includes("session_stopped"), actions.join());
        assert.equal((await sim.calls()).stop, 1);
      },
    );

    await t.step(
      "a dead apiKey self-heals with a new session; a transient error does not",
      async () => {
        await resetSimulator();
        const org = await createOrg("admin");
        const first = await callFunction(org.user.token);
        const oldSession = String(first.json.session);

        // A 503 on the status read is transient: no new session, the stored one stays.
        await sim.setFault({ op: "status", kind: "status", status: 503, times: 10 });
        const transient = await callFunction(org.user.token);
        assert.equal(transient.status, 502, transient.text);
        assert.equal(transient.json.code, "platform_error");
        assert.equal((await integrations(org.orgId))[0].settings.wppAccountNumber, oldSession);
        await sim.clearFaults();

        // Within the grace period a refused key is the platform's activation delay, not death.
        await sim.killApiKey({ session: oldSession });
        await sim.expireTokens();
        const young = await callFunction(org.user.token);
        assert.equal(young.status, 502, young.text);
        assert.equal(young.json.code, "platform_rejected");
        assert.equal((await sim.calls()).create, 1, "a young session is never replaced");

        // Older than the grace period: the key is dead and the session is replaced in place.
        await sql`update public.messenger_integrations
                   set settings = settings || jsonb_build_object('wppSessionCreatedAt',
                         (extract(epoch from now()) * 1000)::bigint - 3600000)
                 where organization_id = ${org.orgId}`;
        const healed = await callFunction(org.user.token);
        assert.equal(healed.status, 200, healed.text);
        assert.equal(healed.json.created, true);
        assert.notEqual(healed.json.session, oldSession);
        assert.equal(healed.json.integration_id, first.json.integration_id);
        const actions = (await events(org.orgId)).map((e) => e.action);
        assert.ok(actions.includes("dead_key_detected"), actions.join());
        assert.equal((await sim.calls()).create, 2);
      },
    );

    await t.step(
      "an ES256 access token (new Supabase projects) is verified against the JWKS",
      async () => {
        const org = await createOrg("admin");
        const es256 = await mintUserToken(org.user.userId, { signing: "es256" });
        const res = await callFunction(es256);
        assert.equal(res.status, 200, res.text);
        // The same key pair's token with the payload changed must fail the signature check.
        const [h, p, sig] = es256.split(".");
        const claims = JSON.parse(new TextDecoder().decode(jose.base64url.decode(p)));
        const forged = `${h}.${
          jose.base64url.encode(JSON.stringify({ ...claims, sub: crypto.randomUUID() }))
        }.${sig}`;
        const refused = await callFunction(forged);
        assert.equal(refused.status, 401, refused.text);
        assert.equal(refused.json.code, "unauthorized");
      },
    );

    await t.step("a user of another organisation only ever touches their own row", async () => {
      await resetSimulator();
      const a = await createOrg("admin");
      const b = await createOrg("admin");
      const resA = await callFunction(a.user.token);
      const rowA = (await integrations(a.orgId))[0];
      const resB = await callFunction(b.user.token, { body: { force_recreate: true } });
      assert.equal(resB.status, 200, resB.text);
      assert.notEqual(resB.json.integration_id, resA.json.integration_id);
      const rowAAfter = (await integrations(a.orgId))[0];
      assert.deepEqual(rowAAfter.settings, rowA.settings, "org A's row is untouched");
      const state = await sim.state();
      assert.equal(
        state.sessions.find((s) => s.session === resA.json.session)?.state !== "offline",
        true,
      );
    });

    await t.step("platform faults give the right status and leave the row consistent", async () => {
      const cases: {
        name: string;
        fault: Parameters<typeof sim.setFault>[0];
        status: number;
        code: string;
        stored: boolean;
        /** The platform keeps refusing after the fault is cleared (a key refused for a minute). */
        stillRefused?: boolean;
      }[] = [
        {
          name: "create 500",
          fault: { op: "create", kind: "status", status: 500 },
          status: 502,
          code: "platform_error",
          stored: false,
        },
        {
          name: "create 401 (bad secret)",
          fault: { op: "create", kind: "status", status: 401 },
          status: 502,
          code: "platform_unauthorized",
          stored: false,
        },
        {
          name: "create 404 page",
          fault: { op: "create", kind: "status", status: 404 },
          status: 502,
          code: "platform_rejected",
          stored: false,
        },
        {
          name: "create hangs",
          fault: { op: "create", kind: "hang" },
          status: 504,
          code: "platform_timeout",
          stored: false,
        },
        {
          name: "create malformed JSON",
          fault: { op: "create", kind: "malformed" },
          status: 502,
          code: "platform_malformed",
          stored: false,
        },
        {
          name: "create without apiKey",
          fault: { op: "create", kind: "missing_field", field: "apiKey" },
          status: 502,
          code: "platform_malformed",
          stored: false,
        },
        {
          name: "create without session",
          fault: { op: "create", kind: "missing_field", field: "session" },
          status: 502,
          code: "platform_malformed",
          stored: false,
        },
        {
          name: "create connection closed",
          fault: { op: "create", kind: "close" },
          status: 502,
          code: "platform_unreachable",
          stored: false,
        },
        {
          name: "token 503 after create",
          fault: { op: "token", kind: "status", status: 503 },
          status: 502,
          code: "platform_error",
          stored: true,
        },
        {
          name: "fresh key refused past the bound",
          fault: { kind: "fresh_key_refusal", ms: 60_000 },
          status: 502,
          code: "platform_rejected",
          stored: true,
          stillRefused: true,
        },
        {
          name: "webhook 500",
          fault: { op: "webhook", kind: "status", status: 500 },
          status: 502,
          code: "platform_error",
          stored: true,
        },
        {
          name: "start hangs",
          fault: { op: "start", kind: "hang" },
          status: 504,
          code: "platform_timeout",
          stored: true,
        },
      ];
      for (const c of cases) {
        await resetSimulator();
        const org = await createOrg("admin");
        await sim.setFault(c.fault);
        const res = await callFunction(org.user.token);
        assert.equal(res.status, c.status, `${c.name}: ${res.text}`);
        assert.equal(res.json.code, c.code, `${c.name}: ${res.text}`);
        assert.equal(res.json.success, false);
        assert.equal(res.json.status, "error");
        assert.ok(typeof res.json.error === "string" && res.json.error.length > 10, c.name);
        assert.equal(
          res.headers.get("access-control-allow-origin"),
          "*",
          `${c.name}: CORS on errors`,
        );
        const [row] = await integrations(org.orgId);
        assert.equal(row.lease_id, null, `${c.name}: lease released`);
        const s = row.settings;
        if (c.stored) {
          assert.match(String(s.wppAccountNumber), SESSION_RE, `${c.name}: new session kept`);
          assert.equal(s.wppApiKey, await platformApiKey(String(s.wppAccountNumber)), c.name);
        } else {
          assert.equal(s.wppAccountNumber, undefined, `${c.name}: nothing stored`);
          assert.equal(s.wppApiKey, undefined, `${c.name}: nothing stored`);
        }
        const recorded = await events(org.orgId);
        const actions = recorded.map((e) => e.action);
        assert.ok(actions.includes("failed"), `${c.name}: failure recorded (${actions.join()})`);
        if (c.name === "create without apiKey") {
          // The platform made a client we cannot use: its id stays in the audit trail.
          const failed = recorded.find((e) => e.action === "failed")!;
          assert.match(String(failed.details.orphan_session), SESSION_RE);
        }

        // The next click after the fault clears continues from what was stored.
        await sim.clearFaults();
        const createsBefore = (await sim.calls()).create;
        const next = await callFunction(org.user.token);
        if (c.stillRefused) {
          // Still refused, and still young: reported again, never replaced by a second create.
          assert.equal(next.status, 502, `${c.name}, next click: ${next.text}`);
          assert.equal((await sim.calls()).create, createsBefore, `${c.name}: no second create`);
          assert.equal(
            (await integrations(org.orgId))[0].settings.wppAccountNumber,
            s.wppAccountNumber,
          );
          continue;
        }
        assert.equal(next.status, 200, `${c.name}, next click: ${next.text}`);
        if (c.stored) {
          assert.equal(next.json.created, false, `${c.name}: the stored session is reused`);
          assert.equal(next.json.session, s.wppAccountNumber);
          assert.equal((await sim.calls()).create, createsBefore, `${c.name}: no second create`);
        } else {
          assert.equal(next.json.created, true, c.name);
        }
      }
    });

    await t.step("a fresh apiKey refused for a while is retried within the bound", async () => {
      await resetSimulator();
      const org = await createOrg("admin");
      await sim.setFault({ kind: "fresh_key_refusal", ms: 800 });
      const t0 = performance.now();
      const res = await callFunction(org.user.token);
      const ms = performance.now() - t0;
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.created, true);
      assert.ok(ms >= 700, `the token was retried until the key became valid (${ms} ms)`);
      assert.ok((await sim.calls()).token >= 2);
      await sim.clearFaults();
    });

    await t.step(
      "50 concurrent clicks across two function processes make exactly one create",
      async () => {
        await resetSimulator();
        const org = await createOrg("admin");
        const processes = stack.functionUrls["wpp-create"];
        assert.ok(processes.length >= 2, "the test stack runs two wpp-create processes");
        await sim.setFault({ op: "create", kind: "latency", ms: 300, times: 5 });
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            callFunction(
              org.user.token,
              i % 3 === 0 ? {} : { baseUrl: processes[i % processes.length] },
            )),
        );
        await sim.clearFaults();
        const statuses = results.map((r) => r.status);
        assert.ok(statuses.every((s) => s === 200 || s === 409), statuses.join());
        assert.equal((await sim.calls()).create, 1, "exactly one platform create");
        const sessions = new Set(
          results.filter((r) => r.status === 200).map((r) => r.json.session),
        );
        assert.equal(sessions.size, 1, "every success names the same session");
        assert.equal(results.filter((r) => r.json.created === true).length, 1);
        for (const r of results.filter((r) => r.status === 409)) {
          assert.equal(r.json.code, "provisioning_in_progress");
          assert.match(r.headers.get("retry-after") ?? "", /^\d+$/);
        }
        assert.equal((await integrations(org.orgId)).length, 1);
      },
    );

    await t.step("every request logs one JSON line with timings and no secret", async () => {
      const lines = await functionLogLines("wpp-create");
      const requests = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      assert.ok(requests.length >= 20, `saw ${requests.length} request lines`);
      for (const r of requests.filter((r) => r.fn === "wpp-create")) {
        assert.match(r.request_id, /^[0-9a-f-]{36}$/);
        assert.equal(typeof r.status, "number");
        assert.equal(typeof r.ms, "number");
        assert.ok(Array.isArray(r.platform_calls) && Array.isArray(r.db_calls));
      }
      const state = await sim.state({ reveal: true });
      const secrets = [
        stack.simulatorSecret,
        stack.serviceRoleKey,
        ...state.sessions.map((s) => s.apiKey),
        ...state.tokens.map((t) => t.token),
      ];
      const all = lines.join("\n");
      for (const s of secrets) assert.ok(!all.includes(s), "a secret reached the function's log");
      assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(all), "no JWT in the logs");
    });

    await closeDb();
  },
});
