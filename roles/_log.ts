/**
 * Structured logs: one line per event with level, role, event name and
 * fields, as text or JSON. Never one line per data packet; repeated events
 * from one peer can be limited with {@link Logger.limited}.
 *
 * @module
 */

/** Severity, most severe first. */
export type Level = "error" | "warn" | "info" | "debug" | "trace";

const RANK: Readonly<Record<Level, number>> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

/** The most verbose level shown for OOR's `debug` 0..3. */
export function levelForDebug(debug: number): Level {
  return debug <= 0 ? "info" : debug === 1 ? "debug" : "trace";
}

/** Field values a log line can carry. */
export type Fields = Readonly<Record<string, string | number | boolean | bigint | undefined>>;

/** Where lines go and how they look. */
export interface LogSink {
  /** Writes one finished line (with its newline). */
  write(line: string): void;
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
}

function quote(v: string): string {
  return /^[\w.:/\[\]@+-]+$/.test(v) ? v : JSON.stringify(v);
}

/** A structured logger for one role. */
export class Logger {
  readonly #role: string;
  readonly #level: number;
  readonly #format: "text" | "json";
  readonly #sink: LogSink;
  readonly #now: () => number;
  readonly #last = new Map<string, number>();

  /** A logger writing lines for `opts.role`. */
  constructor(opts: LoggerOptions) {
    this.#role = opts.role;
    this.#level = RANK[opts.level ?? "info"];
    this.#format = opts.format ?? "text";
    this.#sink = opts.sink ?? {
      write: (line) => {
        const b = new TextEncoder().encode(line);
        let off = 0;
        while (off < b.length) off += Deno.stderr.writeSync(b.subarray(off));
      },
    };
    this.#now = opts.now ?? Date.now;
  }

  /** Whether lines of `level` are written. */
  enabled(level: Level): boolean {
    return RANK[level] <= this.#level;
  }

  /** Writes one event. */
  log(level: Level, event: string, fields: Fields = {}): void {
    if (!this.enabled(level)) return;
    const ts = new Date(this.#now()).toISOString();
    if (this.#format === "json") {
      const o: Record<string, unknown> = { ts, level, role: this.#role, event };
      for (const [k, v] of Object.entries(fields)) {
        if (v !== undefined) o[k] = typeof v === "bigint" ? `0x${v.toString(16)}` : v;
      }
      this.#sink.write(JSON.stringify(o) + "\n");
      return;
    }
    let line = `${ts} ${level.padEnd(5)} ${this.#role} ${event}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const text = typeof v === "bigint" ? `0x${v.toString(16)}` : String(v);
      line += ` ${k}=${quote(text)}`;
    }
    this.#sink.write(line + "\n");
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
  /** Logs at debug level. */
  debug(event: string, fields?: Fields): void {
    this.log("debug", event, fields);
  }

  /**
   * Logs `event` at most once per `intervalMs` for each `key` (for example
   * the event and the peer), so a misbehaving peer cannot flood the log.
   * Returns whether the line was written.
   */
  limited(
    key: string,
    intervalMs: number,
    level: Level,
    event: string,
    fields?: Fields,
  ): boolean {
    const now = this.#now();
    const last = this.#last.get(key);
    if (last !== undefined && now - last < intervalMs) return false;
    if (this.#last.size > 10_000) this.#last.clear();
    this.#last.set(key, now);
    this.log(level, event, fields);
    return true;
  }
}
