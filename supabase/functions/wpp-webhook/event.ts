// The platform's event shapes, as far as they are known: the type in `type` or `event`, the
// session in `account` or `data.account`, a QR in `data.qr`, `qrcode` or `qr`, and maybe a time.
// Events carry whatever else they like (messages, deliveries), so the schema is loose: only what
// this project reads is validated, the rest is forwarded untouched.
import { z } from "zod";
import type { Connection } from "../_shared/store.ts";

const text = z.string().trim().min(1).max(4096);
const id = z.union([z.string().trim().min(1).max(128), z.number().int().nonnegative()])
  .transform(String);
const time = z.union([z.number().finite().positive(), z.string().max(64)]);

const EventSchema = z.looseObject({
  type: text.optional(),
  event: text.optional(),
  account: id.optional(),
  qr: text.optional(),
  qrcode: text.optional(),
  timestamp: time.optional(),
  data: z.looseObject({
    account: id.optional(),
    qr: text.optional(),
    timestamp: time.optional(),
  }).optional(),
});

export interface PlatformEvent {
  /** Lower-cased type word, or "unknown". */
  type: string;
  account: string | null;
  /** Session events only; null for messages, deliveries and unknown types. */
  connection: Exclude<Connection, "unknown"> | null;
  qr: string | null;
  /** ms epoch the platform produced it, when it said so. */
  at: number | null;
}

const SESSION_TYPES: Record<string, Exclude<Connection, "unknown">> = {
  qr: "qr",
  connected: "connected",
  ready: "connected",
  offline: "offline",
  disconnected: "offline",
  logout: "offline",
};

/** A clock more than this far ahead is not believed: it would freeze every later event. */
const MAX_FUTURE_MS = 60_000;

function toMs(value: number | string | undefined, now: number): number | null {
  if (value === undefined) return null;
  let ms: number;
  if (typeof value === "number") {
    // Seconds and milliseconds are both seen in the wild; 1e11 ms is 1973, 1e11 s is year 5138.
    ms = value < 1e11 ? value * 1000 : value;
  } else {
    ms = /^\d+(\.\d+)?$/.test(value) ? toMs(Number(value), now) ?? NaN : Date.parse(value);
  }
  if (!Number.isFinite(ms) || ms <= 0) return null;
  return Math.min(Math.round(ms), now + MAX_FUTURE_MS);
}

/** null when the body is not an object of the known shape. */
export function readEvent(json: unknown, now: number): PlatformEvent | null {
  const parsed = EventSchema.safeParse(json);
  if (!parsed.success) return null;
  const e = parsed.data;
  const type = (e.type ?? e.event ?? "unknown").toLowerCase();
  const connection = SESSION_TYPES[type] ?? null;
  const qr = connection === "qr" ? e.data?.qr ?? e.qrcode ?? e.qr ?? null : null;
  return {
    type,
    account: e.account ?? e.data?.account ?? null,
    connection: connection === "qr" && !qr ? null : connection,
    qr,
    at: toMs(e.timestamp ?? e.data?.timestamp, now),
  };
}
