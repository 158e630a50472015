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

export interface DeliveryView {
  session: string;
  type: WebhookType;
  at: number;
  ok: boolean;
  status?: number;
  error?: string;
}

export type WebhookType = "qr" | "connected" | "disconnected";

export interface WebhookPayload {
  type: WebhookType;
  account: string;
  qr?: string;
}

export interface SimulatorSnapshot {
  /** False when apiKeys, tokens and webhook URLs are masked (the default). */
  revealed: boolean;
  sessions: SessionView[];
  tokens: TokenView[];
  variants: Variants;
  faults: FaultView[];
  deliveries: DeliveryView[];
}

export type CallCounts = Record<Operation | "unknown", number> & {
  /** Per "METHOD /path/template", e.g. "GET /api/accounts/:session/status". */
  routes: Record<string, number>;
};
