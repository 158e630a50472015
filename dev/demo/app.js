// The «Подключить WhatsApp» panel as the CRM shows it (/work/shared/crm-contract.md §2): the
// organisation's numbers with their status and «Отключить», «Подключить WhatsApp» or «Подключить
// ещё один WhatsApp», and, after a connect, the QR with a poll every 2 s until the phone is linked.
// `?api=<url>` points it at an API on another origin (the browser test does, for real CORS);
// `?user=<demo key>` or `?email=` prefills the sign-in form.
import {
  createPanelApi,
  DEMO_PASSWORD,
  loadAccess,
  loadConfig,
  loadNumbers,
  signInClient,
} from "./api.js";
import {
  ACCESS_NOTES,
  DEMO_USER_LABELS,
  describeError,
  MEMBER_QR_HINT,
  REASONS,
  ROLE_LABELS,
  STATUS_LABELS,
  TOASTS,
} from "./messages.js";
import { buildQr } from "./qr.js";

const POLL_MS = 2_000;
const TOAST_MS = 6_000;

const params = new URLSearchParams(location.search);
const apiUrl = (params.get("api") || location.origin).replace(/\/+$/, "");
const $ = (id) => document.getElementById(id);

let config;
/**
 * Everything that belongs to one sign-in. A new sign-in replaces it and aborts its requests, and
 * every answer checks it is still the current one before it touches the screen, so nothing of a
 * previous user (their organisation, numbers, sessions, QR) can reappear after a switch.
 */
let ctx = null;
/** The number being paired after a connect: its session, the QR on show, the poll's timer. */
let pairing = null;

function bilingual(el, [ru, en]) {
  const span = document.createElement("span");
  span.className = "en";
  span.textContent = en;
  el.replaceChildren(document.createTextNode(`${ru} `), span);
}

const mayManage = (c) => c?.access?.role === "owner" || c?.access?.role === "admin";

// ---- screen state ----------------------------------------------------------------------------

function resetView() {
  ctx?.abort.abort(new DOMException("signed out", "AbortError"));
  ctx = null;
  closePairing();
  clearError();
  $("whatsapp-card").hidden = true;
  $("numbers").replaceChildren();
  $("numbers").dataset.state = "idle";
  $("numbers-empty").hidden = true;
  $("numbers-error").hidden = true;
  $("access-note").hidden = true;
  $("access-note").replaceChildren();
  $("toasts").replaceChildren();
  delete document.body.dataset.access;
  renderControls();
}

function renderControls() {
  const c = ctx;
  const connect = $("connect");
  const hasOrg = Boolean(c?.access?.orgId);
  connect.hidden = !hasOrg;
  $("reload").hidden = !hasOrg;
  connect.disabled = !hasOrg || !mayManage(c) || !c.listLoaded || c.busy;
  connect.title = hasOrg && !mayManage(c) ? ACCESS_NOTES.member[0] : "";
  connect.textContent = c?.busy
    ? "Подключаем…"
    : c?.connectFailed
    ? "Попробовать снова"
    : c?.numbers.length
    ? "Подключить ещё один WhatsApp"
    : "Подключить WhatsApp";
}

function showError(res, context) {
  const card = $("error-card");
  card.dataset.code = res.code ?? "";
  card.dataset.status = String(res.status);
  card.dataset.attempts = String(res.attempts ?? 1);
  $("error-ru").textContent = context
    ? `${context}: ${describeError(res.status, res.code)}`
    : describeError(res.status, res.code);
  // The panel's own text for the failure: the answer's `error`, else `message`, else HTTP <n>.
  $("error-text").textContent = res.error ?? "";
  const id = res.requestId ? ` · request_id ${res.requestId}` : "";
  const tries = res.attempts > 1 ? ` · ${res.attempts} попытки / attempts` : "";
  $("error-meta").textContent = `HTTP ${res.status || "—"} · ${res.code}${tries}${id}`;
  card.hidden = false;
}

function clearError() {
  $("error-card").hidden = true;
  delete $("error-card").dataset.code;
}

