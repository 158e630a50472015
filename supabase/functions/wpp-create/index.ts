// «Подключить WhatsApp»: creates or reuses the organisation's WPP Platform session.
import { loadConfig } from "../_shared/config.ts";
import { createHandler } from "./handler.ts";
import { productionDeps } from "./deps.ts";

const config = loadConfig();
Deno.serve(createHandler(config, productionDeps(config)));
