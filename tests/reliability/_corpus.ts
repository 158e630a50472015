// The malformed requests: every one must be refused with a 4xx that says why, before anything
// is written anywhere. Each case names the status the function's documented rules give it.
import { gzip } from "node:zlib";
import { promisify } from "node:util";
import { stack } from "../_support/stack.ts";
import { badTokens, type Parties } from "./_tokens.ts";

export interface BadRequest {
  group: string;
  name: string;
  method?: string;
  /** Appended to /functions/v1/wpp-create. */
  path?: string;
  /** The whole Authorization header; undefined sends none. */
  authorization?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array | (() => ReadableStream<Uint8Array>);
  expect: number;
}

export interface CorpusInput extends Parties {
  orgB: string;
  tokenLoner: string;
  tokenMember: string;
  /** Valid tokens carrying claims that name organisation B, for a user outside it. */
  tokenLonerClaimingB: string;
  tokenMemberClaimingOwner: string;
}

const enc = new TextEncoder();
const bytes = (...b: number[]) => new Uint8Array(b);
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

function utf16(text: string, bigEndian: boolean, bom: boolean): Uint8Array {
  const out: number[] = bom ? (bigEndian ? [0xfe, 0xff] : [0xff, 0xfe]) : [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out.push(...(bigEndian ? [c >> 8, c & 0xff] : [c & 0xff, c >> 8]));
  }
  return new Uint8Array(out);
}

function utf32le(text: string): Uint8Array {
  const out = [0xff, 0xfe, 0, 0];
  for (const ch of text) out.push(ch.codePointAt(0)!, 0, 0, 0);
  return new Uint8Array(out);
}

/** A JSON object of exactly `size` bytes with one unknown key. */
function padded(size: number): string {
  return `{"pad":"${"a".repeat(size - 10)}"}`;
}

