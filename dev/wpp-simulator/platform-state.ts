import type { PlatformEvent } from "./events.ts";
import { newApiKey, newQr, newToken, sessionId } from "./ids.ts";
import type { SessionState } from "./types.ts";

export interface ClientRecord {
  organizationId: string;
  apiKey: string;
  session: string;
  createdAt: number;
  killed: boolean;
  /** Tokens are refused until then, reproducing the race seen right after a create. */
  refuseTokensUntil: number;
}

export interface SessionRecord {
  id: string;
  organizationId: string;
  apiKey: string;
  state: SessionState;
  qr: string | null;
  webhookUrl: string | null;
  createdAt: number;
}

export interface TokenRecord {
  token: string;
  session: string;
  apiKey: string;
  expiresAt: number;
}

/** A state change the platform tells the session's webhook about. */
export type StateEvent = (session: SessionRecord, event: PlatformEvent) => void;

/**
 * What the platform remembers: clients, their keys, tokens and sessions. Pure bookkeeping; HTTP
 * shapes live in the route handlers and webhook sending in the dispatcher, told via `onEvent`.
 */
export class PlatformState {
  readonly clients = new Map<string, ClientRecord>();
  readonly sessions = new Map<string, SessionRecord>();
  readonly tokens = new Map<string, TokenRecord>();
  #sequence = 0;

  constructor(
    private readonly onEvent: StateEvent,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new client every time, like the real platform: it is not idempotent. */
  createClient(organizationId: string, refuseTokensForMs: number): ClientRecord {
    const at = this.now();
    const id = sessionId(++this.#sequence);
    const client: ClientRecord = {
      organizationId,
      apiKey: newApiKey(),
      session: id,
      createdAt: at,
      killed: false,
      refuseTokensUntil: refuseTokensForMs > 0 ? at + refuseTokensForMs : 0,
    };
    this.clients.set(client.apiKey, client);
    this.sessions.set(id, {
      id,
      organizationId,
      apiKey: client.apiKey,
      state: "starting",
      qr: null,
      webhookUrl: null,
      createdAt: at,
    });
    return client;
  }

  /** undefined when the key is unknown, killed, or still inside its refusal window. */
  issueToken(apiKey: string, ttlSeconds: number): TokenRecord | undefined {
    const client = this.clients.get(apiKey);
    if (!client || client.killed || this.now() < client.refuseTokensUntil) return undefined;
    const expiresAt = this.now() + ttlSeconds * 1000;
    const record: TokenRecord = {
      token: newToken(client.session, expiresAt),
      session: client.session,
      apiKey,
      expiresAt,
    };
    this.tokens.set(record.token, record);
    return record;
  }

  /** Tokens stay valid until they expire, even if their key is killed, as a JWT would. */
  validToken(token: string): TokenRecord | undefined {
    const record = this.tokens.get(token);
    return record && this.now() < record.expiresAt ? record : undefined;
  }

  /** Linked sessions stay linked; any other gets a new QR to scan. */
  start(id: string): SessionRecord | undefined {
    const session = this.sessions.get(id);
    if (!session || session.state === "connected") return session;
    this.#issueQr(session);
    return session;
  }

  setWebhook(id: string, url: string): boolean {
    const session = this.sessions.get(id);
    if (!session) return false;
    session.webhookUrl = url;
    return true;
  }

  stop(id: string): boolean {
    const session = this.sessions.get(id);
    if (!session) return false;
    this.#goOffline(session);
    return true;
  }

  /** What a phone scanning the QR does; only possible while a QR is shown. */
  scan(id: string): "connected" | "no_qr" | "unknown" {
    const session = this.sessions.get(id);
    if (!session) return "unknown";
    if (session.state !== "qr") return "no_qr";
    session.state = "connected";
    session.qr = null;
    this.onEvent(session, { kind: "connected", session: session.id });
    return "connected";
  }

  /** What a phone unlinking the device does. */
  disconnect(id: string): boolean {
    const session = this.sessions.get(id);
    if (!session) return false;
    this.#goOffline(session);
    return true;
  }

  rotateQrs(): void {
    for (const session of this.sessions.values()) {
      if (session.state === "qr") this.#issueQr(session);
    }
  }

  expireTokens(): number {
    const at = this.now();
    let count = 0;
    for (const record of this.tokens.values()) {
      if (record.expiresAt > at) count++;
      record.expiresAt = Math.min(record.expiresAt, at);
    }
    return count;
  }

  killApiKey(apiKey: string): boolean {
    const client = this.clients.get(apiKey);
    if (!client) return false;
    client.killed = true;
    return true;
  }

  reset(): void {
    this.clients.clear();
    this.sessions.clear();
    this.tokens.clear();
    this.#sequence = 0;
  }

  #issueQr(session: SessionRecord): void {
    session.state = "qr";
    session.qr = newQr();
    this.onEvent(session, { kind: "qr", session: session.id, qr: session.qr });
  }

  #goOffline(session: SessionRecord): void {
    const was = session.state;
    session.state = "offline";
    session.qr = null;
    if (was !== "offline") this.onEvent(session, { kind: "offline", session: session.id });
  }
}
