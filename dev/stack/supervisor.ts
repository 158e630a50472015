// Watches the stack's child processes. A child that exits on its own is reported at once (name,
// pid, exit code or signal, its last output); services that can come back are restarted with a
// bounded number of attempts and a growing delay, and /health shows them meanwhile. PostgreSQL,
// or a service out of attempts, ends the stack: nothing works without it, and a stack that only
// looks alive is worse than one that stops with a reason.
import type { Child, ProcessGroup } from "./processes.ts";

export type ServiceStatus = "up" | "restarting" | "failed";

export interface ServiceState {
  status: ServiceStatus;
  pid: number;
  restarts: number;
  lastExit?: string;
}

interface Watched {
  /** Starts a fresh process and resolves once it serves; absent: the stack cannot go on without it. */
  restart?: () => Promise<Child>;
  state: ServiceState;
  /** Times of recent restarts, to bound them per window. */
  recent: number[];
}

export interface SupervisorOptions {
  log: (line: string) => void;
  /** The stack must stop: the reason, ready to print. */
  onFatal: (reason: string) => void;
  /** Called whenever a process was replaced (the pid file is rewritten). */
  onChange?: () => void;
  maxRestarts?: number;
  windowMs?: number;
  /** Delay before the n-th restart within the window. */
  backoffMs?: (attempt: number) => number;
  /** Lines of the dead process's output printed with the report. */
  tailLines?: number;
}

const DEFAULT_MAX_RESTARTS = 5;
const DEFAULT_WINDOW_MS = 60_000;
const defaultBackoff = (attempt: number) => Math.min(200 * 2 ** (attempt - 1), 5_000);

export function describeExit(status: Deno.CommandStatus): string {
  return status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
}

export class Supervisor {
  #watched = new Map<string, Watched>();
  #byChild = new Map<Child, string>();
  #stopping = false;
  #fatal = false;
  readonly #opts:
    & Required<Omit<SupervisorOptions, "onChange">>
    & Pick<SupervisorOptions, "onChange">;

  constructor(group: ProcessGroup, opts: SupervisorOptions) {
    this.#opts = {
      ...opts,
      maxRestarts: opts.maxRestarts ?? DEFAULT_MAX_RESTARTS,
      windowMs: opts.windowMs ?? DEFAULT_WINDOW_MS,
      backoffMs: opts.backoffMs ?? defaultBackoff,
      tailLines: opts.tailLines ?? 15,
    };
    group.onUnexpectedExit((child, status) => this.#exited(child, status));
  }

  /** Watches a service's process under a stable name (e.g. "fn:wpp-create#1"). */
  watch(name: string, child: Child, restart?: () => Promise<Child>): void {
    const existing = this.#watched.get(name);
    this.#watched.set(name, {
      restart,
      recent: existing?.recent ?? [],
      state: {
        status: "up",
        pid: child.pid,
        restarts: existing?.state.restarts ?? 0,
        lastExit: existing?.state.lastExit,
      },
    });
    this.#byChild.set(child, name);
  }

  state(name: string): ServiceState | undefined {
    const w = this.#watched.get(name);
    return w && { ...w.state };
  }

  /** From now on exits are expected: the stack is stopping. */
  stop(): void {
    this.#stopping = true;
  }

  #exited(child: Child, status: Deno.CommandStatus): void {
    const name = this.#byChild.get(child);
    if (!name || this.#stopping) return;
    this.#byChild.delete(child);
    const watched = this.#watched.get(name)!;
    const how = describeExit(status);
    const tail = child.tail().split("\n").slice(-this.#opts.tailLines).join("\n");
    watched.state.lastExit = how;
    this.#opts.log(
      `${name} (pid ${child.pid}) exited unexpectedly with ${how}; its last output:\n` +
        (tail ? tail.replace(/^/gm, "    ") : "    (nothing)"),
    );
    if (!watched.restart) {
      watched.state.status = "failed";
      this.#fail(`${name} (pid ${child.pid}) exited with ${how}: the stack cannot run without it`);
      return;
    }
    watched.state.status = "restarting";
    this.#restart(name, watched);
  }

  async #restart(name: string, watched: Watched): Promise<void> {
    while (!this.#stopping) {
      const now = Date.now();
      watched.recent = watched.recent.filter((t) => now - t < this.#opts.windowMs);
      if (watched.recent.length >= this.#opts.maxRestarts) {
        watched.state.status = "failed";
        this.#fail(
          `${name} died ${watched.recent.length + 1} times within ` +
            `${Math.round(this.#opts.windowMs / 1000)} s; giving up on restarting it`,
        );
        return;
      }
      watched.recent.push(now);
      const attempt = watched.recent.length;
      const delay = this.#opts.backoffMs(attempt);
      this.#opts.log(
        `restarting ${name} in ${delay} ms (attempt ${attempt} of ${this.#opts.maxRestarts})`,
      );
      await new Promise((r) => setTimeout(r, delay));
      if (this.#stopping) return;
      try {
        const child = await watched.restart!();
        if (this.#stopping) return;
        watched.state.restarts++;
        this.watch(name, child, watched.restart);
        this.#opts.onChange?.();
        this.#opts.log(`${name} is back (pid ${child.pid})`);
        return;
      } catch (e) {
        this.#opts.log(`restarting ${name} failed: ${(e as Error).message}`);
      }
    }
  }

  #fail(reason: string): void {
    if (this.#fatal || this.#stopping) return;
    this.#fatal = true;
    this.#opts.onFatal(reason);
  }
}
