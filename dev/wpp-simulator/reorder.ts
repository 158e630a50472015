/** A copy's turn to be sent; `done` lets the next one in the batch go. */
export interface Turn {
  reordered: boolean;
  done(): void;
}

interface Held {
  position: number;
  resolve: (turn: Turn | undefined) => void;
}

/**
 * Holds events for a window, then lets them go one at a time in a shuffled order. One at a time
 * so the receiver sees exactly that order, not whatever concurrent requests happen to produce.
 */
export class ReorderBuffer {
  #batch: Held[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly shuffle: <T>(items: T[]) => T[] = shuffled) {}

  /** Resolves when it is this event's turn, or with undefined when released early. */
  hold(windowMs: number): Promise<Turn | undefined> {
    return new Promise((resolve) => {
      this.#batch.push({ position: this.#batch.length, resolve });
      // The first event of a batch sets its window; later ones ride along.
      this.#timer ??= setTimeout(() => void this.#flush(), windowMs);
    });
  }

  /** Lets go of everything held without a turn (reset, shutdown). */
  release(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    this.#batch = [];
    for (const held of batch) held.resolve(undefined);
  }

  async #flush(): Promise<void> {
    const batch = this.#batch;
    this.#batch = [];
    this.#timer = undefined;
    const order = this.shuffle(batch);
    for (const [i, held] of order.entries()) {
      await new Promise<void>((done) =>
        held.resolve({ reordered: i !== held.position, done: () => done() })
      );
    }
  }
}

/** A random permutation that is never the identity when there are two or more items. */
export function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  if (out.length > 1 && out.every((item, i) => item === items[i])) out.push(out.shift()!);
  return out;
}
