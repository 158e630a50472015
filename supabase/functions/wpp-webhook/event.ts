// The platform's event shapes, as far as they are known: the type in `type` or `event`, the
// session in `account` or `data.account`, a QR in `data.qr`, `qrcode` or `qr`, and maybe a time.
// Events carry whatever else they like (messages, deliveries), so the schema is loose: only what
// this project reads is validated, the rest is forwarded untouched.
import { z } from "zod";
import type { Connection } from "../_shared/db/store.ts";

const text = z.string().trim().min(1).max(4096);
// A QR may come as a data:image/png;base64 URL, easily larger than a word; the body cap
// (WPP_WEBHOOK_MAX_BYTES) bounds it, as nothing bounds the QR the platform's qr route answers.
const qrText = z.string().trim().min(1);
const id = z.union([z.string().trim().min(1).max(128), z.number().int().nonnegative()])
  .transform(String);
const time = z.union([z.number().finite().positive(), z.string().max(64)]);
// A field that cannot be read counts as absent (`"timestamp": null`, `"qrcode": null` after a
// link, a numeric message type): refusing the event would also keep it, an inbound message
// perhaps, from the CRM's receiver. The account stays strict: without it nobody can tell whose
// event it is.
const lenient = <T extends z.ZodType>(schema: T) => schema.optional().catch(undefined);
const objectOrAbsent = (v: unknown) =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? v : undefined;

const EventSchema = z.looseObject({
  type: lenient(text),
  event: lenient(text),
  account: id.optional(),
  qr: lenient(qrText),
  qrcode: lenient(qrText),
  timestamp: lenient(time),
  data: z.preprocess(
    objectOrAbsent,
    z.looseObject({
      account: id.optional(),
      qr: lenient(qrText),
      timestamp: lenient(time),
    }).optional(),
  ),
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
