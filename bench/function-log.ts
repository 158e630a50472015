// The function's own account of each request: one JSON line per request (request-log.ts), read
// back from the log file the stack tees the process output into.

export interface RequestLine {
  status: number;
  outcome?: string;
  ms: number;
  platform_ms: number;
  db_ms: number;
  own_ms: number;
  db_calls: { op: string; ms: number }[];
  platform_calls: { op: string }[];
}

export class FunctionLog {
  #offset = 0;

  constructor(readonly path: string) {}

  /** Forgets everything logged so far: the next read starts here. */
  async mark(): Promise<void> {
    this.#offset = (await Deno.stat(this.path).catch(() => ({ size: 0 }))).size;
  }

  /**
   * Request lines written since the mark. The output reaches the file through a pipe, so the
   * last lines of a cell may lag behind its last response: wait until `expected` have arrived.
   */
  async since(expected: number, timeoutMs = 5_000): Promise<RequestLine[]> {
    const until = Date.now() + timeoutMs;
    while (true) {
      const lines = await this.#read();
      if (lines.length >= expected || Date.now() > until) return lines;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async #read(): Promise<RequestLine[]> {
    const file = await Deno.open(this.path, { read: true });
    try {
      await file.seek(this.#offset, Deno.SeekMode.Start);
      const text = new TextDecoder().decode(await readAll(file));
      const out: RequestLine[] = [];
      for (const raw of text.split("\n")) {
        if (!raw.startsWith("{")) continue;
        try {
          const line = JSON.parse(raw);
          if (line.fn === "wpp-create" && typeof line.own_ms === "number") out.push(line);
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
