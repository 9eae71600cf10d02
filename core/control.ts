/**
 * The control plane every role shares: UDP 4342 (or `control-port`) on
 * IPv4 and IPv6, and the one dispatcher of LISP control messages, whether
 * they arrive on that port or are handed up from a tunnel router's data
 * port ({@link ControlPlane.receive} with `via: "data"`, NAT traversal).
 *
 * Every datagram takes the same path: parse (an ECM is opened and its
 * inner message dispatched, with the ECM beside it), rate limiting of
 * requests per source address, then either the outstanding request whose
 * nonce it answers ({@link ControlPlane.request}) or the handler of its
 * type ({@link ControlPlane.on}, typed per message). Everything dropped on
 * the way is counted, and logged at most once per source per minute.
 *
 * The dispatcher runs on the main event loop. The sockets are a
 * {@link ControlTransport}: by default `node:dgram` sockets
 * ({@link dgramTransport}); every role passes the batched one of
 * roles/control_io/socket.ts (recvmmsg/sendmmsg through FFI, receive
 * buffers sized on purpose): ms, mr, ddt, ddt-mr and the tunnel routers.
 * A map-server with answering
 * Workers feeds {@link ControlPlane.receive} with what its Workers hand up
 * (roles/map_server/serving.ts), the requests already admitted by the rate
 * limit they share ({@link RateLimiter}, core/rate_limit.ts).
 *
 * @module
 */

import dgram from "node:dgram";
import { WireError } from "../wire/errors.ts";
import { type Ecm, emitEcm } from "../wire/ecm.ts";
import {
  type ControlMessage,
  type ControlMessageType,
  emitControlMessage,
  parseControlMessage,
} from "../wire/message.ts";
import { canonicalIp, isIPv4 } from "../wire/ip_text.ts";
import type { Counters } from "./counters.ts";
import type { Logger } from "./log.ts";
import { METRICS } from "./metrics.ts";
import { RateLimiter } from "./rate_limit.ts";
import { TimerWheel, type WheelTimer } from "./timer_wheel.ts";

/** A UDP endpoint. */
export interface Peer {
  /** IPv4 or IPv6 address text. */
  readonly address: string;
  /** UDP port. */
  readonly port: number;
}

/** `address:port`, with brackets for IPv6. */
export function formatPeer(p: Peer): string {
  return isIPv4(p.address) ? `${p.address}:${p.port}` : `[${p.address}]:${p.port}`;
}

/** Where a datagram came in: the control port, or a tunnel router's data port. */
export type Via = "control" | "data";

/** The message record of control message type `T`. */
export type MessageOf<T extends ControlMessageType> = Extract<ControlMessage, { type: T }>["msg"];

/** A control message as received. */
export interface Received {
  /** The message (the inner one when it came inside an ECM). */
  readonly message: ControlMessage;
  /** The message's bytes (inner bytes for an ECM), e.g. to verify authentication. */
  readonly bytes: Uint8Array;
  /** Outer UDP source. */
  readonly from: Peer;
  /** The ECM it came in, if any. */
  readonly ecm?: Ecm;
  /** With an ECM: the whole datagram as it came (to pass it on rewriting only what changes). */
  readonly datagram?: Uint8Array;
  /** The port it came in on. */
  readonly via: Via;
}

/** Handles one received message; errors it throws are logged and counted, never fatal. */
export type Handler<T extends ControlMessageType = ControlMessageType> = (
  msg: MessageOf<T>,
  r: Received,
) => void | Promise<void>;

/**
 * What became of one datagram given to {@link ControlPlane.receive}: the
 * message type a handler got, `reply` when it answered an outstanding
 * request, or why it was dropped.
 */
export type Dispatched =
  | ControlMessageType
  | "reply"
  | "malformed"
  | "rate-limited"
  | "wrong-source"
  | "unknown-nonce"
  | "unhandled";

