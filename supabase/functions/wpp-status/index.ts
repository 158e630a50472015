// The state of the organisation's WhatsApp connection, and a fresh QR while a scan is awaited.
import { loadConfig } from "../_shared/config.ts";
import { createHandler } from "./handler.ts";
import { productionDeps } from "./deps.ts";

const config = loadConfig();
Deno.serve(createHandler(config, productionDeps(config)));