function toast(words, kind) {
  const el = document.createElement("div");
  el.className = "toast";
  el.dataset.kind = kind;
  el.setAttribute("role", "status");
  bilingual(el, words);
  $("toasts").append(el);
  setTimeout(() => el.remove(), TOAST_MS);
}

// ---- sign-in ---------------------------------------------------------------------------------

async function onSignIn(event) {
  event.preventDefault();
  resetView();
  const c = {
    abort: new AbortController(),
    client: null,
    api: null,
    user: null,
    access: null,
    numbers: [],
    listLoaded: false,
    listEpoch: 0,
    busy: false,
    connectFailed: false,
  };
  ctx = c;
  const email = $("email").value.trim();
  const password = $("password").value;
  bilingual($("who"), ["Входим…", "Signing in…"]);
  $("who").dataset.state = "signing-in";
  delete $("who").dataset.email;
  delete $("who").dataset.role;
  let signedIn;
  try {
    signedIn = await signInClient(apiUrl, config.anonKey, email, password);
  } catch (e) {
    if (c !== ctx) return;
    bilingual($("who"), ["Не удалось войти.", `Sign-in failed: ${e.message}`]);
    $("who").dataset.state = "failed";
    return;
  }
  if (c !== ctx) return;
  c.client = signedIn.client;
  c.user = signedIn.session.user;
  c.api = createPanelApi({
    apiUrl,
    anonKey: config.anonKey,
    accessToken: signedIn.session.access_token,
    signal: c.abort.signal,
  });

  try {
    c.access = await loadAccess(c.client, c.user.id);
  } catch (e) {
    if (c !== ctx) return;
    // The CRM's own policies may hide these tables; the functions still decide on every call.
    c.access = { orgId: "unknown", orgName: null, role: null, error: e.message };
  }
  if (c !== ctx) return;
  showWho(c);
  $("whatsapp-card").hidden = false;
  document.body.dataset.access = c.access.orgId ? (c.access.role ?? "unknown") : "none";
  if (!c.access.orgId) {
    showNote(ACCESS_NOTES.no_organization);
    renderControls();
    return;
  }
  if (c.access.error) showNote(ACCESS_NOTES.unknown_role);
  else if (!mayManage(c)) showNote(ACCESS_NOTES.member);
  renderControls();
  await loadList();
}

function showWho(c) {
  const email = c.user.email ?? c.user.id;
  const { orgId, orgName, role } = c.access;
  const who = $("who");
  who.dataset.state = "signed-in";
  who.dataset.email = email;
  who.dataset.role = role ?? "";
  if (!orgId) {
    bilingual(who, [
      `Вы вошли как ${email} — без организации.`,
      `Signed in as ${email}, outside any organisation.`,
    ]);
  } else if (!role) {
    bilingual(who, [`Вы вошли как ${email}.`, `Signed in as ${email}.`]);
  } else {
    const [ru, en] = ROLE_LABELS[role];
    const org = orgName ?? orgId;
    bilingual(who, [
      `Вы вошли как ${email} — ${ru}, организация «${org}».`,
      `Signed in as ${email} (${en} of "${org}").`,
    ]);
  }
}

function showNote(words) {
  bilingual($("access-note"), words);
  $("access-note").hidden = false;
}

// ---- the list of numbers -----------------------------------------------------------------------

async function loadList() {
  const c = ctx;
  if (!c?.access?.orgId) return;
  const mine = ++c.listEpoch;
  const current = () => c === ctx && mine === c.listEpoch;
  const list = $("numbers");
  list.dataset.state = "loading";
  $("reload").disabled = true;
  let rows;
  try {
    rows = await loadNumbers(c.client);
  } catch (e) {
    if (!current()) return;
    bilingual($("numbers-error"), ["Не удалось загрузить номера.", e.message]);
    $("numbers-error").hidden = false;
    list.dataset.state = "error";
    $("reload").disabled = false;
    return;
  }
  if (!current()) return;
  $("numbers-error").hidden = true;
  c.numbers = rows;
  c.listLoaded = true;
  list.replaceChildren(...rows.map((row) => numberItem(c, row)));
  $("numbers-empty").hidden = rows.length > 0;
  renderControls();

  // As the panel does: each number with a session asks wpp-status, stored state being enough.
  await Promise.all(rows.map(async (row, i) => {
    if (!row.session) return;
    let res;
    try {
      res = await c.api.status(row.session, false);
    } catch {
      return; // aborted by a sign-out
    }
    if (current()) applyStatus(c, list.children[i], res);
  }));
  if (!current()) return;
  list.dataset.state = "ready";
  $("reload").disabled = false;
}

