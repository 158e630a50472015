// The bad input corpus: methods, paths, headers, tokens, bodies, sizes, encodings and
// cross-tenant attempts. Every request gets a 4xx with a code and a message, nothing in the
// database or on the platform changes, and no secret shows up in an answer or a log line.
import assert from "node:assert/strict";
import {
  callFunction,
  closeDb,
  createOrg,
  createUser,
  functionLogLines,
  sim,
  snapshot,
  sql,
} from "../_support/wpp.ts";
import { mintUserToken, projectKeys, stack } from "../_support/stack.ts";
import { type BadRequest, buildCorpus } from "./_corpus.ts";
import { countBy, test, textTable } from "./_helpers.ts";

interface Answer {
  request: BadRequest;
  status: number;
  text: string;
  headers: string;
  json: Record<string, unknown>;
}

async function send(r: BadRequest): Promise<Answer> {
  const headers = new Headers({ "content-type": "application/json", ...r.headers });
  if (r.authorization !== undefined) headers.set("authorization", r.authorization);
  const body = typeof r.body === "function" ? r.body() : r.body;
  const res = await fetch(`${stack.url}/functions/v1/wpp-create${r.path ?? ""}`, {
    method: r.method ?? "POST",
    headers,
    body,
    ...(typeof r.body === "function" ? { duplex: "half" } : {}),
  } as RequestInit);
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch { /* checked below */ }
  return { request: r, status: res.status, text, headers: [...res.headers].join("\n"), json };
}

/** Every credential the stack and the platform hold, plus every JWT this test sent. */
async function secrets(sent: string[]): Promise<string[]> {
  const state = await sim.state({ reveal: true });
  const stored = await sql<{ token: string | null }[]>`
    select settings ->> 'wppJwtToken' as token from public.messenger_integrations`;
  const jwts = sent.flatMap((t) => {
    const parts = t.split(".");
    return parts.length === 3 && parts[2].length >= 16 ? [t, parts[2]] : [];
  });
  return [
    stack.simulatorSecret,
    stack.serviceRoleKey,
    stack.jwtSecret,
    ...state.sessions.map((s) => s.apiKey),
    ...state.tokens.map((t) => t.token),
    ...stored.flatMap((r) => (r.token ? [r.token] : [])),
    ...jwts,
  ].filter((s) => s.length >= 12);
}

test("bad input corpus: every request refused with a 4xx, nothing written, nothing leaked", async () => {
  await sim.clearFaults();
  // Two organisations with live sessions, so there is something to steal or to break.
  const a = await createOrg("admin");
  const b = await createOrg("admin");
  for (const org of [a, b]) assert.equal((await callFunction(org.user.token)).status, 200);
  const member = await a.addUser("member");
  const loner = await createUser(null, "member");
  const corpus = await buildCorpus({
    adminA: a.user.userId,
    adminB: b.user.userId,
    tokenA: a.user.token,
    es256Kid: String((await projectKeys()).es256PrivateJwk.kid),
    orgB: b.orgId,
    tokenLoner: loner.token,
    tokenMember: member.token,
    tokenLonerClaimingB: await mintUserToken(loner.userId, {
      claims: {
        organization_id: b.orgId,
        app_metadata: { organization_id: b.orgId, role: "owner" },
      },
    }),
    tokenMemberClaimingOwner: await mintUserToken(member.userId, {
      claims: { user_role: "owner", app_metadata: { role: "owner" } },
    }),
  });
  assert.ok(corpus.length >= 150, `only ${corpus.length} cases`);

  const before = await snapshot();
  const answers: Answer[] = [];
  for (const request of corpus) answers.push(await send(request));
  const after = await snapshot();

  const problems: string[] = [];
  for (const a of answers) {
    const what = `${a.request.group} / ${a.request.name}`;
    if (a.status !== a.request.expect) {
      problems.push(
        `${what}: HTTP ${a.status}, expected ${a.request.expect}: ${a.text.slice(0, 200)}`,
      );
    }
    if (a.status < 400 || a.status >= 500) problems.push(`${what}: not a 4xx`);
    if (a.request.method === "HEAD") continue;
    if (typeof a.json.error !== "string" || a.json.error.trim() === "") {
      problems.push(`${what}: no error message`);
    }
    if (typeof a.json.code !== "string" || a.json.code === "") problems.push(`${what}: no code`);
  }
  assert.equal(after, before, "the corpus changed the database or called the platform");

  const sent = corpus.flatMap((
    r,
  ) => (r.authorization ? [r.authorization.replace(/^\S+\s*/, "")] : []));
  const haystacks = [
    ...answers.map((a) => ({
      where: `answer to ${a.request.name}`,
      text: `${a.headers}\n${a.text}`,
    })),
    ...(await functionLogLines()).map((line, i) => ({
      where: `function log line ${i}`,
      text: line,
    })),
  ];
  for (const secret of await secrets(sent)) {
    for (const h of haystacks) {
      if (h.text.includes(secret)) {
        problems.push(`${h.where} contains a secret (${secret.slice(0, 6)}…)`);
      }
    }
  }
  for (const h of haystacks) {
    if (/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}/.test(h.text)) {
      problems.push(`${h.where}: a JWT`);
    }
  }

  const byGroup = Object.entries(countBy(answers, (a) => a.request.group)).map(([group, n]) => {
    const statuses = countBy(answers.filter((a) => a.request.group === group), (a) => a.status);
    return [group, String(n), Object.entries(statuses).map(([s, c]) => `${s}×${c}`).join(" ")];
  });
  console.log(textTable(["group", "requests", "answers"], byGroup));
  console.log(
    `${answers.length} requests, codes: ${
      JSON.stringify(countBy(answers, (a) => String(a.json.code)))
    }`,
  );
  assert.deepEqual(problems, []);
});

test("bad input: clean up", async () => {
  await closeDb();
});
