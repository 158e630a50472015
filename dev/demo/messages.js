// Every text the page shows, in Russian (the CRM's language) with English underneath, so an error
// code or a status word never reaches the user bare.

export const ROLE_LABELS = {
  owner: ["Владелец", "owner"],
  admin: ["Администратор", "admin"],
  member: ["Сотрудник", "member"],
};

export const DEMO_USER_LABELS = {
  owner: ["Владелец", "owner"],
  admin: ["Администратор", "admin"],
  member: ["Сотрудник", "member"],
  other_admin: ["Администратор другой организации", "admin of another organisation"],
  loner: ["Без организации", "no organisation"],
};

export const ACCESS_NOTES = {
  member: [
    "Подключать и отключать номера может только владелец или администратор организации. Вам виден только статус, QR-код не показывается.",
    "Only an owner or an admin of the organisation can connect or disconnect numbers. You see the status only, never a QR code.",
  ],
  no_organization: [
    "Ваша учётная запись не состоит ни в одной организации: подключать WhatsApp некуда.",
    "Your account does not belong to any organisation: there is nothing to connect WhatsApp to.",
  ],
  unknown_role: [
    "Не удалось прочитать вашу роль в организации, поэтому кнопки отключены.",
    "Your role in the organisation could not be read, so the buttons are disabled.",
  ],
};

/** What a number's card says, by the wpp-status `status` (or the page's own states). */
export const STATUS_LABELS = {
  checking: ["Проверяем…", "Checking…"],
  connected: ["Подключён", "Connected"],
  qr_issued: ["Ожидает сканирования QR-кода", "Waiting for the QR code to be scanned"],
  qr_pending: ["Готовится QR-код…", "A QR code is being prepared…"],
  disconnected: ["Отключён", "Disconnected"],
  not_configured: ["Не подключён", "Not connected"],
  error: ["Статус недоступен", "Status unavailable"],
};

/** Why a number is in its state, when wpp-status says (`reason`). */
export const REASONS = {
  offline: [
    "Телефон отвязал это устройство: подключите номер заново.",
    "The phone unlinked this device: connect the number again.",
  ],
  disconnected: ["Номер отключён в CRM.", "The number was disconnected in the CRM."],
  replaced: ["Сессия заменена новой.", "The session was replaced by a newer one."],
  needs_new_session: [
    "Сохранённая сессия недействительна: нужно подключить номер заново.",
    "The stored session is not usable: the number must be connected again.",
  ],
  dead_key: [
    "Платформа больше не принимает ключ этой сессии: нужно подключить номер заново.",
    "The platform no longer accepts this session's key: the number must be connected again.",
  ],
  activating: [
    "Платформа ещё активирует новую сессию.",
    "The platform is still activating the new session.",
  ],
  provisioning: ["Сессия создаётся прямо сейчас.", "The session is being created right now."],
  no_integration: ["Номер ещё не подключён.", "The number is not connected yet."],
};

export const MEMBER_QR_HINT = [
  "QR-код видит только владелец или администратор.",
  "Only an owner or an admin sees the QR code.",
];

export const TOASTS = {
  already_connected: ["WhatsApp уже подключен!", "WhatsApp is already connected!"],
  connected: ["WhatsApp успешно подключен!", "WhatsApp connected!"],
  disconnected: ["Номер отключён.", "The number was disconnected."],
};

const BY_CODE = {
  unauthorized: [
    "Вход недействителен или истёк — войдите снова.",
    "Your sign-in is invalid or has expired — sign in again.",
  ],
  forbidden: [
    "Это может только владелец или администратор организации.",
    "Only an owner or an admin of the organisation can do this.",
  ],
  no_organization: [
    "Ваша учётная запись не состоит ни в одной организации.",
    "Your account does not belong to any organisation.",
  ],
  not_found: [
    "Такого номера в вашей организации нет (возможно, он удалён).",
    "Your organisation has no such number (it may have been removed).",
  ],
  provisioning_in_progress: [
    "Подключение уже выполняется. Подождите несколько секунд и попробуйте снова.",
    "A connection is already in progress. Wait a few seconds and try again.",
  ],
  create_cooldown: [
    "Предыдущая попытка подключения ещё не завершилась. Попробуйте через полминуты.",
    "The previous connection attempt has not settled yet. Try again in half a minute.",
  ],
  number_limit_reached: [
    "Достигнут предел числа номеров WhatsApp для организации.",
    "The organisation has reached its limit of WhatsApp numbers.",
  ],
  database_busy: [
    "Сервер перегружен. Попробуйте позже.",
    "The server is busy. Try again later.",
  ],
  platform_timeout: [
    "Платформа WhatsApp не ответила вовремя. Попробуйте позже.",
    "The WhatsApp platform did not answer in time. Try again later.",
  ],
  platform_error: [
    "Платформа WhatsApp недоступна или ответила ошибкой. Попробуйте позже.",
    "The WhatsApp platform is down or answered with an error. Try again later.",
  ],
  platform_unauthorized: [
    "Сервер не смог авторизоваться на платформе WhatsApp. Сообщите администратору.",
    "The server could not authenticate with the WhatsApp platform. Tell your administrator.",
  ],
  not_configured: [
    "Функция на сервере не настроена. Сообщите администратору.",
    "The function is not configured on the server. Tell your administrator.",
  ],
  network: ["Нет связи с сервером (сеть или CORS).", "Cannot reach the server (network or CORS)."],
};

const ALIASES = {
  provisioning_conflict: "provisioning_in_progress",
  idempotency_in_progress: "provisioning_in_progress",
  platform_rejected: "platform_error",
  platform_malformed: "platform_error",
  platform_unreachable: "platform_error",
  database_timeout: "database_busy",
  database_unavailable: "database_busy",
};

/** The Russian line of an error card, from the answer's code, else its HTTP status. */
export function describeError(status, code) {
  const known = BY_CODE[ALIASES[code] ?? code];
  if (known) return known[0];
  if (status === 0) return BY_CODE.network[0];
  return status >= 500 ? "Ошибка сервера. Попробуйте позже." : "Запрос отклонён.";
}
