// The floor: the cheapest round trips the function cannot avoid, measured the way it makes them
// (Deno's fetch, through the same gateway and to the same simulator), one at a time.
import { summarize, type Summary } from "./stats.ts";

export interface Floors {
  rpc: Summary;
  platform: Summary;
}

async function timeSequential(n: number, call: () => Promise<Response>): Promise<Summary> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await call();
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`floor request answered ${res.status}`);
    // The first few warm the connection pool; the function's calls always find it warm.
    if (i >= 10) samples.push(performance.now() - t0);
  }
  return summarize(samples);
}

export async function measureFloors(opts: {
  gatewayUrl: string;
  serviceRoleKey: string;
  userId: string;
  simulatorUrl: string;
  apiKey: string;
  n: number;
}): Promise<Floors> {
  const rpc = await timeSequential(
    opts.n,
    () =>
      fetch(`${opts.gatewayUrl}/rest/v1/rpc/wpp_caller_context`, {
        method: "POST",
        headers: {
          apikey: opts.serviceRoleKey,
          authorization: `Bearer ${opts.serviceRoleKey}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ p_user_id: opts.userId }),
      }),
  );
  const platform = await timeSequential(opts.n, () =>
    fetch(`${opts.simulatorUrl}/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ apiKey: opts.apiKey }),
    }));
  return { rpc, platform };
}
