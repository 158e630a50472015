// The demo page in the CRM panel's shape, in a real Chromium, against the whole local stack: an
// admin of a fresh organisation signs in with a password, connects a number (QR, a replaced QR,
// scan), adds a second one, disconnects the first, meets a failed connect and retries it, stops a
// third number's poll; then the same tab switches to a user outside any organisation and to a
// member. Every state is photographed under test-output/browser/. The page is served from another
// origin than the API, so each call goes through a real CORS preflight.
import assert from "node:assert/strict";
import type { Page, Request as PwRequest, Response as PwResponse } from "playwright-core";
import {
  closeDb,
  createOrg,
  createUser,
  integrations,
  platformApiKey,
  sim,
  sql,
  type TestUser,
} from "../_support/wpp.ts";
import { stack } from "../_support/stack.ts";
import {
  launchChromium,
  pageUrl,
  recordPreflights,
  screenshot,
  servePageElsewhere,
} from "./_browser.ts";

const SESSION_RE = /^\d{13}$/;
const FUNCTIONS = `${stack.url}/functions/v1/`;
/** The panel's poll period (dev/demo/app.js). */
const POLL_MS = 2_000;

interface Call {
  fn: string;
  method: string;
  url: URL;
  body: Record<string, unknown> | null;
  /** Which signed-in user's page sent it (set by the test as it switches users). */
  as: string;
  /** ms epoch the browser sent it. */
  at: number;
  request: PwRequest;
}

/** Every function call the page makes, in order, with who was signed in. */
function recordCalls(page: Page, who: () => string): Call[] {
  const calls: Call[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(FUNCTIONS)) return;
    const url = new URL(r.url());
    let body: Record<string, unknown> | null = null;
    try {
      body = r.postData() ? JSON.parse(r.postData()!) : null;
    } catch {
      body = null;
    }
    calls.push({
      fn: url.pathname.slice("/functions/v1/".length),
      method: r.method(),
      url,
      body,
      as: who(),
      at: Date.now(),
      request: r,
    });
  });
  return calls;
}

/** The poll's calls for one session: wpp-qr, and wpp-status with force:true. */
function pollCalls(calls: Call[], session: string): Call[] {
  return calls.filter((c) =>
    (c.fn === "wpp-qr" && c.url.searchParams.get("session") === session) ||
    (c.fn === "wpp-status" && c.body?.session_name === session && c.body?.force === true)
  );
}

async function signInAs(page: Page, user: TestUser, withOrg: boolean): Promise<void> {
  await page.fill("#email", user.email);
  await page.fill("#password", user.password!);
  await page.click("#sign-in");
  await page.waitForSelector(`#who[data-state="signed-in"][data-email="${user.email}"]`);
  await page.waitForSelector(
    withOrg ? '#numbers[data-state="ready"]' : 'body[data-access="none"]',
    { state: "attached" },
  );
}

function row(session: string): string {
  return `#numbers .number[data-session="${session}"]`;
}

async function waitForRow(page: Page, session: string, status: string): Promise<void> {
  await page.waitForSelector(`${row(session)}[data-status="${status}"]`, { timeout: 20_000 });
}

/** Waits for a drawn QR (the image really decoded) on the pairing panel; answers its session. */
async function waitForDrawnQr(page: Page, notSession = ""): Promise<string> {
  await page.waitForSelector(
    `#pairing:not([hidden])[data-session]:not([data-session="${notSession}"]) ` +
      `#qr:not([hidden])[data-rendered="image"]`,
  );
  await imageLoaded(page);
  return (await page.getAttribute("#pairing", "data-session"))!;
}

async function imageLoaded(page: Page): Promise<void> {
  // Runs in the page: passed as source text so this file needs no DOM types.
  await page.waitForFunction(
    `(() => { const i = document.querySelector("#qr-image"); return !!i && i.complete && i.naturalWidth > 0; })()`,
  );
}

