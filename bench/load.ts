// One load cell: autocannon drives a fixed time, or a fixed list of requests, at a given number of
// connections, from a worker thread (load-worker.ts). Latencies come from autocannon's
// per-response event rather than its summary, whose whole-millisecond histogram has no p95 and
// rounds sub-millisecond answers to 0.
import { summarize, type Summary } from "./stats.ts";

export interface WorkerSpec {
  url: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  connections: number;
  /** A timed cell... */
  seconds?: number;
  /** ...or a fixed number of requests... */
  amount?: number;
  /**
   * ...or exactly these requests (path under the URL's origin, body), each sent once, in this
   * order as far as concurrent connections allow.
   */
  sequence?: { path: string; body: string }[];
  body?: string;
  /** Requests per second over all connections (autocannon's overallRate); none: as fast as it goes. */
  rate?: number;
}

export interface CellOutcome {
  latencies: number[];
  statuses: Record<string, number>;
  errors: number;
  seconds: number;
  answered?: number[];
}

export interface CellResult {
  latency: Summary;
  requests: number;
  rps: number;
  seconds: number;
  statuses: Record<string, number>;
  errors: number;
  /** With `sequence`: the HTTP status each request got, 0 if none. */
  answered?: number[];
}

export function runCell(spec: WorkerSpec): Promise<CellResult> {
  const worker = new Worker(new URL("./load-worker.ts", import.meta.url), { type: "module" });
  return new Promise<CellResult>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<CellOutcome>) => {
      worker.terminate();
      const o = e.data;
      resolve({
        latency: summarize(o.latencies),
        requests: o.latencies.length,
        rps: o.latencies.length / o.seconds,
        seconds: o.seconds,
        statuses: o.statuses,
        errors: o.errors,
        answered: o.answered,
      });
    };
    worker.onerror = (e) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`load worker failed: ${e.message}`));
    };
    worker.postMessage(spec);
  });
}

/** Answers other than 2xx, plus connection errors and timeouts. */
export function failures(r: CellResult): number {
  return Object.entries(r.statuses).filter(([s]) => !s.startsWith("2"))
    .reduce((n, [, c]) => n + c, 0) + r.errors;
}
