import { createAdmin } from "./admin.ts";
import { CallCounter } from "./calls.ts";
import { EventFaultBook } from "./event-faults.ts";
import { FaultBook } from "./faults.ts";
import { TcpFront } from "./front.ts";
import { newSecret } from "./ids.ts";
import { createPipeline } from "./pipeline.ts";
import { PlatformState } from "./platform-state.ts";
import type { Variants } from "./types.ts";
import { DEFAULT_VARIANTS } from "./variants.ts";
import { WebhookDispatcher } from "./webhooks.ts";

export interface SimulatorOptions {
  /** 0 picks a free port. */
  port?: number;
  hostname?: string;
  /** The WPP_SECRET create accepts; random when not given (read it back from the result). */
  secret?: string;
  tokenTtlSeconds?: number;
  /** true: one JSON line per call and per webhook delivery on stdout; a function gets them instead. */
  log?: boolean | ((line: Record<string, unknown>) => void);
  /** When set, QRs on show are replaced this often, as WhatsApp does. */
  qrRotateMs?: number;
}

/** Live, in-process access to everything the admin API exposes. */
export interface SimulatorState {
  platform: PlatformState;
  faults: FaultBook;
  calls: CallCounter;
  webhooks: WebhookDispatcher;
  eventFaults: EventFaultBook;
  variants: { current: Variants };
  log: (line: Record<string, unknown>) => void;
}

export interface RunningSimulator {
  url: string;
  port: number;
  secret: string;
  state: SimulatorState;
  /** Stops listening, drops open connections, waits for everything in flight to settle. */
  close(): Promise<void>;
}

const DEFAULT_TOKEN_TTL_SECONDS = 15 * 60;

export function startSimulator(opts: SimulatorOptions = {}): Promise<RunningSimulator> {
  try {
    return Promise.resolve(start(opts));
  } catch (e) {
    return Promise.reject(e);
  }
}

function start(opts: SimulatorOptions): RunningSimulator {
  const hostname = opts.hostname ?? "127.0.0.1";
  const secret = opts.secret ?? newSecret();
  const tokenTtlSeconds = opts.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  const log = typeof opts.log === "function"
    ? opts.log
    : opts.log
    ? (line: Record<string, unknown>) => console.log(JSON.stringify(line))
    : () => {};

  const closing = new AbortController();
  const variants = { current: { ...DEFAULT_VARIANTS } };
  const eventFaults = new EventFaultBook();
  const webhooks = new WebhookDispatcher({
    log,
    variants: () => variants.current,
    faults: eventFaults,
  });
  const platform = new PlatformState((session, event) => {
    if (session.webhookUrl) webhooks.emit(session.webhookUrl, event);
  });
  const state: SimulatorState = {
    platform,
    faults: new FaultBook(),
    calls: new CallCounter(),
    webhooks,
    eventFaults,
    variants,
    log,
  };

  let front: TcpFront | undefined;
  const inner = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createPipeline({
      platform,
      faults: state.faults,
      calls: state.calls,
      variants: () => state.variants.current,
      secret,
      tokenTtlSeconds,
      closing: closing.signal,
      connectionOf: (port) => front?.connectionOf(port),
      admin: createAdmin(state),
      log,
    }),
  );
  try {
    front = new TcpFront(hostname, opts.port ?? 0, inner.addr.port);
  } catch (e) {
    void inner.shutdown();
    throw e;
  }
  const rotation = opts.qrRotateMs && opts.qrRotateMs > 0
    ? setInterval(() => platform.rotateQrs(), opts.qrRotateMs)
    : undefined;

  const listening = front;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${urlHost(hostname)}:${listening.port}`,
    port: listening.port,
    secret,
    state,
    close: () => {
      closed ??= (async () => {
        closing.abort();
        if (rotation !== undefined) clearInterval(rotation);
        await listening.close();
        await inner.shutdown();
        await webhooks.close();
      })();
      return closed;
    },
  };
}

function urlHost(hostname: string): string {
  if (hostname === "0.0.0.0") return "127.0.0.1";
  if (hostname === "::") return "[::1]";
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}
