// The malformed requests, for every function: each must be refused with a 4xx that says why,
// before anything is written anywhere or the platform is called. Each case names the status the
// function's documented rules give it.
import { gzip } from "node:zlib";
import { promisify } from "node:util";
import { stack } from "../_support/stack.ts";
import { badTokens, type Parties } from "./_tokens.ts";

export type CorpusFunction =
  | "wpp-create"
  | "wpp-status"
  | "wpp-qr"
  | "wpp-disconnect"
  | "wpp-webhook";

export interface BadRequest {
  fn: CorpusFunction;
  group: string;
  name: string;
  method?: string;
  /** Appended to /functions/v1/<fn>. */
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
  /** Organisation A's session and number, and organisation B's. */
  sessionA: string;
  sessionB: string;
  integrationA: string;
  integrationB: string;
  /** The secret in the URL the platform posts A's events to. */
  webhookSecretA: string;
}

/** The functions a signed-in user calls. */
const USER_FUNCTIONS = ["wpp-create", "wpp-status", "wpp-qr", "wpp-disconnect"] as const;
type UserFunction = typeof USER_FUNCTIONS[number];
/** The methods each one answers; every other is a 405. */
const ALLOWED: Record<CorpusFunction, string[]> = {
  "wpp-create": ["POST"],
  "wpp-status": ["GET", "POST"],
  "wpp-qr": ["GET", "POST"],
  "wpp-disconnect": ["POST"],
  "wpp-webhook": ["POST"],
};
/** The body cap of the user functions (supabase/functions/_shared/http/body.ts). */
const USER_BODY_CAP = 16 * 1024;
/** WPP_WEBHOOK_MAX_BYTES's default: the test stack does not set it. */
const WEBHOOK_BODY_CAP = 64 * 1024;

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

const OTHER_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "PROPFIND", "FOO", "MKCOL"];

