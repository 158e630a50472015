/**
 * A TCP relay in front of the HTTP server. Deno.serve always answers something (a thrown
 * handler becomes a 500), but a real platform can also drop the connection mid-request; only
 * owning the socket lets us do that, so each client connection is relayed and the handler can
 * cut the one its request arrived on.
 */

export interface FrontConnection {
  /** Drops both sides at once: the client sees the connection close with no answer. */
  cut(): void;
  /** Aborts when the client goes away (or the connection is cut). */
  readonly gone: AbortSignal;
}

interface Pair extends FrontConnection {
  client: Deno.Conn;
  upstream: Deno.Conn;
}

export class TcpFront {
  readonly port: number;
  readonly #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  /** Keyed by the relay's local port towards the HTTP server, which the handler sees. */
  readonly #pairs = new Map<number, Pair>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #acceptLoop: Promise<void>;
  #closed = false;

  constructor(hostname: string, port: number, private readonly upstreamPort: number) {
    this.#listener = Deno.listen({ hostname, port, transport: "tcp" });
    this.port = this.#listener.addr.port;
    this.#acceptLoop = this.#accept();
  }

  /** The client connection behind a request the HTTP server received from `remotePort`. */
  connectionOf(remotePort: number): FrontConnection | undefined {
    return this.#pairs.get(remotePort);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    for (const pair of this.#pairs.values()) pair.cut();
    await this.#acceptLoop;
    await Promise.allSettled([...this.#tasks]);
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const task = this.#relay(client).finally(() => this.#tasks.delete(task));
        this.#tasks.add(task);
      }
    } catch {
      // The listener was closed under the loop; that is how it ends.
    }
  }

  async #relay(client: Deno.TcpConn): Promise<void> {
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.upstreamPort });
    } catch {
      client.close();
      return;
    }
    if (this.#closed) {
      client.close();
      upstream.close();
      return;
    }
    const key = upstream.localAddr.port;
    const gone = new AbortController();
    let open = true;
    const pair: Pair = {
      client,
      upstream,
      gone: gone.signal,
      cut: () => {
        if (!open) return;
        open = false;
        gone.abort();
        client.close();
        upstream.close();
      },
    };
    this.#pairs.set(key, pair);
    try {
      await Promise.all([pump(client, upstream, pair), pump(upstream, client, pair)]);
    } finally {
      this.#pairs.delete(key);
    }
  }
}

/** Copies bytes one way until either side ends, then ends both. */
async function pump(from: Deno.Conn, to: Deno.Conn, pair: Pair): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) break;
      let written = 0;
      while (written < n) written += await to.write(buffer.subarray(written, n));
    }
  } catch {
    // A side closed mid-copy; cutting below is the whole response to that.
  }
  pair.cut();
}
