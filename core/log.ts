/**
 * Structured logs: one line per event with level, role, event name and
 * fields, as text or JSON. Never one line per data packet.
 *
 * Two guards keep a peer from choosing how many lines we write:
 * {@link Logger.limited} writes an event at most once per interval for a
 * key (say the event and the peer), and every event name has a budget of
 * lines per window (`burst` per `windowMs`, 100 per 10 s by default) past
 * which its lines are counted instead of written; one `log-suppressed`
 * line then says how many were dropped. Trace lines (`debug` 2 and 3)
 * have no budget: who asks for them asks for everything.
 *
 * Logging never throws: a sink that fails (a full disk, a closed stderr)
 * loses the line.
 *
 * @module
 */

/** Severity, most severe first. */
export type Level = "error" | "warn" | "info" | "debug" | "trace";

const RANK: Readonly<Record<Level, number>> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

/**
 * The most verbose level shown for OOR's `debug` 0..3: 0 info (errors,
 * warnings and one line per event), 1 debug, 2 and 3 trace. OOR's level 3
 * added a line per data packet; oor never writes one, so 3 is 2.
 */
export function levelForDebug(debug: number): Level {
  return debug <= 0 ? "info" : debug === 1 ? "debug" : "trace";
}

/** Field values a log line can carry. */
export type Fields = Readonly<Record<string, string | number | boolean | bigint | undefined>>;

/** Where lines go and how they look. */
export interface LogSink {
  /** Writes one finished line (with its newline). */
  write(line: string): void;
  /** Releases what the sink holds (a file); called once by {@link Logger.close}. */
  close?(): void;
}

/** Options of a {@link Logger}. */
export interface LoggerOptions {
  /** The role, on every line. */
  readonly role: string;
  /** Most verbose level written. */
  readonly level?: Level;
  /** `text` (default) or `json`. */
  readonly format?: "text" | "json";
  /** Where lines go (default standard error). */
  readonly sink?: LogSink;
  /** Clock for timestamps and limits, in milliseconds. */
  readonly now?: () => number;
  /** Lines of one event written per window (not trace); default 100. */
  readonly burst?: number;
  /** The window of `burst`, in milliseconds; default 10,000. */
  readonly windowMs?: number;
}

/** The keys every JSON line starts with; a field of the same name is written with a `_` suffix. */
const CORE_KEYS: ReadonlySet<string> = new Set(["ts", "level", "role", "event"]);

/** Most keys {@link Logger.limited} remembers before it forgets the stale ones. */
const LIMITED_KEYS = 10_000;

function quote(v: string): string {
  return /^[\w.:/\[\]@+-]+$/.test(v) ? v : JSON.stringify(v);
}

/** A sink writing to standard error, synchronously. */
function stderrSink(): LogSink {
  const enc = new TextEncoder();
  return {
    write: (line) => {
      const b = enc.encode(line);
      let off = 0;
      while (off < b.length) off += Deno.stderr.writeSync(b.subarray(off));
    },
  };
}

/**
 * A sink appending to `path` (created if missing, mode 0640), written
 * synchronously so that a line is in the file when the call returns.
 * Throws if the file cannot be opened.
 */
export function fileSink(path: string): LogSink {
  const file = Deno.openSync(path, { append: true, create: true, mode: 0o640 });
  const enc = new TextEncoder();
  let open = true;
  return {
    write: (line) => {
      if (!open) return;
      const b = enc.encode(line);
      let off = 0;
      while (off < b.length) off += file.writeSync(b.subarray(off));
    },
    close: () => {
      if (!open) return;
      open = false;
      file.close();
    },
  };
}

/** Per-event line budget of the current window. */
interface Budget {
  start: number;
  written: number;
  suppressed: number;
  /** Most severe level among the suppressed lines. */
  level: Level;
}

/** A structured logger for one role. */
export class Logger {
  readonly #role: string;
  readonly #level: number;
  readonly #format: "text" | "json";
  readonly #sink: LogSink;
  readonly #now: () => number;
  readonly #burst: number;
  readonly #windowMs: number;
  /** `limited()` keys: when the key may write again, and lines held back since. */
  readonly #limited = new Map<string, { until: number; held: number }>();
  readonly #budgets = new Map<string, Budget>();
  /** Events with suppressed lines not yet reported. */
  readonly #pending = new Set<string>();
  #failed = 0;
  #closed = false;

  /** A logger writing lines for `opts.role`. */
  constructor(opts: LoggerOptions) {
    this.#role = opts.role;
    this.#level = RANK[opts.level ?? "info"];
    this.#format = opts.format ?? "text";
    this.#sink = opts.sink ?? stderrSink();
    this.#now = opts.now ?? Date.now;
    this.#burst = opts.burst ?? 100;
    this.#windowMs = opts.windowMs ?? 10_000;
  }

  /** Whether lines of `level` are written. */
  enabled(level: Level): boolean {
    return RANK[level] <= this.#level;
  }