function numberItem(c, row) {
  const li = document.createElement("li");
  li.className = "number";
  li.dataset.integrationId = row.id;
  li.dataset.session = row.session ?? "";
  li.dataset.active = String(row.is_active);

  const dot = document.createElement("span");
  dot.className = "dot";
  const main = document.createElement("div");
  main.className = "number-main";
  const name = document.createElement("div");
  name.className = "number-name";
  name.textContent = row.name || "WhatsApp";
  if (row.is_primary) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "основной";
    badge.title = "primary";
    name.append(" ", badge);
  }
  const status = document.createElement("div");
  status.className = "number-status";
  const session = document.createElement("div");
  session.className = "number-session";
  // A placeholder (the legacy `client_system`) is not a session worth showing.
  if (row.session && row.connection !== "not_configured") {
    session.textContent = `Сессия: ${row.session}`;
  }
  const hint = document.createElement("div");
  hint.className = "number-hint";
  main.append(name, status, session, hint);
  li.append(dot, main);

  if (row.is_active) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary disconnect";
    button.textContent = "Отключить";
    if (mayManage(c)) {
      button.addEventListener("click", () => disconnectNumber(c, row, button));
    } else {
      button.disabled = true;
      button.title = ACCESS_NOTES.member[0];
    }
    li.append(button);
  }
  setStatus(li, row.session ? "checking" : "not_configured");
  return li;
}

function setStatus(li, status, hint) {
  li.dataset.status = status;
  bilingual(li.querySelector(".number-status"), STATUS_LABELS[status] ?? STATUS_LABELS.error);
  const el = li.querySelector(".number-hint");
  if (hint) bilingual(el, hint);
  else el.replaceChildren();
}

function applyStatus(c, li, res) {
  if (!li) return;
  if (!res.ok) {
    li.dataset.code = res.code ?? "";
    setStatus(li, "error", [describeError(res.status, res.code), res.error ?? ""]);
    return;
  }
  const { status, reason } = res.data;
  li.dataset.reason = reason ?? "";
  const hint = REASONS[reason] ??
    (status === "qr_issued" && !mayManage(c) ? MEMBER_QR_HINT : undefined);
  setStatus(li, STATUS_LABELS[status] ? status : "error", hint);
}

async function disconnectNumber(c, row, button) {
  const which = row.session ? `Сессия ${row.session}` : (row.name || "WhatsApp");
  const ok = confirm(
    `Отключить этот номер WhatsApp?\n${which}\n` +
      "Телефон будет отвязан, сообщения перестанут приходить в CRM.\n\n" +
      "Disconnect this WhatsApp number? The phone will be unlinked and messages will stop " +
      "reaching the CRM.",
  );
  if (!ok || c !== ctx) return;
  clearError();
  button.disabled = true;
  button.textContent = "Отключаем…";
  let res;
  try {
    res = await c.api.disconnect(row.id);
  } catch {
    return; // aborted by a sign-out
  }
  if (c !== ctx) return;
  if (!res.ok) {
    showError(res, "Номер не отключён");
    button.disabled = false;
    button.textContent = "Отключить";
    return;
  }
  if (pairing && (pairing.integrationId === row.id || pairing.session === row.session)) {
    closePairing();
  }
  toast(TOASTS.disconnected, "info");
  await loadList();
}

// ---- connect, and the QR until the phone is linked ---------------------------------------------

