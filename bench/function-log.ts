// The functions' own account of each request: one JSON line per request (request-log.ts), read
// back from the log file the stack tees each process's output into.

export interface RequestLine {
  fn: string;
  request_id: string;
  status: number;
  outcome?: string;
  session?: string | null;
  source?: string;
  ms: number;
  platform_ms: number;
  db_ms: number;
  own_ms: number;
  db_calls: { op: string; ms: number }[];
  platform_calls: { op: string; ms: number }[];
}

/** wpp-webhook's line for each event it forwarded, written once the forward settled. */
export interface ForwardLine {
  fn: string;
  msg: "forward";
  request_id: string;
  ok: boolean;
  attempts: number;
}

/** The log files of every process of one function, read as one log. */
export class FunctionLog {
  readonly #offsets: number[];

  constructor(readonly paths: string[]) {
    this.#offsets = paths.map(() => 0);
  }

  /** Forgets everything logged so far: the next read starts here. */
  async mark(): Promise<void> {
    for (const [i, path] of this.paths.entries()) {
      this.#offsets[i] = (await Deno.stat(path).catch(() => ({ size: 0 }))).size;
    }
  }

  /**
   * Request lines written since the mark. The output reaches the file through a pipe, so the
   * last lines may lag behind the last response: wait until `expected` have arrived.
   */
  async requests(expected: number, timeoutMs = 5_000): Promise<RequestLine[]> {
    return await this.#until<RequestLine>((r) => typeof r.own_ms === "number", expected, timeoutMs);
  }

  async forwards(expected: number, timeoutMs = 5_000): Promise<ForwardLine[]> {
    return await this.#until<ForwardLine>((r) => r.msg === "forward", expected, timeoutMs);
  }

  async #until<T>(
    keep: (r: Record<string, unknown>) => boolean,
    expected: number,
    timeoutMs: number,
  ): Promise<T[]> {
    const until = Date.now() + timeoutMs;
    while (true) {
      const lines = (await this.#read()).filter(keep) as T[];
      if (lines.length >= expected || Date.now() > until) return lines;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async #read(): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for (const [i, path] of this.paths.entries()) out.push(...await this.#readFile(path, i));
    return out;
  }

  async #readFile(path: string, i: number): Promise<Record<string, unknown>[]> {
    const file = await Deno.open(path, { read: true }).catch((e) => {
      // A process that has written nothing yet has no file yet.
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    });
    if (!file) return [];
    try {
      await file.seek(this.#offsets[i], Deno.SeekMode.Start);
      const text = new TextDecoder().decode(await readAll(file));
      const out: Record<string, unknown>[] = [];
      for (const raw of text.split("\n")) {
        if (!raw.startsWith("{")) continue;
        try {
          const line = JSON.parse(raw);
          if (typeof line.fn === "string") out.push(line);
        } catch { /* a line still being written */ }
      }
      return out;
    } finally {
      file.close();
    }
  }
}

async function readAll(file: Deno.FsFile): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(64 * 1024);
  let total = 0;
  while (true) {
    const n = await file.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