export async function buildCorpus(p: CorpusInput): Promise<BadRequest[]> {
  const bearerA = `Bearer ${p.tokenA}`;
  const out: BadRequest[] = [];
  const add = (fn: CorpusFunction, group: string, cases: Omit<BadRequest, "group" | "fn">[]) =>
    out.push(...cases.map((c) => ({ fn, group, ...c })));
  const tokens = await badTokens(p);

  for (const fn of USER_FUNCTIONS) {
    // A body each function accepts, so a request gets as far as the check it is about.
    const valid = fn === "wpp-disconnect"
      ? JSON.stringify({ integration_id: p.integrationA })
      : "{}";
    add(
      fn,
      "method",
      OTHER_METHODS.filter((m) => !ALLOWED[fn].includes(m)).map((method) => ({
        name: method,
        method,
        authorization: bearerA,
        body: method === "GET" || method === "HEAD" ? undefined : "{}",
        expect: 405,
      })),
    );
    add(
      fn,
      "path",
      ["/extra", `/${fn}`, "/a%2Fb", "//double"].map((path) => ({
        name: path,
        path,
        authorization: bearerA,
        body: "{}",
        expect: 404,
      })),
    );
    add(
      fn,
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
      fn,
      "token",
      tokens.map(([name, token, expect]) => ({
        name,
        authorization: `Bearer ${token}`,
        body: valid,
        expect,
      })),
    );
    add(fn, "who", [
      {
        name: "a user in no organisation",
        authorization: `Bearer ${p.tokenLoner}`,
        body: valid,
        expect: 403,
      },
      {
        name: "user in no org with claims naming B",
        authorization: `Bearer ${p.tokenLonerClaimingB}`,
        body: valid,
        expect: 403,
      },
      {
        name: "user in no org names B in a header",
        authorization: `Bearer ${p.tokenLoner}`,
        headers: { "x-organization-id": p.orgB },
        body: valid,
        expect: 403,
      },
      {
        name: "user in no org sends the service key as apikey",
        authorization: `Bearer ${p.tokenLoner}`,
        headers: { apikey: stack.serviceRoleKey },
        body: valid,
        expect: 403,
      },
      // wpp-status answers members (the status only), so only the others refuse them.
      ...(fn === "wpp-status" ? [] : [
        {
          name: "a member (not owner/admin)",
          authorization: `Bearer ${p.tokenMember}`,
          body: valid,
          expect: 403,
        },
        {
          name: "member of A claiming to be owner",
          authorization: `Bearer ${p.tokenMemberClaimingOwner}`,
          body: valid,
          expect: 403,
        },
      ]),
    ]);
    add(
      fn,
      "body: size",
      [
        { name: "16 KiB + 1", body: padded(USER_BODY_CAP + 1), expect: 413 },
        { name: "16 KiB + 1 of whitespace", body: " ".repeat(USER_BODY_CAP + 1), expect: 413 },
        { name: "1 MiB", body: padded(1024 * 1024), expect: 413 },
        { name: "1 MiB of zero bytes", body: new Uint8Array(1024 * 1024), expect: 413 },
        { name: "1 MiB streamed, no length given", body: streamOf(1024 * 1024), expect: 413 },
      ].map((c) => ({ ...c, authorization: bearerA })),
    );
    add(
      fn,
      "body: invalid JSON",
      ["{", "[", "{'a': 1}", '{"a": tru}', "NaN", "{}}", "{} {}", '"unterminated', "\u0000{}"]
        .map((body, i) => ({
          name: `#${i + 1} ${JSON.stringify(body)}`,
          authorization: bearerA,
          body,
          expect: 400,
        })),
    );
    add(
      fn,
      "body: not an object",
      ["null", "true", "0", '"{}"', "[]", "[{}]"].map((body) => ({
        name: body,
        authorization: bearerA,
        body,
        expect: 400,
      })),
    );
    add(
      fn,
      "body: encoding",
      [
        { name: "byte 0xff", body: bytes(0xff), expect: 400 },
        { name: "UTF-8 encoded surrogate", body: bytes(0xed, 0xa0, 0x80), expect: 400 },
        { name: "UTF-16LE with BOM", body: utf16("{}", false, true), expect: 400 },
        {
          name: "gzip, declared",
          body: new Uint8Array(await promisify(gzip)(enc.encode("{}"))),
          headers: { "content-encoding": "gzip" },
          expect: 400,
        },
      ].map((c) => ({ ...c, authorization: bearerA })),
    );
  }

  addCreateBodies(add, p, bearerA);
  addStatusAndQr(add, p, bearerA);
  addDisconnect(add, p, bearerA);
  addWebhook(add, p);
  return out;
}

type Adder = (fn: CorpusFunction, group: string, cases: Omit<BadRequest, "group" | "fn">[]) => void;

