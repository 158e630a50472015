// A stand-in for the CRM's own event receiver, listening where the test stack's wpp-webhook
// forwards verified events (http://127.0.0.1:<stack.forwardPort>/events). Nothing listens there
// unless a test opens it, which is also how a test sees the CRM's receiver being down.
import { stack } from "../_support/stack.ts";

export interface ForwardedRequest {
  method: string;
  path: string;
  headers: Headers;
  body: Uint8Array;
  text: string;
  /** ms epoch it arrived. */
  at: number;
}

export interface ForwardReceiver {
  got: ForwardedRequest[];
  /** Decides the answer to the n-th request (1-based); 200 when unset. */
  respond?: (n: number, req: ForwardedRequest) => Response | Promise<Response>;
  /** Aborted when the receiver closes: slow answers end then. */
  closing: AbortSignal;
  /** Resolves pending slow answers, then stops listening. */
  close(): Promise<void>;
}

export function openForwardReceiver(
  respond?: ForwardReceiver["respond"],
): ForwardReceiver {
  if (!stack.forwardPort) throw new Error("STACK_FORWARD_PORT is not set");
  const closing = new AbortController();
  const rx: ForwardReceiver = {
    got: [],
    respond,
    closing: closing.signal,
    close: async () => {
      closing.abort();
      await server.shutdown();
    },
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: stack.forwardPort, onListen: () => {} },
    async (req) => {
      const body = new Uint8Array(await req.arrayBuffer());
      const got: ForwardedRequest = {
        method: req.method,
        path: new URL(req.url).pathname,
        headers: req.headers,
        body,
        text: new TextDecoder().decode(body),
        at: Date.now(),
      };
      rx.got.push(got);
      return rx.respond ? await rx.respond(rx.got.length, got) : new Response("ok");
    },
  );
  return rx;
}

/** An answer that comes only when the receiver closes: a CRM receiver that hangs. */
export function hang(rx: ForwardReceiver): Promise<Response> {
  return new Promise((resolve) => {
    if (rx.closing.aborted) return resolve(new Response("late"));
    rx.closing.addEventListener("abort", () => resolve(new Response("late")), { once: true });
  });
}
