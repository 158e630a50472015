// What a platform error answer said, as one short line of text (JSON or an HTML page).
const MAX_LENGTH = 300;

const ENTITIES: Record<string, string> = {
  "&lt;": "<",
  "&gt;": ">",
  "&amp;": "&",
  "&quot;": '"',
  "&#39;": "'",
  "&nbsp;": " ",
};

/**
 * Turns an error body into one short human line. The platform answers errors as JSON
 * `{"error": "..."}`, as plain text, or (for unknown routes) as an Express HTML page, and we
 * cannot tell which from the status alone, so the text is read first and JSON tried after.
 */
export function platformMessageFrom(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  const fromJson = messageFromJson(trimmed);
  if (fromJson !== undefined) return shorten(fromJson);
  if (trimmed.startsWith("<")) return shorten(textFromHtml(trimmed));
  return shorten(trimmed);
}

function messageFromJson(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed === "string") return parsed;
  if (parsed === null || typeof parsed !== "object") return undefined;
  const body = parsed as Record<string, unknown>;
  for (const key of ["error", "message"]) {
    const value = body[key];
    if (typeof value === "string") return value;
    if (value !== null && typeof value === "object") {
      const nested = (value as Record<string, unknown>).message;
      if (typeof nested === "string") return nested;
    }
  }
  return text;
}

function textFromHtml(html: string): string {
  // Express puts the useful line in <pre>; the <title> is just "Error".
  const pre = /<pre[^>]*>([\s\S]*?)<\/pre>/i.exec(html);
  const inner = pre ? pre[1] : html
    .replace(/<head[\s\S]*?<\/head>/gi, " ")
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ");
  return inner
    .replace(/<br\s*\/?>/gi, " ")
    .replace(/<[^>]+>/g, " ")
    .replace(/&(lt|gt|amp|quot|#39|nbsp);/g, (entity) => ENTITIES[entity] ?? entity);
}

function shorten(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > MAX_LENGTH ? line.slice(0, MAX_LENGTH - 1) + "…" : line;
}