/** wpp-create: the panel's `{add_new, force_recreate}` and `integration_id`, and nothing else. */
function addCreateBodies(add: Adder, p: CorpusInput, bearerA: string): void {
  const fn = "wpp-create";
  const invalidJson = [
    "}",
    "{force_recreate: true}",
    '{"force_recreate": True}',
    "undefined",
    '{"force_recreate": true,}',
    "// comment\n{}",
    "/* comment */ {}",
    '{"force_recreate": 01}',
    '{"force_recreate": .5}',
    '{"x": "\\u12"}',
    '{"x": "a\tb"}',
    "{}\u0000",
    "[".repeat(16_000),
  ];
  add(
    fn,
    "body: invalid JSON",
    invalidJson.map((body, i) => ({
      name: `create #${i + 1} ${JSON.stringify(body.slice(0, 30))}`,
      authorization: bearerA,
      body,
      expect: 400,
    })),
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
      fn,
      `body: wrong type for ${key}`,
      wrongValues.map((v) => ({
        name: v,
        authorization: bearerA,
        body: `{"${key}": ${v}}`,
        expect: 400,
      })),
    );
  }
  add(
    fn,
    "body: wrong integration_id",
    ['"not-a-uuid"', "1", "true", "null", "[]", `"${p.integrationA}x"`, `" ${p.integrationA}"`]
      .map((v) => ({
        name: v.slice(0, 40),
        authorization: bearerA,
        body: `{"integration_id": ${v}, "force_recreate": true}`,
        expect: 400,
      })),
  );
  const unknownKeys = [
    { organization_id: p.orgB },
    { organizationId: p.orgB },
    { force: true },
    { FORCE_RECREATE: true },
    { force_recreate: true, extra: 1 },
    { "": 1 },
    { session: "0000000000001" },
    { session_name: p.sessionB },
    { apiKey: "wpk_x" },
    { wppApiKey: "wpk_x" },
    { role: "owner" },
  ];
  add(fn, "body: unknown fields", [
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
      name: "add_new naming a number",
      authorization: bearerA,
      body: JSON.stringify({ add_new: true, integration_id: p.integrationA }),
      expect: 400,
    },
  ]);
  add(
    fn,
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
    fn,
    "body: size",
    [
      { name: "16 KiB exactly (unknown key)", body: padded(USER_BODY_CAP), expect: 400 },
      { name: "64 KiB", body: padded(64 * 1024), expect: 413 },
    ].map((c) => ({ ...c, authorization: bearerA })),
  );

  const bom = bytes(0xef, 0xbb, 0xbf);
  const json = '{"force_recreate":true}';
  add(
    fn,
    "body: encoding",
    [
      { name: "truncated sequence", body: bytes(0xc3, 0x28) },
      { name: "overlong slash", body: bytes(0xc0, 0xaf) },
      { name: "beyond U+10FFFF", body: bytes(0xf4, 0x90, 0x80, 0x80) },
      {
        name: "invalid byte inside a string",
        body: concat(enc.encode('{"force_recreate":"'), bytes(0xff), enc.encode('"}')),
      },
      {
        name: "Latin-1 é",
        body: concat(enc.encode('{"force_recreate":"'), bytes(0xe9), enc.encode('"}')),
      },
      { name: "UTF-16BE with BOM", body: utf16(json, true, true) },
      { name: "UTF-16LE without BOM", body: utf16(json, false, false) },
      { name: "UTF-32LE with BOM", body: utf32le(json) },
      { name: "UTF-8 BOM, wrong type", body: concat(bom, enc.encode('{"force_recreate":"yes"}')) },
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
    ].map((c) => ({ ...c, authorization: bearerA, expect: 400 })),
  );
  add(fn, "header", [
    {
      name: "Idempotency-Key with a space",
      authorization: bearerA,
      headers: { "idempotency-key": "a b" },
      body: "{}",
      expect: 400,
    },
    {
      name: "Idempotency-Key of 256 characters",
      authorization: bearerA,
      headers: { "idempotency-key": "k".repeat(256) },
      body: "{}",
      expect: 400,
    },
    {
      name: "Idempotency-Key beyond ASCII",
      authorization: bearerA,
      headers: { "idempotency-key": "schl\u00fcssel" },
      body: "{}",
      expect: 400,
    },
  ]);
  add(fn, "cross-tenant", [
    {
      name: "admin of A names B in the body",
      authorization: bearerA,
      body: JSON.stringify({ organization_id: p.orgB, force_recreate: true }),
      expect: 400,
    },
    {
      name: "admin of A recreates B's number",
      authorization: bearerA,
      body: JSON.stringify({ integration_id: p.integrationB, force_recreate: true }),
      expect: 404,
    },
    {
      name: "admin of A connects B's number",
      authorization: bearerA,
      body: JSON.stringify({ integration_id: p.integrationB }),
      expect: 404,
    },
    {
      name: "admin of A names a number nobody has",
      authorization: bearerA,
      body: JSON.stringify({ integration_id: crypto.randomUUID(), force_recreate: true }),
      expect: 404,
    },
    {
      name: "member of A forcing a recreate",
      authorization: `Bearer ${p.tokenMember}`,
      body: '{"force_recreate": true}',
      expect: 403,
    },
  ]);
}