/**
 * Jumps the page's clock past `ms`, firing every timer due by then (a poll included), then makes
 * one request of its own and waits for it: the browser reports requests in order, so any request
 * such a timer sent has been recorded by the time this returns.
 */
async function letTimePass(page: Page, ms: number): Promise<void> {
  await page.clock.fastForward(ms);
  const status = await page.evaluate(`fetch("/demo/config").then((r) => r.status)`);
  assert.equal(status, 200);
}

Deno.test({
  name: "the «Подключить WhatsApp» panel in Chromium",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const password = `pw-${crypto.randomUUID()}`;
    const org = await createOrg("admin", { password });
    const admin = org.user;
    const member = await org.addUser("member", { password });
    const loner = await createUser(null, "member", { password });
    const [{ name: orgName }] = await sql<{ name: string }[]>`
      select name from public.organizations where id = ${org.orgId}`;

    const browser = await launchChromium();
    const site = servePageElsewhere();
    const context = await browser.newContext({ viewport: { width: 800, height: 1000 } });
    const page = await context.newPage();
    // A controllable clock that otherwise runs in real time: it lets the test skip ahead over a
    // poll period to prove a poll is not coming, instead of sleeping through it.
    await page.clock.install();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const preflights = await recordPreflights(page);
    let signedInAs = "nobody";
    const calls = recordCalls(page, () => signedInAs);
    const responses: PwResponse[] = [];
    page.on("response", (r) => {
      if (r.url().startsWith(stack.url)) responses.push(r);
    });
    const creates = () => calls.filter((c) => c.fn === "wpp-create");
    const disconnects = () => calls.filter((c) => c.fn === "wpp-disconnect");
    const sessions: string[] = [];

    try {
      await t.step("an admin of a fresh organisation signs in with a password", async () => {
        await page.goto(pageUrl(site.origin, {}));
        await page.waitForSelector("body[data-ready=true]");
        signedInAs = "admin";
        await signInAs(page, admin, true);
        const who = await page.innerText("#who");
        assert.match(who, new RegExp(`Вы вошли как ${admin.email} — Администратор`));
        assert.ok(who.includes(orgName), "the organisation is named");
        assert.equal(await page.locator("#numbers .number").count(), 0);
        assert.ok(await page.isVisible("#numbers-empty"));
        assert.equal((await page.innerText("#connect")).trim(), "Подключить WhatsApp");
        assert.ok(await page.isEnabled("#connect"));
        assert.ok(await page.isHidden("#access-note"), "an admin is not told they may not");
        await screenshot(page, "01-no-numbers");
      });

      let s1 = "";
      await t.step("«Подключить WhatsApp» sends add_new:false and shows a drawn QR", async () => {
        await page.click("#connect");
        s1 = await waitForDrawnQr(page);
        sessions.push(s1);
        assert.match(s1, SESSION_RE);
        assert.deepEqual(creates().map((c) => c.body), [{ add_new: false }]);
        // The list was re-read: the new number waits for its scan.
        await waitForRow(page, s1, "qr_issued");
        // The apiKey is shown masked, never whole.
        const meta = await page.innerText("#pairing-meta");
        assert.match(meta, new RegExp(`Сессия: ${s1}`));
        assert.ok(!meta.includes(await platformApiKey(s1)), "the apiKey is masked");
        await screenshot(page, "02-qr");
      });

      await t.step(
        "the poll asks wpp-qr and wpp-status(force) every 2 s, in parallel",
        async () => {
          await page.waitForFunction(
            `document.querySelector("#pairing").dataset.polling === "true"`,
          );
          const isQr = (c: Call) => c.fn === "wpp-qr";
          const ticks = () => {
            const polled = pollCalls(calls, s1);
            return { qrs: polled.filter(isQr), statuses: polled.filter((c) => !isQr(c)) };
          };
          const isPoll = (r: PwRequest) =>
            r.url() === `${FUNCTIONS}wpp-qr?session=${s1}` || r.url() === `${FUNCTIONS}wpp-status`;
          // Two ticks; a request seen between the count and the wait costs one more tick only.
          while (ticks().qrs.length < 2 || ticks().statuses.length < 2) {
            await page.waitForRequest(isPoll);
          }
          const { qrs, statuses } = ticks();
          for (const c of qrs) assert.equal(c.method, "GET");
          for (const c of statuses) {
            assert.deepEqual(c.body, { session_name: s1, force: true });
            assert.equal(c.method, "POST");
          }
          for (let i = 0; i < 2; i++) {
            // Both calls of a tick leave together, neither waits for the other.
            const pair = Math.abs(qrs[i].at - statuses[i].at);
            assert.ok(pair < 500, `tick ${i}: wpp-qr and wpp-status ${pair} ms apart`);
          }
          const gap = qrs[1].at - qrs[0].at;
          assert.ok(gap >= 1_800 && gap <= 4_000, `ticks ${gap} ms apart`);
        },
      );

      await t.step("a new QR from the platform replaces the one on screen", async () => {
        const serial = Number(await page.getAttribute("#qr", "data-serial"));
        const shownBefore = await page.getAttribute("#qr-image", "src");
        // The platform announces a new QR: wpp-webhook stores it and the next poll sees it.
        const emitted = await sim.emitEvent(s1, { type: "qr", qr: `2@replaced-${s1},demo` });
        assert.equal(emitted.dropped, false);
        await page.waitForSelector(`#qr[data-serial="${serial + 1}"][data-rendered="image"]`, {
          timeout: 15_000,
        });
        await imageLoaded(page);
        assert.notEqual(await page.getAttribute("#qr-image", "src"), shownBefore);
      });

      let connectedAt = 0;
      await t.step("scanning connects: toast, the poll stops, the number is listed", async () => {
        await sim.scan(s1);
        await page.waitForSelector('.toast:has-text("WhatsApp успешно подключен!")', {
          timeout: 15_000,
        });
        connectedAt = pollCalls(calls, s1).length;
        assert.ok(await page.isHidden("#pairing"), "the QR is gone");
        await waitForRow(page, s1, "connected");
        assert.match(await page.innerText(row(s1)), new RegExp(`Сессия: ${s1}`));
        assert.match(await page.innerText(row(s1)), /Подключён/);
        await page.waitForSelector('#connect:text-is("Подключить ещё один WhatsApp")');
        await screenshot(page, "03-connected");
      });

      let s2 = "";
      await t.step("«Подключить ещё один WhatsApp» sends add_new:true; its own QR", async () => {
        await page.click("#connect");
        s2 = await waitForDrawnQr(page, s1);
        sessions.push(s2);
        assert.match(s2, SESSION_RE);
        assert.notEqual(s2, s1);
        assert.deepEqual(creates().at(-1)!.body, { add_new: true });
        await waitForRow(page, s2, "qr_issued");
        await screenshot(page, "04-second-qr");
      });

      await t.step("scanning the second: both numbers are listed as connected", async () => {
        await sim.scan(s2);
        await page.waitForSelector("#pairing[hidden]", { state: "attached", timeout: 15_000 });
        await page.waitForSelector('#numbers[data-state="ready"]', { state: "attached" });
        await waitForRow(page, s1, "connected");
        await waitForRow(page, s2, "connected");
        assert.equal(await page.locator("#numbers .number").count(), 2);
        // Two poll periods pass on the page's clock: the first's poll would have called again.
        await letTimePass(page, POLL_MS * 2);
        assert.equal(pollCalls(calls, s1).length, connectedAt, "no poll once connected");
        await screenshot(page, "05-two-connected");
      });

      let id1 = "";
      await t.step("«Отключить» asks first; declining sends nothing", async () => {
        id1 = (await page.getAttribute(row(s1), "data-integration-id"))!;
        const asked = page.waitForEvent("dialog");
        const click = page.click(`${row(s1)} button.disconnect`);
        const dialog = await asked;
        assert.equal(dialog.type(), "confirm");
        assert.match(dialog.message(), /Отключить этот номер WhatsApp\?/);
        assert.ok(dialog.message().includes(s1), "the confirm names the number");
        await dialog.dismiss();
        await click;
        assert.equal(disconnects().length, 0, "a declined confirm calls nothing");
        assert.equal(await page.getAttribute(row(s1), "data-status"), "connected");
      });

      await t.step(
        "confirming disconnects it: listed as disconnected, the other stays",
        async () => {
          page.once("dialog", (d) => void d.accept());
          const answered = page.waitForResponse((r) => r.url() === `${FUNCTIONS}wpp-disconnect`);
          await page.click(`${row(s1)} button.disconnect`);
          const res = await answered;
          assert.equal(res.status(), 200);
          assert.deepEqual(disconnects().map((c) => c.body), [{ integration_id: id1 }]);
          await page.waitForSelector('.toast:has-text("Номер отключён")');
          await waitForRow(page, s1, "disconnected");
          await page.waitForSelector('#numbers[data-state="ready"]', { state: "attached" });
          assert.equal(await page.getAttribute(row(s1), "data-reason"), "disconnected");
          assert.equal(await page.locator(`${row(s1)} button.disconnect`).count(), 0);
          assert.equal(await page.getAttribute(row(s2), "data-status"), "connected");
          const rows = await integrations(org.orgId);
          const gone = rows.find((r) => r.id === id1)!;
          assert.equal(gone.is_active, false, "the row is kept, inactive");
          const platform = (await sim.state()).sessions.find((s) => s.session === s1);
          assert.equal(platform?.state, "offline", "the platform session was stopped");
          await screenshot(page, "06-disconnected");
        },
      );

      await t.step(
        "a failed connect: the panel's retries, then the answer's error text",
        async () => {
          // The platform refuses the server's credentials: a 502 (a definite refusal, so no
          // cooldown), which the panel's helper retries.
          await sim.setFault({ op: "create", kind: "status", status: 401 });
          const before = creates().length;
          let finalBody: Record<string, unknown> = {};
          try {
            await page.click("#connect");
            await page.waitForSelector("#error-card:not([hidden])", { timeout: 30_000 });
            const tries = creates().slice(before);
            assert.equal(tries.length, 4, "a 502 is retried: 4 attempts in all");
            for (const c of tries) assert.deepEqual(c.body, { add_new: true });
            // 1 s·2ⁿ ±25 % between an answer and the next attempt (answers here take < 1 s). The
            // simulator stamps a request when it handles it, which on a loaded machine can be
            // some milliseconds after it arrived: the lower bound allows for that.
            for (let n = 1; n < tries.length; n++) {
              const gap = tries[n].at - tries[n - 1].at;
              const wait = 1_000 * 2 ** (n - 1);
              assert.ok(
                gap >= wait * 0.75 - 50 && gap <= wait * 1.25 + 1_000,
                `gap ${n}: ${gap} ms`,
              );
            }
            assert.equal(await page.getAttribute("#error-card", "data-attempts"), "4");
            const last = (await tries.at(-1)!.request.response())!;
            assert.equal(last.status(), 502);
            finalBody = await last.json();
          } finally {
            await sim.clearFaults();
          }
          assert.equal(finalBody.success, false);
          assert.equal(finalBody.code, "platform_unauthorized");
          assert.equal(typeof finalBody.error, "string");
          const text = await page.innerText("#error-card");
          assert.ok(text.includes(finalBody.error as string), "the answer's error text is shown");
          assert.match(text, /HTTP 502 · platform_unauthorized · 4 попытки/);
          assert.equal((await page.innerText("#connect")).trim(), "Попробовать снова");
          await screenshot(page, "07-connect-failed");
        },
      );

      await t.step(
        "«Попробовать снова» sends add_new:false: «WhatsApp уже подключен!»",
        async () => {
          const before = creates().length;
          await page.click("#connect");
          await page.waitForSelector('.toast:has-text("WhatsApp уже подключен!")', {
            timeout: 15_000,
          });
          assert.deepEqual(creates().slice(before).map((c) => c.body), [{ add_new: false }]);
          assert.ok(await page.isHidden("#error-card"), "a success clears the error");
          assert.ok(await page.isHidden("#pairing"), "nothing to scan");
          await page.waitForSelector('#connect:text-is("Подключить ещё один WhatsApp")');
          await page.waitForSelector('#numbers[data-state="ready"]', { state: "attached" });
          await screenshot(page, "08-already-connected");
        },
      );

      let s3 = "";
      await t.step("«Отмена» stops the poll; «Обновить QR» asks wpp-qr once", async () => {
        await page.click("#connect");
        s3 = await waitForDrawnQr(page, s2);
        sessions.push(s3);
        assert.ok(!sessions.slice(0, 2).includes(s3), "a third session");
        await page.click("#qr-cancel");
        assert.equal(await page.getAttribute("#pairing", "data-polling"), "false");
        assert.match(await page.innerText("#pairing-status"), /Ожидание подключения остановлено/);
        const polled = pollCalls(calls, s3).length;
        // Two poll periods pass (on the page's clock); a poll still scheduled would fire now.
        await letTimePass(page, POLL_MS * 2);
        const refreshed = page.waitForResponse((r) =>
          r.url() === `${FUNCTIONS}wpp-qr?session=${s3}`
        );
        await page.click("#qr-refresh");
        assert.equal((await refreshed).status(), 200);
        await page.waitForSelector("#qr-refresh:enabled");
        const after = pollCalls(calls, s3).slice(polled);
        assert.deepEqual(after.map((c) => c.fn), ["wpp-qr"], "one wpp-qr, no poll");
        assert.ok(await page.isVisible("#qr-image"), "the QR stays on show");
        await screenshot(page, "09-cancelled");
      });

      await t.step("another click answers with the number still waiting for its scan", async () => {
        const before = creates().length;
        await page.click("#connect");
        await page.waitForSelector(`#pairing[data-session="${s3}"][data-polling="true"]`);
        await page.waitForSelector('#qr:not([hidden])[data-rendered="image"]');
        assert.deepEqual(creates().slice(before).map((c) => c.body), [{ add_new: true }]);
        assert.equal(await page.locator("#numbers .number").count(), 3, "no fourth number");
      });

      await t.step("switching to a user with no organisation leaves nothing behind", async () => {
        // The admin's page is polling s3 right now: the switch must end that too.
        assert.equal(await page.getAttribute("#pairing", "data-polling"), "true");
        // Calls the page sends after its sign-in request: by then the old poll is over.
        const switched = page.waitForRequest((r) => r.url().startsWith(`${stack.url}/auth/v1/`))
          .then(() => calls.length);
        signedInAs = "loner";
        await signInAs(page, loner, false);
        const callsBefore = await switched;
        const text = await page.innerText("body");
        for (const leftover of [...sessions, orgName, admin.email, "Сессия", "Подключён"]) {
          assert.ok(!text.includes(leftover), `nothing of the previous user shows: ${leftover}`);
        }
        assert.equal(await page.locator("#numbers .number").count(), 0);
        assert.equal(await page.locator("img").count(), 0, "no QR anywhere");
        assert.ok(await page.isHidden("#pairing"));
        assert.ok(await page.isHidden("#error-card"));
        for (const id of ["#connect", "#reload"]) {
          assert.ok(
            (await page.isHidden(id)) || (await page.isDisabled(id)),
            `${id} is hidden or disabled`,
          );
        }
        assert.match(await page.innerText("#access-note"), /не состоит ни в одной организации/);
        assert.match(await page.innerText("#who"), /без организации/);
        // Skip ahead: a poll of the previous user's session must not outlive the switch.
        await letTimePass(page, POLL_MS * 2);
        assert.deepEqual(
          calls.slice(callsBefore).map((c) => c.fn),
          [],
          "a user outside any organisation makes no function call",
        );
        await screenshot(page, "10-no-organisation");
      });

      await t.step("a member sees each number's status, no QR, no enabled button", async () => {
        signedInAs = "member";
        await signInAs(page, member, true);
        assert.match(await page.innerText("#who"), /Сотрудник/);
        await waitForRow(page, s1, "disconnected");
        await waitForRow(page, s2, "connected");
        // The third number still waits for its scan: the member is told so, without its QR.
        await waitForRow(page, s3, "qr_issued");
        assert.match(
          await page.innerText(row(s3)),
          /QR-код видит только владелец или администратор/,
        );
        assert.equal(await page.locator("img").count(), 0, "no QR anywhere");
        assert.ok(await page.isHidden("#pairing"));
        assert.ok(await page.isDisabled("#connect"));
        const buttons = page.locator("#numbers button.disconnect");
        assert.equal(await buttons.count(), 2, "«Отключить» on the two active numbers");
        for (let i = 0; i < 2; i++) assert.ok(await buttons.nth(i).isDisabled());
        const note = await page.innerText("#access-note");
        assert.match(note, /только владелец или администратор/);
        assert.match(note, /Only an owner or an admin/);
        const mine = calls.filter((c) => c.as === "member");
        assert.deepEqual([...new Set(mine.map((c) => c.fn))], ["wpp-status"]);
        for (const c of mine) {
          assert.equal(c.body?.force, false);
          const res = await c.request.response();
          const body = await res!.json();
          assert.equal(res!.status(), 200);
          assert.equal(body.qrcode, null, "the server sends a member no QR");
        }
        await screenshot(page, "11-member");
      });

      await t.step("every API call was cross-origin, after a CORS preflight", async () => {
        const pageOrigin = site.origin;
        assert.notEqual(new URL(stack.url).origin, pageOrigin);
        const expected: [string, string][] = [
          [`${FUNCTIONS}wpp-create`, "POST"],
          [`${FUNCTIONS}wpp-status`, "POST"],
          [`${FUNCTIONS}wpp-qr?session=`, "GET"],
          [`${FUNCTIONS}wpp-disconnect`, "POST"],
          [`${stack.url}/rest/v1/messenger_integrations_public?`, "GET"],
          [`${stack.url}/auth/v1/token?grant_type=password`, "POST"],
        ];
        for (const [prefix, method] of expected) {
          const seen = preflights.filter((p) => p.url.startsWith(prefix));
          assert.ok(seen.length > 0, `Chromium sent a preflight for ${prefix}`);
          for (const p of seen) {
            assert.equal(p.origin, pageOrigin);
            assert.equal(p.requestMethod, method);
          }
        }
        const api = responses.filter((r) => !new URL(r.url()).pathname.startsWith("/demo/"));
        assert.ok(api.length > 20);
        for (const r of api) {
          const headers = await r.request().allHeaders();
          assert.equal(headers["origin"], pageOrigin, r.url());
          assert.ok(r.headers()["access-control-allow-origin"], r.url());
        }
      });

      await t.step("no secret reached the page", async () => {
        const secrets: string[] = [];
        for (const s of sessions) secrets.push(await platformApiKey(s));
        for (const r of await integrations(org.orgId)) {
          if (r.webhook_secret) secrets.push(r.webhook_secret);
        }
        assert.ok(secrets.length >= 6, "three apiKeys and three webhook secrets to look for");
        const html = await page.content();
        const bodies: string[] = [];
        for (const r of responses) {
          if (!r.url().startsWith(FUNCTIONS) && !r.url().includes("/rest/v1/")) continue;
          bodies.push(await r.text().catch(() => ""));
        }
        for (const secret of secrets) {
          assert.ok(!html.includes(secret), "not on the page");
          for (const b of bodies) assert.ok(!b.includes(secret), "not in any answer");
        }
      });

      assert.deepEqual(errors, [], "no script error on the page");
    } finally {
      await sim.clearFaults().catch(() => {});
      await context.close();
      await browser.close();
      await site.close();
      await closeDb();
    }
  },
});