/** Options of {@link ControlPlane.open}. */
export interface ControlPlaneOptions {
  /** Logger for drops and errors. */
  readonly logger: Logger;
  /** Counters this transport bumps. */
  readonly counters: Counters;
  /** Address to bind; unset binds 0.0.0.0 and :: both. */
  readonly address?: string;
  /** UDP port; 0 picks a free one. */
  readonly port: number;
  /** Requests per second accepted from one source address (0: unlimited). */
  readonly rateLimit?: number;
  /**
   * The token buckets to take from, shared with other threads (their rate
   * is used); default: buckets of this plane's own at `rateLimit`.
   */
  readonly limiter?: RateLimiter;
  /** Clock in milliseconds. */
  readonly now?: () => number;
  /** The sockets (default {@link dgramTransport}). */
  readonly transport?: ControlTransportFactory;
}

/** What a {@link ControlTransport} tells its owner. */
export interface TransportHooks {
  /** For the transport's own log lines. */
  readonly logger: Logger;
  /** Every datagram received, and its source. The bytes are the receiver's to keep. */
  readonly receive: (data: Uint8Array, from: Peer) => void;
  /**
   * A send that failed: `reason` for the counter's label (`socket`,
   * `no-socket`, `bad-destination`, `buffer-full`), `detail` for the log.
   */
  readonly failed: (reason: string, to: Peer, detail: string) => void;
}

/**
 * The UDP sockets of a control plane: they deliver what they receive to
 * {@link TransportHooks.receive} and send what they are given.
 */
export interface ControlTransport {
  /** The bound address, or undefined for the wildcard (IPv4 and IPv6). */
  readonly address: string | undefined;
  /** The bound UDP port. */
  readonly port: number;
  /**
   * Sends `bytes` to `to`; the caller does not change them afterwards (a
   * transport may send them later, or copy them at once). Returns false, having reported it to {@link TransportHooks.failed},
   * when it cannot even be queued (no socket of that family, port 0...).
   */
  send(bytes: Uint8Array, to: Peer): boolean;
  /** Binds `address` instead, same port; the old socket closes once the new one is bound. */
  rebind(address: string): Promise<void>;
  /** Stops receiving and closes the sockets; resolves when nothing more will be delivered. */
  close(): Promise<void>;
}

/**
 * Opens a transport bound to `address` (undefined: 0.0.0.0 and :: both,
 * IPv6 if it can) and `port` (0: a free one). Rejects when it cannot bind.
 */
export type ControlTransportFactory = (
  address: string | undefined,
  port: number,
  hooks: TransportHooks,
) => Promise<ControlTransport>;

/** Options of {@link ControlPlane.receive}. */
export interface ReceiveOptions {
  /**
   * The rate limit was applied already (by a Worker sharing the buckets):
   * no token is taken again.
   */
  readonly admitted?: boolean;
}

/** Options of {@link ControlPlane.request}. */
export interface RequestOptions {
  /** Retransmissions after the first send. */
  readonly retries: number;
  /** Milliseconds to wait for a reply to each send. */
  readonly timeoutMs: number;
  /** Reply types accepted for this nonce. */
  readonly expect: readonly ControlMessageType[];
  /** Aborts the wait (rejects with the signal's reason). */
  readonly signal?: AbortSignal;
  /**
   * Only a reply from this address counts; one from elsewhere is dropped
   * and counted (`wrong-source`). For a nonce the asker did not choose
   * alone (a DDT Map-Resolver reuses the ITR's), so that whoever knows the
   * nonce cannot answer in the node's place.
   */
  readonly from?: string;
}

/** A request that got no reply after its retries. */
export class NoReplyError extends Error {
  /** @param what the request and peer, for the message */
  constructor(what: string) {
    super(`no reply to ${what}`);
    this.name = "NoReplyError";
  }
}

/** Message types that answer a nonce we sent. */
const REPLY_TYPES: ReadonlySet<ControlMessageType> = new Set<ControlMessageType>([
  "map-reply",
  "map-notify",
  "map-notify-ack",
  "map-referral",
  "info-reply",
]);

/** Message types that are rate limited per source. */
const REQUEST_TYPES: ReadonlySet<ControlMessageType> = new Set<ControlMessageType>([
  "map-request",
  "map-register",
  "info-request",
  "ecm",
]);