/** wpp-status (`{session_name, force}` or the same in the query) and wpp-qr (`{session}`). */
function addStatusAndQr(add: Adder, p: CorpusInput, bearerA: string): void {
  const post = (fn: UserFunction, group: string, bodies: [string, string, number][]) =>
    add(
      fn,
      group,
      bodies.map(([name, body, expect]) => ({ name, authorization: bearerA, body, expect })),
    );
  const get = (fn: UserFunction, group: string, queries: [string, number][]) =>
    add(
      fn,
      group,
      queries.map(([path, expect]) => ({
        name: `GET ${path}`,
        method: "GET",
        path,
        authorization: bearerA,
        expect,
      })),
    );

  post("wpp-status", "body: fields", [
    ["session_name a number", '{"session_name": 1}', 400],
    ["session_name true", '{"session_name": true}', 400],
    ["session_name null", '{"session_name": null}', 400],
    ["session_name an array", `{"session_name": ["${p.sessionA}"]}`, 400],
    ["session_name an object", '{"session_name": {}}', 400],
    ["session_name empty", '{"session_name": ""}', 400],
    ["session_name blank", '{"session_name": "   "}', 400],
    ["session_name of 129 characters", `{"session_name": "${"1".repeat(129)}"}`, 400],
    ["force a string", `{"session_name": "${p.sessionA}", "force": "true"}`, 400],
    ["force 1", `{"session_name": "${p.sessionA}", "force": 1}`, 400],
    ["force null", '{"force": null}', 400],
    ["wpp-qr's key", `{"session": "${p.sessionA}"}`, 400],
    ["organization_id", JSON.stringify({ organization_id: p.orgB }), 400],
    ["integration_id", JSON.stringify({ integration_id: p.integrationB }), 400],
    ["duplicate key, last one wrong", `{"force": true, "force": "x"}`, 400],
  ]);
  post("wpp-status", "cross-tenant", [
    ["B's session", JSON.stringify({ session_name: p.sessionB, force: true }), 404],
    ["B's session, CRM spelling", JSON.stringify({ session_name: `wpp_${p.sessionB}` }), 404],
    ["a session nobody has", JSON.stringify({ session_name: "9999999999999" }), 404],
  ]);
  get("wpp-status", "query", [
    [`?session_name=${p.sessionA}&force=yes`, 400],
    [`?session_name=${p.sessionA}&force=1`, 400],
    [`?session_name=${p.sessionA}&session_name=${p.sessionA}`, 400],
    [`?session_name=${p.sessionA}&session=${p.sessionA}`, 400],
    ["?session_name=", 400],
    [`?session_name=${"1".repeat(129)}`, 400],
    [`?organization_id=${p.orgB}`, 400],
    [`?session_name=${p.sessionB}`, 404],
  ]);

  post("wpp-qr", "body: fields", [
    ["session a number", '{"session": 1}', 400],
    ["session null", '{"session": null}', 400],
    ["session an array", `{"session": ["${p.sessionA}"]}`, 400],
    ["session empty", '{"session": ""}', 400],
    ["session of 129 characters", `{"session": "${"1".repeat(129)}"}`, 400],
    ["wpp-status's key", `{"session_name": "${p.sessionA}"}`, 400],
    ["force", `{"session": "${p.sessionA}", "force": true}`, 400],
    ["organization_id", JSON.stringify({ organization_id: p.orgB }), 400],
  ]);
  post("wpp-qr", "cross-tenant", [
    ["B's session", JSON.stringify({ session: p.sessionB }), 404],
    ["a session nobody has", JSON.stringify({ session: "9999999999999" }), 404],
  ]);
  get("wpp-qr", "query", [
    ["?session=", 400],
    [`?session=${p.sessionA}&session=${p.sessionA}`, 400],
    [`?session=${p.sessionA}&force=true`, 400],
    [`?session_name=${p.sessionA}`, 400],
    [`?session=${"1".repeat(129)}`, 400],
    [`?session=${p.sessionB}`, 404],
    [`?session=wpp_${p.sessionB}`, 404],
  ]);
}

/** wpp-disconnect: `{integration_id}` of one of the organisation's numbers. */
function addDisconnect(add: Adder, p: CorpusInput, bearerA: string): void {
  const cases: [string, string, number][] = [
    ["no integration_id", "{}", 400],
    ["integration_id not a uuid", '{"integration_id": "not-a-uuid"}', 400],
    ["integration_id a number", '{"integration_id": 1}', 400],
    ["integration_id null", '{"integration_id": null}', 400],
    ["integration_id an array", `{"integration_id": ["${p.integrationA}"]}`, 400],
    ["a session instead", JSON.stringify({ session: p.sessionA }), 400],
    ["an extra field", JSON.stringify({ integration_id: p.integrationA, force: true }), 400],
    [
      "organization_id",
      JSON.stringify({ integration_id: p.integrationA, organization_id: p.orgB }),
      400,
    ],
    ["B's number", JSON.stringify({ integration_id: p.integrationB }), 404],
    ["a number nobody has", JSON.stringify({ integration_id: crypto.randomUUID() }), 404],
  ];
  add(
    "wpp-disconnect",
    "body: fields",
    cases.map(([name, body, expect]) => ({
      name,
      authorization: bearerA,
      body,
      expect,
    })),
  );
}

