// One load cell: autocannon drives a fixed number of requests (or a fixed time) at a given
// concurrency. Latencies come from autocannon's per-response event rather than its summary,
// whose whole-millisecond histogram has no p95 and rounds sub-millisecond answers to 0.
import autocannon from "autocannon";
import { summarize, type Summary } from "./stats.ts";

export interface CellSpec {
  url: string;
  connections: number;
  /** Either a request count or a duration in seconds. */
  amount?: number;
  seconds?: number;
  /** Authorization for the i-th request (0-based), so each may act as another tenant. */
  tokenFor: (i: number) => string;
  body?: string;
}

export interface CellResult {
  latency: Summary;
  requests: number;
  rps: number;
  seconds: number;
  statuses: Record<string, number>;
  errors: number;
}

interface RawRequest {
  headers?: Record<string, string>;
  [key: string]: unknown;
}

export async function runCell(spec: CellSpec): Promise<CellResult> {
  let issued = 0;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const started = performance.now();
  const instance = autocannon({
    url: spec.url,
    connections: spec.connections,
    pipelining: 1,
    ...(spec.amount ? { amount: spec.amount } : { duration: spec.seconds ?? 5 }),
    timeout: 30,
    requests: [{
      method: "POST",
      body: spec.body ?? "{}",
      setupRequest: (req: RawRequest) => ({
        ...req,
        headers: {
          ...req.headers,
          "content-type": "application/json",
          authorization: `Bearer ${spec.tokenFor(issued++)}`,
        },
      }),
    }],
  });
  instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
    latencies.push(ms);
    statuses[status] = (statuses[status] ?? 0) + 1;
  });
  const result = await instance;
  const seconds = (performance.now() - started) / 1000;
  return {
    latency: summarize(latencies),
    requests: latencies.length,
    rps: latencies.length / seconds,
    seconds,
    statuses,
    errors: result.errors + result.timeouts,
  };
}
