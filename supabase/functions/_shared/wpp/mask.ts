// Credentials masked for answers, and scrubbed from any platform text that is echoed.
const MASK = "••••••";

/** Shows just enough of a credential to tell two apart in a log, never enough to use it. */
export function maskSecret(value: string): string {
  if (value.length < 12) return "***";
  return value.slice(0, 6) + MASK + value.slice(-4);
}

// Platform text is echoed into errors; it could quote a credential we never saw (another
// session's token, say), so these shapes are hidden even when the value is unknown.
const BEARER = /\b(Bearer)\s+[^\s"',;]+/gi;
const JWT = /\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g;

/**
 * Remembers every credential the client handles (secret, apiKeys, tokens) and hides them in
 * any text that is about to leave the client as an error message or a log line.
 */
export class SecretScrubber {
  #secrets: string[] = [];

  add(value: string | undefined | null): void {
    if (!value || this.#secrets.includes(value)) return;
    this.#secrets.push(value);
    // Longest first, so a secret containing another is replaced whole.
    this.#secrets.sort((a, b) => b.length - a.length);
  }

  scrub(text: string): string {
    let out = text;
    for (const secret of this.#secrets) {
      if (out.includes(secret)) out = out.split(secret).join(maskSecret(secret));
    }
    return out.replace(BEARER, "$1 ***").replace(JWT, (jwt) => maskSecret(jwt));
  }

  /** Scrubs the string values of a structured log line, however deep. */
  scrubDeep<T>(value: T): T {
    if (typeof value === "string") return this.scrub(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.scrubDeep(v)) as T;
    if (value !== null && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.scrubDeep(v);
      return out as T;
    }
    return value;
  }
}
