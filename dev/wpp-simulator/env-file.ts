/**
 * Reads a dotenv-style file: KEY=VALUE lines, `#` comments, optional `export `, values in
 * single quotes taken literally, in double quotes with \n escapes, bare values trimmed and cut
 * at " #". Enough for the project's .env files without pulling in a parser.
 */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    out[m[1]] = unquote(m[2]);
  }
  return out;
}

function unquote(value: string): string {
  const single = /^'(.*)'$/.exec(value);
  if (single) return single[1];
  const double = /^"(.*)"$/.exec(value);
  if (double) return double[1].replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
  return value.replace(/\s+#.*$/, "").trim();
}
