// The «Подключить WhatsApp» page: sign in as a demo user, read the connection with wpp-status,
// connect or recreate with wpp-create, and follow the status while a scan is awaited.
// `?api=<url>` points it at an API on another origin (the browser test does, for real CORS);
// `?user=<demo key>` preselects a demo user, `?user_id=<uuid>` adds any user id to the list.
import { createApi, loadConfig, signIn } from "./api.js";
import { describeError, REASONS, STATES, USER_LABELS } from "./messages.js";
import { renderQr } from "./qr.js";

const POLL_MS = 2500;
const WAITING = new Set(["qr_issued", "starting"]);

const params = new URLSearchParams(location.search);
const apiUrl = (params.get("api") || location.origin).replace(/\/+$/, "");
const $ = (id) => document.getElementById(id);

let config;
let api;
let token = null;
let current = null;
let busy = false;
let pollTimer;
/** Bumped by every click, so an answer to an older request never overwrites a newer one. */
let generation = 0;
/** Whether the message on screen came from a click or from a status poll. */
let messageSource = null;

function bilingual(el, [ru, en]) {
  const span = document.createElement("span");
  span.className = "en";
  span.textContent = en;
  el.replaceChildren(document.createTextNode(`${ru} `), span);
}

function setBusy(on, label) {
  busy = on;
  $("connect").disabled = on;
  $("recreate").disabled = on || !current?.session;
  $("connect").textContent = on && label ? label : "Подключить WhatsApp";
}

function showMessage(res, source) {
  const code = res.body?.code ?? (res.status === 0 ? "network" : `http_${res.status}`);
  const [ru, en] = describeError(res.status, code, res.retryAfter);
  const box = $("message");
  box.dataset.code = code;
  box.dataset.status = String(res.status);
  $("message-ru").textContent = ru;
  $("message-en").textContent = en;
  const id = res.body?.request_id ? ` · request_id ${res.body.request_id}` : "";
  $("message-meta").textContent = `HTTP ${res.status || "—"} · ${code}${id}`;
  box.hidden = false;
  messageSource = source;
}

function clearMessage(source) {
  if (source && messageSource !== source) return;
  $("message").hidden = true;
  messageSource = null;
}

async function showState(body) {
  current = body;
  const state = STATES[body.status] ?? STATES.error;
  const box = $("status");
  box.dataset.status = body.status ?? "error";
  box.dataset.reason = body.reason ?? "";
  showTitle(state.title, REASONS[body.reason] ?? state.hint);

  $("session").hidden = !body.session;
  $("session").textContent = body.session ? `Сессия: ${body.session}` : "";
  // Replacing a session needs one to replace.
  $("recreate").disabled = busy || !body.session;
  $("session").dataset.session = body.session ?? "";

  const qr = $("qr");
  if (body.status === "qr_issued" && body.qrcode) {
    // The same QR is not redrawn on every poll, so the picture does not flicker.
    if (qr.dataset.qr !== body.qrcode) {
      qr.dataset.qr = body.qrcode;
      qr.dataset.session = body.session ?? "";
      const how = await renderQr($("qr-box"), body.qrcode, apiUrl);
      qr.dataset.rendered = how;
      bilingual(
        $("qr-caption"),
        how === "image" ? ["QR-код обновляется сам", "The QR code refreshes by itself"] : [
          "Отсканировать можно будет после установки qrcode",
          "Scannable once qrcode is installed",
        ],
      );
    }
    qr.hidden = false;
  } else {
    qr.hidden = true;
    delete qr.dataset.qr;
  }
}

function showTitle(title, hint) {
  bilingual($("status-text"), title);
  bilingual($("status-hint"), hint);
}

function showUnknown() {
  $("status").dataset.status = "unknown";
  showTitle(STATES.unknown.title, STATES.unknown.hint);
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = undefined;
  $("poll").hidden = true;
}

