// CPU time per component of the stack while a cell runs, from /proc (utime + stime of every
// process descended from the benchmark, threads included): where the two cores actually went.
// Other helpers' processes on the machine are not descendants, so they are left out.

const TICK_MS = 10; // USER_HZ is 100 on Linux

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  cmd: string;
  ticks: number;
}

function parseStat(stat: string): { comm: string; ppid: number; ticks: number } {
  const close = stat.lastIndexOf(")");
  const f = stat.slice(close + 2).split(" ");
  return {
    comm: stat.slice(stat.indexOf("(") + 1, close),
    ppid: Number(f[1]),
    ticks: Number(f[11]) + Number(f[12]),
  };
}

async function readProcs(): Promise<Map<number, Proc>> {
  const out = new Map<number, Proc>();
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const { comm, ppid, ticks } = parseStat(await Deno.readTextFile(`/proc/${e.name}/stat`));
      const cmd = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).replaceAll("\0", " ");
      out.set(Number(e.name), { pid: Number(e.name), ppid, comm, cmd, ticks });
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** This process's threads: its workers run the load generator and the receiver. */
async function ownThreads(): Promise<{ comm: string; ticks: number }[]> {
  const out: { comm: string; ticks: number }[] = [];
  for await (const t of Deno.readDir(`/proc/${Deno.pid}/task`)) {
    try {
      const { comm, ticks } = parseStat(
        await Deno.readTextFile(`/proc/${Deno.pid}/task/${t.name}/stat`),
      );
      out.push({ comm, ticks });
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** A label per process; for this process, per thread (`thread` is the thread's name). */
export type Labeller = (p: { pid: number; comm: string; cmd: string; thread?: string }) => string;

/** CPU ms per label, over this process and its descendants. */
async function byComponent(label: Labeller): Promise<Map<string, number>> {
  const procs = await readProcs();
  const children = new Map<number, number[]>();
  for (const p of procs.values()) {
    children.set(p.ppid, [...children.get(p.ppid) ?? [], p.pid]);
  }
  const out = new Map<string, number>();
  const stack = [Deno.pid];
  while (stack.length) {
    const pid = stack.pop()!;
    const p = procs.get(pid);
    if (p && pid === Deno.pid) {
      for (const t of await ownThreads()) {
        const l = label({ ...p, thread: t.comm });
        out.set(l, (out.get(l) ?? 0) + t.ticks * TICK_MS);
      }
    } else if (p) {
      const l = label(p);
      out.set(l, (out.get(l) ?? 0) + p.ticks * TICK_MS);
    }
    stack.push(...children.get(pid) ?? []);
  }
  return out;
}

/** The whole machine's busy and stolen CPU time (/proc/stat), ms over all cores. */
async function machineCpu(): Promise<{ busy: number; steal: number }> {
  const f = (await Deno.readTextFile("/proc/stat")).split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  // user nice system idle iowait irq softirq steal. Interrupt time is left out: with IRQ time
  // accounting it is charged to no process, so it would pass for another process's work.
  return { busy: (f[0] + f[1] + f[2]) * TICK_MS, steal: (f[7] ?? 0) * TICK_MS };
}

export interface CpuSnapshot {
  components: Map<string, number>;
  busy: number;
  steal: number;
  at: number;
}

export async function cpuSnapshot(label: Labeller): Promise<CpuSnapshot> {
  const [components, m] = await Promise.all([byComponent(label), machineCpu()]);
  return { components, busy: m.busy, steal: m.steal, at: performance.now() };
}

/** CPU used between two snapshots: by the stack's processes, by everything else, stolen. */
export interface CpuUse {
  /** ms per component, largest first. */
  components: [string, number][];
  ownMs: number;
  /** Busy time of processes this benchmark did not start (other helpers' tests). */
  foreignMs: number;
  /** Time the hypervisor gave the machine's vCPUs to someone else. */
  stealMs: number;
  wallMs: number;
}

export function cpuUse(before: CpuSnapshot, after: CpuSnapshot): CpuUse {
  const components = [...after.components]
    .map(([k, v]): [string, number] => [k, v - (before.components.get(k) ?? 0)])
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1]);
  const ownMs = components.reduce((s, [, v]) => s + v, 0);
  return {
    components,
    ownMs,
    foreignMs: Math.max(0, after.busy - before.busy - ownMs),
    stealMs: after.steal - before.steal,
    wallMs: after.at - before.at,
  };
}
