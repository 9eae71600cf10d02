/**
 * HTTP/1.1 on a byte stream, for web/server.ts: the request head parsed
 * with limits (RFC 9112 §2-§7), the body framed by Content-Length or
 * chunked transfer coding, and the response head. No I/O here but
 * through a {@link ByteSource}; the server owns sockets, timers and
 * the connection cap.
 *
 * What is refused, and how (the server answers and closes the
 * connection): a malformed request line or header, an obsolete line
 * folding, a request with both Content-Length and Transfer-Encoding or
 * two different Content-Lengths (request smuggling), an HTTP/1.1 request
 * without exactly one Host: 400; a head larger than the limit: 431; a
 * body larger than the limit: 413; a transfer coding other than chunked:
 * 501; an HTTP version other than 1.0 and 1.1: 505.
 *
 * @module
 */

/** A request the server cannot take; answered with `status` and the connection closed. */
export class HttpError extends Error {
  /** The status to answer with. */
  readonly status: number;

  /** `status` (4xx/5xx) and what is wrong, for the client. */
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

/** A parsed request head. Header names are lower case, in the order received. */
export interface RequestHead {
  /** Method, as sent (methods are case-sensitive). */
  readonly method: string;
  /** The request target: origin form (`/path?query`). */
  readonly target: string;
  /** Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  /** Header fields. */
  readonly headers: readonly (readonly [string, string])[];
  /** Body framing. */
  readonly body:
    | { readonly kind: "none" }
    | { readonly kind: "length"; readonly length: number }
    | {
      readonly kind: "chunked";
    };
  /** Whether the client asked to keep the connection open after this exchange. */
  readonly keepAlive: boolean;
  /** `Expect: 100-continue` was sent. */
  readonly expectContinue: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TARGET = /^\/[\x21-\x7e]*$/;
const ABSOLUTE = /^https?:\/\/[^/?#\s]*(\/[\x21-\x7e]*)?$/i;

/** Latin-1 text of bytes (every byte one code unit), as HTTP heads are read. */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(bytes.length, i + 4096)));
  }
  return s;
}

/**
 * Where the head in `buf[0, end)` ends: the index just past the empty line
 * (CRLF CRLF, or bare LFs, which RFC 9112 §2.2 lets a server accept), or
 * -1 when it has not arrived yet. Empty lines before the request line are
 * skipped by {@link skipLeadingEmptyLines} first.
 */