function streamOf(size: number): () => ReadableStream<Uint8Array> {
  return () => {
    let sent = 0;
    return new ReadableStream({
      pull(controller) {
        if (sent >= size) return controller.close();
        const chunk = new Uint8Array(Math.min(64 * 1024, size - sent)).fill(0x20);
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
  };
}

export async function buildCorpus(p: CorpusInput): Promise<BadRequest[]> {
  const bearerA = `Bearer ${p.tokenA}`;
  const out: BadRequest[] = [];
  const add = (group: string, cases: Omit<BadRequest, "group">[]) =>
    out.push(...cases.map((c) => ({ group, ...c })));

  add("method", [
    ...["GET", "PUT", "PATCH", "DELETE", "HEAD", "PROPFIND", "FOO", "MKCOL", "LINK", "PURGE"]
      .map((method) => ({
        name: method,
        method,
        authorization: bearerA,
        body: method === "GET" || method === "HEAD" ? undefined : "{}",
        expect: 405,
      })),
  ]);
  add(
    "path",
    ["/extra", "/wpp-create", "/a%2Fb", "//double"].map((path) => ({
      name: path,
      path,
      authorization: bearerA,
      body: "{}",
      expect: 404,
    })),
  );

  add(
    "authorization header",
    [
      { name: "missing", expect: 401 },
      { name: "empty", authorization: "", expect: 401 },
      { name: "Bearer without a token", authorization: "Bearer", expect: 401 },
      { name: "Basic credentials", authorization: "Basic dXNlcjpwYXNzd29yZA==", expect: 401 },
      { name: "Token scheme", authorization: `Token ${p.tokenA}`, expect: 401 },
      { name: "no space after Bearer", authorization: `Bearer${p.tokenA}`, expect: 401 },
      { name: "trailing garbage", authorization: `${bearerA} extra`, expect: 401 },
      { name: "two tokens", authorization: `${bearerA}, ${bearerA}`, expect: 401 },
      { name: "4000 characters", authorization: `Bearer ${"a".repeat(4000)}`, expect: 401 },
      { name: "not a JWT", authorization: "Bearer not.a.jwt", expect: 401 },
      { name: "one segment", authorization: "Bearer eyJhbGciOiJIUzI1NiJ9", expect: 401 },
      { name: "quoted token", authorization: `Bearer "${p.tokenA}"`, expect: 401 },
    ].map((c) => ({ ...c, body: "{}" })),
  );

  add(
    "token",
    (await badTokens(p)).map(([name, token, expect]) => ({
      name,
      authorization: `Bearer ${token}`,
      body: "{}",
      expect,
    })),
  );
  add("token", [
    {
      name: "a user in no organisation",
      authorization: `Bearer ${p.tokenLoner}`,
      body: "{}",
      expect: 403,
    },
    {
      name: "a member (not owner/admin)",
      authorization: `Bearer ${p.tokenMember}`,
      body: "{}",
      expect: 403,
    },
  ]);

  const invalidJson = [
    "{",
    "}",
    "[",
    "{'force_recreate': true}",
    "{force_recreate: true}",
    '{"force_recreate": tru}',
    '{"force_recreate": True}',
    "NaN",
    "undefined",
    '{"force_recreate": true,}',
    "// comment\n{}",
    "/* comment */ {}",
    "{}}",
    "{} {}",
    '"unterminated',
    '{"force_recreate": 01}',
    '{"force_recreate": .5}',
    '{"x": "\\u12"}',
    '{"x": "a\tb"}',
    "\u0000{}",
    "{}\u0000",
    "[".repeat(16_000),
  ];
  add(
    "body: invalid JSON",
    invalidJson.map((body, i) => ({
      name: `#${i + 1} ${JSON.stringify(body.slice(0, 30))}`,
      authorization: bearerA,
      body,
      expect: 400,
    })),
  );

  const notObjects = [
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    '"{}"',
    "[]",
    "[{}]",
    '[{"force_recreate":true}]',
    "[null]",
  ];
  add(
    "body: not an object",
    notObjects.map((body) => ({ name: body, authorization: bearerA, body, expect: 400 })),
  );

  const wrongValues = [
    '"true"',
    "1",
    "0",
    "null",
    "[]",
    "{}",
    '""',
    "1e999",
    "123456789012345678901234567890",
    '"\\ud800"',
  ];
  for (const key of ["force_recreate", "add_new"]) {
    add(
      `body: wrong type for ${key}`,
      wrongValues.map((v) => ({
        name: v,
        authorization: bearerA,
        body: `{"${key}": ${v}}`,
        expect: 400,
      })),
    );
  }

  const unknownKeys = [
    { organization_id: p.orgB },
    { organizationId: p.orgB },
    { force: true },
    { FORCE_RECREATE: true },
    { force_recreate: true, extra: 1 },
    { "": 1 },
    { session: "0000000000001" },
    { apiKey: "wpk_x" },
    { wppApiKey: "wpk_x" },
    { role: "owner" },
  ];
  add("body: unknown fields", [
    ...unknownKeys.map((b) => ({
      name: JSON.stringify(b),
      authorization: bearerA,
      body: JSON.stringify(b),
      expect: 400,
    })),
    {
      name: "__proto__",
      authorization: bearerA,
      body: '{"__proto__": {"force_recreate": true}}',
      expect: 400,
    },
    {
      name: "constructor",
      authorization: bearerA,
      body: '{"constructor": {"prototype": {}}}',
      expect: 400,
    },
    {
      name: "duplicate key, last one wrong",
      authorization: bearerA,
      body: '{"force_recreate": true, "force_recreate": "x"}',
      expect: 400,
    },
    {
      name: "lone surrogate as key",
      authorization: bearerA,
      body: '{"\\ud800": true}',
      expect: 400,
    },
    {
      name: "add_new (not supported)",
      authorization: bearerA,
      body: '{"add_new": true}',
      expect: 400,
    },
    {
      name: "add_new with force_recreate",
      authorization: bearerA,
      body: '{"add_new": true, "force_recreate": true}',
      expect: 400,
    },
  ]);

  add(
    "body: deep nesting",
    [
      { name: "8000 nested arrays", body: "[".repeat(8000) + "]".repeat(8000) },
      { name: "2700 nested objects", body: '{"a":'.repeat(2700) + "1" + "}".repeat(2700) },
      {
        name: "nested value of force_recreate",
        body: `{"force_recreate": ${"[".repeat(5000)}${"]".repeat(5000)}}`,
      },
      { name: "a 16000-character string", body: `{"force_recreate": "${"A".repeat(16_000)}"}` },
      { name: "tiny number", body: '{"force_recreate": 1e-999}' },
    ].map((c) => ({ ...c, authorization: bearerA, expect: 400 })),
  );

  add(
    "body: size",
    [
      { name: "16 KiB exactly (unknown key)", body: padded(16 * 1024), expect: 400 },
      { name: "16 KiB + 1", body: padded(16 * 1024 + 1), expect: 413 },
      { name: "16 KiB + 1 of whitespace", body: " ".repeat(16 * 1024 + 1), expect: 413 },
      { name: "64 KiB", body: padded(64 * 1024), expect: 413 },
      { name: "1 MiB", body: padded(1024 * 1024), expect: 413 },
      { name: "1 MiB of zero bytes", body: new Uint8Array(1024 * 1024), expect: 413 },
      { name: "1 MiB streamed, no length given", body: streamOf(1024 * 1024), expect: 413 },
    ].map((c) => ({ ...c, authorization: bearerA })),
  );

  const bom = bytes(0xef, 0xbb, 0xbf);
  const json = '{"force_recreate":true}';
  const gzipped = new Uint8Array(await promisify(gzip)(enc.encode("{}")));
  const encodings: { name: string; body: Uint8Array | string; headers?: Record<string, string> }[] =
    [
      { name: "byte 0xff", body: bytes(0xff) },
      { name: "truncated sequence", body: bytes(0xc3, 0x28) },
      { name: "overlong slash", body: bytes(0xc0, 0xaf) },
      { name: "UTF-8 encoded surrogate", body: bytes(0xed, 0xa0, 0x80) },
      { name: "beyond U+10FFFF", body: bytes(0xf4, 0x90, 0x80, 0x80) },
      {
        name: "invalid byte inside a string",
        body: concat(enc.encode('{"force_recreate":"'), bytes(0xff), enc.encode('"}')),
      },
      {
        name: "Latin-1 é",
        body: concat(enc.encode('{"force_recreate":"'), bytes(0xe9), enc.encode('"}')),
      },
      { name: "UTF-16LE with BOM", body: utf16(json, false, true) },
      { name: "UTF-16BE with BOM", body: utf16(json, true, true) },
      { name: "UTF-16LE without BOM", body: utf16(json, false, false) },
      { name: "UTF-32LE with BOM", body: utf32le(json) },
      { name: "UTF-8 BOM, wrong type", body: concat(bom, enc.encode('{"force_recreate":"yes"}')) },
      { name: "UTF-8 BOM, add_new", body: concat(bom, enc.encode('{"add_new":true}')) },
      { name: "two UTF-8 BOMs", body: concat(bom, bom, enc.encode("{}")) },
      {
        name: "form-encoded",
        body: "force_recreate=true",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      },
      {
        name: "multipart",
        body:
          '--x\r\nContent-Disposition: form-data; name="force_recreate"\r\n\r\ntrue\r\n--x--\r\n',
        headers: { "content-type": "multipart/form-data; boundary=x" },
      },
      {
        name: "declared UTF-16",
        body: utf16(json, false, true),
        headers: { "content-type": "application/json; charset=utf-16" },
      },
      { name: "gzip, declared", body: gzipped, headers: { "content-encoding": "gzip" } },
    ];
  add("body: encoding", encodings.map((c) => ({ ...c, authorization: bearerA, expect: 400 })));

  add("cross-tenant", [
    {
      name: "admin of A names B in the body",
      authorization: bearerA,
      body: JSON.stringify({ organization_id: p.orgB, force_recreate: true }),
      expect: 400,
    },
    {
      name: "user in no org names B in a header",
      authorization: `Bearer ${p.tokenLoner}`,
      headers: { "x-organization-id": p.orgB },
      body: "{}",
      expect: 403,
    },
    {
      name: "user in no org with claims naming B",
      authorization: `Bearer ${p.tokenLonerClaimingB}`,
      body: "{}",
      expect: 403,
    },
    {
      name: "member of A claiming to be owner",
      authorization: `Bearer ${p.tokenMemberClaimingOwner}`,
      body: "{}",
      expect: 403,
    },
    {
      name: "user in no org sends the service key as apikey",
      authorization: `Bearer ${p.tokenLoner}`,
      headers: { apikey: stack.serviceRoleKey },
      body: "{}",
      expect: 403,
    },
    {
      name: "member of A forcing a recreate",
      authorization: `Bearer ${p.tokenMember}`,
      body: '{"force_recreate": true}',
      expect: 403,
    },
  ]);
  return out;
}
