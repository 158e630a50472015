// Memory of a process as the kernel accounts it: VmRSS now, VmHWM the peak resident size.

export interface Memory {
  rssMiB: number;
  peakMiB: number;
}

export async function memoryOf(pid: number): Promise<Memory> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rssMiB: kib("VmRSS") / 1024, peakMiB: kib("VmHWM") / 1024 };
}
