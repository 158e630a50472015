// `deno task test:reliability`: the reliability tests at full size (the fault matrix with the
// production timeouts on 12 lanes, 200 organisations × 5 clicks, a two-minute soak). Tasks cannot
// set an environment variable portably, so this sets it and hands over to the test runner, which
// starts the stack as for `deno task test`; then it prints the fault matrix's figures again, per
// fault, for the issue note: platform clients per click through the CRM helper's retry policy,
// and the answer times of the helper's attempts against the request deadline.
import { join } from "node:path";
import { ROOT } from "../dev/stack/paths.ts";

const started = performance.now();
const figures = await Deno.makeTempFile({ prefix: "wpp-connect-reliability-", suffix: ".json" });
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    join(ROOT, "dev/stack/test-runner.ts"),
    ...(Deno.args.length ? Deno.args : ["tests/reliability/"]),
  ],
  cwd: ROOT,
  env: { RELIABILITY_FULL: "1", RELIABILITY_FIGURES: figures },
  stdin: "null",
}).spawn();
const { code } = await child.status;

interface Figures {
  form: string;
  timing: Record<string, string>;
  figures: {
    fault: string;
    cells: number;
    maxClientsPerClick: number;
    attempts: number;
    p50Ms: number;
    maxMs: number;
    finals: Record<string, number>;
  }[];
}

const text = await Deno.readTextFile(figures).catch(() => "");
await Deno.remove(figures).catch(() => {});
if (text.trim()) {
  const f = JSON.parse(text) as Figures;
  const deadline = Number(f.timing.WPP_REQUEST_DEADLINE_MS);
  const s = (ms: number) => (Number.isFinite(ms) && ms > 0 ? `${(ms / 1000).toFixed(1)} s` : "-");
  console.log(
    `\nFault matrix figures (${f.form} form, ${
      Object.entries(f.timing).map(([k, v]) => `${k}=${v}`).join(", ")
    }); one click = the CRM helper's 4 attempts, 1 s·2ⁿ ±25 % apart:\n`,
  );
  console.log(
    "| fault | clicks | platform clients per click (max) | attempts | answer p50 | answer max | deadline + 1 s | final answers |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of f.figures) {
    const finals = Object.entries(r.finals).map(([k, n]) => `${k} ×${n}`).join(", ");
    console.log(
      `| ${r.fault} | ${r.cells} | ${r.maxClientsPerClick} | ${r.attempts} | ${s(r.p50Ms)} | ${
        s(r.maxMs)
      } | ${s(deadline + 1000)} | ${finals} |`,
    );
  }
} else {
  console.log("\n(no fault matrix figures: the fault matrix did not run or did not finish)");
}
console.log(
  `\nreliability suite (full form) finished in ${
    Math.round((performance.now() - started) / 1000)
  } s`,
);
Deno.exit(code);
