// The WPP Platform's events: authenticated by the secret in the URL, applied, forwarded.
import { loadConfig } from "../_shared/config.ts";
import { createHandler } from "./handler.ts";
import { webhookDeps } from "./deps.ts";

const config = loadConfig();
Deno.serve(createHandler(config, webhookDeps(config)));
