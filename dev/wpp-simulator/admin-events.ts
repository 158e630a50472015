import { dropUndefined, invalid, readBody } from "./admin-body.ts";
import { runBurst } from "./burst.ts";
import { burstBody, inboundMessageBody, sessionEventBody } from "./event-bodies.ts";
import { type EventFaultBook, eventFaultSpec } from "./event-faults.ts";
import { inboundMessage, type PlatformEvent, sessionEvent } from "./events.ts";
import type { PlatformState, SessionRecord } from "./platform-state.ts";
import { json } from "./responses.ts";
import {
  EVENT_FAULT_KINDS,
  EVENT_TYPES,
  type EventFaultKind,
  type EventType,
  type SessionEventSpec,
} from "./types.ts";
import type { WebhookDispatcher } from "./webhooks.ts";

export interface EventsAdminDeps {
  platform: PlatformState;
  webhooks: WebhookDispatcher;
  eventFaults: EventFaultBook;
  log: (line: Record<string, unknown>) => void;
}

/**
 * The admin routes about webhook events: emitting them, delivery faults, delivery records and
 * bursts. Answers undefined for any other route.
 */
export function createEventsAdmin(deps: EventsAdminDeps) {
  return async (req: Request, url: URL, path: string): Promise<Response | undefined> => {
    const emit = /^\/__admin\/sessions\/([^/]+)\/(message|events)$/.exec(path);
    if (emit && req.method === "POST") {
      return emitFor(deps, decodeURIComponent(emit[1]), emit[2], await readBody(req));
    }
    switch (`${req.method} ${path}`) {
      case "GET /__admin/events/faults":
        return json(200, deps.eventFaults.list());
      case "POST /__admin/events/faults": {
        const spec = eventFaultSpec.safeParse(await readBody(req));
        if (!spec.success) return invalid(spec.error);
        return json(201, deps.eventFaults.add(dropUndefined(spec.data)));
      }
      case "DELETE /__admin/events/faults": {
        const kind = url.searchParams.get("kind");
        if (kind !== null && !EVENT_FAULT_KINDS.includes(kind as EventFaultKind)) {
          return json(400, { error: `unknown kind ${kind}` });
        }
        const cleared = deps.eventFaults.clear(kind === null ? undefined : kind as EventFaultKind);
        return json(200, { cleared });
      }
      case "GET /__admin/events/deliveries": {
        const type = url.searchParams.get("type");
        if (type !== null && !EVENT_TYPES.includes(type as EventType)) {
          return json(400, { error: `unknown type ${type}` });
        }
        return json(
          200,
          deps.webhooks.listDeliveries(dropUndefined({
            session: url.searchParams.get("session") ?? undefined,
            type: (type ?? undefined) as EventType | undefined,
            eventId: url.searchParams.get("eventId") ?? undefined,
          })),
        );
      }
      case "DELETE /__admin/events/deliveries":
        return json(200, { cleared: deps.webhooks.clearDeliveries() });
      case "POST /__admin/events/burst": {
        const spec = burstBody.safeParse(await readBody(req));
        if (!spec.success) return invalid(spec.error);
        const target = receiver(deps, spec.data.session);
        if (target instanceof Response) return target;
        return json(200, await runBurst(deps.webhooks, target.webhookUrl, spec.data, deps.log));
      }
      default:
        return undefined;
    }
  };
}

function emitFor(deps: EventsAdminDeps, id: string, route: string, body: unknown): Response {
  let event: PlatformEvent;
  const target = receiver(deps, id);
  if (route === "message") {
    const spec = inboundMessageBody.safeParse(body);
    if (!spec.success) return invalid(spec.error);
    if (target instanceof Response) return target;
    event = { kind: "message", session: id, message: inboundMessage(spec.data) };
  } else {
    const spec = sessionEventBody.safeParse(body);
    if (!spec.success) return invalid(spec.error);
    if (target instanceof Response) return target;
    event = sessionEvent(id, spec.data as SessionEventSpec, target.qr);
  }
  const emission = deps.webhooks.emit(target.webhookUrl, event);
  // Answered before delivery: the platform does not wait for its receivers either.
  const answer: Record<string, unknown> = {
    eventId: emission.eventId,
    session: emission.session,
    type: emission.type,
    dropped: emission.dropped,
  };
  if (event.kind === "message") answer.messageId = event.message.messageId;
  if (event.kind === "delivery") answer.messageId = event.messageId;
  return json(202, answer);
}

/** Events only go to a session's registered URL; emitting into the void would fail silently. */
function receiver(
  deps: EventsAdminDeps,
  id: string,
): (SessionRecord & { webhookUrl: string }) | Response {
  const session = deps.platform.sessions.get(id);
  if (!session) return json(404, { error: "unknown session" });
  if (session.webhookUrl === null) return json(409, { error: "session has no webhook URL" });
  return session as SessionRecord & { webhookUrl: string };
}