async function connect() {
  const c = ctx;
  if (!c || c.busy || !mayManage(c)) return;
  // «Попробовать снова» asks for the organisation's number, not for yet another one.
  const addNew = !c.connectFailed && c.numbers.length > 0;
  closePairing();
  clearError();
  c.busy = true;
  renderControls();
  let res;
  try {
    res = await c.api.connect(addNew);
  } catch {
    return; // aborted by a sign-out
  }
  if (c !== ctx) return;
  c.busy = false;
  if (!res.ok) {
    c.connectFailed = true;
    showError(res);
  } else {
    c.connectFailed = false;
    if (res.data.status === "connected") toast(TOASTS.already_connected, "success");
    else openPairing(c, res.data);
  }
  renderControls();
  await loadList();
}

function openPairing(c, answer) {
  closePairing();
  pairing = {
    ctx: c,
    session: answer.session,
    integrationId: answer.integration_id,
    qr: null,
    serial: 0,
    release: () => {},
    polling: false,
    timer: undefined,
  };
  const el = $("pairing");
  el.dataset.session = answer.session ?? "";
  el.hidden = false;
  $("qr-cancel").disabled = false;
  $("qr-refresh").disabled = false;
  const key = answer.apiKey ? ` · ключ API / apiKey ${answer.apiKey}` : "";
  $("pairing-meta").textContent = `Сессия: ${answer.session}${key}`;
  startPolling(pairing);
  pairingStatus(answer.status);
  if (answer.qrcode) void showQr(pairing, answer.qrcode);
}

function closePairing() {
  if (pairing) {
    clearTimeout(pairing.timer);
    pairing.polling = false;
    pairing.release();
  }
  pairing = null;
  const el = $("pairing");
  el.hidden = true;
  delete el.dataset.session;
  delete el.dataset.polling;
  $("qr").hidden = true;
  delete $("qr").dataset.serial;
  delete $("qr").dataset.rendered;
  $("qr-box").replaceChildren();
  $("pairing-meta").textContent = "";
}

function pairingStatus(status) {
  const el = $("pairing-status");
  const waiting = pairing?.polling;
  el.dataset.status = status ?? "";
  el.classList.toggle("spinning", Boolean(waiting) && status !== "qr_issued");
  if (!pairing?.polling && pairing) {
    bilingual(el, [
      "Ожидание подключения остановлено. «Обновить QR» покажет текущий код.",
      "Waiting stopped. «Обновить QR» shows the current code.",
    ]);
  } else if (status === "qr_issued") {
    bilingual(el, [
      "Откройте WhatsApp на телефоне → Связанные устройства → Привязка устройства и наведите камеру на код.",
      "On the phone open WhatsApp → Linked devices → Link a device and point the camera at the code.",
    ]);
  } else {
    bilingual(el, [
      "Платформа готовит QR-код, подождите…",
      "The platform is preparing the QR code, please wait…",
    ]);
  }
}

/** Draws a QR unless it is the one on show; a newer QR drawn meanwhile wins. */
async function showQr(p, qr) {
  if (qr === p.qr) return;
  p.qr = qr;
  const serial = ++p.serial;
  const built = await buildQr(qr, apiUrl);
  if (p !== pairing || serial !== p.serial) {
    built.release();
    return;
  }
  p.release();
  p.release = built.release;
  $("qr-box").replaceChildren(built.element);
  const figure = $("qr");
  figure.dataset.serial = String(serial);
  figure.dataset.rendered = built.how;
  qrCaption();
  figure.hidden = false;
}

function qrCaption() {
  const figure = $("qr");
  bilingual(
    $("qr-caption"),
    figure.dataset.rendered === "text"
      ? ["Отсканировать можно будет после установки qrcode", "Scannable once qrcode is installed"]
      : pairing?.polling
      ? ["QR-код обновляется сам", "The QR code refreshes by itself"]
      : ["QR-код больше не обновляется сам", "The QR code no longer refreshes by itself"],
  );
}

