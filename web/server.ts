/**
 * The API's listener: HTTP/1.1 served on connections accepted one by one
 * from `Deno.listen`, so that no client can take the role down with it.
 *
 * - At most {@link ApiLimits.maxConnections} connections are served at
 *   once; one more is accepted, answered 503 and closed at once, so the
 *   listen backlog keeps draining and a flood holds a bounded number of
 *   file descriptors.
 * - A connection that sends nothing for {@link ApiLimits.idleTimeoutMs}
 *   (before its first request, or between two) is closed; a request whose
 *   head and body have not all arrived {@link ApiLimits.requestTimeoutMs}
 *   after its first byte is answered 408 and closed (a client that sends a
 *   byte at a time gains nothing); an answer the client has not read
 *   within the same time is dropped with its connection.
 * - An error from `accept()` (EMFILE, ENFILE, ENOBUFS...) is logged (once
 *   per 10 s) and accepting resumes after a pause that doubles up to 1 s:
 *   the role keeps running, and so do its control and data sockets.
 * - {@link ApiServer.close} stops accepting, closes idle connections,
 *   lets requests in flight finish for a grace time, then closes every
 *   connection, whatever the clients do.
 *
 * Requests are read and answered in order on each connection (pipelining
 * works, one at a time); bodies are framed by Content-Length or chunked,
 * up to {@link ApiLimits.maxBodyBytes}; answers carry a Content-Length. The
 * parsing is web/_http1.ts.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import {
  concat,
  errorResponse,
  headEnd,
  HttpError,
  parseHead,
  readChunked,
  readExactly,
  type RequestHead,
  responseHead,
  skipLeadingEmptyLines,
} from "./_http1.ts";

/** How a connection may use the server. */
export interface ApiLimits {
  /** Connections served at once (`[api] max-connections`, default 64). */
  readonly maxConnections: number;
  /** Time a connection may stay silent before or between requests, ms (`idle-timeout`). */
  readonly idleTimeoutMs: number;
  /**
   * Time to receive a whole request from its first byte, and to send its
   * answer, ms (`request-timeout`).
   */
  readonly requestTimeoutMs: number;
  /** Largest request head (request line and headers), bytes. */
  readonly maxHeadBytes: number;
  /** Largest request body, bytes. */
  readonly maxBodyBytes: number;
}

/** The limits a role runs with unless `[api]` says otherwise. */
export const DEFAULT_API_LIMITS: ApiLimits = {
  maxConnections: 64,
  idleTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  maxHeadBytes: 16 * 1024,
  maxBodyBytes: 64 * 1024,
};

/** What {@link ApiServer.close} gives requests in flight before closing their connections, ms. */
export const STOP_GRACE_MS = 1_000;

/** Where to listen. */
export interface ApiListen {
  /** Address to bind (`127.0.0.1` unless the config says otherwise). */
  readonly host: string;
  /** TCP port; 0 picks a free one (tests). */
  readonly port: number;
  /** Stops the server when aborted, like {@link ApiServer.close}. */
  readonly signal?: AbortSignal;
  /** Connection cap, timeouts and sizes; {@link DEFAULT_API_LIMITS} for what is left out. */
  readonly limits?: Partial<ApiLimits>;
  /** Where refused connections, accept errors and internal errors are logged (rate-limited). */
  readonly logger?: Logger;
}

/** Counts since the server started, for tests and the log. */
export interface ApiServerStats {
  /** Connections being served now. */
  readonly open: number;
  /** Connections accepted and served. */
  readonly accepted: number;
  /** Connections answered 503 because {@link ApiLimits.maxConnections} were open. */
  readonly refused: number;
  /** Connections closed by a timeout (idle, request or answer). */
  readonly timedOut: number;
  /** Errors `accept()` returned. */
  readonly acceptErrors: number;
  /** Requests answered. */
  readonly requests: number;
}

/** A listening API server. */
export interface ApiServer {
  /** The bound port. */
  readonly port: number;
  /** The bound address. */
  readonly host: string;
  /** `http://host:port/` (IPv6 in brackets). */
  readonly url: string;
  /** Counts of connections and requests. */
  stats(): ApiServerStats;
  /**
   * Stops accepting, closes idle connections, lets requests in flight
   * finish for `graceMs` ({@link STOP_GRACE_MS} by default), then closes
   * every connection; resolves soon after, whatever the clients do.
   * Closing again returns the same promise.
   */
  close(graceMs?: number): Promise<void>;
}

