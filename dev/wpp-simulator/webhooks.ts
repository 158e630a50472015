import type { DeliveryView, WebhookPayload } from "./types.ts";

const DELIVERY_TIMEOUT_MS = 5_000;
const KEPT_DELIVERIES = 200;

/**
 * Sends webhook events fire-and-forget, as the platform does: no retries, no signature. A
 * receiver that is down or slow is recorded and logged, never allowed to disturb the simulator.
 */
export class WebhookDispatcher {
  readonly deliveries: DeliveryView[] = [];
  readonly #pending = new Set<Promise<void>>();
  readonly #stopping = new AbortController();

  constructor(private readonly log: (line: Record<string, unknown>) => void) {}

  deliver(url: string, payload: WebhookPayload): void {
    if (this.#stopping.signal.aborted) return;
    const task = this.#send(url, payload).finally(() => this.#pending.delete(task));
    this.#pending.add(task);
  }

  reset(): void {
    this.deliveries.length = 0;
  }

  /** Cuts deliveries still in flight and waits for them to settle. */
  async close(): Promise<void> {
    this.#stopping.abort();
    await Promise.allSettled([...this.#pending]);
  }

  async #send(url: string, payload: WebhookPayload): Promise<void> {
    const record: DeliveryView = {
      session: payload.account,
      type: payload.type,
      at: Date.now(),
      ok: false,
    };
    // A plain timer rather than AbortSignal.timeout, so closing leaves no timer behind.
    const cut = new AbortController();
    const timer = setTimeout(() => cut.abort(), DELIVERY_TIMEOUT_MS);
    const onStop = () => cut.abort();
    this.#stopping.signal.addEventListener("abort", onStop, { once: true });
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(payload),
        signal: cut.signal,
      });
      await response.body?.cancel();
      record.status = response.status;
      record.ok = response.ok;
    } catch (e) {
      record.error = e instanceof Error ? e.name : "failed";
    } finally {
      clearTimeout(timer);
      this.#stopping.signal.removeEventListener("abort", onStop);
    }
    this.deliveries.push(record);
    if (this.deliveries.length > KEPT_DELIVERIES) this.deliveries.shift();
    // The URL is left out: it carries the receiver's secret.
    this.log({ event: "webhook", ...record });
  }
}
