// The connection of an organisation's WhatsApp number, and the QR while a scan is awaited.
import { loadConfig } from "../_shared/config.ts";
import { productionDeps } from "../_shared/deps.ts";
import { createHandler } from "./handler.ts";

const config = loadConfig(["WPP_BASE_URL"]);
Deno.serve(createHandler(config, productionDeps(config, { createsClients: false })));
