// The «Подключить WhatsApp» page in a real Chromium, against the whole local stack: sign in,
// connect, scan, recreate, a member's refusal and a platform outage, each state photographed
// under test-output/browser/. The page is served from another origin than the API.
import assert from "node:assert/strict";
import type { Page, Response as PwResponse } from "playwright-core";
import { closeDb, createOrg, sim } from "../_support/wpp.ts";
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

async function signedIn(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]");
  await page.click("#sign-in");
  await page.waitForSelector("#status:not([data-status=unknown]), #message:not([hidden])");
}

async function statusOf(page: Page): Promise<string | null> {
  return await page.getAttribute("#status", "data-status");
}

async function waitForStatus(page: Page, status: string, timeout = 15_000): Promise<void> {
  await page.waitForSelector(`#status[data-status="${status}"]`, { timeout });
}

/** Waits for a QR on screen, of another session than `notSession`; answers its session. */
async function waitForQr(page: Page, notSession = ""): Promise<string> {
  await page.waitForSelector(
    `#qr:not([hidden])[data-rendered][data-session]:not([data-session="${notSession}"])`,
  );
  return (await page.getAttribute("#qr", "data-session"))!;
}

async function messageOf(page: Page): Promise<{ code: string | null; text: string }> {
  await page.waitForSelector("#message:not([hidden])");
  return {
    code: await page.getAttribute("#message", "data-code"),
    text: await page.innerText("#message"),
  };
}

