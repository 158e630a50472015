import type { DeliveryView, EventType } from "./types.ts";

export interface DeliveryFilter {
  session?: string;
  type?: EventType;
  eventId?: string;
}

/** The most recent deliveries, oldest first; old ones fall off so a long run stays small. */
export class DeliveryLog {
  #records: DeliveryView[] = [];

  constructor(private readonly keep: number) {}

  add(record: DeliveryView): void {
    this.#records.push(record);
    if (this.#records.length > this.keep) this.#records.splice(0, this.#records.length - this.keep);
  }

  list(filter: DeliveryFilter = {}): DeliveryView[] {
    return this.#records.filter((r) =>
      (filter.session === undefined || r.session === filter.session) &&
      (filter.type === undefined || r.type === filter.type) &&
      (filter.eventId === undefined || r.eventId === filter.eventId)
    );
  }

  clear(): number {
    const n = this.#records.length;
    this.#records = [];
    return n;
  }
}
