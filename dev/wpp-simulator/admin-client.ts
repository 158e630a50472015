import type {
  BurstReport,
  BurstSpec,
  CallCounts,
  DeliveryView,
  EmittedEvent,
  EventFaultKind,
  EventFaultSpec,
  EventFaultView,
  EventType,
  FaultSpec,
  FaultView,
  InboundMessageSpec,
  Operation,
  SessionEventSpec,
  SessionView,
  SimulatorSnapshot,
  Variants,
} from "./types.ts";

export type {
  BurstReport,
  BurstSpec,
  CallCounts,
  DeliveryView,
  EmittedEvent,
  EventFaultKind,
  EventFaultSpec,
  EventFaultView,
  EventType,
  FaultSpec,
  FaultView,
  InboundMessageSpec,
  Operation,
  SessionEventSpec,
  SessionView,
  SimulatorSnapshot,
  Variants,
  WebhookPayload,
} from "./types.ts";

/** Typed access to the simulator's /__admin/ API, for tests in this or another process. */
export class SimulatorAdmin {
  readonly #base: string;

  constructor(url: string) {
    this.#base = url.replace(/\/+$/, "");
  }

  /** A phone scans the session's QR: the session becomes connected. */
  scan(session: string): Promise<SessionView> {
    return this.#call("POST", `/__admin/sessions/${encodeURIComponent(session)}/scan`);
  }

  /** The phone unlinks: the session goes offline. */
  disconnect(session: string): Promise<SessionView> {
    return this.#call("POST", `/__admin/sessions/${encodeURIComponent(session)}/disconnect`);
  }

  expireTokens(): Promise<{ expired: number }> {
    return this.#call("POST", "/__admin/tokens/expire");
  }

  killApiKey(target: { apiKey: string } | { session: string }): Promise<{ killed: number }> {
    return this.#call("POST", "/__admin/api-keys/kill", target);
  }

  state(opts: { reveal?: boolean } = {}): Promise<SimulatorSnapshot> {
    return this.#call("GET", `/__admin/state${opts.reveal ? "?reveal=1" : ""}`);
  }

  calls(): Promise<CallCounts> {
    return this.#call("GET", "/__admin/calls");
  }

  async reset(): Promise<void> {
    await this.#call("POST", "/__admin/reset");
  }

  setFault(spec: FaultSpec): Promise<FaultView> {
    return this.#call("POST", "/__admin/faults", spec);
  }

  faults(): Promise<FaultView[]> {
    return this.#call("GET", "/__admin/faults");
  }

  async clearFaults(op?: Operation): Promise<void> {
    await this.#call("DELETE", `/__admin/faults${op ? `?op=${op}` : ""}`);
  }

  setVariants(variants: Partial<Variants>): Promise<Variants> {
    return this.#call("POST", "/__admin/variants", variants);
  }

  /** An inbound WhatsApp message reaches the session's webhook. */
  sendMessage(session: string, message: InboundMessageSpec): Promise<EmittedEvent> {
    return this.#call("POST", `/__admin/sessions/${encodeURIComponent(session)}/message`, message);
  }

  /** A session event (any word, used as given) or a delivery status, without a state change. */
  emitEvent(session: string, event: SessionEventSpec): Promise<EmittedEvent> {
    return this.#call("POST", `/__admin/sessions/${encodeURIComponent(session)}/events`, event);
  }

  /** Shorthand for a `delivery` event. */
  emitDelivery(
    session: string,
    messageId: string,
    status: "sent" | "delivered" | "read" | "deleted",
  ): Promise<EmittedEvent> {
    return this.emitEvent(session, { type: "delivery", messageId, status });
  }

  setEventFault(spec: EventFaultSpec): Promise<EventFaultView> {
    return this.#call("POST", "/__admin/events/faults", spec);
  }

  eventFaults(): Promise<EventFaultView[]> {
    return this.#call("GET", "/__admin/events/faults");
  }

  async clearEventFaults(kind?: EventFaultKind): Promise<number> {
    const path = `/__admin/events/faults${kind ? `?kind=${kind}` : ""}`;
    return (await this.#call<{ cleared: number }>("DELETE", path)).cleared;
  }

  /** Recorded deliveries, oldest first, optionally narrowed. */
  deliveries(
    filter: { session?: string; type?: EventType; eventId?: string } = {},
  ): Promise<DeliveryView[]> {
    const query = new URLSearchParams(
      Object.entries(filter).filter((e): e is [string, string] => e[1] !== undefined),
    ).toString();
    return this.#call("GET", `/__admin/events/deliveries${query ? `?${query}` : ""}`);
  }

  async clearDeliveries(): Promise<number> {
    return (await this.#call<{ cleared: number }>("DELETE", "/__admin/events/deliveries")).cleared;
  }

  /** Sends a load of events and answers once they have all settled. */
  burst(spec: BurstSpec): Promise<BurstReport> {
    return this.#call("POST", "/__admin/events/burst", spec);
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    // No keep-alive: a pooled connection left by the admin client could be picked up by the
    // code under test, and Deno's fetch replays requests on reused connections that get cut,
    // which would hide "close" faults.
    const headers: Record<string, string> = { connection: "close" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(this.#base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`simulator admin ${method} ${path} answered ${response.status}: ${text}`);
    }
    return JSON.parse(text) as T;
  }
}
