// Child processes of the stack: started with their output prefixed (or quiet), stopped together.

export interface SpawnSpec {
  name: string;
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Print the child's output prefixed with its name (otherwise it is kept for error messages). */
  echo?: boolean;
  /** Also append every output line to this file (tests scan function logs). */
  logFile?: string;
}

export interface Child {
  name: string;
  pid: number;
  process: Deno.ChildProcess;
  /** The last lines the child printed, for failure messages. */
  tail(): string;
  /** Resolves with the first output line that matches, rejects if the child exits first. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string>;
  exited: Promise<Deno.CommandStatus>;
}

const TAIL_LINES = 40;

export type ExitListener = (child: Child, status: Deno.CommandStatus) => void;

export class ProcessGroup {
  #children: Child[] = [];
  #onUnexpectedExit?: ExitListener;

  /** Called when a child exits that nobody asked to stop. */
  onUnexpectedExit(listener: ExitListener): void {
    this.#onUnexpectedExit = listener;
  }

  get pids(): { name: string; pid: number }[] {
    return this.#children.map((c) => ({ name: c.name, pid: c.pid }));
  }

  spawn(spec: SpawnSpec): Child {
    const command = new Deno.Command(spec.cmd, {
      args: spec.args,
      env: spec.env,
      cwd: spec.cwd,
      uid: spec.uid,
      gid: spec.gid,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
    const process = command.spawn();
    const lines: string[] = [];
    const watchers: { re: RegExp; resolve: (l: string) => void }[] = [];
    const logFile = spec.logFile
      ? Deno.openSync(spec.logFile, { append: true, create: true })
      : undefined;
    const encoder = new TextEncoder();
    const onLine = (line: string) => {
      lines.push(line);
      if (lines.length > TAIL_LINES) lines.shift();
      if (spec.echo) console.log(`[${spec.name}] ${line}`);
      for (const w of [...watchers]) {
        if (w.re.test(line)) {
          watchers.splice(watchers.indexOf(w), 1);
          w.resolve(line);
        }
      }
    };
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          const end = buf.lastIndexOf("\n");
          if (end < 0) continue;
          // One write per chunk, not per line: the pump shares its thread with the gateway, and
          // a busy function prints two lines per request.
          logFile?.writeSync(encoder.encode(buf.slice(0, end + 1)));
          for (const line of buf.slice(0, end).split("\n")) onLine(line);
          buf = buf.slice(end + 1);
        }
      } catch {
        // The stream ends with the process; nothing to report.
      }
      if (buf) {
        logFile?.writeSync(encoder.encode(buf + "\n"));
        onLine(buf);
      }
    };
    const pumps = Promise.all([pump(process.stdout), pump(process.stderr)]);
    const exited = process.status.then(async (s) => {
      await pumps;
      logFile?.close();
      return s;
    });
    const child: Child = {
      name: spec.name,
      pid: process.pid,
      process,
      exited,
      tail: () => lines.join("\n"),
      waitForLine: (re, timeoutMs) =>
        new Promise<string>((resolve, reject) => {
          const found = lines.find((l) => re.test(l));
          if (found) return resolve(found);
          const timer = setTimeout(() => {
            reject(
              new Error(`${spec.name} did not become ready in ${timeoutMs} ms:\n${child.tail()}`),
            );
          }, timeoutMs);
          watchers.push({
            re,
            resolve: (l) => {
              clearTimeout(timer);
              resolve(l);
            },
          });
          exited.then((s) => {
            clearTimeout(timer);
            reject(new Error(`${spec.name} exited with code ${s.code}:\n${child.tail()}`));
          });
        }),
    };
    this.#children.push(child);
    exited.then((status) => {
      if (!this.#children.includes(child)) return;
      this.#children = this.#children.filter((c) => c !== child);
      this.#onUnexpectedExit?.(child, status);
    });
    return child;
  }

  /** Stops one child: SIGTERM (or the given signal), then SIGKILL after a grace period. */
  async stopChild(child: Child, signal: Deno.Signal = "SIGTERM", graceMs = 5000): Promise<void> {
    this.#children = this.#children.filter((c) => c !== child);
    try {
      child.process.kill(signal);
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        child.process.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, graceMs);
    await child.exited;
    clearTimeout(timer);
  }

  /** Stops children in reverse start order, so dependants go before what they depend on. */
  async stopAll(signals: Record<string, Deno.Signal> = {}): Promise<void> {
    // Exits caused by the shutdown itself are expected.
    this.#onUnexpectedExit = undefined;
    for (const child of [...this.#children].reverse()) {
      await this.stopChild(child, signals[child.name] ?? "SIGTERM");
    }
  }
}

export function isAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}