/** A request waiting for its reply: its deadline is an entry in the plane's timer wheel. */
interface Pending {
  readonly nonce: bigint;
  readonly expect: readonly ControlMessageType[];
  /** The address the reply must come from (canonical text), if any. */
  readonly from: string | undefined;
  readonly send: () => void;
  /** Text, or what makes it (only a request that fails needs it). */
  readonly what: string | (() => string);
  readonly opts: RequestOptions;
  readonly resolve: (r: Received) => void;
  readonly reject: (e: unknown) => void;
  /** Sends so far. */
  attempt: number;
  timer: WheelTimer<Pending> | undefined;
  onAbort: (() => void) | undefined;
}

/** One minute: how often a repeated drop from one source is logged. */
const LOG_INTERVAL_MS = 60_000;

/** What a request is, for its error: `what` made now if it is a function. */
function whatOf(p: { readonly what: string | (() => string) }): string {
  return typeof p.what === "string" ? p.what : p.what();
}

/** The control socket(s) of a role. */
export class ControlPlane {
  readonly #logger: Logger;
  readonly #counters: Counters;
  readonly #now: () => number;
  readonly #limiter: RateLimiter | undefined;
  #transport!: ControlTransport;
  readonly #handlers = new Map<ControlMessageType, Handler>();
  /** LISP type -> what takes its plain messages unread ({@link takeUnread}). */
  readonly #unread = new Map<number, (from: Peer) => void>();
  readonly #pending = new Map<bigint, Pending>();
  /** The deadlines of every outstanding request: one timer for all of them. */
  readonly #wheel = new TimerWheel<Pending>((p) => this.#attempt(p));
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(opts: ControlPlaneOptions) {
    this.#logger = opts.logger;
    this.#counters = opts.counters;
    this.#now = opts.now ?? Date.now;
    const rate = opts.rateLimit ?? 0;
    this.#limiter = opts.limiter ?? (rate > 0 ? new RateLimiter(rate) : undefined);
  }

