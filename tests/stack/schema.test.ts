// The migrations up to 20261201000400 are released: a database that applied them has exactly the
// schema tests/fixtures/schema/through-20261201000400.sql records (a pg_dump taken before the RPC
// file was split by concern, issue 20). Reorganising those files must not change what they
// build, and a change of behaviour belongs in a new migration. `deno task schema --compare <ref>`
// is the same comparison against any git revision.
import assert from "node:assert/strict";
import { join } from "node:path";
import { stack } from "../_support/stack.ts";
import { ROOT } from "../../dev/stack/paths.ts";
import { MIGRATIONS_DIR } from "../../dev/stack/migrate.ts";
import { dumpSchema } from "../../dev/stack/schema-dump.ts";

const RELEASED = "20261201000400";
const SNAPSHOT = join(ROOT, "tests/fixtures/schema", `through-${RELEASED}.sql`);

Deno.test("the released migrations build exactly the schema they built before the split", async () => {
  const dump = await dumpSchema({ through: RELEASED, serverUrl: stack.superuserUrl });
  const snapshot = await Deno.readTextFile(SNAPSHOT);
  assert.equal(dump, snapshot);
  // The dump is of this project's schema, not an empty one.
  assert.match(dump, /CREATE FUNCTION public\.wpp_provision_begin\(/);
  assert.match(dump, /GRANT ALL ON FUNCTION public\.wpp_context\(.*\) TO service_role;/);
});

Deno.test("schema --compare: a changed migration is reported with a diff", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wpp-schema-drift-" });
  try {
    for await (const e of Deno.readDir(MIGRATIONS_DIR)) {
      if (e.isFile) await Deno.copyFile(join(MIGRATIONS_DIR, e.name), join(dir, e.name));
    }
    await Deno.writeTextFile(
      join(dir, "20261201000345_drift_probe.sql"),
      "create function private.drift_probe() returns int language sql as $$ select 1 $$;\n",
    );
    const run = async (migrations: string) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(ROOT, "dev/stack/schema-dump.ts"),
          "--compare",
          "HEAD",
          "--migrations",
          migrations,
          "--db-url",
          stack.superuserUrl,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      return { code: out.code, text: d.decode(out.stdout) + d.decode(out.stderr) };
    };
    const drifted = await run(dir);
    assert.equal(drifted.code, 1, drifted.text);
    assert.match(drifted.text, /the schema differs from the one at HEAD/);
    assert.match(drifted.text, /\+ CREATE FUNCTION private\.drift_probe\(\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
