// Every text the page shows, in Russian (the CRM's language) with English underneath, so an error
// code never reaches the user bare.

export const USER_LABELS = {
  owner: ["Владелец", "owner"],
  admin: ["Администратор", "admin"],
  member: ["Сотрудник", "member"],
  other_admin: ["Администратор другой организации", "admin of another organisation"],
  loner: ["Без организации", "no organisation"],
};

export const STATES = {
  connected: {
    title: ["Подключено", "Connected"],
    hint: [
      "Номер WhatsApp привязан: сообщения будут приходить в CRM.",
      "The WhatsApp number is linked: messages will reach the CRM.",
    ],
  },
  qr_issued: {
    title: ["Ожидает сканирования QR-кода", "Waiting for the QR code to be scanned"],
    hint: [
      "Откройте WhatsApp на телефоне → Настройки → Связанные устройства → Привязка устройства и наведите камеру на код.",
      "On the phone open WhatsApp → Settings → Linked devices → Link a device and point the camera at the code.",
    ],
  },
  starting: {
    title: ["Запускается…", "Starting…"],
    hint: [
      "Платформа готовит сессию; QR-код появится через несколько секунд.",
      "The platform is preparing the session; the QR code will appear in a few seconds.",
    ],
  },
  disconnected: {
    title: ["Отключено", "Disconnected"],
    hint: [
      "Телефон отвязал это устройство. Нажмите «Подключить WhatsApp», чтобы получить новый QR-код.",
      "The phone unlinked this device. Press «Подключить WhatsApp» to get a new QR code.",
    ],
  },
  not_configured: {
    title: ["Не подключено", "Not connected"],
    hint: [
      "WhatsApp ещё не подключён к организации.",
      "WhatsApp is not connected to the organisation yet.",
    ],
  },
  unknown: {
    title: ["Статус недоступен", "Status unavailable"],
    hint: ["Причина — в сообщении ниже.", "The message below says why."],
  },
  error: {
    title: ["Ошибка подключения", "Connection error"],
    hint: ["Попробуйте ещё раз.", "Try again."],
  },
};

/** Hints that replace a state's usual one when wpp-status says why. */
export const REASONS = {
  dead_key: [
    "Платформа больше не принимает ключ этой сессии. Нажмите «Подключить WhatsApp» — будет создана новая сессия.",
    "The platform no longer accepts this session's key. Press «Подключить WhatsApp» to create a new session.",
  ],
  needs_new_session: [
    "Сохранённая сессия недействительна. Нажмите «Подключить WhatsApp» — будет создана новая.",
    "The stored session is not usable. Press «Подключить WhatsApp» to create a new one.",
  ],
  activating: [
    "Платформа ещё активирует новую сессию; QR-код появится через несколько секунд.",
    "The platform is still activating the new session; the QR code will appear in a few seconds.",
  ],
  provisioning: [
    "Сессия создаётся прямо сейчас.",
    "The session is being created right now.",
  ],
};

const BY_CODE = {
  unauthorized: [
    "Вход недействителен или истёк — войдите снова.",
    "Your sign-in is invalid or has expired — sign in again.",
  ],
  forbidden: [
    "Подключать и пересоздавать WhatsApp может только владелец или администратор организации.",
    "Only an owner or an admin of the organisation can connect or recreate WhatsApp.",
  ],
  no_organization: [
    "Ваша учётная запись не состоит ни в одной организации.",
    "Your account does not belong to any organisation.",
  ],
  provisioning_in_progress: [
    "Подключение уже выполняется. Подождите несколько секунд и попробуйте снова.",
    "A connection is already in progress. Wait a few seconds and try again.",
  ],
  platform_timeout: [
    "Платформа WhatsApp не ответила вовремя. Попробуйте позже.",
    "The WhatsApp platform did not answer in time. Try again later.",
  ],
  platform_unreachable: [
    "Платформа WhatsApp недоступна. Попробуйте позже.",
    "The WhatsApp platform is unreachable. Try again later.",
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
  network: [
    "Нет связи с сервером (сеть или CORS).",
    "Cannot reach the server (network or CORS).",
  ],
};

const ALIASES = {
  provisioning_conflict: "provisioning_in_progress",
  platform_rejected: "platform_error",
  platform_malformed: "platform_error",
};

const BY_STATUS = {
  0: "network",
  401: "unauthorized",
  403: "forbidden",
  409: "provisioning_in_progress",
  502: "platform_error",
  503: "platform_error",
  504: "platform_timeout",
};

/** [ru, en] for a failed call, from its code, or its HTTP status when the code is unknown. */
export function describeError(status, code, retryAfter) {
  const known = BY_CODE[ALIASES[code] ?? code] ?? BY_CODE[BY_STATUS[status]];
  const [ru, en] = known ??
    (status >= 500
      ? ["Ошибка сервера. Попробуйте позже.", "Server error. Try again later."]
      : ["Запрос отклонён.", "The request was refused."]);
  const wait = Number(retryAfter);
  if (status === 409 && wait > 0) {
    return [`${ru} (через ${wait} с)`, `${en} (in ${wait} s)`];
  }
  return [ru, en];
}
