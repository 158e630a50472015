// A child process that dies is reported and restarted (with /health saying so meanwhile); one
// that keeps dying, or PostgreSQL, stops the whole stack with the reason.
import assert from "node:assert/strict";
import { join } from "node:path";
import { stack } from "../_support/stack.ts";
import { freePort, startStack } from "../../dev/stack/stack.ts";
import { isAlive } from "../../dev/stack/processes.ts";
import { ROOT } from "../../dev/stack/paths.ts";

interface FnHealth {
  status: string;
  pid: number;
  restarts: number;
  last_exit?: string;
}

async function health(url: string) {
  const res = await fetch(`${url}/health`);
  return { status: res.status, body: await res.json() };
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test("a killed function process is restarted, /health shows it meanwhile, calls work after", async () => {
  const before: FnHealth = (await health(stack.url)).body.services.functions["stack-probe#1"];
  assert.equal(before.status, "up");
  Deno.kill(before.pid, "SIGKILL");

  // The probe sees the dead port at once ("down"); the supervisor then holds the process in
  // "restarting" for at least its 200 ms backoff, which /health must show.
  const during = await until("/health to report the restart", 5_000, async () => {
    const h = await health(stack.url);
    const fn: FnHealth = h.body.services.functions["stack-probe#1"];
    return fn.status === "restarting" ? { ...h, fn } : undefined;
  });
  assert.equal(during.status, 503, "a service that is not up makes /health a 503");
  assert.equal(during.body.status, "degraded");
  assert.equal(during.fn.last_exit, "signal SIGKILL");
  assert.equal(during.body.services.functions["stack-probe#2"].status, "up", "per process");
  assert.equal(during.body.services.postgres.status, "up");

  const after: FnHealth = await until("the process to be back", 30_000, async () => {
    const h = await health(stack.url);
    const fn: FnHealth = h.body.services.functions["stack-probe#1"];
    return h.status === 200 && fn.status === "up" ? fn : undefined;
  });
  assert.notEqual(after.pid, before.pid);
  assert.ok(isAlive(after.pid));
  assert.equal(after.restarts, before.restarts + 1);
  assert.equal(after.last_exit, "signal SIGKILL");

  // Both processes answer again through the gateway, round-robin.
  const pids = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${stack.url}/functions/v1/stack-probe`, {
      headers: { Authorization: `Bearer ${stack.anonKey}` },
    });
    assert.equal(res.status, 200);
    pids.add((await res.json()).pid);
  }
  assert.ok(pids.has(after.pid), `the restarted process answers: ${[...pids]}`);
  assert.equal(pids.size, 2);
});

Deno.test({
  name: "a process that keeps dying exhausts its restarts and stops the stack",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "wpp-restarts-" });
    const logs: string[] = [];
    const s = await startStack({
      dataDir,
      ports: { gateway: 0, db: 0, postgrest: 0, postgrestAdmin: 0, simulator: 0 },
      ephemeral: true,
      simulator: false,
      skipProjectFunctions: true,
      extraFunctions: [{
        name: "stack-probe",
        entry: join(ROOT, "tests/fixtures/functions/stack-probe/index.ts"),
        verifyJwt: true,
      }],
      maxRestarts: 1,
      log: (l) => logs.push(l),
    });
    try {
      const first = (await health(s.url)).body.services.functions["stack-probe"].pid;
      Deno.kill(first, "SIGKILL");
      const second = await until("the first restart", 30_000, async () => {
        const fn: FnHealth = (await health(s.url)).body.services.functions["stack-probe"];
        return fn.status === "up" && fn.pid !== first ? fn.pid : undefined;
      });
      Deno.kill(second, "SIGKILL");
      const reason = await Promise.race([
        s.failure,
        new Promise<string>((_, reject) =>
          setTimeout(() => reject(new Error("no failure")), 20_000)
        ),
      ]);
      assert.match(reason, /fn:stack-probe died 2 times within 60 s; giving up/);
      const text = logs.join("\n");
      assert.match(
        text,
        new RegExp(`fn:stack-probe \\(pid ${first}\\) exited unexpectedly with signal SIGKILL`),
      );
      assert.match(text, /restarting fn:stack-probe in \d+ ms \(attempt 1 of 1\)/);
      await assert.rejects(fetch(`${s.url}/health`), "the gateway is down with the rest");
      const pidFileGone = await Deno.stat(join(dataDir, "stack.pid.json")).then(
        () => false,
        () => true,
      );
      assert.ok(pidFileGone, "the stack stopped every process and cleaned up");
    } finally {
      await s.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("PostgreSQL dying stops `npm start` with the reason and a non-zero exit", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wpp-pgdeath-" });
  const api = freePort();
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "dev/stack/main.ts")],
    cwd: ROOT,
    env: {
      STACK_DATA_DIR: dataDir,
      API_PORT: String(api),
      DB_PORT: String(freePort()),
      POSTGREST_PORT: String(freePort()),
      POSTGREST_ADMIN_PORT: String(freePort()),
      WPP_SIM_PORT: String(freePort()),
      AUTH_PORT: String(freePort()),
      NO_COLOR: "1",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pumps = [proc.stdout, proc.stderr].map(async (s) => {
    for await (const chunk of s) text += decoder.decode(chunk);
  });
  try {
    await until(
      "the stack to start",
      90_000,
      () =>
        Promise.resolve(/Ctrl-C stops everything|could not start/.test(text) ? true : undefined),
    );
    assert.match(text, /Ctrl-C stops everything/, text);
    const children = JSON.parse(await Deno.readTextFile(join(dataDir, "stack.pid.json")))
      .children as {
        name: string;
        pid: number;
      }[];
    const pg = children.find((c) => c.name === "postgres")!;
    Deno.kill(pg.pid, "SIGKILL");
    const status = await proc.status;
    await Promise.all(pumps);
    assert.notEqual(status.code, 0);
    assert.match(
      text,
      new RegExp(`postgres \\(pid ${pg.pid}\\) exited unexpectedly with signal SIGKILL`),
    );
    assert.match(
      text,
      /the stack stopped: postgres \(pid \d+\) exited with signal SIGKILL: the stack cannot run without it/,
    );
    const others = children.filter((c) => c !== pg).map((c) => c.pid);
    const deadline = Date.now() + 10_000;
    while (others.some(isAlive) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(others.filter(isAlive), [], "no child outlives the stack");
  } finally {
    try {
      proc.kill("SIGKILL");
    } catch { /* exited */ }
    await proc.status;
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
