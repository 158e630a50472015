import type {
  CallCounts,
  FaultSpec,
  FaultView,
  Operation,
  SessionView,
  SimulatorSnapshot,
  Variants,
} from "./types.ts";

export type {
  CallCounts,
  FaultSpec,
  FaultView,
  Operation,
  SessionView,
  SimulatorSnapshot,
  Variants,
} from "./types.ts";

/** Typed access to the simulator's /__admin/ API, for tests in this or another process. */
export class SimulatorAdmin {
  readonly #base: string;

  constructor(url: string) {
    this.#base = url.replace(/\/+$/, "");
  }

  /** A phone scans the session's QR: the session becomes connected. */
  scan(session: string): Promise<SessionView> {
    return this.#call("POST", `/__admin/sessions/${encodeURIComponent(session)}/scan`);
  }

  /** The phone unlinks: the session goes offline. */
  disconnect(session: string): Promise<SessionView> {
    return this.#call("POST", `/__admin/sessions/${encodeURIComponent(session)}/disconnect`);
  }

  expireTokens(): Promise<{ expired: number }> {
    return this.#call("POST", "/__admin/tokens/expire");
  }

  killApiKey(target: { apiKey: string } | { session: string }): Promise<{ killed: number }> {
    return this.#call("POST", "/__admin/api-keys/kill", target);
  }

  state(opts: { reveal?: boolean } = {}): Promise<SimulatorSnapshot> {
    return this.#call("GET", `/__admin/state${opts.reveal ? "?reveal=1" : ""}`);
  }

  calls(): Promise<CallCounts> {
    return this.#call("GET", "/__admin/calls");
  }

  async reset(): Promise<void> {
    await this.#call("POST", "/__admin/reset");
  }

  setFault(spec: FaultSpec): Promise<FaultView> {
    return this.#call("POST", "/__admin/faults", spec);
  }

  faults(): Promise<FaultView[]> {
    return this.#call("GET", "/__admin/faults");
  }

  async clearFaults(op?: Operation): Promise<void> {
    await this.#call("DELETE", `/__admin/faults${op ? `?op=${op}` : ""}`);
  }

  setVariants(variants: Partial<Variants>): Promise<Variants> {
    return this.#call("POST", "/__admin/variants", variants);
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    // No keep-alive: a pooled connection left by the admin client could be picked up by the
    // code under test, and Deno's fetch replays requests on reused connections that get cut,
    // which would hide "close" faults.
    const headers: Record<string, string> = { connection: "close" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(this.#base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`simulator admin ${method} ${path} answered ${response.status}: ${text}`);
    }
    return JSON.parse(text) as T;
  }
}
