// What the figures were measured on, and what else the machine was doing, so a reader can tell
// whether their machine compares and whether the run was disturbed.
import type { Sql } from "./fixtures.ts";
import { postgrestBin } from "../dev/stack/postgrest.ts";

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  deno: string;
  postgres: string;
  postgrest: string;
  loadGenerator: string;
  /** 1-minute load average when the run started and when it ended: other work skews figures. */
  load: string;
  /** Other test or benchmark runs on the machine at the start and at the end. */
  others: string;
  date: string;
}

export async function loadAverage(): Promise<string> {
  return (await firstMatch("/proc/loadavg", /^(\S+)/)) ?? "unknown";
}

/** Other `deno test` / test-runner / bench processes (not this one): they share the cores. */
export async function otherRuns(): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
      try {
        const args = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).split("\0");
        const deno = args[0]?.endsWith("/deno");
        if (
          deno && (args[1] === "test" ||
            args.some((a) => a.endsWith("dev/stack/test-runner.ts") || a.endsWith("bench/main.ts")))
        ) n++;
      } catch { /* gone meanwhile */ }
    }
  } catch { /* no /proc */ }
  return n;
}

async function firstMatch(path: string, re: RegExp): Promise<string | undefined> {
  try {
    return re.exec(await Deno.readTextFile(path))?.[1]?.trim();
  } catch {
    return undefined;
  }
}

async function commandOutput(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "unknown";
  }
}

export async function describeMachine(
  sql: Sql,
  atStart: { load: string; others: number },
): Promise<Machine> {
  const memKiB = Number(await firstMatch("/proc/meminfo", /^MemTotal:\s+(\d+)/m) ?? NaN);
  const [{ version }] = await sql<{ version: string }[]>`select version()`;
  const autocannon = JSON.parse(
    await Deno.readTextFile(new URL("../node_modules/autocannon/package.json", import.meta.url)),
  ).version;
  return {
    cpu: await firstMatch("/proc/cpuinfo", /^model name\s*:\s*(.+)$/m) ?? "unknown",
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(memKiB / 1024 / 1024 * 10) / 10,
    os: `${Deno.build.os} ${Deno.osRelease()} (${Deno.build.arch})`,
    deno: Deno.version.deno,
    postgres: version.split(" on ")[0],
    postgrest: await commandOutput(postgrestBin(), ["--version"]),
    loadGenerator: `autocannon ${autocannon} (a worker thread of the benchmark's Deno process)`,
    load: `${atStart.load} at the start, ${await loadAverage()} at the end`,
    others: `${atStart.others} at the start, ${await otherRuns()} at the end`,
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
}
