// What the figures were measured on, so a reader can tell whether their machine compares.
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
  date: string;
}

export async function loadAverage(): Promise<string> {
  return (await firstMatch("/proc/loadavg", /^(\S+)/)) ?? "unknown";
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

export async function describeMachine(sql: Sql, loadAtStart: string): Promise<Machine> {
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
    loadGenerator: `autocannon ${autocannon} (in the benchmark's Deno process)`,
    load: `${loadAtStart} at the start, ${await loadAverage()} at the end`,
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
}
