// A platform token fetched during a request is cached in the row, guarded by its session, so the
// next request (a poll two seconds later, or the next click) does not fetch another.
import type { SessionPort } from "./platform-port.ts";

/** Writes only the token and its expiry, and only while `session` is still the stored one. */
export interface TokenStore {
  storeToken(
    integrationId: string,
    session: string,
    token: string,
    expiresAt: number,
  ): Promise<boolean>;
}

export async function cacheNewToken(
  store: TokenStore,
  warn: (what: string, e: unknown) => void,
  integrationId: string,
  session: string,
  client: SessionPort,
): Promise<void> {
  const token = client.newToken();
  if (!token) return;
  try {
    await store.storeToken(integrationId, session, token.token, token.expiresAt);
  } catch (e) {
    // An uncached token only costs one token call the next time.
    warn("store_token", e);
  }
}
