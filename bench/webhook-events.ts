// The events of the webhook benchmark, made up front so that their order is known: per
// integration, inbound messages, delivery statuses and session events (QR, linked, unlinked) in
// the platform's default shapes (rendered by the simulator's own code), each stamped with the
// time it was "produced"; then copies of some (the platform resends), then all of it shuffled
// (the platform's deliveries overtake each other). The newest session event of each integration
// is never the last one sent, so an older event always arrives after it and must be ignored.
import { renderEvent } from "../dev/wpp-simulator/event-shapes.ts";
import { inboundMessage, type PlatformEvent } from "../dev/wpp-simulator/events.ts";
import { newMessageId, newQr } from "../dev/wpp-simulator/ids.ts";
import { DEFAULT_VARIANTS } from "../dev/wpp-simulator/variants.ts";

export type ReceiverCommand =
  | { kind: "start"; port: number; token: string }
  | { kind: "report" }
  | { kind: "reset" }
  | { kind: "stop" };

export interface ReceiverReport {
  /** Forwarded requests in all, copies included. */
  received: number;
  /** Each key seen, with how often. */
  keys: [string, number][];
  badToken: number;
  unreadable: number;
}

/** What tells events apart: the message id, else (account, type, time produced). */
export function eventKey(e: Record<string, unknown>): string {
  if (typeof e.messageId === "string") return `m:${e.messageId}`;
  return `s:${e.account}:${e.type}:${e.timestamp}`;
}

export type SessionConnection = "qr" | "connected" | "offline";

export interface Target {
  integrationId: string;
  session: string;
  /** The integration's webhook secret: the last segment of its URL. */
  secret: string;
}

export interface SessionEvent {
  connection: SessionConnection;
  qr: string | null;
  at: number;
}

export interface WebhookPlan {
  /** Distinct events, by key. */
  distinct: number;
  keys: Set<string>;
  sessionEvents: number;
  deliveries: number;
  messages: number;
  /** Extra sends of an event already in the plan. */
  copies: number;
  /** Requests in send order. */
  sequence: { path: string; body: string }[];
  /** Per target: the session event with the latest production time. */
  newest: SessionEvent[];
  /** Session events sent after a newer session event of the same integration. */
  sentLate: number;
}

export interface PlanOptions {
  total: number;
  copyShare: number;
  sessionEventsPerTarget: number;
  deliveryShare: number;
  /** ms epoch of the first event; each next one of a target is 1 ms later. */
  firstAt: number;
  /** The connection each target's newest session event leaves, in turn. */
  finals: SessionConnection[];
}

const EVENT_OF: Record<SessionConnection, (session: string) => PlatformEvent> = {
  qr: (session) => ({ kind: "qr", session, qr: newQr() }),
  connected: (session) => ({ kind: "connected", session }),
  offline: (session) => ({ kind: "offline", session }),
};
const CONNECTIONS: SessionConnection[] = ["qr", "connected", "offline"];

interface Planned {
  target: number;
  key: string;
  body: string;
  session?: SessionEvent;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

export function planEvents(targets: Target[], opts: PlanOptions): WebhookPlan {
  const copies = Math.round(opts.total * opts.copyShare);
  const distinctTotal = opts.total - copies;
  const planned: Planned[] = [];
  const newest: SessionEvent[] = [];
  let deliveries = 0;
  let messages = 0;
  for (const [t, target] of targets.entries()) {
    const n = Math.floor(distinctTotal / targets.length) +
      (t < distinctTotal % targets.length ? 1 : 0);
    // Session events at random production positions, the last one among the last few.
    const sessionAt = new Set<number>([n - 1 - Math.floor(Math.random() * 10)]);
    while (sessionAt.size < opts.sessionEventsPerTarget) {
      sessionAt.add(Math.floor(Math.random() * n));
    }
    const lastSession = Math.max(...sessionAt);
    for (let i = 0; i < n; i++) {
      const at = opts.firstAt + i;
      let event: PlatformEvent;
      let session: SessionEvent | undefined;
      if (sessionAt.has(i)) {
        const connection = i === lastSession
          ? opts.finals[t % opts.finals.length]
          : CONNECTIONS[Math.floor(Math.random() * CONNECTIONS.length)];
        event = EVENT_OF[connection](target.session);
        session = { connection, qr: event.kind === "qr" ? event.qr : null, at };
        if (i === lastSession) newest[t] = session;
      } else if (Math.random() < opts.deliveryShare) {
        deliveries++;
        event = {
          kind: "delivery",
          session: target.session,
          messageId: newMessageId(),
          status: (["sent", "delivered", "read"] as const)[i % 3],
        };
      } else {
        messages++;
        event = {
          kind: "message",
          session: target.session,
          message: inboundMessage({ from: "5511900000000", text: `bench ${t}.${i}` }),
        };
      }
      const json = renderEvent(event, DEFAULT_VARIANTS, at) as Record<string, unknown>;
      planned.push({ target: t, key: eventKey(json), body: JSON.stringify(json), session });
    }
  }
  const sends = [...planned];
  for (let i = 0; i < copies; i++) sends.push(planned[Math.floor(Math.random() * planned.length)]);
  shuffle(sends);

  // If the newest session event of a target happens to be its last session send, swap it with
  // the latest older one: the receiver must meet an older event after the newest.
  for (let t = 0; t < targets.length; t++) {
    const positions = sends.flatMap((p, i) => p.target === t && p.session ? [i] : []);
    const last = positions[positions.length - 1];
    if (sends[last].session === newest[t]) {
      const older = positions.findLast((i) => sends[i].session !== newest[t]);
      if (older !== undefined) [sends[older], sends[last]] = [sends[last], sends[older]];
    }
  }

  let sentLate = 0;
  const latestSeen = new Map<number, number>();
  for (const p of sends) {
    if (!p.session) continue;
    const seen = latestSeen.get(p.target) ?? -Infinity;
    if (p.session.at < seen) sentLate++;
    else latestSeen.set(p.target, p.session.at);
  }

  return {
    distinct: planned.length,
    keys: new Set(planned.map((p) => p.key)),
    sessionEvents: planned.filter((p) => p.session).length,
    deliveries,
    messages,
    copies,
    sequence: sends.map((p) => ({
      path: `/functions/v1/wpp-webhook/${encodeURIComponent(targets[p.target].secret)}`,
      body: p.body,
    })),
    newest,
    sentLate,
  };
}
