/** Shapes shared by the simulator, its admin API and the typed admin client. */

export const OPERATIONS = ["create", "token", "start", "status", "qr", "webhook", "stop"] as const;
export type Operation = typeof OPERATIONS[number];

export type SessionState = "starting" | "qr" | "connected" | "offline";

/** Which of the documented answer shapes the simulator produces; see variants.ts. */
export interface Variants {
  /** Where a QR is put in start and qr answers. */
  qrField: "qr" | "qrCode" | "qrcode" | "data.qr";
  /** The pairing string itself, or a data:image/png;base64 URL. */
  qrFormat: "raw" | "data-url";
  /** Where status and start answers put the state. */
  stateField: "status" | "state";
  /** The word for a linked account. */
  connectedWord: "connected" | "ready";
  /** Whether start answers with the QR, or only says it is starting/pending. */
  startAnswer: "qr" | "starting" | "pending";
  /** Whether token answers carry expiresIn. */
  expiresIn: boolean;
  /** Whether create answers carry status. */
  createStatus: boolean;
  /** Error bodies as {"error": "..."} or as plain text. */
  errorBody: "json" | "text";
  /** How a bad apiKey is refused. */
  invalidKeyStatus: 401 | 403;
  /** Webhook events: the field that names the event. */
  eventTypeField: "type" | "event";
  /** Webhook events: where the session is named. */
  eventAccountField: "account" | "data.account";
  /** Webhook qr events: where the QR is put. */
  eventQrField: "qr" | "qrcode" | "data.qr";
  /** Webhook qr events: the pairing string itself, or a data:image/png;base64 URL. */
  eventQrFormat: "raw" | "data-url";
  /** The event word sent when a session links. */
  connectedEvent: "connected" | "ready";
  /** The event word sent when a session goes offline (stop or unlink). */
  offlineEvent: "offline" | "disconnected" | "logout";
  /** Inbound messages: where the text is put. */
  messageTextField: "text" | "body";
  /** Whether events carry `timestamp` (ms epoch the platform produced them); undocumented. */
  eventTimestamp: boolean;
}

export const FAULT_KINDS = [
  "latency",
  "hang",
  "status",
  "malformed",
  "missing_field",
  "close",
  "fresh_key_refusal",
] as const;
export type FaultKind = typeof FAULT_KINDS[number];

export interface FaultSpec {
  /** The route the fault applies to; fresh_key_refusal always concerns create. */
  op?: Operation;
  kind: FaultKind;
  /** kind "status": the status to answer (401, 403, 404, 500, 502, 503, ...). */
  status?: number;
  /** kind "status": replaces the platform's usual text for that status. */
  message?: string;
  /** kind "latency": added delay; kind "fresh_key_refusal": how long new keys are refused. */
  ms?: number;
  /** kind "missing_field": field(s) removed from the answer; a per-route default otherwise. */
  field?: string | string[];
  /**
   * hang, close, status, malformed: "before" (default) fails without touching state; "after"
   * lets the platform act first, as when an answer is lost after a create went through.
   */
  phase?: "before" | "after";
  /** Applies to the next N matching calls. */
  times?: number;
  /** Applies for this long from when it was set. Without times or forMs: until cleared. */
  forMs?: number;
}

export interface FaultView extends FaultSpec {
  id: number;
  op: Operation;
  /** Calls left, when `times` was given. */
  remaining?: number;
  /** ms epoch the fault ends, when `forMs` was given. */
  until?: number;
}

export interface SessionView {
  session: string;
  organizationId: string;
  state: SessionState;
  qr: string | null;
  webhookUrl: string | null;
  apiKey: string;
  apiKeyKilled: boolean;
  createdAt: number;
}

export interface TokenView {
  token: string;
  session: string;
  expiresAt: number;
  expired: boolean;
}

/** The words session events carry in `type` (or `event`). */
export const SESSION_EVENT_WORDS = [
  "qr",
  "connected",
  "ready",
  "offline",
  "disconnected",
  "logout",
] as const;
export type SessionEventWord = typeof SESSION_EVENT_WORDS[number];

export const DELIVERY_STATUSES = ["sent", "delivered", "read", "deleted"] as const;
export type DeliveryStatus = typeof DELIVERY_STATUSES[number];

/**
 * An event's type as the simulator records and filters it: the session word, `delivery`, or
 * `message` for an inbound message (whose own `type` field holds the message kind, e.g. `chat`).
 */
export const EVENT_TYPES = [...SESSION_EVENT_WORDS, "delivery", "message"] as const;
export type EventType = typeof EVENT_TYPES[number];

/**
 * Any body the simulator POSTs to a webhook URL. Which fields appear depends on the event and
 * the variants: `type` or `event`, `account` or `data.account`, `qr`/`qrcode`/`data.qr`,
 * `text` or `body`, with or without `timestamp`.
 */
export interface WebhookPayload {
  type?: string;
  event?: string;
  account?: string;
  data?: { account?: string; qr?: string };
  qr?: string;
  qrcode?: string;
  messageId?: string;
  status?: DeliveryStatus;
  from?: string;
  raw_from?: string;
  text?: string;
  body?: string;
  fromMe?: boolean;
  media?: Record<string, unknown>;
  timestamp?: number;
}

