// The CRM's own event receiver, as far as the webhook benchmark needs one: it listens at
// WPP_EVENTS_FORWARD_URL in a worker thread (off the gateway's event loop), checks the bearer
// token, and counts what wpp-webhook forwarded, by event key.
import { eventKey, type ReceiverCommand, type ReceiverReport } from "./webhook-events.ts";

// The worker's global scope (the files are checked with the main thread's lib).
const scope = self as unknown as {
  onmessage: (e: MessageEvent<ReceiverCommand>) => void;
  postMessage(message: unknown): void;
};
let server: Deno.HttpServer | undefined;
const counts = new Map<string, number>();
let received = 0;
let badToken = 0;
let unreadable = 0;

scope.onmessage = async (e: MessageEvent<ReceiverCommand>) => {
  const msg = e.data;
  if (msg.kind === "report") {
    const report: ReceiverReport = { received, keys: [...counts], badToken, unreadable };
    scope.postMessage(report);
    return;
  }
  if (msg.kind === "reset") {
    counts.clear();
    received = badToken = unreadable = 0;
    scope.postMessage("reset");
    return;
  }
  if (msg.kind === "stop") {
    await server?.shutdown();
    scope.postMessage("stopped");
    return;
  }
  const expected = `Bearer ${msg.token}`;
  server = Deno.serve(
    { hostname: "127.0.0.1", port: msg.port, onListen: () => scope.postMessage("listening") },
    async (req) => {
      if (req.headers.get("authorization") !== expected) {
        badToken++;
        await req.body?.cancel();
        return new Response("unauthorized", { status: 401 });
      }
      received++;
      try {
        const key = eventKey(await req.json());
        counts.set(key, (counts.get(key) ?? 0) + 1);
      } catch {
        unreadable++;
      }
      return new Response(null, { status: 204 });
    },
  );
};
