// Cold start: a new wpp-create process, from spawn to its first answer, then to its first
// complete reuse request (which also pays for the first database and platform connections).
import { join } from "node:path";
import { ROOT } from "../dev/stack/paths.ts";
import { spawnFunction } from "../dev/stack/functions.ts";
import { ProcessGroup } from "../dev/stack/processes.ts";
import { freePort } from "../dev/stack/stack.ts";
import { type Memory, memoryOf } from "./process-stats.ts";

export interface ColdStart {
  firstAnswerMs: number;
  firstReuseMs: number;
  memoryAfter: Memory;
}

const SPEC = {
  name: "wpp-create",
  entry: join(ROOT, "supabase/functions/wpp-create/index.ts"),
  verifyJwt: false,
};

async function firstAnswer(url: string, init: RequestInit, until: number): Promise<Response> {
  while (Date.now() < until) {
    try {
      return await fetch(url, init);
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  throw new Error(`no answer from ${url}`);
}

export async function measureColdStart(
  env: Record<string, string>,
  token: string,
): Promise<ColdStart> {
  const group = new ProcessGroup();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/wpp-create`;
  const t0 = performance.now();
  const child = spawnFunction(group, SPEC, port, env, false, 90);
  try {
    const until = Date.now() + 30_000;
    const first = await firstAnswer(url, { method: "POST", body: "{}" }, until);
    await first.arrayBuffer();
    const firstAnswerMs = performance.now() - t0;
    const reuse = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{}",
    });
    await reuse.arrayBuffer();
    if (reuse.status !== 200) throw new Error(`cold reuse request answered ${reuse.status}`);
    const firstReuseMs = performance.now() - t0;
    return { firstAnswerMs, firstReuseMs, memoryAfter: await memoryOf(child.pid) };
  } finally {
    await group.stopAll();
  }
}
