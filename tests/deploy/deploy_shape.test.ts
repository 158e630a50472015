// Every function works from what a deploy uploads and nothing else: its own folder and the shared
// code, with no node_modules, no root deno.json and an empty Deno cache, on Deno 2.1.4 (the version
// Supabase's edge runtime is built on). The rest of the suite runs the functions with the
// repository around them, which would hide an import that only resolves there.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  discoverFunctions,
  EDGE_DENO,
  EDGE_SERVE,
  edgeDenoEnv,
  FUNCTIONS_DIR,
  waitForPort,
} from "../../dev/stack/functions.ts";
import { ProcessGroup } from "../../dev/stack/processes.ts";
import { ROOT } from "../../dev/stack/paths.ts";
import { stack } from "../_support/stack.ts";

interface Refusal {
  status: number;
  code: string;
}

/** What a POST without credentials gets, per function; functions not listed answer the default. */
const UNAUTHENTICATED: Record<string, Refusal> = {
  // The platform's events carry no user token; a URL without the webhook secret is unknown.
  "wpp-webhook": { status: 404, code: "not_found" },
};
const DEFAULT_UNAUTHENTICATED: Refusal = { status: 401, code: "unauthorized" };

const ORIGIN = "https://crm.example.com";

/** Copies a folder as a deploy would take it: a lock file left by local tooling is not deployed. */
async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.name === "deno.lock" || e.name === "node_modules") continue;
    if (e.isDirectory) await copyTree(join(from, e.name), join(to, e.name));
    else if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name));
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function edgeDenoVersion(): Promise<string> {
  const out = await new Deno.Command(EDGE_DENO, { args: ["--version"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n")[0].trim();
}

/** Deno 2.1.4 with nothing of this machine's Deno set-up: only the fresh cache. */
function edgeEnv(denoDir: string): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    ...edgeDenoEnv(denoDir),
  };
}

Deno.test("every function type-checks and answers from a deploy's files alone on Deno 2.1.4", async (t) => {
  const version = await edgeDenoVersion();
  console.log(`edge Deno: ${version}`);
  const pkg = JSON.parse(await Deno.readTextFile(join(ROOT, "package.json")));
  assert.equal(
    `npm:@deno/linux-x64-glibc@${version.split(" ")[1]}`,
    pkg.optionalDependencies["deno-edge-linux-x64"],
  );

  const functions = await discoverFunctions();
  assert.ok(functions.length >= 2);
  const work = await Deno.makeTempDir({ prefix: "wpp-connect-deploy-" });
  // One cache for the whole test, empty at the start: every package comes from the registry.
  const denoDir = join(work, "deno-dir");
  await Deno.mkdir(denoDir);
  const group = new ProcessGroup();
  try {
    for (const fn of functions) {
      await t.step(fn.name, async () => {
        const root = join(work, fn.name);
        const fnDir = join(root, "functions", fn.name);
        await copyTree(join(FUNCTIONS_DIR, fn.name), fnDir);
        await copyTree(join(FUNCTIONS_DIR, "_shared"), join(root, "functions", "_shared"));
        await Deno.copyFile(EDGE_SERVE, join(root, "edge-serve.ts"));

        // From inside the folder and without --config, as the edge runtime finds deno.json.
        let t0 = performance.now();
        const check = await new Deno.Command(EDGE_DENO, {
          args: ["check", "--no-lock", "index.ts"],
          cwd: fnDir,
          clearEnv: true,
          env: edgeEnv(denoDir),
          stdout: "piped",
          stderr: "piped",
        }).output();
        const checkMs = Math.round(performance.now() - t0);
        assert.ok(
          check.success,
          `deno check ${fn.name}:\n${new TextDecoder().decode(check.stderr)}`,
        );

        // The serve shim is the main module here, so the function's deno.json is named.
        const port = freePort();
        t0 = performance.now();
        const child = group.spawn({
          name: `deploy:${fn.name}`,
          cmd: EDGE_DENO,
          args: [
            "run",
            "--config",
            join(fnDir, "deno.json"),
            "--no-lock",
            "--allow-net",
            "--allow-env",
            "--allow-read",
            "--no-prompt",
            join(root, "edge-serve.ts"),
            join(fnDir, "index.ts"),
          ],
          cwd: fnDir,
          env: {
            ...stack.functionEnv,
            ...edgeEnv(denoDir),
            DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
          },
        });
        await waitForPort(port, 30_000, child);
        const listenMs = Math.round(performance.now() - t0);
        const url = `http://127.0.0.1:${port}/${fn.name}`;

        const preflight = await fetch(url, {
          method: "OPTIONS",
          headers: {
            origin: ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, apikey, content-type",
          },
        });
        await preflight.body?.cancel();
        assert.equal(preflight.status, 204, child.tail());
        assert.ok(preflight.headers.get("access-control-allow-origin"));
        assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /\bPOST\b/);
        const allowed = preflight.headers.get("access-control-allow-headers") ?? "";
        assert.match(allowed, /\bauthorization\b/i);
        assert.match(allowed, /\bapikey\b/i);

        const expected = UNAUTHENTICATED[fn.name] ?? DEFAULT_UNAUTHENTICATED;
        const refused = await fetch(url, {
          method: "POST",
          headers: { origin: ORIGIN, "content-type": "application/json" },
          body: "{}",
        });
        const body = await refused.json();
        assert.equal(refused.status, expected.status, JSON.stringify(body));
        assert.equal(body.success, false);
        assert.equal(body.code, expected.code);
        assert.equal(typeof body.request_id, "string");
        assert.ok(refused.headers.get("access-control-allow-origin"), "CORS on the error too");

        await group.stopChild(child);
        assert.equal(await exists(join(root, "functions", "node_modules")), false);
        assert.equal(await exists(join(fnDir, "node_modules")), false);
        assert.equal(await exists(join(fnDir, "deno.lock")), false);
        console.log(`${fn.name}: deno check ${checkMs} ms, listening after ${listenMs} ms`);
      });
    }
    // The packages came from the registry into the empty cache, not from a node_modules folder.
    assert.ok(await exists(join(denoDir, "npm", "registry.npmjs.org", "zod")));
  } finally {
    await group.stopAll();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
