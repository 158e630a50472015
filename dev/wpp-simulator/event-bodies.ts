// Bodies of the admin routes that emit events.
import { z } from "zod";
import { DELIVERY_STATUSES, EVENT_TYPES, SESSION_EVENT_WORDS } from "./types.ts";

export const inboundMessageBody = z.strictObject({
  from: z.string().min(1),
  rawFrom: z.string().min(1).optional(),
  text: z.string().optional(),
  type: z.string().min(1).optional(),
  messageId: z.string().min(1).optional(),
  fromMe: z.boolean().optional(),
  media: z.record(z.string(), z.unknown()).optional(),
});

const notQr = SESSION_EVENT_WORDS.filter((w) => w !== "qr") as [
  Exclude<typeof SESSION_EVENT_WORDS[number], "qr">,
  ...Exclude<typeof SESSION_EVENT_WORDS[number], "qr">[],
];

export const sessionEventBody = z.union([
  z.strictObject({ type: z.literal("qr"), qr: z.string().min(1).optional() }),
  z.strictObject({ type: z.enum(notQr) }),
  z.strictObject({
    type: z.literal("delivery"),
    messageId: z.string().min(1),
    status: z.enum(DELIVERY_STATUSES),
  }),
]);

export const MAX_BURST = 10_000;

export const burstBody = z.strictObject({
  session: z.string().min(1),
  count: z.number().int().min(1).max(MAX_BURST),
  concurrency: z.number().int().min(1).max(256).optional(),
  types: z.array(z.enum(EVENT_TYPES)).min(1).optional(),
  duplicate: z.number().int().min(1).max(20).optional(),
  reorder: z.boolean().optional(),
});
