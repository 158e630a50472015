// Runs one autocannon cell in a worker thread. The gateway lives in the benchmark's main thread
// (dev/stack/stack.ts serves it there); a load generator sharing that event loop would slow the
// very proxy it measures, so it gets a thread of its own.
import autocannon from "autocannon";
import type { CellOutcome, WorkerSpec } from "./load.ts";

interface RawRequest {
  path?: string;
  body?: string;
  [key: string]: unknown;
}

interface ClientContext {
  index?: number;
}

// The worker's global scope (the files are checked with the main thread's lib).
const scope = self as unknown as {
  onmessage: (e: MessageEvent<WorkerSpec>) => void;
  postMessage(message: unknown): void;
};

scope.onmessage = async (e: MessageEvent<WorkerSpec>) => {
  const spec = e.data;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  // The status each request of the sequence was answered with (0 = never answered).
  const answered = spec.sequence ? new Array<number>(spec.sequence.length).fill(0) : undefined;
  let next = 0;
  const started = performance.now();
  const instance = autocannon({
    url: spec.url,
    connections: spec.connections,
    pipelining: 1,
    ...(spec.rate ? { overallRate: spec.rate } : {}),
    ...(spec.sequence
      ? { amount: spec.sequence.length }
      : spec.amount
      ? { amount: spec.amount }
      : { duration: spec.seconds ?? 5 }),
    timeout: 30,
    headers: spec.headers,
    requests: [{
      method: spec.method,
      ...(spec.body !== undefined ? { body: spec.body } : {}),
      ...(spec.sequence
        ? {
          // Called once per request actually sent (autocannon builds a request just before it
          // writes it), so request i of the sequence is sent exactly once.
          setupRequest: (req: RawRequest, context: ClientContext) => {
            context.index = next++;
            const { path, body } = spec.sequence![context.index];
            return { ...req, path, body };
          },
          onResponse: (status: number, _body: unknown, context: ClientContext) => {
            if (context.index !== undefined) answered![context.index] = status;
          },
        }
        : {}),
    }],
  });
  instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
    latencies.push(ms);
    statuses[status] = (statuses[status] ?? 0) + 1;
  });
  const result = await instance;
  const outcome: CellOutcome = {
    latencies,
    statuses,
    errors: result.errors + result.timeouts,
    seconds: (performance.now() - started) / 1000,
    answered,
  };
  scope.postMessage(outcome);
};