  /** Binds the control socket(s) and starts receiving. */
  static async open(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const cp = new ControlPlane(opts);
    cp.#transport = await (opts.transport ?? dgramTransport)(opts.address, opts.port, {
      logger: opts.logger,
      receive: (data, from) => {
        if (!cp.#closed) cp.receive(data, from);
      },
      failed: (reason, to, detail) => cp.#sendFailed(reason, to, detail),
    });
    return cp;
  }

  /**
   * Binds the control port to `address` instead (a mobile node whose RLOC
   * moved): the new socket first, then the old one closes. Handlers and
   * outstanding requests carry over; retransmissions leave from the new
   * socket. Throws (and keeps the old socket) when `address` cannot be bound.
   */
  async rebind(address: string): Promise<void> {
    if (this.#closed) return;
    await this.#transport.rebind(address);
  }

  /** The bound address, or undefined for the wildcard (IPv4 and IPv6). */
  get address(): string | undefined {
    return this.#transport.address;
  }

  /** The bound UDP port. */
  get port(): number {
    return this.#transport.port;
  }

  /** Number of requests waiting for a reply. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Sets the handler for a message type. Replies (Map-Reply, Map-Notify,
   * Map-Notify-Ack, Map-Referral, Info-Reply) reach it only when their
   * nonce matches no outstanding {@link request}.
   */
  on<T extends ControlMessageType>(type: T, handler: Handler<T>): void {
    this.#handlers.set(type, handler as unknown as Handler);
  }

  /**
   * Gives every plain (not encapsulated) message of LISP type `type` (a
   * wire/message.ts `LISP_TYPE`) to `handler` unread: counted as received
   * under its type's name, neither parsed nor matched against outstanding
   * requests. For a type a role only counts and drops (the Map-Replies a
   * map-resolver gets to its own DDT queries): parsing it would cost more
   * than the rest of its handling.
   */
  takeUnread(type: number, handler: (from: Peer) => void): void {
    this.#unread.set(type, handler);
  }

  /**
   * Sends a message or raw bytes to `to`. `type` names what raw bytes are
   * for the counters when they are not a control message (default: their
   * LISP type).
   */
  send(message: ControlMessage | Uint8Array, to: Peer, type?: string): void {
    const bytes = message instanceof Uint8Array ? message : emitControlMessage(message);
    if (this.#closed) {
      this.#sendFailed("no-socket", to, "the control plane is closed");
      return;
    }
    if (!this.#transport.send(bytes, to)) return;
    if (type === undefined) {
      type = bytes.length > 0 ? typeName(bytes[0]! >>> 4) : "unknown";
    }
    this.#counters.inc(METRICS.controlMessagesOut, { type });
  }

  /**
   * Counts a send that failed and logs it at most once per reason a
   * minute. Not once per destination: destinations are often taken from a
   * message (an ITR-RLOC, an ECM's inner source port), and a peer must not
   * choose how many lines we write.
   */
  #sendFailed(reason: string, to: Peer, detail: string): void {
    this.#counters.inc(METRICS.controlSendErrors, { reason });
    this.#logger.limited(
      `send-failed ${reason}`,
      LOG_INTERVAL_MS,
      "warn",
      "control-send-failed",
      { peer: formatPeer(to), reason: detail },
    );
  }

  /**
   * Sends `inner` (a control message's bytes) inside an ECM whose inner
   * IP/UDP header goes from `src` to `dst`, to the outer destination `to`,
   * with inner TTL `ttl` (default 64; one who forwards passes on one less
   * than it got, core/forward_guard.ts).
   */
  sendEcm(
    inner: Uint8Array,
    header: { src: string; dst: string; srcPort: number; dstPort: number; ttl?: number },
    to: Peer,
    flags: { security?: boolean; ddtOriginated?: boolean; forRtr?: boolean } = {},
  ): void {
    this.send(
      emitEcm({
        security: flags.security ?? false,
        ddtOriginated: flags.ddtOriginated ?? false,
        forRtr: flags.forRtr ?? false,
        rtrRelayed: false,
        inner: { ...header, ttl: header.ttl ?? 64 },
        payload: inner,
      }),
      to,
    );
  }

  /**
   * Sends `bytes` and waits for a reply carrying `nonce`, retransmitting
   * up to `retries` times. Rejects with {@link NoReplyError} when none
   * comes. `send` lets the caller send something other than `bytes` to
   * `to` each time (e.g. a fresh ECM). `what` names the request in that
   * error: text, or a function making it only then (not per request).
   */
  request(
    nonce: bigint,
    send: () => void,
    what: string | (() => string),
    opts: RequestOptions,
  ): Promise<Received> {
    if (this.#pending.has(nonce)) {
      return Promise.reject(new RangeError(`nonce 0x${nonce.toString(16)} is already in use`));
    }
    return new Promise<Received>((resolve, reject) => {
      const p: Pending = {
        nonce,
        expect: opts.expect,
        from: opts.from !== undefined ? canonicalIp(opts.from) ?? opts.from : undefined,
        send,
        what,
        opts,
        resolve,
        reject,
        attempt: 0,
        timer: undefined,
        onAbort: undefined,
      };
      const signal = opts.signal;
      if (signal !== undefined) {
        if (signal.aborted) return reject(signal.reason ?? new Error("aborted"));
        p.onAbort = () => {
          this.#finish(p);
          reject(signal.reason ?? new Error("aborted"));
        };
        signal.addEventListener("abort", p.onAbort);
      }
      this.#pending.set(nonce, p);
      this.#attempt(p);
    });
  }

  /** Sends `p` (again), or fails it: closed, or no retries left. Its timer's callback. */
  #attempt(p: Pending): void {
    p.timer = undefined;
    if (this.#closed) {
      this.#finish(p);
      p.reject(new NoReplyError(`${whatOf(p)} (closed)`));
      return;
    }
    if (p.attempt > p.opts.retries) {
      this.#finish(p);
      this.#counters.inc(METRICS.controlTimeouts);
      p.reject(new NoReplyError(whatOf(p)));
      return;
    }
    if (p.attempt > 0) this.#counters.inc(METRICS.controlRetransmits);
    p.attempt++;
    try {
      p.send();
    } catch (e) {
      // A throwing `send` (our own misuse) must not leave the nonce
      // taken, nor escape from a timer and end the process.
      this.#finish(p);
      p.reject(e);
      return;
    }
    if (this.#pending.get(p.nonce) === p) p.timer = this.#wheel.add(p, p.opts.timeoutMs);
  }

  /** Forgets `p`: its nonce, its deadline, its abort listener. */
  #finish(p: Pending): void {
    if (p.timer !== undefined) this.#wheel.cancel(p.timer);
    p.timer = undefined;
    if (this.#pending.get(p.nonce) === p) this.#pending.delete(p.nonce);
    if (p.onAbort !== undefined) p.opts.signal?.removeEventListener("abort", p.onAbort);
    p.onAbort = undefined;
  }

  #allowed(source: string): boolean {
    return this.#limiter === undefined || this.#limiter.allow(source, this.#now());
  }

  #drop(reason: string, from: Peer, detail?: string): void {
    this.#counters.inc(METRICS.controlDropped, { reason });
    this.#logger.limited(
      `${reason} ${from.address}`,
      LOG_INTERVAL_MS,
      "warn",
      "control-dropped",
      { reason, peer: formatPeer(from), detail },
    );
  }

  /**
   * Dispatches one datagram from `from` (see the module notes): what the
   * control socket receives, and what a tunnel router's data plane hands
   * up from its data port (`via: "data"`). Never throws for what a peer
   * sent; returns what became of it.
   */
  receive(
    data: Uint8Array,
    from: Peer,
    via: Via = "control",
    opts: ReceiveOptions = {},
  ): Dispatched {
    const tag = via === "data" ? { via } : undefined;
    const unread = data.length > 0 ? this.#unread.get(data[0]! >>> 4) : undefined;
    if (unread !== undefined) {
      const type = typeName(data[0]! >>> 4) as ControlMessageType;
      this.#counters.inc(METRICS.controlMessagesIn, { type, ...tag });
      unread(from);
      return type;
    }
    let message: ControlMessage;
    let bytes = data;
    let ecm: Ecm | undefined;
    try {
      message = parseControlMessage(data);
      if (message.type === "ecm") {
        ecm = message.msg;
        bytes = ecm.payload;
        message = parseControlMessage(bytes);
      }
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.#counters.inc(METRICS.controlMessagesIn, { type: "malformed", ...tag });
      this.#drop("malformed", from, e.message);
      return "malformed";
    }
    const type = message.type;
    this.#counters.inc(METRICS.controlMessagesIn, {
      type: ecm ? `ecm-${type}` : type,
      ...tag,
    });
    if (REQUEST_TYPES.has(type) && opts.admitted !== true && !this.#allowed(from.address)) {
      this.#drop("rate-limited", from);
      return "rate-limited";
    }
    const received: Received = ecm === undefined
      ? { message, bytes, from, via }
      : { message, bytes, from, ecm, via, datagram: data };
    if (REPLY_TYPES.has(type) && message.type !== "ecm") {
      const nonce = message.msg.nonce;
      const p = this.#pending.get(nonce);
      if (p !== undefined && p.expect.includes(type)) {
        if (p.from !== undefined && p.from !== (canonicalIp(from.address) ?? from.address)) {
          this.#drop("wrong-source", from, `${type} nonce 0x${nonce.toString(16)}`);
          return "wrong-source";
        }
        this.#finish(p);
        p.resolve(received);
        return "reply";
      }
      if (!this.#handlers.has(type)) {
        this.#drop("unknown-nonce", from, `${type} nonce 0x${nonce.toString(16)}`);
        return "unknown-nonce";
      }
    }
    const handler = this.#handlers.get(type);
    if (handler === undefined) {
      this.#drop("unhandled", from, type);
      return "unhandled";
    }
    try {
      const r = handler(message.msg, received);
      if (r instanceof Promise) r.catch((e) => this.#handlerError(e, type, from));
    } catch (e) {
      this.#handlerError(e, type, from);
    }
    return type;
  }

  #handlerError(e: unknown, type: string, from: Peer): void {
    this.#counters.inc(METRICS.controlDropped, { reason: "handler-error" });
    this.#logger.limited(
      `handler ${type} ${from.address}`,
      LOG_INTERVAL_MS,
      "error",
      "control-handler-failed",
      { type, peer: formatPeer(from), error: e instanceof Error ? e.message : String(e) },
    );
  }

  /**
   * Closes the sockets; outstanding requests fail at once ({@link NoReplyError},
   * "closed"), leaving no timer behind. Resolves once the transport delivers
   * nothing more.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      for (const p of [...this.#pending.values()]) {
        this.#finish(p);
        p.reject(new NoReplyError(`${whatOf(p)} (closed)`));
      }
      this.#wheel.close();
      this.#closing = this.#transport.close();
    }
    return this.#closing;
  }
}

/**
 * The default {@link ControlTransport}: `node:dgram` sockets, one datagram
 * per call. Bound to the wildcard, it binds 0.0.0.0 and, if it can, :: on
 * the same port (IPv6 only).
 */
