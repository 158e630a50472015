/** Credentials and identifiers that look like the platform's without being real ones. */

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

function base64urlText(text: string): string {
  return base64url(new TextEncoder().encode(text));
}

/** Sessions seen in the wild are 13 zero-padded digits handed out in sequence. */
export function sessionId(sequence: number): string {
  return String(sequence).padStart(13, "0");
}

export function newApiKey(): string {
  return "wpk_" + base64url(randomBytes(30));
}

/** JWT-shaped so log scrubbers that look for JWTs are exercised; nothing verifies it. */
export function newToken(session: string, expiresAt: number): string {
  const header = base64urlText(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64urlText(
    JSON.stringify({
      sub: session,
      exp: Math.floor(expiresAt / 1000),
      jti: base64url(randomBytes(6)),
    }),
  );
  return `${header}.${payload}.${base64url(randomBytes(32))}`;
}

/** Shaped like a WhatsApp pairing string: ref, then keys, comma-separated. */
export function newQr(): string {
  const part = (n: number) => btoa(String.fromCharCode(...randomBytes(n)));
  return `2@${part(48)},${part(32)},${part(32)},${part(16)}`;
}

export function newSecret(): string {
  return base64url(randomBytes(24));
}

/** Shaped like a WhatsApp Web message id. */
export function newMessageId(): string {
  const hex = Array.from(randomBytes(10), (b) => b.toString(16).padStart(2, "0")).join("");
  return `3EB0${hex.toUpperCase()}`;
}
