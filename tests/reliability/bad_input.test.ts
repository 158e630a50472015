// The bad input corpus, for every function: methods, paths, headers, tokens, bodies, queries,
// sizes, encodings, webhook URLs and cross-tenant attempts. Every request gets a 4xx with a code
// and a message, nothing in the database or on the platform changes, and no secret shows up in an
// answer or a log line. Sent raw (not through the CRM helper): the panel never sends these.
import assert from "node:assert/strict";
import { crmHelper } from "../_support/crm-helper.ts";
import {
  closeDb,
  createOrg,
  createUser,
  functionLogLines,
  sim,
  snapshot,
  sql,
  type TestOrg,
} from "../_support/wpp.ts";
import { mintUserToken, projectKeys, stack } from "../_support/stack.ts";
import { type BadRequest, buildCorpus } from "./_corpus.ts";
import { countBy, test, textTable, waitFor } from "./_helpers.ts";

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
  const res = await fetch(`${stack.url}/functions/v1/${r.fn}${r.path ?? ""}`, {
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
  const stored = await sql<{ token: string | null; secret: string | null }[]>`
    select i.settings ->> 'wppJwtToken' as token, s.webhook_secret as secret
      from public.messenger_integrations i
      left join public.wpp_integration_state s on s.integration_id = i.id`;
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
    ...stored.flatMap((r) => [r.token, r.secret].filter((v): v is string => !!v)),
    ...jwts,
  ].filter((s) => s.length >= 12);
}

async function connected(org: TestOrg): Promise<{ session: string; integrationId: string }> {
  const r = await crmHelper({ token: org.user.token }).post("wpp-create", { add_new: false });
  assert.equal(r.status, 200, JSON.stringify(r.data));
  const session = String(r.data?.session);
  // The platform's QR event must have landed before the snapshot, or it would change the state.
  await waitFor(`the QR event of ${session}`, async () => {
    const d = await sim.deliveries({ session, type: "qr" });
    return d.some((x) => x.attempt > 0) ? true : undefined;
  });
  return { session, integrationId: String(r.data?.integration_id) };
}

test("bad input corpus: every function refuses with a 4xx, writes nothing, leaks nothing", async () => {
  await sim.clearFaults();
  // Two organisations with live sessions, so there is something to steal or to break.
  const a = await createOrg("admin");
  const b = await createOrg("admin");
  const liveA = await connected(a);
  const liveB = await connected(b);
  const [{ secret }] = await sql<{ secret: string }[]>`
    select webhook_secret as secret from public.wpp_integration_state
     where integration_id = ${liveA.integrationId}`;
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
    sessionA: liveA.session,
    sessionB: liveB.session,
    integrationA: liveA.integrationId,
    integrationB: liveB.integrationId,
    webhookSecretA: secret,
  });
  const perFunction = countBy(corpus, (r) => r.fn);
  for (const fn of ["wpp-create", "wpp-status", "wpp-qr", "wpp-disconnect", "wpp-webhook"]) {
    assert.ok((perFunction[fn] ?? 0) >= 25, `${fn}: only ${perFunction[fn] ?? 0} cases`);
  }

  const before = await snapshot();
  const answers: Answer[] = [];
  for (const request of corpus) answers.push(await send(request));
  const after = await snapshot();

  const problems: string[] = [];
  for (const a of answers) {
    const what = `${a.request.fn} / ${a.request.group} / ${a.request.name}`;
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
  const logs: string[] = [];
  for (const fn of Object.keys(perFunction)) logs.push(...await functionLogLines(fn));
  const haystacks = [
    ...answers.map((a) => ({
      where: `answer of ${a.request.fn} to ${a.request.name}`,
      text: `${a.headers}\n${a.text}`,
    })),
    ...logs.map((line, i) => ({ where: `function log line ${i}`, text: line })),
  ];
  const known = await secrets(sent);
  assert.ok(known.includes(secret), "the webhook secret is among the secrets scanned for");
  for (const s of known) {
    for (const h of haystacks) {
      if (h.text.includes(s)) problems.push(`${h.where} contains a secret (${s.slice(0, 6)}…)`);
    }
  }
  for (const h of haystacks) {
    if (/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}/.test(h.text)) {
      problems.push(`${h.where}: a JWT`);
    }
  }

  const groups = [...new Set(answers.map((a) => `${a.request.fn} / ${a.request.group}`))];
  console.log(textTable(
    ["function / group", "requests", "answers"],
    groups.map((g) => {
      const mine = answers.filter((a) => `${a.request.fn} / ${a.request.group}` === g);
      const statuses = countBy(mine, (a) => a.status);
      return [
        g,
        String(mine.length),
        Object.entries(statuses).map(([s, c]) => `${s}×${c}`).join(" "),
      ];
    }),
  ));
  console.log(
    `${answers.length} requests (${JSON.stringify(perFunction)}), ${logs.length} log lines ` +
      `scanned for ${known.length} secrets; codes: ${
        JSON.stringify(countBy(answers, (a) => String(a.json.code)))
      }`,
  );
  assert.deepEqual(problems, []);
});

test("bad input: clean up", async () => {
  await closeDb();
});