export const dgramTransport: ControlTransportFactory = async (address, port, hooks) => {
  const t = new DgramTransport(hooks);
  await t.bind(address, port);
  return t;
};

class DgramTransport implements ControlTransport {
  readonly #hooks: TransportHooks;
  #sockets: { v4?: dgram.Socket; v6?: dgram.Socket } = {};
  #address: string | undefined;
  #port = 0;
  #closed = false;

  constructor(hooks: TransportHooks) {
    this.#hooks = hooks;
  }

  get address(): string | undefined {
    return this.#address;
  }

  get port(): number {
    return this.#port;
  }

  async bind(address: string | undefined, port: number): Promise<void> {
    const bindOne = (type: "udp4" | "udp6", addr: string, p: number) =>
      new Promise<dgram.Socket>((resolve, reject) => {
        const s = dgram.createSocket(type === "udp6" ? { type, ipv6Only: true } : { type });
        s.once("error", reject);
        s.bind(p, addr, () => {
          s.off("error", reject);
          s.on(
            "error",
            (e) => this.#hooks.logger.error("control-socket-error", { error: e.message }),
          );
          s.on("message", (msg, rinfo) => {
            if (!this.#closed) {
              this.#hooks.receive(msg, { address: rinfo.address, port: rinfo.port });
            }
          });
          resolve(s);
        });
      });
    if (address !== undefined) {
      const v4 = isIPv4(address);
      const s = await bindOne(v4 ? "udp4" : "udp6", address, port);
      this.#sockets = v4 ? { v4: s } : { v6: s };
      this.#port = s.address().port;
      this.#address = address;
      return;
    }
    const v4 = await bindOne("udp4", "0.0.0.0", port);
    this.#sockets = { v4 };
    this.#port = v4.address().port;
    this.#address = undefined;
    try {
      this.#sockets = { v4, v6: await bindOne("udp6", "::", this.#port) };
    } catch (e) {
      this.#hooks.logger.warn("control-ipv6-unavailable", { error: (e as Error).message });
    }
  }

