import { newMessageId, newQr } from "./ids.ts";
import type {
  DeliveryStatus,
  EventType,
  InboundMessageSpec,
  SessionEventSpec,
  SessionEventWord,
} from "./types.ts";

export interface InboundMessage {
  from: string;
  rawFrom: string;
  text?: string;
  messageType: string;
  messageId: string;
  fromMe: boolean;
  media?: Record<string, unknown>;
}

/**
 * What happened, before it is put in one of the platform's shapes (event-shapes.ts). State
 * changes leave `word` out so the variants pick it; admin emissions name it.
 */
export type PlatformEvent =
  | { kind: "qr"; session: string; qr: string }
  | { kind: "connected"; session: string; word?: "connected" | "ready" }
  | { kind: "offline"; session: string; word?: "offline" | "disconnected" | "logout" }
  | { kind: "delivery"; session: string; messageId: string; status: DeliveryStatus }
  | { kind: "message"; session: string; message: InboundMessage };

/** Fills what the admin left out the way the platform is believed to: JIDs on @c.us. */
export function inboundMessage(spec: InboundMessageSpec): InboundMessage {
  const at = spec.from.indexOf("@");
  const from = at >= 0 ? spec.from.slice(0, at) : spec.from;
  const message: InboundMessage = {
    from,
    rawFrom: spec.rawFrom ?? (at >= 0 ? spec.from : `${from}@c.us`),
    messageType: spec.type ?? "chat",
    messageId: spec.messageId ?? newMessageId(),
    fromMe: spec.fromMe ?? false,
  };
  if (spec.text !== undefined) message.text = spec.text;
  if (spec.media !== undefined) message.media = spec.media;
  return message;
}

/** An admin-requested session event; a qr event without a QR shows `currentQr` or a new one. */
export function sessionEvent(
  session: string,
  spec: SessionEventSpec,
  currentQr: string | null,
): PlatformEvent {
  switch (spec.type) {
    case "qr":
      return { kind: "qr", session, qr: spec.qr ?? currentQr ?? newQr() };
    case "delivery":
      return { kind: "delivery", session, messageId: spec.messageId, status: spec.status };
    case "connected":
    case "ready":
      return { kind: "connected", session, word: spec.type };
    default:
      return { kind: "offline", session, word: spec.type };
  }
}

const BURST_STATUSES: DeliveryStatus[] = ["sent", "delivered", "read"];

/** The i-th event of a burst: distinct message ids so a receiver can tell them apart. */
export function burstEvent(session: string, type: EventType, i: number): PlatformEvent {
  switch (type) {
    case "message":
      return {
        kind: "message",
        session,
        message: inboundMessage({ from: "5511900000000", text: `burst ${i}` }),
      };
    case "delivery":
      return {
        kind: "delivery",
        session,
        messageId: newMessageId(),
        status: BURST_STATUSES[i % BURST_STATUSES.length],
      };
    default:
      return sessionEvent(session, { type } as { type: SessionEventWord }, null);
  }
}
