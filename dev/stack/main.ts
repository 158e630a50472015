// `deno task start`: runs the whole local stack in the foreground until Ctrl-C.
import { loadStackEnv } from "./config.ts";
import { startStack } from "./stack.ts";
import { DEMO_USERS } from "./demo-users.ts";
import { mintUserToken } from "./keys.ts";
import { demoPageRoutes } from "./demo-page.ts";

const args = new Set(Deno.args);
const t0 = performance.now();
const env = loadStackEnv();

if (args.has("--reset")) {
  await Deno.remove(env.STACK_DATA_DIR, { recursive: true }).catch(() => {});
  console.log(`reset: removed ${env.STACK_DATA_DIR}`);
}

const stack = await startStack({
  dataDir: env.STACK_DATA_DIR,
  ports: {
    gateway: env.API_PORT,
    db: env.DB_PORT,
    postgrest: env.POSTGREST_PORT,
    postgrestAdmin: env.POSTGREST_ADMIN_PORT,
    simulator: env.WPP_SIM_PORT,
    auth: env.AUTH_PORT,
  },
  ephemeral: false,
  jwtSecret: env.JWT_SECRET,
  signing: env.AUTH_SIGNING,
  externalDbUrl: env.DB_URL,
  dbPassword: env.DB_PASSWORD,
  envFile: env.FUNCTIONS_ENV_FILE,
  simulator: env.WPP_SIMULATOR === "on",
  functionInstances: env.FUNCTION_INSTANCES,
  extraRoutes: demoPageRoutes,
  echo: args.has("--verbose"),
  log: (l) => console.log(l),
}).catch((e) => {
  // A plain message, not a stack trace: what failed and what to do about it.
  console.error(`\nthe stack could not start: ${(e as Error).message}`);
  Deno.exit(1);
});

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping every process of the stack...`);
  await stack.stop();
  console.log("stopped.");
  Deno.exit(0);
};
// A service that is gone for good (PostgreSQL, or one out of restarts) ends the stack.
stack.failure.then((reason) => {
  if (stopping) return;
  stopping = true;
  console.error(`\nthe stack stopped: ${reason}`);
  Deno.exit(1);
});
Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));

const tokens = await Promise.all(
  DEMO_USERS.map(async (u) => ({
    ...u,
    token: await mintUserToken(stack.keys, {
      sub: u.id,
      email: u.email,
      expiresInSeconds: 24 * 3600,
    }),
  })),
);
const admin = tokens.find((t) => t.key === "admin")!;

const lines = [
  "",
  "wpp-connect local stack is running",
  `  API gateway      ${stack.url}`,
  `  REST             ${stack.restUrl}`,
  ...stack.functions.map((f) => `  function         ${stack.url}/functions/v1/${f.name}`),
  `  Auth             ${stack.url}/auth/v1  (password sign-in; JWKS at /.well-known/jwks.json)`,
  `  demo page        ${stack.url}/demo/  («Подключить WhatsApp»)`,
  `  DB URL           ${stack.dbUrl}  (${stack.migrator}, not a superuser)`,
  `  superuser        ${stack.superuserUrl}`,
  `  WPP simulator    ${stack.simulatorUrl ?? "off (WPP_BASE_URL from the env file)"}`,
  "",
  `  anon key         ${stack.keys.anonKey}`,
  `  service_role key ${stack.keys.serviceRoleKey}`,
  `  demo users sign in with the password demo-password (supabase.auth.signInWithPassword);`,
  `  user tokens are signed with ${stack.keys.signing.toUpperCase()}; valid 24 h:`,
  ...tokens.map((t) => `    ${t.email.padEnd(20)} (${t.role ?? "no organisation"}) ${t.token}`),
  "",
  ...callExamples(new Set(stack.functions.map((f) => f.name)), admin.token),
  "",
  `  ready in ${Math.round(performance.now() - t0)} ms ` +
  `(${Object.entries(stack.timings).map(([k, v]) => `${k} ${v} ms`).join(", ")})`,
  "  Ctrl-C stops everything.",
];
console.log(lines.join("\n"));

// Only calls that work as pasted get a curl line; the others say what they need instead.
function callExamples(names: Set<string>, adminToken: string): string[] {
  const curl = (name: string) => [
    `  # ${name} as admin@demo.local:`,
    `  curl -sS -X POST '${stack.url}/functions/v1/${name}' \\`,
    `    -H 'apikey: ${stack.keys.anonKey}' \\`,
    `    -H 'Authorization: Bearer ${adminToken}' \\`,
    `    -H 'Content-Type: application/json' -d '{}'`,
  ];
  const notes: Record<string, string> = {
    "wpp-disconnect":
      `  # wpp-disconnect: the same headers and -d '{"integration_id": "<integration_id from the answers above>"}'`,
    "wpp-webhook":
      "  # wpp-webhook: called by the platform at /functions/v1/wpp-webhook/<the integration's secret>, no JWT",
  };
  return [...names].flatMap((name) => notes[name] ? [notes[name]] : curl(name));
}