  async rebind(address: string): Promise<void> {
    if (this.#closed) return;
    const old = this.#sockets;
    await this.bind(address, this.#port);
    old.v4?.close();
    old.v6?.close();
  }

  send(bytes: Uint8Array, to: Peer): boolean {
    const socket = isIPv4(to.address) ? this.#sockets.v4 : this.#sockets.v6;
    if (socket === undefined || this.#closed) {
      this.#hooks.failed("no-socket", to, "no socket for that address family");
      return false;
    }
    try {
      socket.send(bytes, to.port, to.address, (err) => {
        if (err) this.#hooks.failed("socket", to, err.message);
      });
    } catch (e) {
      // node:dgram throws at once for port 0, which a peer can ask for (an
      // ECM's inner source port is where a Map-Reply goes): a send error,
      // never an exception for the handler that answers.
      this.#hooks.failed("bad-destination", to, e instanceof Error ? e.message : String(e));
      return false;
    }
    return true;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#sockets.v4?.close();
      this.#sockets.v6?.close();
    }
    return Promise.resolve();
  }
}

const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: "map-request",
  2: "map-reply",
  3: "map-register",
  4: "map-notify",
  5: "map-notify-ack",
  6: "map-referral",
  7: "info",
  8: "ecm",
};

function typeName(t: number): string {
  return TYPE_NAMES[t] ?? `type-${t}`;
}