Deno.test({
  name: "the «Подключить WhatsApp» page in Chromium",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const browser = await launchChromium();
    const site = servePageElsewhere();
    const org = await createOrg("admin");
    const member = await org.addUser("member");
    const page = await browser.newPage({ viewport: { width: 760, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const preflights = await recordPreflights(page);
    const apiCalls: PwResponse[] = [];
    page.on("response", (r) => {
      if (r.url().startsWith(FUNCTIONS)) apiCalls.push(r);
    });
    const creates = () => apiCalls.filter((r) => r.url().endsWith("/wpp-create")).length;

    try {
      await t.step("an admin signs in and sees WhatsApp not connected", async () => {
        await signedIn(page, pageUrl(site.origin, { user_id: org.user.userId }));
        assert.equal(await statusOf(page), "not_configured");
        assert.match(await page.innerText("#status"), /Не подключено/);
        assert.ok(await page.isDisabled("#recreate"), "nothing to recreate yet");
        await screenshot(page, "01-not-connected");
      });

      let session = "";
      await t.step("«Подключить WhatsApp» shows the QR and follows the status", async () => {
        await page.click("#connect");
        session = await waitForQr(page);
        assert.match(session, SESSION_RE);
        await waitForStatus(page, "qr_issued");
        // The simulator's QR is a raw pairing string: the page must draw it as a real image.
        assert.equal(await page.getAttribute("#qr", "data-rendered"), "image");
        assert.ok(await page.isVisible("#qr-image"));
        // Runs in the page: passed as source text so this file needs no DOM types.
        await page.waitForFunction(
          `(() => { const i = document.querySelector("#qr-image"); return !!i && i.complete && i.naturalWidth > 0; })()`,
        );
        assert.ok(await page.isVisible("#poll"), "the page polls while a scan is awaited");
        await screenshot(page, "02-qr");
      });

      await t.step("scanning the QR turns the page to «Подключено» and polling stops", async () => {
        await sim.scan(session);
        await waitForStatus(page, "connected");
        assert.match(await page.innerText("#status"), /Подключено/);
        assert.ok(await page.isHidden("#qr"));
        assert.ok(await page.isHidden("#poll"));
        const polls = apiCalls.length;
        await page.waitForTimeout(3_000);
        assert.equal(apiCalls.length, polls, "no poll once connected");
        await screenshot(page, "03-connected");
      });

      await t.step("«Пересоздать сессию» asks first; declining sends nothing", async () => {
        const before = creates();
        let asked = "";
        page.once("dialog", (d) => {
          asked = d.message();
          void d.dismiss();
        });
        await page.click("#recreate");
        await page.waitForTimeout(500);
        assert.match(asked, /Пересоздать сессию/);
        assert.equal(creates(), before, "a declined recreate calls nothing");
        assert.equal(await statusOf(page), "connected");
      });

      let recreated = "";
      await t.step("confirming gives a new session with a new QR", async () => {
        page.once("dialog", (d) => void d.accept());
        await page.click("#recreate");
        recreated = await waitForQr(page, session);
        assert.match(recreated, SESSION_RE);
        assert.notEqual(recreated, session, "a different session");
        await waitForStatus(page, "qr_issued");
        const old = (await sim.state()).sessions.find((s) => s.session === session);
        assert.equal(old?.state, "offline", "the replaced session was stopped");
        await screenshot(page, "04-recreated");
      });

      await t.step("polling pauses while the page is hidden and resumes when shown", async () => {
        const statusCalls = () => apiCalls.filter((r) => r.url().endsWith("/wpp-status")).length;
        await setHidden(page, true);
        // A poll already on its way when the page hid still lands; only later ones must not.
        await page.waitForTimeout(1_500);
        const paused = statusCalls();
        await page.waitForTimeout(5_000);
        assert.equal(statusCalls(), paused, "no poll while hidden");
        assert.match(await page.innerText("#poll"), /приостановлена/);
        const resumed = page.waitForResponse((r) => r.url().endsWith("/wpp-status"), {
          timeout: 1_000,
        });
        await setHidden(page, false);
        await resumed;
        assert.match(await page.innerText("#poll"), /Проверяем статус/);
      });

      await t.step("a data: URL QR from the platform is handed to an <img>", async () => {
        await sim.setVariants({ qrFormat: "data-url" });
        try {
          // The simulator's data: URL wraps no real PNG, so the page's fallback for an
          // unreadable image is as good an answer here as a drawn one.
          await page.waitForSelector(
            '#qr[data-qr^="data:image/png;base64,"]:is([data-rendered="image"], [data-rendered="unreadable"])',
          );
        } finally {
          await sim.setVariants({ qrFormat: "raw" });
        }
        await sim.scan(recreated);
        await waitForStatus(page, "connected");
      });

      await t.step("a member sees why they may not connect (403)", async () => {
        const context = await browser.newContext({ viewport: { width: 760, height: 900 } });
        try {
          const other = await context.newPage();
          other.on("pageerror", (e) => errors.push(e.message));
          await signedIn(other, pageUrl(site.origin, { user_id: member.userId }));
          assert.equal(await statusOf(other), "connected", "a member may read the status");
          await other.click("#connect");
          const message = await messageOf(other);
          assert.equal(message.code, "forbidden");
          assert.match(message.text, /только владелец или администратор/);
          assert.match(message.text, /Only an owner or an admin/);
          assert.match(message.text, /HTTP 403/);
          await screenshot(other, "05-member-forbidden");
        } finally {
          await context.close();
        }
      });

      await t.step("the platform answering 503 shows the 502 message", async () => {
        await sim.setFault({ op: "status", kind: "status", status: 503 });
        try {
          await page.click("#connect");
          const message = await messageOf(page);
          assert.equal(message.code, "platform_error");
          assert.match(message.text, /Платформа WhatsApp недоступна/);
          assert.match(message.text, /HTTP 502/);
          await screenshot(page, "06-platform-502");
        } finally {
          await sim.clearFaults();
        }
      });

      await t.step("the platform not answering shows the 504 message", async () => {
        await sim.setFault({ op: "status", kind: "hang" });
        try {
          await page.click("#connect");
          await page.waitForSelector('#message[data-code="platform_timeout"]', { timeout: 20_000 });
          const message = await messageOf(page);
          assert.match(message.text, /не ответила вовремя/);
          assert.match(message.text, /HTTP 504/);
          await screenshot(page, "07-platform-504");
        } finally {
          await sim.clearFaults();
        }
        await page.click("#connect");
        await waitForStatus(page, "connected");
        assert.ok(await page.isHidden("#message"), "the next successful click clears it");
      });

      await t.step("every API call was cross-origin, after a CORS preflight", async () => {
        const pageOrigin = site.origin;
        assert.notEqual(new URL(stack.url).origin, pageOrigin);
        for (const fn of ["wpp-status", "wpp-create"]) {
          const seen = preflights.filter((p) => p.url === `${FUNCTIONS}${fn}`);
          assert.ok(seen.length > 0, `Chromium sent a preflight for ${fn}`);
          for (const p of seen) {
            assert.equal(p.origin, pageOrigin);
            assert.equal(p.requestMethod, fn === "wpp-status" ? "GET" : "POST");
          }
        }
        assert.ok(apiCalls.length > 5);
        for (const r of apiCalls) {
          const headers = await r.request().allHeaders();
          assert.equal(headers["origin"], pageOrigin, r.url());
          assert.equal(r.headers()["access-control-allow-origin"], "*", r.url());
        }
      });

      assert.deepEqual(errors, [], "no script error on the page");
    } finally {
      await sim.clearFaults().catch(() => {});
      await browser.close();
      await site.close();
      await closeDb();
    }
  },
});

/**
 * Chromium has no switch for a hidden tab, so the page is told as a browser would tell it. The
 * script is a string because it runs in the page, whose DOM types this program does not load.
 */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate(`(() => {
    const hidden = ${hidden};
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    Object.defineProperty(document, "visibilityState", {
      configurable: true,
      get: () => (hidden ? "hidden" : "visible"),
    });
    document.dispatchEvent(new Event("visibilitychange"));
  })()`);
}
