// The WPP Platform client: creates platform clients, hands out session clients.
import { readCreate } from "./answers.ts";
import { perform } from "./perform.ts";
import { buildRuntime, type Runtime } from "./runtime.ts";
import { WppSessionClient } from "./session.ts";
import type { CallOptions, CreatedClient, SessionInput, WppClientOptions } from "./types.ts";

/** Entry point to the WPP Platform: creates platform clients and hands out session clients. */
export class WppPlatformClient {
  readonly #rt: Runtime;

  constructor(options: WppClientOptions) {
    this.#rt = buildRuntime(options);
  }

  /**
   * Creates a platform client (one apiKey, one session). Never retried: the platform is not
   * known to be idempotent, and a lost answer may already have created a session.
   */
  async createClient(organizationId: string, opts: CallOptions = {}): Promise<CreatedClient> {
    const secret = this.#rt.secret;
    if (!secret) throw new TypeError("WppPlatformClient: a secret is needed to create clients");
    const created = await perform(this.#rt, {
      op: "create",
      method: "POST",
      path: "/api/integrations/wpp/create",
      bearer: secret,
      body: { organizationId },
      retried: false,
      read: readCreate,
    }, opts);
    this.#rt.scrubber.add(created.apiKey);
    return created;
  }

  forSession(input: SessionInput): WppSessionClient {
    return new WppSessionClient(this.#rt, input);
  }
}
