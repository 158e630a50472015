// Each function folder carries its own deno.json, because that file (not the root deno.json) is
// what a deploy uploads and what the edge runtime resolves the function's imports with. It must map
// exactly the bare names the function's module graph imports, to the very versions the root import
// map and package.json pin, so the tests (root map, node_modules) run what production runs.
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "../../dev/stack/paths.ts";
import { FUNCTIONS_DIR } from "../../dev/stack/functions.ts";

const TOOLING_DENO = join(ROOT, "node_modules/deno/deno");
const EXACT_NPM = /^npm:((?:@[^/@]+\/)?[^/@]+)@(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)(\/.*)?$/;

interface InfoModule {
  specifier: string;
  dependencies?: { specifier: string }[];
}

const rootConfig = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as {
  imports: Record<string, string>;
};
const packageJson = JSON.parse(await Deno.readTextFile(join(ROOT, "package.json"))) as {
  dependencies: Record<string, string>;
};

/** Every folder of supabase/functions/ except the shared code (`_shared`) and dot folders. */
async function functionFolders(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(FUNCTIONS_DIR)) {
    if (e.isDirectory && !e.name.startsWith("_") && !e.name.startsWith(".")) names.push(e.name);
  }
  return names.sort();
}

/** The function's module graph as the tooling resolves it (root import map, node_modules). */
async function moduleGraph(entry: string): Promise<InfoModule[]> {
  const out = await new Deno.Command(TOOLING_DENO, {
    args: ["info", "--json", entry],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] }).modules;
}

/** The import map key that resolves `specifier`: an exact key, or the longest "prefix/" key. */
function mapKeyFor(imports: Record<string, string>, specifier: string): string | undefined {
  if (specifier in imports) return specifier;
  return Object.keys(imports)
    .filter((k) => k.endsWith("/") && specifier.startsWith(k))
    .sort((a, b) => b.length - a.length)[0];
}

const folders = await functionFolders();

Deno.test("there are function folders to check", () => {
  assert.ok(folders.includes("wpp-create") && folders.includes("wpp-status"), folders.join(", "));
});

for (const name of folders) {
  Deno.test(`${name}: deno.json maps exactly its graph's bare imports, pinned like the root`, async () => {
    const dir = join(FUNCTIONS_DIR, name);
    const entry = join(dir, "index.ts");
    await Deno.stat(entry).catch(() => assert.fail(`${name} has no index.ts`));
    const text = await Deno.readTextFile(join(dir, "deno.json")).catch(() =>
      assert.fail(`supabase/functions/${name}/deno.json is missing`)
    );
    const config = JSON.parse(text) as Record<string, unknown>;
    // Only the import map: tooling settings (nodeModulesDir, tasks, lint) belong to the root.
    assert.deepEqual(Object.keys(config), ["imports"], `${name}/deno.json holds only "imports"`);
    const imports = config.imports as Record<string, string>;

    const own = pathToFileURL(`${dir}/`).href;
    const shared = pathToFileURL(`${join(FUNCTIONS_DIR, "_shared")}/`).href;
    const used = new Set<string>();
    for (const mod of await moduleGraph(entry)) {
      if (!mod.specifier.startsWith("file://") || mod.specifier.includes("/node_modules/")) {
        continue;
      }
      // A deploy uploads the function's folder and the shared code it imports, nothing else.
      assert.ok(
        mod.specifier.startsWith(own) || mod.specifier.startsWith(shared),
        `${name} imports ${mod.specifier}, outside its folder and _shared/`,
      );
      for (const { specifier } of mod.dependencies ?? []) {
        if (/^(\.{0,2}\/|node:)/.test(specifier)) continue;
        // Versions live in deno.json only, so a URL or inline npm:/jsr: import would bypass it.
        assert.doesNotMatch(specifier, /^[a-z]+:/, `${mod.specifier} imports ${specifier}`);
        const key = mapKeyFor(imports, specifier);
        assert.ok(key, `${name}/deno.json does not map "${specifier}" (${mod.specifier})`);
        used.add(key);
      }
    }
    assert.deepEqual(
      Object.keys(imports).sort(),
      [...used].sort(),
      `${name}/deno.json maps exactly what its graph imports (no unused or dev-only entries)`,
    );

    for (const [key, target] of Object.entries(imports)) {
      const m = EXACT_NPM.exec(target);
      assert.ok(m, `${name}: "${key}" → "${target}" is an npm: specifier with an exact version`);
      const [, pkg, version] = m;
      assert.equal(rootConfig.imports[key], target, `${name}: "${key}" as in the root deno.json`);
      assert.equal(
        packageJson.dependencies[pkg],
        version,
        `${name}: ${pkg}@${version} is a dependency in package.json at that version`,
      );
    }
  });
}
