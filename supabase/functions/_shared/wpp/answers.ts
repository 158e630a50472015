// The platform's answers read into this client's types: validated, or a WppMalformedError.
import type { z } from "zod";
import { WppMalformedError, type WppOperation } from "./errors.ts";
import {
  createAnswer,
  pickQr,
  qrAnswer,
  startAnswer,
  statusAnswer,
  tokenAnswer,
} from "./schemas.ts";
import type { AccountStatus, CreatedClient, StartResult } from "./types.ts";

/** When the platform does not say, a token is assumed to live as long as reported: 15 min. */
export const DEFAULT_TOKEN_TTL_MS = 15 * 60 * 1000;

const CONNECTED_WORDS = new Set(["connected", "ready"]);

export function readCreate(text: string): CreatedClient {
  try {
    const a = validate("create", createAnswer, text);
    return { session: a.session, apiKey: a.apiKey, status: a.status?.trim() || "starting" };
  } catch (e) {
    if (e instanceof WppMalformedError) e.orphanSession = sessionNamedIn(text);
    throw e;
  }
}

function sessionNamedIn(text: string): string | undefined {
  try {
    const session = (JSON.parse(text) as { session?: unknown })?.session;
    return typeof session === "string" && /^[\w-]{1,64}$/.test(session) ? session : undefined;
  } catch {
    return undefined;
  }
}

/** `issuedAt` is taken before the request went out, so the expiry errs on the early side. */
export function readToken(text: string, issuedAt: number): { token: string; expiresAt: number } {
  const a = validate("token", tokenAnswer, text);
  const ttl = a.expiresIn == null ? DEFAULT_TOKEN_TTL_MS : a.expiresIn * 1000;
  return { token: a.token, expiresAt: issuedAt + ttl };
}

export function readStart(text: string): StartResult {
  const a = validate("start", startAnswer, text);
  const word = (a.status ?? a.state)?.trim() || undefined;
  const qr = pickQr(a);
  // A linked account needs no scan, even if a stale QR rides along.
  if (word && isConnectedWord(word)) return { state: "connected", raw: word };
  if (qr !== undefined) return { state: "qr", qr, raw: word ?? "qr" };
  return { state: "starting", raw: word ?? "starting" };
}

export function readStatus(text: string): AccountStatus {
  const a = validate("status", statusAnswer, text);
  const word = (a.status ?? a.state ?? "").trim();
  return { connected: isConnectedWord(word), status: word };
}

export function readQr(text: string): string | null {
  return pickQr(validate("qr", qrAnswer, text)) ?? null;
}

function isConnectedWord(word: string): boolean {
  return CONNECTED_WORDS.has(word.toLowerCase());
}

function validate<T>(op: WppOperation, schema: z.ZodType<T>, text: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new WppMalformedError({ op, message: `WPP ${op}: answer is not JSON` });
  }
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  // Only paths and zod's wording: the values themselves may be credentials.
  const issues = result.error.issues
    .map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`)
    .join("; ");
  throw new WppMalformedError({ op, message: `WPP ${op}: unexpected answer (${issues})` });
}
