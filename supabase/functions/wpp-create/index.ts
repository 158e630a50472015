// «Подключить WhatsApp»: creates or reuses an organisation's WPP Platform session.
import { loadConfig } from "../_shared/config.ts";
import { productionDeps } from "../_shared/deps.ts";
import { createHandler } from "./handler.ts";

const config = loadConfig(["WPP_BASE_URL", "WPP_SECRET"]);
Deno.serve(createHandler(config, productionDeps(config, { createsClients: true })));
