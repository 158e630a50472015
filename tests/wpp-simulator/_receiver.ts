import type { SimulatorOptions } from "../../dev/wpp-simulator/server.ts";
import type { WebhookPayload } from "../../dev/wpp-simulator/types.ts";
import type { WppSessionClient } from "../../supabase/functions/_shared/wpp/mod.ts";
import { eventually, type Harness, simTest } from "../wpp-client/helpers.ts";

export interface Received {
  body: WebhookPayload;
  /** ms epoch the request reached the receiver. */
  at: number;
}

/** Decides the answer to the n-th request (1-based); 200 "ok" when unset. */
export type Respond = (n: number, body: WebhookPayload) => Response | Promise<Response>;

/** A webhook receiver on 127.0.0.1 that keeps everything it gets. */
export interface Receiver {
  /** Carries a secret, as the project's real webhook URLs do. */
  url: string;
  secret: string;
  received: Received[];
  respond?: Respond;
  /** Most requests that were in the handler at once. */
  maxInFlight: number;
  /** Waits `ms`, or less if the receiver is closing, so slow answers never outlive a test. */
  sleep(ms: number): Promise<void>;
  close(): Promise<void>;
}

export function startReceiver(): Receiver {
  const secret = crypto.randomUUID();
  const closing = new AbortController();
  let inFlight = 0;
  let requests = 0;
  const rx: Receiver = {
    url: "",
    secret,
    received: [],
    maxInFlight: 0,
    sleep: (ms) =>
      new Promise((resolve) => {
        if (closing.signal.aborted) return resolve();
        const done = () => {
          clearTimeout(timer);
          closing.signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        closing.signal.addEventListener("abort", done);
      }),
    close: async () => {
      closing.abort();
      await server.shutdown();
    },
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const at = Date.now();
      inFlight++;
      rx.maxInFlight = Math.max(rx.maxInFlight, inFlight);
      try {
        const body = await req.json() as WebhookPayload;
        rx.received.push({ body, at });
        return rx.respond ? await rx.respond(++requests, body) : new Response("ok");
      } finally {
        inFlight--;
      }
    },
  );
  rx.url = `http://127.0.0.1:${server.addr.port}/hooks/wpp/${secret}?key=${secret}`;
  return rx;
}

export interface EventHarness extends Harness {
  rx: Receiver;
  /** A session whose webhook points at `rx`. */
  id: string;
  session: WppSessionClient;
}

/** A simulator test with a receiver and one session already registered to it. */
export function eventTest(
  name: string,
  fn: (t: EventHarness) => Promise<void>,
  simOptions: SimulatorOptions = {},
): void {
  simTest(name, async (h) => {
    const rx = startReceiver();
    try {
      const { id, session } = await h.newSession();
      await session.registerWebhook(rx.url);
      await fn({ ...h, rx, id, session });
    } finally {
      await rx.close();
    }
  }, simOptions);
}

/** Waits until the receiver holds at least `n` events, and returns them. */
export function receivedAtLeast(rx: Receiver, n: number, timeoutMs = 3_000): Promise<Received[]> {
  return eventually(
    () => rx.received.length >= n ? [...rx.received] : undefined,
    `${n} events at the receiver (got ${rx.received.length})`,
    timeoutMs,
  );
}

/** Gives a delivery that should NOT happen the time to show up anyway. */
export function settle(ms = 200): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Texts of the inbound messages received, in arrival order. */
export function texts(received: Received[]): (string | undefined)[] {
  return received.map((r) => r.body.text);
}