export function headEnd(buf: Uint8Array, end: number, from = 0): number {
  for (let i = Math.max(0, from); i < end; i++) {
    if (buf[i] !== 0x0a) continue;
    if (i + 1 < end && buf[i + 1] === 0x0a) return i + 2;
    if (i + 2 < end && buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** How many CR/LF bytes lead `buf[0, end)` (RFC 9112 §2.2: ignored before a request line). */
export function skipLeadingEmptyLines(buf: Uint8Array, end: number): number {
  let i = 0;
  while (i < end && (buf[i] === 0x0d || buf[i] === 0x0a)) i++;
  return i;
}

/**
 * Parses a request head (request line and header fields, with its final
 * empty line). `maxBody` is the largest body accepted (413 past it).
 * Throws {@link HttpError}.
 */
export function parseHead(bytes: Uint8Array, maxBody: number): RequestHead {
  const lines = latin1(bytes).split("\n").map((l) => l.endsWith("\r") ? l.slice(0, -1) : l);
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const requestLine = lines.shift() ?? "";
  const m = /^([^ ]+) ([^ ]+) HTTP\/([0-9])\.([0-9])$/.exec(requestLine);
  if (m === null) throw new HttpError(400, "malformed request line");
  const [, method, rawTarget, major, minorText] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (!TOKEN.test(method)) throw new HttpError(400, "malformed method");
  if (major !== "1" || (minorText !== "0" && minorText !== "1")) {
    throw new HttpError(505, "only HTTP/1.0 and HTTP/1.1 are served");
  }
  const minor = minorText === "1" ? 1 : 0;
  let target: string;
  if (TARGET.test(rawTarget)) target = rawTarget;
  else if (ABSOLUTE.test(rawTarget)) {
    const u = new URL(rawTarget);
    target = `${u.pathname}${u.search}`;
  } else throw new HttpError(400, "the request target must be a path like /api/v1/status");
  const headers: [string, string][] = [];
  for (const line of lines) {
    if (line.startsWith(" ") || line.startsWith("\t")) {
      throw new HttpError(400, "obsolete header line folding");
    }
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) throw new HttpError(400, "malformed header field");
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    // Field values: visible characters, spaces and tabs (RFC 9110 §5.5).
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) {
      throw new HttpError(400, "control character in a header field");
    }
    headers.push([name.toLowerCase(), value]);
  }
  const all = (n: string) => headers.filter(([k]) => k === n).map(([, v]) => v);
  const hosts = all("host");
  if (minor === 1 && hosts.length !== 1) {
    throw new HttpError(400, "an HTTP/1.1 request needs exactly one Host header");
  }
  if (hosts.length > 1) throw new HttpError(400, "more than one Host header");
  const te = all("transfer-encoding");
  const cl = all("content-length").flatMap((v) => v.split(",").map((x) => x.trim()));
  let body: RequestHead["body"] = { kind: "none" };
  if (te.length > 0) {
    if (cl.length > 0) {
      throw new HttpError(400, "both Content-Length and Transfer-Encoding");
    }
    const codings = te.flatMap((v) => v.split(",")).map((x) => x.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== "chunked" || minor === 0) {
      throw new HttpError(501, "the only transfer coding served is chunked");
    }
    body = { kind: "chunked" };
  } else if (cl.length > 0) {
    if (cl.some((v) => !/^[0-9]{1,15}$/.test(v)) || cl.some((v) => v !== cl[0])) {
      throw new HttpError(400, "malformed Content-Length");
    }
    const length = Number(cl[0]);
    if (length > maxBody) throw new HttpError(413, `body larger than ${maxBody} bytes`);
    if (length > 0) body = { kind: "length", length };
  }
  const connection = all("connection").flatMap((v) => v.toLowerCase().split(",")).map((x) =>
    x.trim()
  );
  const keepAlive = minor === 1 ? !connection.includes("close") : connection.includes("keep-alive");
  const expectContinue = all("expect").some((v) => v.toLowerCase() === "100-continue");
  return { method, target, minor, headers, body, keepAlive, expectContinue };
}

/** Where the body bytes come from: the connection's buffered reader. */
export interface ByteSource {
  /** Resolves to at least one more byte, or null at the end of the stream. */
  read(max: number): Promise<Uint8Array | null>;
  /** Reads up to and including the next LF, at most `max` bytes (else throws HttpError 400). */
  readLine(max: number): Promise<string | null>;
}

/**
 * Reads a chunked body (RFC 9112 §7.1), at most `maxBody` bytes of data
 * (413 past it); chunk extensions and trailer fields are read and dropped.
 */
export async function readChunked(src: ByteSource, maxBody: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const line = await src.readLine(1024);
    if (line === null) throw new HttpError(400, "the body ended inside a chunk");
    const m = /^([0-9A-Fa-f]{1,8})(?:[ \t]*;.*)?$/.exec(line.replace(/\r?\n$/, ""));
    if (m === null) throw new HttpError(400, "malformed chunk size");
    const size = parseInt(m[1]!, 16);
    if (size === 0) break;
    total += size;
    if (total > maxBody) throw new HttpError(413, `body larger than ${maxBody} bytes`);
    parts.push(await readExactly(src, size));
    const crlf = await src.readLine(2);
    if (crlf === null || (crlf !== "\r\n" && crlf !== "\n")) {
      throw new HttpError(400, "malformed chunk end");
    }
  }
  // Trailer fields, up to the empty line.
  for (let n = 0;; n++) {
    const line = await src.readLine(8192);
    if (line === null) throw new HttpError(400, "the body ended inside its trailer");
    if (line === "\r\n" || line === "\n") break;
    if (n >= 64) throw new HttpError(431, "too many trailer fields");
  }
  return concat(parts, total);
}

/** Reads exactly `length` bytes; 400 if the stream ends first. */
export async function readExactly(src: ByteSource, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let off = 0;
  while (off < length) {
    const b = await src.read(length - off);
    if (b === null) throw new HttpError(400, "the body ended before its Content-Length");
    out.set(b, off);
    off += b.length;
  }
  return out;
}

/** The concatenation of `parts` (`total` bytes in all). */
export function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const REASONS: Readonly<Record<number, string>> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  421: "Misdirected Request",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** Headers the server writes itself; a response's own are dropped. */
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "date"]);

/**
 * The response head: status line, the response's headers (less the
 * hop-by-hop ones), Content-Length (unless `bodyLength` is undefined: a
 * HEAD answer without a known length), Connection and Date.
 */
export function responseHead(
  status: number,
  headers: Headers | Iterable<readonly [string, string]>,
  bodyLength: number | undefined,
  keepAlive: boolean,
  now: Date = new Date(),
): Uint8Array {
  let s = `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\n`;
  for (const [k, v] of headers) {
    if (HOP.has(k.toLowerCase())) continue;
    // Headers objects refuse CR and LF; a plain list is ours.
    s += `${k}: ${v}\r\n`;
  }
  if (bodyLength !== undefined) s += `content-length: ${bodyLength}\r\n`;
  s += `date: ${now.toUTCString()}\r\n`;
  s += `connection: ${keepAlive ? "keep-alive" : "close"}\r\n\r\n`;
  return new TextEncoder().encode(s);
}

/** A whole JSON error response, `{"error": message}`, with Connection: close. */
export function errorResponse(status: number, message: string): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify({ error: message }));
  const head = responseHead(
    status,
    [
      ["content-type", "application/json"],
      ["cache-control", "no-store"],
    ],
    body.length,
    false,
  );
  return concat([head, body], head.length + body.length);
}
