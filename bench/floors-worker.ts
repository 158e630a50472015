// Runs the interleaved rounds of floors.ts in a worker thread: one request at a time, each
// kind in turn, timed at the client.
import type { RoundsSpec } from "./floors.ts";

// The worker's global scope (the files are checked with the main thread's lib).
const scope = self as unknown as {
  onmessage: (e: MessageEvent<RoundsSpec>) => void;
  postMessage(message: unknown): void;
};

scope.onmessage = async (e) => {
  const spec = e.data;
  const samples: Record<string, number[]> = Object.fromEntries(
    spec.requests.map((r) => [r.name, []]),
  );
  try {
    for (let round = 0; round < spec.rounds + spec.warmup; round++) {
      for (const r of spec.requests) {
        const t0 = performance.now();
        const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`${r.name} answered ${res.status} during the floors`);
        // The first rounds open and warm the connections; the functions always find them warm.
        if (round >= spec.warmup) samples[r.name].push(performance.now() - t0);
      }
    }
    scope.postMessage(samples);
  } catch (err) {
    scope.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
