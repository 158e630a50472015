// zod schemas of every platform answer, in all the documented variants.
import { z } from "zod";

// The platform's answers, as far as they are known (see /work/shared/wpp-platform.md). Each
// schema admits the documented variants and nothing else; unknown extra fields are ignored.

const text = z.string().regex(/\S/, "must not be blank");
const optionalText = z.string().nullish();

export const createAnswer = z.object({
  session: text,
  apiKey: text,
  status: optionalText,
});

export const tokenAnswer = z.object({
  token: text,
  expiresIn: z.number().positive().finite().nullish(),
});

// The QR has been seen under four names; any of them may be absent while none is ready.
const qrFields = {
  qr: optionalText,
  qrCode: optionalText,
  qrcode: optionalText,
  data: z.object({ qr: optionalText }).nullish(),
};

const stateFields = {
  status: optionalText,
  state: optionalText,
};

export const startAnswer = z.object({ ...qrFields, ...stateFields }).refine(
  (a) => hasText(pickQr(a)) || hasText(a.status ?? a.state),
  "neither a QR nor a state",
);

export const statusAnswer = z.object(stateFields).refine(
  (a) => hasText(a.status ?? a.state),
  "no status or state",
);

export const qrAnswer = z.object(qrFields);

type QrCarrier = z.infer<typeof qrAnswer>;

export function pickQr(a: QrCarrier): string | undefined {
  for (const candidate of [a.qr, a.qrCode, a.qrcode, a.data?.qr]) {
    if (hasText(candidate)) return candidate;
  }
  return undefined;
}

function hasText(value: string | null | undefined): value is string {
  return typeof value === "string" && value.trim() !== "";
}
