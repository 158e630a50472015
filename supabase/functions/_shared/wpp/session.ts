// The calls made on behalf of one session: token, start, status, QR, webhook, stop.
import { readQr, readStart, readStatus, readToken } from "./answers.ts";
import { backoffDelay, pause } from "./backoff.ts";
import { isWppError, WppInvalidApiKeyError } from "./errors.ts";
import { type AttemptCounter, type Exchange, perform } from "./perform.ts";
import type { Runtime } from "./runtime.ts";
import type {
  AccountStatus,
  CallOptions,
  SessionInput,
  StartResult,
  TokenOptions,
  WppToken,
} from "./types.ts";

type BearerExchange<T> = Omit<Exchange<T>, "bearer">;

/** Calls made on behalf of one platform client (one apiKey, one session). */
export class WppSessionClient {
  readonly session: string;
  readonly #rt: Runtime;
  readonly #apiKey: string;
  #current: WppToken | undefined;
  #obtained: WppToken | null = null;

  constructor(rt: Runtime, input: SessionInput) {
    this.#rt = rt;
    this.session = input.session;
    this.#apiKey = input.apiKey;
    this.#current = input.storedToken;
    rt.scrubber.add(input.apiKey);
    rt.scrubber.add(input.storedToken?.token);
  }

  /** A usable token: the cached or stored one while it has `tokenSafetyMarginMs` left. */
  async getToken(opts: TokenOptions = {}): Promise<WppToken> {
    const current = this.#current;
    if (current && this.#rt.now() < current.expiresAt - this.#rt.tokenSafetyMarginMs) {
      return { ...current };
    }
    return await this.#requestToken(opts);
  }

  /** The token this client obtained itself, so the caller can persist it; null if none. */
  newToken(): WppToken | null {
    return this.#obtained ? { ...this.#obtained } : null;
  }

  async startAccount(opts: CallOptions = {}): Promise<StartResult> {
    return await this.#withToken({
      op: "start",
      method: "POST",
      path: "/api/accounts/start",
      body: { number: this.session },
      // Starting an account that is already starting only re-issues its QR.
      retried: true,
      read: readStart,
    }, opts);
  }

  async accountStatus(opts: CallOptions = {}): Promise<AccountStatus> {
    return await this.#withToken({
      op: "status",
      method: "GET",
      path: `${this.#accountPath()}/status`,
      retried: true,
      read: readStatus,
    }, opts);
  }

  async getQr(opts: CallOptions = {}): Promise<string | null> {
    return await this.#withToken({
      op: "qr",
      method: "GET",
      path: `${this.#accountPath()}/qr`,
      retried: true,
      read: readQr,
    }, opts);
  }

  async registerWebhook(url: string, opts: CallOptions = {}): Promise<void> {
    await this.#withToken({
      op: "webhook",
      method: "POST",
      path: `${this.#sessionPath()}/webhook`,
      body: { url },
      // The platform keeps one URL per session, so setting it twice changes nothing.
      retried: true,
      read: ignoreBody,
    }, opts);
  }

  async stop(opts: CallOptions = {}): Promise<void> {
    await this.#withToken({
      op: "stop",
      method: "POST",
      path: `${this.#sessionPath()}/stop`,
      // Stopping a stopped session leaves it stopped.
      retried: true,
      read: ignoreBody,
    }, opts);
  }

  #accountPath(): string {
    return `/api/accounts/${encodeURIComponent(this.session)}`;
  }

  #sessionPath(): string {
    return `/internal/session/${encodeURIComponent(this.session)}`;
  }

  /**
   * Runs a bearer call. A 401 means the token died early (expired, or the platform restarted),
   * so a new one is fetched and the call repeated, once: a second 401 is not a token problem.
   */
  async #withToken<T>(exchange: BearerExchange<T>, opts: CallOptions): Promise<T> {
    const first = await this.getToken(opts);
    try {
      return await perform(this.#rt, { ...exchange, bearer: first.token }, opts);
    } catch (e) {
      if (!isWppError(e) || e.code !== "platform_rejected" || e.status !== 401) throw e;
    }
    this.#rt.emitLog({ event: "wpp.token_refresh", op: exchange.op, session: this.session });
    if (this.#current?.token === first.token) this.#current = undefined;
    const fresh = await this.#requestToken(opts);
    return await perform(this.#rt, { ...exchange, bearer: fresh.token }, opts);
  }

  async #requestToken(opts: TokenOptions): Promise<WppToken> {
    const rt = this.#rt;
    const counter: AttemptCounter = { attempt: 0 };
    const exchange: Exchange<WppToken> = {
      op: "token",
      method: "POST",
      path: "/auth/token",
      body: { apiKey: this.#apiKey },
      retried: true,
      read: readToken,
    };
    // Bounded by freshKeyRetryMs from the first request, and by the caller's deadline.
    const giveUpAt = rt.now() + (opts.freshKey ? rt.freshKeyRetryMs : 0);
    let refusal: WppInvalidApiKeyError | undefined;
    for (let refusals = 1;; refusals++) {
      try {
        const token = await perform(rt, exchange, opts, counter);
        rt.scrubber.add(token.token);
        this.#current = token;
        this.#obtained = token;
        return { ...token };
      } catch (e) {
        // Out of time while waiting for a refused key to come alive: the last word on the key
        // is still "refused", which tells the caller more than "timed out".
        if (refusal && isWppError(e) && e.code === "platform_timeout" && this.#pastDeadline(opts)) {
          throw refusal;
        }
        if (!(e instanceof WppInvalidApiKeyError) || !opts.freshKey) throw e;
        refusal = e;
        const left = giveUpAt - rt.now();
        if (left <= 0) throw e;
        const delayMs = Math.min(left, backoffDelay(rt.retry, refusals));
        if (opts.deadline !== undefined && rt.now() + delayMs >= opts.deadline) throw e;
        rt.emitLog({ event: "wpp.fresh_key_wait", op: "token", refusals, delayMs });
        await pause(delayMs, opts.signal, rt.sleep);
      }
    }
  }

  #pastDeadline(opts: CallOptions): boolean {
    return opts.deadline !== undefined && this.#rt.now() >= opts.deadline;
  }
}

function ignoreBody(): void {}