  /** Lines the sink failed to write (they are lost, not retried). */
  get failedWrites(): number {
    return this.#failed;
  }

  /** Writes one event (unless its level is off or its event is over budget). */
  log(level: Level, event: string, fields: Fields = {}): void {
    if (!this.enabled(level) || this.#closed) return;
    const now = this.#now();
    if (this.#pending.size > 0) this.#reportSuppressed(now, false);
    if (level !== "trace" && !this.#spend(level, event, now)) return;
    this.#write(now, level, event, fields);
  }

  /** Takes a line from `event`'s budget; false when it is spent for this window. */
  #spend(level: Level, event: string, now: number): boolean {
    let b = this.#budgets.get(event);
    if (b === undefined || now - b.start >= this.#windowMs) {
      // Suppressed lines of the window that ended were reported by log().
      b = { start: now, written: 0, suppressed: 0, level };
      this.#budgets.set(event, b);
    }
    if (b.written < this.#burst) {
      b.written++;
      return true;
    }
    if (b.suppressed === 0 || RANK[level] < RANK[b.level]) b.level = level;
    b.suppressed++;
    this.#pending.add(event);
    return false;
  }

  /** Writes a `log-suppressed` line for each event whose window ended (all with `all`). */
  #reportSuppressed(now: number, all: boolean): void {
    for (const event of this.#pending) {
      const b = this.#budgets.get(event);
      if (b === undefined || b.suppressed === 0) {
        this.#pending.delete(event);
        continue;
      }
      if (!all && now - b.start < this.#windowMs) continue;
      this.#pending.delete(event);
      this.#write(now, b.level, "log-suppressed", {
        of: event,
        lines: b.suppressed,
        seconds: Math.max(1, Math.round((now - b.start) / 1000)),
      });
      b.suppressed = 0;
    }
  }

  #write(now: number, level: Level, event: string, fields: Fields): void {
    let line: string;
    const ts = new Date(now).toISOString();
    if (this.#format === "json") {
      const o: Record<string, unknown> = { ts, level, role: this.#role, event };
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        o[CORE_KEYS.has(k) ? `${k}_` : k] = typeof v === "bigint" ? `0x${v.toString(16)}` : v;
      }
      line = JSON.stringify(o) + "\n";
    } else {
      line = `${ts} ${level.padEnd(5)} ${this.#role} ${event}`;
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        const text = typeof v === "bigint" ? `0x${v.toString(16)}` : String(v);
        line += ` ${k}=${quote(text)}`;
      }
      line += "\n";
    }
    try {
      this.#sink.write(line);
    } catch {
      this.#failed++;
    }
  }

  /** Logs at error level. */
  error(event: string, fields?: Fields): void {
    this.log("error", event, fields);
  }
  /** Logs at warn level. */
  warn(event: string, fields?: Fields): void {
    this.log("warn", event, fields);
  }
  /** Logs at info level. */
  info(event: string, fields?: Fields): void {
    this.log("info", event, fields);
  }
  /** Logs at debug level (`debug` 1 and up). */
  debug(event: string, fields?: Fields): void {
    this.log("debug", event, fields);
  }
  /** Logs at trace level (`debug` 2 and up). */
  trace(event: string, fields?: Fields): void {
    this.log("trace", event, fields);
  }

  /**
   * Logs `event` at most once per `intervalMs` for each `key` (for example
   * the event and the peer), so a misbehaving peer cannot flood the log.
   * A line written after some were held back carries `suppressed=N`.
   * Returns whether the line was written.
   */
  limited(
    key: string,
    intervalMs: number,
    level: Level,
    event: string,
    fields?: Fields,
  ): boolean {
    if (!this.enabled(level) || this.#closed) return false;
    const now = this.#now();
    const k = this.#limited.get(key);
    if (k !== undefined && now < k.until) {
      k.held++;
      return false;
    }
    if (k === undefined && this.#limited.size >= LIMITED_KEYS) this.#forget(now);
    this.#limited.set(key, { until: now + intervalMs, held: 0 });
    const held = k?.held ?? 0;
    this.log(level, event, held > 0 ? { ...fields, suppressed: held } : fields);
    return true;
  }

  /** Drops `limited()` keys whose interval is over; all of them if none is. */
  #forget(now: number): void {
    for (const [key, k] of this.#limited) if (now >= k.until) this.#limited.delete(key);
    if (this.#limited.size >= LIMITED_KEYS) this.#limited.clear();
  }

  /** Writes the `log-suppressed` lines of every event now, ended window or not. */
  flush(): void {
    if (!this.#closed && this.#pending.size > 0) this.#reportSuppressed(this.#now(), true);
  }

  /**
   * Reports the lines still held back by the budget, then closes the sink
   * (a log file). Later calls write nothing. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#reportSuppressed(this.#now(), true);
    this.#closed = true;
    try {
      this.#sink.close?.();
    } catch {
      this.#failed++;
    }
  }
}
