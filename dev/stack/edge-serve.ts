// Runs one edge function (the path in Deno.args[0]) on the address in DENO_SERVE_ADDRESS.
//
// Supabase's edge runtime decides where a function's `Deno.serve` listens, whatever the function
// asks for. Deno 2.1.4, the version that runtime is built on, does not read DENO_SERVE_ADDRESS
// yet (it would listen on 0.0.0.0:8000), so this module sets the address before the function's
// own modules load. It has no imports, so the function's deno.json alone decides its dependencies.
type Handler = Deno.ServeHandler<Deno.NetAddr>;
type Options = Deno.ServeTcpOptions & { handler?: Handler };

const entry = Deno.args[0];
if (!entry) throw new Error("usage: edge-serve.ts <path of the function's index.ts>");

const address = /^tcp:(.+):(\d+)$/.exec(Deno.env.get("DENO_SERVE_ADDRESS") ?? "");
if (address) {
  const at = { hostname: address[1], port: Number(address[2]) };
  const serve = Deno.serve;
  const onAddress = (first: Handler | Options, second?: Handler) => {
    if (typeof first === "function") return serve({ ...at }, first);
    if (second) return serve({ ...first, ...at }, second);
    return serve({ ...first, ...at } as Options & { handler: Handler });
  };
  Object.defineProperty(Deno, "serve", { value: onAddress, writable: true, configurable: true });
}

await import(new URL(entry, `file://${Deno.cwd()}/`).href);
