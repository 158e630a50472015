// The layout of supabase/functions shows the architecture, and these checks keep it so:
// - _shared/ is grouped by concern; imports run one way only: a function's folder uses _shared
//   (never another function's folder); sessions/ uses db/ and wpp/; http/, db/ and wpp/ use only
//   config and errors (and their own folder); the root's wiring (deps, scope) may use them all;
// - no module imports itself through others (no cycles);
// - no function of the provisioning core calls itself, directly or through another: the core is
//   a bounded loop (issue 20), and a recursion would hide how many platform calls a click makes.
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "../../dev/stack/paths.ts";

const FUNCTIONS = join(ROOT, "supabase/functions");
const SHARED = join(FUNCTIONS, "_shared");

async function tsFiles(dir: string, out: string[] = []): Promise<string[]> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory && !e.name.startsWith(".")) await tsFiles(path, out);
    else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** Relative imports of a module, resolved to absolute paths. */
async function importsOf(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(file);
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^"';]*?["'](\.{1,2}\/[^"']+)["']/g),
  ]
    .map((m) => m[1]);
  return specs.map((s) => resolve(dirname(file), s));
}

type Group = "base" | "http" | "db" | "wpp" | "sessions" | "wiring" | `function:${string}`;

function groupOf(file: string): Group {
  const rel = relative(FUNCTIONS, file).split("/");
  if (rel[0] !== "_shared") return `function:${rel[0]}`;
  if (rel.length === 2) {
    return rel[1] === "config.ts" || rel[1] === "errors.ts" ? "base" : "wiring";
  }
  return rel[1] as Group;
}

function allowed(from: Group, to: Group): boolean {
  if (from === to) return true;
  if (to === "base") return true;
  if (from.startsWith("function:")) return !to.startsWith("function:");
  if (from === "wiring") return !to.startsWith("function:");
  if (from === "sessions") return to === "db" || to === "wpp";
  return false;
}

const files = await tsFiles(FUNCTIONS);
const graph = new Map<string, string[]>();
for (const f of files) graph.set(f, await importsOf(f));

Deno.test("_shared/ is grouped by concern, each group opening with a comment", async () => {
  const groups = new Set<string>();
  for (const f of files) {
    const rel = relative(SHARED, f);
    if (!rel.startsWith("..") && rel.includes("/")) groups.add(rel.split("/")[0]);
  }
  assert.deepEqual([...groups].sort(), ["db", "http", "sessions", "wpp"]);
  for (const f of files.filter((f) => f.startsWith(SHARED))) {
    if (f.endsWith("database.types.ts")) continue; // generated; its header says so
    const first = (await Deno.readTextFile(f)).split("\n")[0];
    assert.match(
      first,
      /^\/\/ \S/,
      `${relative(ROOT, f)} opens without a comment saying what it is`,
    );
  }
  const loose = files.filter((f) => dirname(f) === SHARED).map((f) => relative(SHARED, f));
  assert.deepEqual(loose, ["config.ts", "deps.ts", "errors.ts", "runtime-deps.ts", "scope.ts"]);
});

Deno.test("imports run one way only: functions → _shared → sessions → db/wpp → config/errors", () => {
  const wrong: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      if (!to.startsWith(FUNCTIONS)) {
        wrong.push(
          `${relative(ROOT, from)} imports ${relative(ROOT, to)}, outside supabase/functions`,
        );
      } else if (!allowed(groupOf(from), groupOf(to))) {
        wrong.push(
          `${relative(FUNCTIONS, from)} (${groupOf(from)}) imports ${relative(FUNCTIONS, to)} (${
            groupOf(to)
          })`,
        );
      }
    }
  }
  assert.deepEqual(wrong, []);
  // The check can fail: a sideways import is refused.
  assert.equal(allowed("http", "wpp"), false);
  assert.equal(allowed("db", "sessions"), false);
  assert.equal(allowed("function:wpp-qr", "function:wpp-create"), false);
});

/** Cycles of a directed graph, each as the path that closes it. */
function cycles<T>(nodes: Iterable<T>, edges: (n: T) => T[], name: (n: T) => string): string[] {
  const state = new Map<T, "open" | "done">();
  const found: string[] = [];
  const path: T[] = [];
  const visit = (n: T) => {
    state.set(n, "open");
    path.push(n);
    for (const m of edges(n)) {
      if (state.get(m) === "open") {
        found.push([...path.slice(path.indexOf(m)), m].map(name).join(" → "));
      } else if (!state.has(m)) visit(m);
    }
    path.pop();
    state.set(n, "done");
  };
  for (const n of nodes) if (!state.has(n)) visit(n);
  return found;
}

Deno.test("no module imports itself through others", () => {
  const found = cycles(graph.keys(), (f) => graph.get(f) ?? [], (f) => relative(FUNCTIONS, f));
  assert.deepEqual(found, []);
  assert.deepEqual(cycles(["a", "b"], (n) => (n === "a" ? ["b"] : ["a"]), String), ["a → b → a"]);
});

/** Top-level functions of a module and the top-level functions each one calls. */
function callGraph(source: string): Map<string, string[]> {
  // Comments and string contents cannot call anything.
  const code = source
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/[^\n]*/g, "")
    .replace(/`(?:\\.|[^`\\])*`|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'/g, '""');
  const decls = [...code.matchAll(/^(?:export )?(?:async )?function\s+(\w+)/gm)];
  const bodies = new Map<string, string>();
  for (const [i, d] of decls.entries()) {
    const end = i + 1 < decls.length ? decls[i + 1].index : code.length;
    bodies.set(d[1], code.slice(d.index + d[0].length, end));
  }
  const calls = new Map<string, string[]>();
  for (const [fn, body] of bodies) {
    calls.set(
      fn,
      [...bodies.keys()].filter((other) => new RegExp(`(?<![.\\w])${other}\\(`).test(body)),
    );
  }
  return calls;
}

Deno.test("no function of the provisioning core calls itself, directly or through another", async () => {
  for (const file of ["sessions/ensure.ts", "sessions/connection.ts"]) {
    const calls = callGraph(await Deno.readTextFile(join(SHARED, file)));
    assert.ok(calls.has("ensureSession") || calls.has("observeConnection"), file);
    assert.deepEqual(cycles(calls.keys(), (f) => calls.get(f) ?? [], String), [], file);
  }
  // The check can fail: a recursion through a second function is found.
  const recursive = callGraph(
    "function a() { b(); }\nfunction b() { if (x) a(); }\nfunction c() { a(); }\n",
  );
  assert.deepEqual(cycles(recursive.keys(), (f) => recursive.get(f) ?? [], String), ["a → b → a"]);
});
