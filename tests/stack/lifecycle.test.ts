// The start command as a person uses it: a foreground process that prints how to reach the stack,
// stops every child on Ctrl-C, and starts again cleanly after a crash. Each test runs its own
// stack beside the suite's, on free ports and in its own folder, which also proves runs never collide.
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, startStack } from "../../dev/stack/stack.ts";
import { isAlive } from "../../dev/stack/processes.ts";
import { MigrationError } from "../../dev/stack/migrate.ts";
import { ROOT } from "../../dev/stack/paths.ts";

interface Started {
  proc: Deno.ChildProcess;
  output: () => string;
  waitFor: (re: RegExp, ms?: number) => Promise<void>;
}

function startCommand(dataDir: string, ports: Record<string, number>): Started {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "dev/stack/main.ts")],
    cwd: ROOT,
    env: {
      STACK_DATA_DIR: dataDir,
      API_PORT: String(ports.api),
      DB_PORT: String(ports.db),
      POSTGREST_PORT: String(ports.rest),
      POSTGREST_ADMIN_PORT: String(ports.restAdmin),
      WPP_SIM_PORT: String(ports.sim),
      AUTH_PORT: String(ports.auth),
      NO_COLOR: "1",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) text += decoder.decode(chunk);
  };
  pump(proc.stdout);
  pump(proc.stderr);
  return {
    proc,
    output: () => text,
    waitFor: async (re, ms = 60_000) => {
      const until = Date.now() + ms;
      while (!re.test(text)) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${re}:\n${text}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

async function freePorts() {
  return {
    api: await freePort(),
    db: await freePort(),
    rest: await freePort(),
    restAdmin: await freePort(),
    sim: await freePort(),
    auth: await freePort(),
  };
}

async function childPids(dataDir: string): Promise<number[]> {
  const pidFile = JSON.parse(await Deno.readTextFile(join(dataDir, "stack.pid.json")));
  return pidFile.children.map((c: { pid: number }) => c.pid);
}

/** After a failed assertion the stack may still run: never leave its processes behind. */
async function killStack(run: Started | undefined, dataDir: string): Promise<void> {
  if (run) {
    try {
      run.proc.kill("SIGTERM");
    } catch { /* already stopped */ }
    await run.proc.status;
  }
  const pids = await childPids(dataDir).catch(() => [] as number[]);
  for (const pid of pids.filter(isAlive)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
}

async function allGone(pids: number[], ms = 15_000) {
  const until = Date.now() + ms;
  while (pids.some(isAlive) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  return pids.filter(isAlive);
}

Deno.test("start prints URLs, keys, tokens and curls that work as pasted; Ctrl-C stops everything", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wpp-lifecycle-" });
  const ports = await freePorts();
  const run = await startCommand(dataDir, ports);
  try {
    await run.waitFor(/Ctrl-C stops everything/);
    const out = run.output();
    assert.match(out, new RegExp(`API gateway\\s+http://127.0.0.1:${ports.api}`));
    assert.match(out, /anon key\s+eyJ/);
    assert.match(out, /service_role key\s+eyJ/);
    assert.match(out, /admin@demo\.local\s+\(admin\) eyJ/);
    assert.match(out, /ready in \d+ ms/);
    // Every printed curl, run as printed (through a shell, in the printed order), succeeds.
    const lines = out.split("\n");
    const curls = lines.flatMap((l, i) =>
      /^\s+curl /.test(l) ? [lines.slice(i, i + 4).join("\n")] : []
    );
    assert.ok(curls.length >= 3, `printed curls: ${curls.length}`);
    for (const curl of curls) {
      const shell = await new Deno.Command("bash", {
        args: ["-c", curl.replace(/-sS/, "-sS -o /dev/null -w '%{http_code}'")],
      }).output();
      const status = new TextDecoder().decode(shell.stdout);
      assert.equal(status, "200", `the printed curl must work as pasted: ${curl.split("\n")[0]}`);
    }
    assert.match(out, /wpp-disconnect: .*integration_id/);

    const pids = await childPids(dataDir);
    assert.ok(pids.length >= 3, `children recorded: ${pids}`);
    run.proc.kill("SIGINT");
    const status2 = await run.proc.status;
    assert.equal(status2.code, 0);
    assert.deepEqual(await allGone(pids), [], "no child process may survive Ctrl-C");
    await assert.rejects(Deno.stat(join(dataDir, "stack.pid.json")), Deno.errors.NotFound);
  } finally {
    await killStack(run, dataDir);
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a second start after a crash cleans the leftovers and works; a live stack is reported", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wpp-crash-" });
  const ports = await freePorts();
  const first = await startCommand(dataDir, ports);
  let second: Started | undefined;
  let third: Started | undefined;
  try {
    await first.waitFor(/Ctrl-C stops everything/);
    const orphans = await childPids(dataDir);
    first.proc.kill("SIGKILL");
    await first.proc.status;
    assert.ok(
      orphans.some(isAlive),
      "a crash leaves children running, which the next start must handle",
    );

    second = await startCommand(dataDir, ports);
    await second.waitFor(/Ctrl-C stops everything/);
    assert.match(second.output(), /did not shut down cleanly; stopped its leftover processes/);
    assert.deepEqual(orphans.filter(isAlive), []);
    const health = await fetch(`http://127.0.0.1:${ports.api}/health`);
    assert.equal((await health.json()).status, "ok");

    // Same folder while the second one runs: a clear refusal, nothing touched.
    third = await startCommand(dataDir, ports);
    const code = (await third.proc.status).code;
    assert.notEqual(code, 0);
    assert.match(third.output(), /another stack \(pid \d+.*\) is running/);
    const stillOk = await fetch(`http://127.0.0.1:${ports.api}/health`);
    assert.equal(stillOk.status, 200);
    await stillOk.body?.cancel();

    const pids = await childPids(dataDir);
    second.proc.kill("SIGTERM");
    assert.equal((await second.proc.status).code, 0);
    assert.deepEqual(await allGone(pids), []);
  } finally {
    for (const r of [third, second, first]) await killStack(r, dataDir);
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a failing migration stops start-up with the file name and the database's message", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wpp-badmig-" });
  const migDir = await Deno.makeTempDir({ prefix: "wpp-badmig-sql-" });
  await Deno.writeTextFile(
    join(migDir, "29991231000000_broken.sql"),
    "create table public.ok_table (id int);\nselect * from public.no_such_table;\n",
  );
  try {
    const err = await startStack({
      dataDir,
      ports: { gateway: 0, db: 0, postgrest: 0, postgrestAdmin: 0, simulator: 0 },
      ephemeral: true,
      simulator: false,
      skipProjectFunctions: true,
      extraMigrationDirs: [migDir],
    }).then(() => null, (e) => e);
    assert.ok(err instanceof MigrationError, `expected a MigrationError, got ${err}`);
    assert.equal(err.file, "29991231000000_broken.sql");
    assert.match(err.message, /29991231000000_broken\.sql/);
    assert.match(err.message, /relation "public.no_such_table" does not exist/);
    const pidFileGone = await Deno.stat(join(dataDir, "stack.pid.json")).then(
      () => false,
      () => true,
    );
    assert.ok(pidFileGone, "a failed start stops what it started");
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    await Deno.remove(migDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a data directory from the old layout (superuser postgres) is refused: use --reset", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wpp-oldlayout-" });
  // What the earlier stack left: an initialised cluster, and no record of Supabase's layout.
  await Deno.mkdir(join(dataDir, "db", "pgdata"), { recursive: true });
  await Deno.writeTextFile(join(dataDir, "db", "pgdata", "PG_VERSION"), "15\n");
  const run = startCommand(dataDir, await freePorts());
  try {
    assert.equal((await run.proc.status).code, 1);
    await run.waitFor(/--reset/, 5_000);
    const out = run.output();
    assert.match(out, /created by an older version of the stack, whose superuser is 'postgres'/);
    assert.match(out, /npm start -- --reset/);
    assert.doesNotMatch(out, /at file:\/\//, "a message, not a stack trace");
    await assert.rejects(Deno.stat(join(dataDir, "stack.pid.json")), Deno.errors.NotFound);
  } finally {
    await killStack(run, dataDir);
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

/** The README's "Try it with curl" block, with the default ports swapped for this stack's. */
async function readmeCurlBlock(ports: Record<string, number>): Promise<string> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const block = readme.match(/### Try it with curl[^\n]*\n+```sh\n([\s\S]*?)\n```/);
  assert.ok(block, "README.md has a 'Try it with curl' sh block");
  return block[1]
    .replaceAll("127.0.0.1:54321", `127.0.0.1:${ports.api}`)
    .replaceAll("127.0.0.1:54330", `127.0.0.1:${ports.sim}`);
}

Deno.test("the README's curl walk-through works as pasted against the started stack", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wpp-readme-" });
  const ports = await freePorts();
  const run = await startCommand(dataDir, ports);
  try {
    await run.waitFor(/Ctrl-C stops everything/);
    const script = await readmeCurlBlock(ports);
    const shell = await new Deno.Command("bash", {
      args: [
        "-c",
        `set -eo pipefail\n${script}\necho\ncurl -sS -X POST "$SUPABASE_URL/functions/v1/wpp-status" \
        -H "apikey: $SUPABASE_ANON_KEY" -H "Authorization: Bearer $USER_ACCESS_TOKEN" \
        -H 'Content-Type: application/json' -d '{"session_name": "0000000000001"}'`,
      ],
      cwd: ROOT,
    }).output();
    const out = new TextDecoder().decode(shell.stdout);
    assert.equal(shell.code, 0, new TextDecoder().decode(shell.stderr));
    // create, recreate (a repeat within the window), status, QR, status again: five successes.
    assert.equal(out.match(/"success":true/g)?.length, 5, out);
    assert.doesNotMatch(out, /"success":false/);
    assert.match(out, /"status":"qr_issued","qrcode":"2@/);
    assert.match(out, /"created":false,"message":"this session was created less than/);
    assert.match(out, /"state":"connected"/, "the simulator's phone scanned the QR");
    // "then ask again: connected"
    assert.match(out.trim().split("\n").at(-1)!, /"status":"connected"/);
  } finally {
    await killStack(run, dataDir);
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
