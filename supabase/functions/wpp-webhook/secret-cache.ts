// Webhook URLs the database confirmed a moment ago, per function process. A message or delivery
// event (most of the traffic) to such a URL is answered and forwarded without asking the
// database again; session events always go to the database, which orders them. An entry lives
// WPP_WEBHOOK_SECRET_CACHE_MS at most, so a URL whose secret was rotated (a recreate) is refused
// again that long after: its old session's events cannot reach any organisation meanwhile, since
// the CRM's receiver finds organisations by the current session.
export interface KnownUrl {
  integrationId: string;
  organizationId: string;
  /** The integration's session when the database confirmed the URL. */
  session: string | null;
  /** ms epoch the database confirmed it. */
  confirmedAt: number;
}

export class SecretCache {
  readonly #entries = new Map<string, KnownUrl>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly maxEntries = 10_000,
  ) {}

  /** A confirmation younger than the TTL, or undefined. */
  get(hash: string): KnownUrl | undefined {
    const known = this.#entries.get(hash);
    if (!known) return undefined;
    if (this.now() - known.confirmedAt >= this.ttlMs) {
      this.#entries.delete(hash);
      return undefined;
    }
    return known;
  }

  confirm(hash: string, known: Omit<KnownUrl, "confirmedAt">): void {
    if (this.ttlMs <= 0) return;
    this.#entries.delete(hash);
    // Maps iterate in insertion order: the first key is the oldest confirmation.
    if (this.#entries.size >= this.maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(hash, { ...known, confirmedAt: this.now() });
  }

  forget(hash: string): void {
    this.#entries.delete(hash);
  }
}
