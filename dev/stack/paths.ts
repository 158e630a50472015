import { resolve } from "node:path";

/** The repository root, wherever the command was started from. */
export const ROOT = resolve(import.meta.dirname!, "../..");
