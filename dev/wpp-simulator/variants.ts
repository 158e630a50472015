import { z } from "zod";
import type { SessionState, Variants } from "./types.ts";

export const DEFAULT_VARIANTS: Readonly<Variants> = Object.freeze({
  qrField: "qr",
  qrFormat: "raw",
  stateField: "status",
  connectedWord: "connected",
  startAnswer: "qr",
  expiresIn: true,
  createStatus: true,
  errorBody: "json",
  invalidKeyStatus: 403,
  eventTypeField: "type",
  eventAccountField: "account",
  eventQrField: "qr",
  eventQrFormat: "raw",
  connectedEvent: "connected",
  offlineEvent: "disconnected",
  messageTextField: "text",
  eventTimestamp: true,
});

export const variantsPatch = z.strictObject({
  qrField: z.enum(["qr", "qrCode", "qrcode", "data.qr"]).optional(),
  qrFormat: z.enum(["raw", "data-url"]).optional(),
  stateField: z.enum(["status", "state"]).optional(),
  connectedWord: z.enum(["connected", "ready"]).optional(),
  startAnswer: z.enum(["qr", "starting", "pending"]).optional(),
  expiresIn: z.boolean().optional(),
  createStatus: z.boolean().optional(),
  errorBody: z.enum(["json", "text"]).optional(),
  invalidKeyStatus: z.union([z.literal(401), z.literal(403)]).optional(),
  eventTypeField: z.enum(["type", "event"]).optional(),
  eventAccountField: z.enum(["account", "data.account"]).optional(),
  eventQrField: z.enum(["qr", "qrcode", "data.qr"]).optional(),
  eventQrFormat: z.enum(["raw", "data-url"]).optional(),
  connectedEvent: z.enum(["connected", "ready"]).optional(),
  offlineEvent: z.enum(["offline", "disconnected", "logout"]).optional(),
  messageTextField: z.enum(["text", "body"]).optional(),
  eventTimestamp: z.boolean().optional(),
});

/** The QR as a start or qr answer carries it, under the chosen field and in the chosen form. */
export function qrBody(v: Variants, qr: string): Record<string, unknown> {
  const value = v.qrFormat === "data-url" ? qrDataUrl(qr) : qr;
  return v.qrField === "data.qr" ? { data: { qr: value } } : { [v.qrField]: value };
}

/** Stands in for a rendered QR image: what matters to a client is the data: URL form. */
export function qrDataUrl(qr: string): string {
  return `data:image/png;base64,${btoa(qr)}`;
}

export function stateBody(v: Variants, state: SessionState): Record<string, unknown> {
  return { [v.stateField]: state === "connected" ? v.connectedWord : state };
}

/** `startAnswer` picks the word start uses while the account is not linked yet. */
export function startWord(v: Variants): "starting" | "pending" {
  return v.startAnswer === "pending" ? "pending" : "starting";
}