/** Answers one request (the Hono app's `fetch`). */
export type Handler = (request: Request) => Response | Promise<Response>;

/** Eight hex digits naming an internal error in the answer and in the log. */
export function errorId(): string {
  const b = crypto.getRandomValues(new Uint8Array(4));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** One served connection: its socket, what it is doing, and its one timer. */
class Connection {
  readonly conn: Deno.Conn;
  state: "idle" | "reading" | "handling" | "writing" = "idle";
  closed = false;
  timedOut = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;

  constructor(conn: Deno.Conn, bufferSize: number) {
    this.conn = conn;
    this.#buf = new Uint8Array(bufferSize);
  }

  /** Runs `onExpired` in `ms` unless re-armed or disarmed first. */
  arm(ms: number, onExpired: () => void): void {
    this.disarm();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.timedOut = true;
      onExpired();
    }, ms);
  }

  disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  close(): void {
    this.disarm();
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads more into the buffer; false at the end of the stream. */
  async fill(): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buf.length) {
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      } else {
        const bigger = new Uint8Array(this.#buf.length * 2);
        bigger.set(this.#buf);
        this.#buf = bigger;
      }
    }
    const n = await this.conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** The next request head (copied), null at a clean end of stream before one. */
  async readHead(maxHead: number): Promise<Uint8Array | null> {
    let scanned = 0;
    for (;;) {
      const skip = skipLeadingEmptyLines(this.#buf.subarray(this.#start), this.buffered);
      if (skip > 0) {
        this.#start += skip;
        scanned = 0;
      }
      const view = this.#buf.subarray(this.#start, this.#end);
      const end = headEnd(view, view.length, Math.max(0, scanned - 2));
      if (end >= 0) {
        if (end > maxHead) throw new HttpError(431, `request head larger than ${maxHead} bytes`);
        const head = view.slice(0, end);
        this.#start += end;
        return head;
      }
      if (view.length > maxHead) {
        throw new HttpError(431, `request head larger than ${maxHead} bytes`);
      }
      scanned = view.length;
      if (!await this.fill()) {
        if (this.buffered === 0) return null;
        throw new HttpError(400, "the connection ended inside a request head");
      }
    }
  }

  /** {@link ByteSource} over the buffer. */
  readonly source = {
    read: async (max: number): Promise<Uint8Array | null> => {
      if (this.buffered === 0 && !await this.fill()) return null;
      const n = Math.min(max, this.buffered);
      const out = this.#buf.slice(this.#start, this.#start + n);
      this.#start += n;
      return out;
    },
    readLine: async (max: number): Promise<string | null> => {
      for (;;) {
        const view = this.#buf.subarray(this.#start, this.#end);
        const lf = view.indexOf(0x0a);
        if (lf >= 0 && lf < max) {
          const line = String.fromCharCode(...view.subarray(0, lf + 1));
          this.#start += lf + 1;
          return line;
        }
        if (view.length >= max) throw new HttpError(400, "line too long in a chunked body");
        if (!await this.fill()) return null;
      }
    },
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Serves `app` (anything with a `fetch(Request)`) on `host:port`. Rejects
 * if the address cannot be bound (`Deno.errors.AddrInUse`,
 * `PermissionDenied`...).
 */
export function startApi(app: { fetch: Handler }, listen: ApiListen): Promise<ApiServer> {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: listen.host, port: listen.port, transport: "tcp" });
  } catch (e) {
    return Promise.reject(e);
  }
  return Promise.resolve(new Server(app.fetch.bind(app), listener, listen));
}

class Server implements ApiServer {
  readonly port: number;
  readonly host: string;
  readonly url: string;
  readonly #handler: Handler;
  readonly #listener: Deno.TcpListener;
  readonly #limits: ApiLimits;
  readonly #log: Logger | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => void this.close();
  readonly #conns = new Set<Connection>();
  readonly #tasks = new Set<Promise<void>>();
  /** Refusals in progress, oldest first, each with what ends it. */
  readonly #refusing = new Map<Deno.Conn, () => void>();
  readonly #acceptLoop: Promise<void>;
  #closing = false;
  #closed: Promise<void> | undefined;
  #stats = { accepted: 0, refused: 0, timedOut: 0, acceptErrors: 0, requests: 0 };

