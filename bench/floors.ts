// The floors, the cheapest round trips a function cannot avoid, and the fast paths measured
// against them. All of it one request at a time with Deno's fetch and kept-alive connections
// (as the functions make their own calls), through the same gateway, from a worker thread (the
// gateway serves from the main thread; a client there would slow the proxy it measures), and
// interleaved round by round: whatever else the machine does then weighs on the floor and the
// paths alike, so their ratio holds even when absolute figures drift.
import { summarize, type Summary } from "./stats.ts";
import type { FastPath } from "./scenarios.ts";

export interface Floors {
  /** One PostgREST RPC through the gateway: the very call a reuse click makes (wpp_context). */
  rpc: Summary;
  /**
   * The same RPC for a user of no organisation, which answers after one lookup: the transport
   * (gateway, PostgREST, a transaction) with next to no work in PostgreSQL.
   */
  rpcBare: Summary;
  /** One platform call to the simulator: a session status, as a refresh asks it. */
  platform: Summary;
  /** The fast paths, interleaved with the floors, at the client. */
  paths: Partial<Record<FastPath, Summary>>;
}

const WARMUP_ROUNDS = 20;

export interface SequentialOptions {
  gatewayUrl: string;
  serviceRoleKey: string;
  anonKey: string;
  userId: string;
  freshSeconds: number;
  simulatorUrl: string;
  session: string;
  apiKey: string;
  rounds: number;
  /** The user token and body of each fast path. */
  paths: Partial<Record<FastPath, { fn: string; token: string; body: Record<string, unknown> }>>;
}

export async function measureFloors(opts: SequentialOptions): Promise<Floors> {
  const tokenRes = await fetch(`${opts.simulatorUrl}/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ apiKey: opts.apiKey }),
  });
  const { token } = await tokenRes.json();
  if (typeof token !== "string") throw new Error("the simulator gave no token for the floor");

  const requests: RoundRequest[] = [
    {
      name: "rpc",
      url: `${opts.gatewayUrl}/rest/v1/rpc/wpp_context`,
      method: "POST",
      headers: {
        apikey: opts.serviceRoleKey,
        authorization: `Bearer ${opts.serviceRoleKey}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ p_user_id: opts.userId, p_fresh_seconds: opts.freshSeconds }),
    },
    {
      name: "rpc_bare",
      url: `${opts.gatewayUrl}/rest/v1/rpc/wpp_context`,
      method: "POST",
      headers: {
        apikey: opts.serviceRoleKey,
        authorization: `Bearer ${opts.serviceRoleKey}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ p_user_id: crypto.randomUUID(), p_fresh_seconds: opts.freshSeconds }),
    },
    {
      name: "platform",
      url: `${opts.simulatorUrl}/api/accounts/${opts.session}/status`,
      method: "GET",
      headers: { authorization: `Bearer ${token}`, accept: "application/json" },
    },
    ...Object.entries(opts.paths).map(([name, p]): RoundRequest => ({
      name,
      url: `${opts.gatewayUrl}/functions/v1/${p.fn}`,
      method: "POST",
      headers: {
        "content-type": "application/json",
        apikey: opts.anonKey,
        authorization: `Bearer ${p.token}`,
      },
      body: JSON.stringify(p.body),
    })),
  ];
  const samples = await inWorker({ requests, rounds: opts.rounds, warmup: WARMUP_ROUNDS });
  const paths: Partial<Record<FastPath, Summary>> = {};
  for (const name of Object.keys(opts.paths) as FastPath[]) {
    paths[name] = summarize(samples[name]);
  }
  return {
    rpc: summarize(samples.rpc),
    rpcBare: summarize(samples.rpc_bare),
    platform: summarize(samples.platform),
    paths,
  };
}

export interface RoundRequest {
  name: string;
  url: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
}

export interface RoundsSpec {
  requests: RoundRequest[];
  rounds: number;
  warmup: number;
}

function inWorker(spec: RoundsSpec): Promise<Record<string, number[]>> {
  const worker = new Worker(new URL("./floors-worker.ts", import.meta.url), { type: "module" });
  return new Promise((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<Record<string, number[]> | { error: string }>) => {
      worker.terminate();
      if ("error" in e.data) reject(new Error(String(e.data.error)));
      else resolve(e.data as Record<string, number[]>);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`floors worker failed: ${e.message}`));
    };
    worker.postMessage(spec);
  });
}
