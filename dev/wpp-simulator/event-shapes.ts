import type { PlatformEvent } from "./events.ts";
import type { EventType, Variants, WebhookPayload } from "./types.ts";
import { qrDataUrl } from "./variants.ts";

/** The type an event is recorded and filtered under: the word it goes out with. */
export function eventType(event: PlatformEvent, v: Variants): EventType {
  switch (event.kind) {
    case "connected":
      return event.word ?? v.connectedEvent;
    case "offline":
      return event.word ?? v.offlineEvent;
    default:
      return event.kind;
  }
}

/** The body the platform POSTs for this event, in the shape the variants choose. */
export function renderEvent(event: PlatformEvent, v: Variants, at: number): WebhookPayload {
  const body: Record<string, unknown> = {};
  const data: Record<string, unknown> = {};
  const put = (field: string, value: unknown) => {
    if (field.startsWith("data.")) data[field.slice(5)] = value;
    else body[field] = value;
  };
  // Inbound messages are documented with `type` holding the message kind and no event word.
  if (event.kind !== "message") put(v.eventTypeField, eventType(event, v));
  put(v.eventAccountField, event.session);
  switch (event.kind) {
    case "qr":
      put(v.eventQrField, v.eventQrFormat === "data-url" ? qrDataUrl(event.qr) : event.qr);
      break;
    case "delivery":
      body.messageId = event.messageId;
      body.status = event.status;
      break;
    case "message": {
      const m = event.message;
      body.from = m.from;
      body.raw_from = m.rawFrom;
      if (m.text !== undefined) body[v.messageTextField] = m.text;
      body.type = m.messageType;
      body.messageId = m.messageId;
      body.fromMe = m.fromMe;
      if (m.media !== undefined) body.media = m.media;
      break;
    }
  }
  if (Object.keys(data).length > 0) body.data = data;
  if (v.eventTimestamp) body.timestamp = at;
  return body as WebhookPayload;
}