/**
 * wpp-webhook: no user token, the URL's secret is the credential. An unknown secret is a 404
 * whatever comes with it; A's real secret with a body that is not an event is a 400 or 413.
 */
function addWebhook(add: Adder, p: CorpusInput): void {
  const fn = "wpp-webhook";
  const event = (account: string) =>
    JSON.stringify({ type: "connected", account, timestamp: Date.now() });
  const realPath = `/${encodeURIComponent(p.webhookSecretA)}`;
  const unknown = `/${"A".repeat(43)}`;
  add(fn, "url", [
    { name: "no secret", path: "", body: event(p.sessionA), expect: 404 },
    { name: "a slash only", path: "/", body: event(p.sessionA), expect: 404 },
    { name: "an unknown secret", path: unknown, body: event(p.sessionA), expect: 404 },
    {
      name: "another random secret",
      path: `/${crypto.randomUUID().replaceAll("-", "")}${crypto.randomUUID().replaceAll("-", "")}`,
      body: event(p.sessionB),
      expect: 404,
    },
    { name: "too short", path: "/abc", body: event(p.sessionA), expect: 404 },
    { name: "not base64url", path: `/${"a".repeat(40)}%24`, body: event(p.sessionA), expect: 404 },
    { name: "bad escape", path: "/%ZZ", body: event(p.sessionA), expect: 404 },
    {
      name: "the secret, then more",
      path: `${realPath}/extra`,
      body: event(p.sessionA),
      expect: 404,
    },
    {
      name: "the secret with one character changed",
      path: `/${p.webhookSecretA.slice(0, -1)}${p.webhookSecretA.endsWith("A") ? "B" : "A"}`,
      body: event(p.sessionA),
      expect: 404,
    },
    {
      name: "the CRM's webhook_key style query",
      path: `?key=${encodeURIComponent(p.webhookSecretA)}`,
      body: event(p.sessionA),
      expect: 404,
    },
    {
      name: "a user token instead of a secret",
      path: unknown,
      authorization: `Bearer ${p.tokenA}`,
      body: event(p.sessionA),
      expect: 404,
    },
  ]);
  add(
    fn,
    "method",
    OTHER_METHODS.filter((m) => m !== "POST").map((method) => ({
      name: method,
      method,
      path: realPath,
      body: method === "GET" || method === "HEAD" ? undefined : event(p.sessionA),
      expect: 405,
    })),
  );
  add(
    fn,
    "body",
    [
      { name: "empty", body: "", expect: 400 },
      { name: "invalid JSON", body: "{", expect: 400 },
      { name: "JSON null", body: "null", expect: 400 },
      { name: "an array", body: `[${event(p.sessionA)}]`, expect: 400 },
      { name: "a string", body: '"connected"', expect: 400 },
      { name: "a number", body: "1", expect: 400 },
      { name: "account an object", body: '{"type": "connected", "account": {}}', expect: 400 },
      { name: "account a boolean", body: '{"type": "connected", "account": true}', expect: 400 },
      {
        name: "data.account an array",
        body: '{"event": "ready", "data": {"account": []}}',
        expect: 400,
      },
      { name: "byte 0xff", body: bytes(0xff), expect: 400 },
      {
        name: "UTF-16LE with BOM",
        body: utf16(event(p.sessionA), false, true),
        expect: 400,
      },
      { name: "64 KiB + 1", body: padded(WEBHOOK_BODY_CAP + 1), expect: 413 },
      { name: "1 MiB streamed, no length given", body: streamOf(1024 * 1024), expect: 413 },
    ].map((c) => ({ ...c, path: realPath })),
  );
}