function startPolling(p) {
  p.polling = true;
  $("pairing").dataset.polling = "true";
  p.timer = setTimeout(() => tick(p), POLL_MS);
}

function stopPolling(p) {
  clearTimeout(p.timer);
  p.polling = false;
  $("pairing").dataset.polling = "false";
}

/** One poll: the QR and the status, in parallel, as the panel does; a failed call is ignored. */
async function tick(p) {
  const started = Date.now();
  const c = p.ctx;
  let qrRes = null;
  let statusRes = null;
  try {
    [qrRes, statusRes] = await Promise.all([c.api.qr(p.session), c.api.status(p.session, true)]);
  } catch {
    // aborted by a sign-out
  }
  if (p !== pairing || !p.polling || c !== ctx) return;
  const status = statusRes?.ok ? statusRes.data : null;
  if (status?.status === "connected") {
    connected();
    return;
  }
  if (status?.status === "disconnected" && ["replaced", "disconnected"].includes(status.reason)) {
    // Nobody can link this session any more; polling on would wait for nothing.
    stopPolling(p);
    bilingual($("pairing-status"), REASONS[status.reason]);
    return;
  }
  const qr = (qrRes?.ok ? qrRes.data.qr : null) ?? status?.qrcode ?? null;
  if (qr) void showQr(p, qr);
  if (status) pairingStatus(status.status);
  p.timer = setTimeout(() => tick(p), Math.max(0, POLL_MS - (Date.now() - started)));
}

function connected() {
  closePairing();
  toast(TOASTS.connected, "success");
  void loadList();
}

function cancelPairing() {
  if (!pairing) return;
  stopPolling(pairing);
  $("qr-cancel").disabled = true;
  pairingStatus($("pairing-status").dataset.status);
  if ($("qr").dataset.rendered) qrCaption();
}

/** «Обновить QR»: one wpp-qr call; it does not restart a cancelled poll. */
async function refreshQr() {
  const p = pairing;
  if (!p) return;
  const c = p.ctx;
  const button = $("qr-refresh");
  button.disabled = true;
  let res;
  try {
    res = await c.api.qr(p.session);
  } catch {
    return; // aborted by a sign-out
  }
  if (p !== pairing) return;
  button.disabled = false;
  if (!res.ok) {
    bilingual($("qr-caption"), [describeError(res.status, res.code), res.error ?? ""]);
    return;
  }
  if (res.data.qr) {
    await showQr(p, res.data.qr);
  } else if (res.data.reason === "connected") {
    connected();
  } else {
    bilingual($("qr-caption"), ["QR-кода сейчас нет.", "There is no QR code right now."]);
  }
}

// ---- start -------------------------------------------------------------------------------------

function fillDemoUsers() {
  const select = $("demo-user");
  select.append(new Option("— другой пользователь / other user —", ""));
  for (const u of config.users) {
    const [ru, en] = DEMO_USER_LABELS[u.key] ?? [u.key, u.key];
    const option = new Option(`${ru} — ${u.email}`, u.key);
    option.title = en;
    select.append(option);
  }
  const pick = (key) => {
    const user = config.users.find((u) => u.key === key);
    if (user) $("email").value = user.email;
    $("password").value = DEMO_PASSWORD;
  };
  select.addEventListener("change", () => pick(select.value));
  $("email").addEventListener("input", () => {
    const typed = $("email").value.trim().toLowerCase();
    select.value = config.users.find((u) => u.email === typed)?.key ?? "";
  });
  const email = params.get("email");
  if (email) {
    $("email").value = email;
    $("password").value = DEMO_PASSWORD;
    select.value = "";
  } else {
    select.value = params.get("user") ?? "admin";
    pick(select.value);
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
  fillDemoUsers();
  $("sign-in-form").addEventListener("submit", onSignIn);
  $("connect").addEventListener("click", connect);
  $("reload").addEventListener("click", () => void loadList());
  $("qr-refresh").addEventListener("click", refreshQr);
  $("qr-cancel").addEventListener("click", cancelPairing);
  renderControls();
  document.body.dataset.ready = "true";
}

start();
