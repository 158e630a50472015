// `deno task test:reliability`: the reliability tests at full size (200 organisations, a
// two-minute soak). Tasks cannot set an environment variable portably, so this sets it and
// hands over to the test runner, which starts the stack as for `deno task test`.
import { join } from "node:path";
import { ROOT } from "../dev/stack/paths.ts";

const started = performance.now();
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    join(ROOT, "dev/stack/test-runner.ts"),
    ...(Deno.args.length ? Deno.args : ["tests/reliability/"]),
  ],
  cwd: ROOT,
  env: { RELIABILITY_FULL: "1" },
  stdin: "null",
}).spawn();
const { code } = await child.status;
console.log(
  `reliability suite (full form) finished in ${Math.round((performance.now() - started) / 1000)} s`,
);
Deno.exit(code);