  constructor(handler: Handler, listener: Deno.TcpListener, listen: ApiListen) {
    this.#handler = handler;
    this.#listener = listener;
    this.#limits = { ...DEFAULT_API_LIMITS, ...listen.limits };
    this.#log = listen.logger;
    const addr = listener.addr;
    this.host = addr.hostname;
    this.port = addr.port;
    this.url = `http://${this.#hostPort()}/`;
    this.#signal = listen.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#acceptLoop = this.#routineAccept();
    if (this.#signal?.aborted) void this.close();
  }

  #hostPort(): string {
    return `${this.host.includes(":") ? `[${this.host}]` : this.host}:${this.port}`;
  }

  stats(): ApiServerStats {
    return { open: this.#conns.size, ...this.#stats };
  }

  async #routineAccept(): Promise<void> {
    let pause = 10;
    while (!this.#closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closing || e instanceof Deno.errors.BadResource) return;
        this.#stats.acceptErrors++;
        this.#log?.limited("api-accept-failed", 10_000, "warn", "api-accept-failed", {
          reason: e instanceof Error ? e.message : String(e),
          "open-connections": this.#conns.size,
          "retry-ms": pause,
        });
        await delay(pause);
        pause = Math.min(1_000, pause * 2);
        continue;
      }
      pause = 10;
      if (this.#closing) {
        conn.close();
        return;
      }
      if (this.#conns.size >= this.#limits.maxConnections) {
        this.#refuse(conn);
        continue;
      }
      this.#stats.accepted++;
      const c = new Connection(conn, Math.min(2 * this.#limits.maxHeadBytes, 64 * 1024));
      this.#conns.add(c);
      const task = this.#serve(c).finally(() => {
        c.close();
        this.#conns.delete(c);
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  /**
   * Answers 503 and closes, without holding up the accept loop: once the
   * client has sent something, the answer; then what it sends is read and
   * dropped until it closes too, so that our close does not reset the
   * connection before the client reads the answer; all in at most 250 ms.
   * At most `maxConnections` refusals are in
   * progress: a new one ends the oldest, so in a flood of silent
   * connections the newest client still gets its answer.
   */
  #refuse(conn: Deno.Conn): void {
    this.#stats.refused++;
    // One line per 10 s; `suppressed=N` on the next one counts the refusals between.
    this.#log?.limited("api-connections-refused", 10_000, "warn", "api-connections-refused", {
      "max-connections": this.#limits.maxConnections,
      "refused-total": this.#stats.refused,
    });
    if (this.#refusing.size >= this.#limits.maxConnections) {
      this.#refusing.values().next().value?.();
    }
    const bytes = errorResponse(
      503,
      `the API serves ${this.#limits.maxConnections} connections at once; try again later`,
    );
    const done = () => {
      clearTimeout(timer);
      if (!this.#refusing.delete(conn)) return;
      try {
        conn.close();
      } catch {
        // closed
      }
    };
    const timer = setTimeout(done, 250);
    this.#refusing.set(conn, done);
    (async () => {
      // Answer once the request has come (an HTTP client takes an answer
      // that comes before its request for a broken connection).
      const sink = new Uint8Array(4096);
      if (await conn.read(sink) === null) return;
      await writeAll(conn, bytes);
      await conn.closeWrite();
      for (let i = 0; i < 16 && await conn.read(sink) !== null; i++);
    })().catch(() => {}).finally(done);
  }

  /** Closes `c` after a timeout; a half-received request is answered 408 first. */
  #expired(c: Connection): void {
    this.#stats.timedOut++;
    if (c.state !== "reading") {
      c.close();
      return;
    }
    const bytes = errorResponse(408, "the request did not arrive in time");
    void Promise.race([c.conn.write(bytes).catch(() => {}), delay(200)]).then(() => c.close());
  }

  async #serve(c: Connection): Promise<void> {
    const limits = this.#limits;
    const expired = () => this.#expired(c);
    try {
      for (;;) {
        c.state = "idle";
        if (this.#closing) return;
        if (c.buffered === 0) {
          c.arm(limits.idleTimeoutMs, expired);
          if (!await c.fill()) return;
        }
        c.state = "reading";
        c.arm(limits.requestTimeoutMs, expired);
        const headBytes = await c.readHead(limits.maxHeadBytes);
        if (headBytes === null) return;
        const head = parseHead(headBytes, limits.maxBodyBytes);
        if (head.expectContinue && head.body.kind !== "none" && head.minor === 1) {
          await writeAll(c.conn, new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n"));
        }
        const body = head.body.kind === "length"
          ? await readExactly(c.source, head.body.length)
          : head.body.kind === "chunked"
          ? await readChunked(c.source, limits.maxBodyBytes)
          : undefined;
        c.disarm();
        c.state = "handling";
        const answer = await this.#answer(head, body);
        const keepAlive = head.keepAlive && !this.#closing;
        const headOut = responseHead(answer.status, answer.headers, answer.length, keepAlive);
        c.state = "writing";
        c.arm(limits.requestTimeoutMs, expired);
        await writeAll(
          c.conn,
          answer.body.length > 0
            ? concat([headOut, answer.body], headOut.length + answer.body.length)
            : headOut,
        );
        c.disarm();
        this.#stats.requests++;
        if (!keepAlive) return;
      }
    } catch (e) {
      if (e instanceof HttpError && !c.closed) {
        c.arm(1_000, () => c.close());
        await writeAll(c.conn, errorResponse(e.status, e.message)).catch(() => {});
      }
      // Anything else is the connection failing or being closed (a timeout, close()).
    }
  }

  async #answer(
    head: RequestHead,
    body: Uint8Array | undefined,
  ): Promise<{ status: number; headers: Headers; body: Uint8Array; length: number | undefined }> {
    let request: Request;
    try {
      const withBody = body !== undefined && head.method !== "GET" && head.method !== "HEAD";
      request = new Request(`http://${this.#hostPort()}${head.target}`, {
        method: head.method,
        headers: new Headers(head.headers as [string, string][]),
        ...(withBody ? { body: body as Uint8Array<ArrayBuffer> } : {}),
      });
    } catch (e) {
      // new Headers() or new Request() refused what the client sent.
      const reason = e instanceof Error ? e.message : String(e);
      return jsonAnswer(400, JSON.stringify({ error: `malformed request: ${reason}` }));
    }
    let response: Response;
    try {
      response = await this.#handler(request);
    } catch (e) {
      const id = errorId();
      this.#log?.error("api-internal-error", {
        id,
        where: `${head.method} ${head.target.slice(0, 200)}`,
        error: e instanceof Error ? e.stack ?? e.message : String(e),
      });
      return jsonAnswer(
        500,
        JSON.stringify({ error: `internal error (id ${id}; the role's log has the details)`, id }),
      );
    }
    const bytes = head.method === "HEAD" || response.status === 204 || response.status === 304
      ? new Uint8Array(0)
      : new Uint8Array(await response.arrayBuffer());
    if (head.method === "HEAD") await response.body?.cancel();
    const length = head.method === "HEAD"
      ? (response.headers.has("content-length")
        ? Number(response.headers.get("content-length"))
        : undefined)
      : response.status === 204 || response.status === 304
      ? undefined
      : bytes.length;
    return { status: response.status, headers: response.headers, body: bytes, length };
  }

  close(graceMs: number = STOP_GRACE_MS): Promise<void> {
    // Each call may shorten the grace: the earliest deadline wins.
    if (!this.#finished) {
      this.#graceTimers.push(setTimeout(() => this.#hurry.resolve(), Math.max(0, graceMs)));
    }
    this.#closed ??= this.#close().finally(() => {
      this.#finished = true;
      for (const t of this.#graceTimers) clearTimeout(t);
    });
    return this.#closed;
  }

  #finished = false;

  readonly #hurry = Promise.withResolvers<void>();
  readonly #graceTimers: ReturnType<typeof setTimeout>[] = [];

  async #close(): Promise<void> {
    this.#closing = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    try {
      this.#listener.close();
    } catch {
      // closed
    }
    await this.#acceptLoop;
    for (const c of this.#conns) if (c.state === "idle") c.close();
    if (this.#tasks.size > 0) {
      await Promise.race([Promise.allSettled([...this.#tasks]), this.#hurry.promise]);
    }
    for (const c of this.#conns) c.close();
    for (const done of [...this.#refusing.values()]) done();
    // A handler still waiting on its provider ends on its own; do not wait for it long.
    if (this.#tasks.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...this.#tasks]),
        new Promise((r) => timer = setTimeout(r, 100)),
      ]);
      clearTimeout(timer);
    }
  }
}

function jsonAnswer(status: number, text: string) {
  const body = new TextEncoder().encode(text);
  const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store" });
  return { status, headers, body, length: body.length };
}
