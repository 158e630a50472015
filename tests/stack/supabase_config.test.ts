// supabase/config.toml must stay valid for people who run the Supabase CLI with Docker: the
// pinned CLI parses it (then stops at the missing Docker engine), and every function has an entry.
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "smol-toml";
import { ROOT } from "../../dev/stack/paths.ts";
import { discoverFunctions } from "../../dev/stack/functions.ts";

Deno.test("the pinned Supabase CLI reads supabase/config.toml without complaint", async () => {
  const out = await new Deno.Command("node", {
    args: [join(ROOT, "node_modules/supabase/dist/supabase.js"), "status"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { DO_NOT_TRACK: "1", SUPABASE_TELEMETRY_DISABLED: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.doesNotMatch(text, /failed to (read|load|parse) config|CliConfigParseError/i, text);
  assert.doesNotMatch(text, /WARN: config/i, text);
  // Past the config, the CLI goes looking for its containers: Docker missing or stack not started.
  assert.match(text, /docker|not running|container/i, text);
});

Deno.test("every function has a [functions.<name>] entry with verify_jwt and no import_map", async () => {
  const config = parse(await Deno.readTextFile(join(ROOT, "supabase/config.toml"))) as {
    functions: Record<string, { verify_jwt?: boolean; import_map?: string }>;
  };
  const fns = await discoverFunctions();
  assert.ok(fns.length >= 2);
  for (const fn of fns) {
    const entry = config.functions[fn.name];
    assert.ok(entry, `supabase/config.toml has no [functions.${fn.name}]`);
    assert.equal(typeof entry.verify_jwt, "boolean", `${fn.name}: verify_jwt is explicit`);
    // An import_map here would win over the function's own deno.json in the CLI's lookup order.
    assert.equal(entry.import_map, undefined, `${fn.name}: no import_map in config.toml`);
    await Deno.stat(join(ROOT, "supabase/functions", fn.name, "deno.json"));
  }
});