/**
 * One webhook POST (or one event dropped by a fault). Never holds the URL, which carries the
 * receiver's secret, nor a QR.
 */
export interface DeliveryView {
  eventId: string;
  type: EventType;
  session: string;
  /** ms epoch the attempt started (or the event was dropped). */
  at: number;
  ok: boolean;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** The error's name when it did not (TimeoutError, TypeError for a refused connection...). */
  error?: string;
  /** 1 for the first try, 2 for the first retry...; 0 for a dropped event. */
  attempt: number;
  /** 1 for the original, 2..k for the copies a duplicate fault adds. */
  copy: number;
  duplicate: boolean;
  /** Sent in another position than it was produced in (reorder fault or burst). */
  reordered: boolean;
  dropped: boolean;
  /** How long the attempt took. */
  ms?: number;
}

export const EVENT_FAULT_KINDS = ["drop", "delay", "duplicate", "reorder", "retry"] as const;
export type EventFaultKind = typeof EVENT_FAULT_KINDS[number];

/** A fault on webhook deliveries (`POST /__admin/events/faults`). */
export interface EventFaultSpec {
  kind: EventFaultKind;
  /** Only events of this session. */
  session?: string;
  /** Only events of these types. */
  types?: EventType[];
  /** Applies to each matching event with this chance (0 < p <= 1); always when absent. */
  probability?: number;
  /** delay: fixed wait before sending. */
  ms?: number;
  /** delay: a random extra wait, uniform in [0, jitterMs], drawn per copy. */
  jitterMs?: number;
  /** duplicate: how many times each event is sent in all (>= 2). */
  copies?: number;
  /** reorder: how long events are held before the batch is sent in a shuffled order. */
  windowMs?: number;
  /** retry: attempts in all on a non-2xx answer or a failed request (>= 1). */
  attempts?: number;
  /** retry: wait between attempts. */
  backoffMs?: number;
  /** retry: how long the receiver has to answer each attempt (default 5000). */
  timeoutMs?: number;
  /** Applies to the next N events it acts on. */
  times?: number;
  /** Applies for this long from when it was set. Without times or forMs: until cleared. */
  forMs?: number;
}

export interface EventFaultView extends EventFaultSpec {
  id: number;
  remaining?: number;
  until?: number;
}

/** `POST /__admin/sessions/{s}/message`: an inbound WhatsApp message. */
export interface InboundMessageSpec {
  /** The sender, e.g. "5511999990000"; a JID ("...@c.us") is split into from and raw_from. */
  from: string;
  /** Default: `${from}@c.us`. */
  rawFrom?: string;
  text?: string;
  /** The message kind the platform puts in `type`; default "chat". */
  type?: string;
  /** Default: a fresh WhatsApp-like id. */
  messageId?: string;
  fromMe?: boolean;
  /** Passed through as is: its shape on the platform is unknown. */
  media?: Record<string, unknown>;
}

/** `POST /__admin/sessions/{s}/events`: a session event or a delivery status. */
export type SessionEventSpec =
  | { type: "qr"; qr?: string }
  | { type: Exclude<SessionEventWord, "qr"> }
  | { type: "delivery"; messageId: string; status: DeliveryStatus };

export interface EmittedEvent {
  eventId: string;
  session: string;
  type: EventType;
  messageId?: string;
  /** A drop fault took it: nothing will be sent. */
  dropped: boolean;
}

/** `POST /__admin/events/burst`. */
export interface BurstSpec {
  session: string;
  count: number;
  /** Deliveries in flight at most; default 10. */
  concurrency?: number;
  /** Event types sent in turn; default ["message"]. */
  types?: EventType[];
  /** Each event sent this many times in all. */
  duplicate?: number;
  /** Send the events in a shuffled order (never the produced one). */
  reorder?: boolean;
}

export interface BurstReport {
  session: string;
  /** Events produced. */
  count: number;
  /** Events a drop fault took. */
  dropped: number;
  /** Sends planned (events kept x copies). */
  deliveries: number;
  /** Sends that ended with a 2xx (after retries). */
  delivered: number;
  failed: number;
  /** HTTP requests made, retries included. */
  attempts: number;
  /** Failed sends by final status or error name, e.g. {"503": 2, "TimeoutError": 1}. */
  errors: Record<string, number>;
  /** Per send, first attempt to final answer; null when nothing was sent. */
  latencyMs: { p50: number | null; p90: number | null; p99: number | null; max: number | null };
  durationMs: number;
  perSecond: number;
}

export interface SimulatorSnapshot {
  /** False when apiKeys, tokens and webhook URLs are masked (the default). */
  revealed: boolean;
  sessions: SessionView[];
  tokens: TokenView[];
  variants: Variants;
  faults: FaultView[];
  eventFaults: EventFaultView[];
  /** The most recent webhook deliveries, oldest first (bounded). */
  deliveries: DeliveryView[];
}

export type CallCounts = Record<Operation | "unknown", number> & {
  /** Per "METHOD /path/template", e.g. "GET /api/accounts/:session/status". */
  routes: Record<string, number>;
};
