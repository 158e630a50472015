// One JSON line per request: who, what happened, and where the time went. Only ids, codes and
// durations are recorded here, never a key, a token or a body, so nothing secret can leak by it.

export interface TimedCall {
  op: string;
  ms: number;
  ok: boolean;
  status?: number;
  attempt?: number;
}

export class RequestLog {
  readonly startedAt = performance.now();
  readonly platform: TimedCall[] = [];
  readonly db: TimedCall[] = [];
  fields: Record<string, unknown> = {};

  constructor(readonly requestId: string, readonly fn: string, readonly method: string) {}

  onPlatformCall = (e: TimedCall): void => {
    this.platform.push({
      op: e.op,
      ms: round(e.ms),
      ok: e.ok,
      status: e.status,
      attempt: e.attempt,
    });
  };

  onDbCall = (op: string, ms: number, ok: boolean): void => {
    this.db.push({ op, ms: round(ms), ok });
  };

  set(fields: Record<string, unknown>): void {
    Object.assign(this.fields, fields);
  }

  line(status: number): Record<string, unknown> {
    const total = performance.now() - this.startedAt;
    const platformMs = this.platform.reduce((s, c) => s + c.ms, 0);
    const dbMs = this.db.reduce((s, c) => s + c.ms, 0);
    return {
      level: status >= 500 ? "error" : status >= 400 ? "warn" : "info",
      fn: this.fn,
      request_id: this.requestId,
      method: this.method,
      status,
      ...this.fields,
      ms: round(total),
      platform_ms: round(platformMs),
      db_ms: round(dbMs),
      own_ms: round(total - platformMs - dbMs),
      platform_calls: this.platform,
      db_calls: this.db,
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