function schedulePoll() {
  stopPolling();
  if (!api || !current || !WAITING.has(current.status)) return;
  if (document.hidden) {
    bilingual($("poll"), [
      "Проверка статуса приостановлена, пока вкладка скрыта.",
      "Status checks are paused while the tab is hidden.",
    ]);
    $("poll").hidden = false;
    return;
  }
  bilingual($("poll"), [
    `Проверяем статус каждые ${(POLL_MS / 1000).toLocaleString("ru")} с…`,
    `Checking the status every ${POLL_MS / 1000} s…`,
  ]);
  $("poll").hidden = false;
  pollTimer = setTimeout(refresh, POLL_MS);
}

async function refresh() {
  const asked = generation;
  stopPolling();
  const res = await api.status();
  if (asked !== generation || busy) return;
  if (res.ok) {
    clearMessage("status");
    await showState(res.body);
  } else {
    showMessage(res, "status");
    if (!current) showUnknown();
    // A refused caller will be refused again; an outage may pass, so keep following it.
    if (res.status === 401 || res.status === 403) return;
  }
  schedulePoll();
}

async function connect(force) {
  if (
    force && !confirm(
      "Пересоздать сессию WhatsApp?\nТекущая сессия будет остановлена, QR-код придётся отсканировать заново.\n\n" +
        "Recreate the WhatsApp session? The current one will be stopped and the QR code must be scanned again.",
    )
  ) return;
  const asked = ++generation;
  stopPolling();
  clearMessage();
  setBusy(true, force ? "Пересоздаём…" : "Подключаем…");
  let res;
  try {
    res = await api.connect(force);
  } finally {
    setBusy(false);
  }
  if (asked !== generation) return;
  if (res.ok) await showState(res.body);
  else showMessage(res, "action");
  schedulePoll();
}

async function onSignIn() {
  const choice = $("user").value;
  stopPolling();
  generation++;
  clearMessage();
  $("sign-in").disabled = true;
  try {
    const session = await signIn(apiUrl, config, choice);
    token = session.access_token;
    api = createApi(apiUrl, config.anonKey, () => token);
    const label = USER_LABELS[choice];
    bilingual(
      $("who"),
      label
        ? [
          `Вы вошли как ${session.user.email} — ${label[0]}.`,
          `Signed in as ${session.user.email} (${label[1]}).`,
        ]
        : [
          `Вы вошли как пользователь ${session.user.id}.`,
          `Signed in as user ${session.user.id}.`,
        ],
    );
    $("who").dataset.user = choice;
    $("whatsapp-card").hidden = false;
    current = null;
    $("recreate").disabled = true;
    $("qr").hidden = true;
    delete $("qr").dataset.qr;
    await refresh();
  } catch (e) {
    bilingual($("who"), ["Не удалось войти.", `Sign-in failed: ${e.message}`]);
  } finally {
    $("sign-in").disabled = false;
  }
}

function fillUsers() {
  const select = $("user");
  for (const u of config.users) {
    const [ru, en] = USER_LABELS[u.key] ?? [u.key, u.key];
    select.append(new Option(`${ru} — ${u.email}`, u.key));
    select.lastElementChild.title = en;
  }
  const userId = params.get("user_id");
  if (userId) {
    select.append(new Option(`Пользователь ${userId.slice(0, 8)}… (user id)`, `id:${userId}`));
    select.value = `id:${userId}`;
  } else {
    select.value = params.get("user") ?? "admin";
  }
}

async function start() {
  $("api-url").textContent = apiUrl;
  try {
    config = await loadConfig(apiUrl);
  } catch (e) {
    bilingual($("who"), [
      "Нет связи с сервером.",
      `Cannot load ${apiUrl}/demo/config: ${e.message}`,
    ]);
    return;
  }
  fillUsers();
  $("sign-in").addEventListener("click", onSignIn);
  $("connect").addEventListener("click", () => connect(false));
  $("recreate").addEventListener("click", () => connect(true));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && api && current && WAITING.has(current.status)) refresh();
    else schedulePoll();
  });
  document.body.dataset.ready = "true";
}

start();
