/**
 * The DDT map-resolver's cached path (roles/mr.ts, `ddt-mr`): an ITR's
 * request whose EID the referral cache holds as an MS-REFERRAL, handled
 * from the datagram as it came, with no parse, no Promise and no string
 * key per request.
 *
 * RFC 8111 §7.3.1 and §7.2: a DDT Map-Server that has the EID answers the
 * request itself (proxy-reply, or forwards it to an ETR, which answers the
 * ITR-RLOCs) and sends the DDT map-resolver MS-ACK. So the ITR's own ECM
 * (its nonce, ITR-RLOCs and inner header; inner TTL less one, the D bit
 * set: `writeForward` of forward_path.ts, then D) goes to the first RLOC
 * of the cached set that has not timed out lately and is not ourselves;
 * the request waits in a table keyed by the ITR's nonce, its deadline in a
 * {@link TimerWheel}. Four datagrams in all (ITR -> resolver -> map-server
 * -> ITR, MS-ACK -> resolver) where asking with a nonce of our own and
 * forwarding the ITR's request after MS-ACK took seven, and the
 * map-server handles one request, not two.
 *
 * The ITR's nonce is known to whoever sent or saw the request, so what
 * comes back with it is trusted for nothing but this request:
 *
 * - only a Map-Referral from the RLOC asked is taken (any other with that
 *   nonce goes on to core/control.ts, which drops it: `unknown-nonce`,
 *   or `wrong-source` for a query of its own);
 * - MS-ACK ends the request: the map-server has answered the ITR;
 * - anything else (MS-NOT-REGISTERED, NOT-AUTHORITATIVE, a referral) is
 *   never cached nor followed here: the request goes to roles/mr.ts's walk,
 *   which asks the same set with a nonce of its own (and caches what that
 *   brings);
 * - no answer within the referral timeout: the RLOC is marked suspect (it
 *   is tried last for a while) and the request goes to the walk, which
 *   tries the set in that order.
 *
 * A request this path does not take (another message, another shape, no
 * cached MS-REFERRAL, the ITR's nonce already waiting here for another
 * ITR, the rate limit, `maxWaiting` requests waiting already) goes to
 * core/control.ts as it came.
 *
 * @module
 */

import type { ControlPlane, ControlTransportFactory, Peer, Received } from "../../core/control.ts";
import type { Prefix } from "../../core/prefix.ts";
import { parseControlMessage } from "../../wire/message.ts";
import type { Counters } from "../../core/counters.ts";
import type { Logger } from "../../core/log.ts";
import { type Metric, METRICS } from "../../core/metrics.ts";
import { TimerWheel, type WheelTimer } from "../../core/timer_wheel.ts";
import { MapRequestView, nonceKey, scanMapRequest } from "../../wire/control_view.ts";
import { readU32 } from "../../wire/tcp.ts";
import { REFERRAL_ACTION } from "../../wire/eid_record.ts";
import { canonicalIp } from "../../wire/ip_text.ts";
import { referralActionName } from "../ddt.ts";
import { writeForward } from "./forward_path.ts";

/** Counts kept here (a number each, not a series looked up per request). */
const N_REQUESTS = 0;
const N_SENT = 1;
const N_MS_ACKS = 2;
const N_DUPLICATES = 3;

/** The series each count goes to (core/metrics.ts). */
const COUNTED: readonly [Metric<string>, Record<string, string> | undefined, number][] = [
  [METRICS.controlMessagesIn, { type: "ecm-map-request" }, N_REQUESTS],
  [METRICS.mrRequests, { mode: "ddt" }, N_REQUESTS],
  [METRICS.mrReferralCacheHits, { kind: "referral" }, N_SENT],
  [METRICS.mrDdtRequestsSent, undefined, N_SENT],
  [METRICS.mrForwarded, undefined, N_SENT],
  [METRICS.controlMessagesIn, { type: "map-referral" }, N_MS_ACKS],
  [METRICS.mrReferrals, { action: "ms-ack" }, N_MS_ACKS],
  [METRICS.mrResolutions, { result: "succeeded", reason: "ms-ack" }, N_MS_ACKS],
  [METRICS.mrDuplicates, undefined, N_DUPLICATES],
];

/** ECM byte 0: the D bit. */
const ECM_D = 0x04;
/** LISP type of an ECM, of a Map-Referral. */
const TYPE_ECM = 8;
const TYPE_MAP_REFERRAL = 6;
/** Largest ECM this path rewrites (a longer one goes to the full path). */
const MAX_ECM = 2048;

/** What the path needs from the resolver (roles/mr.ts). */
export interface DdtFastPathOptions {
  /** The control port: sends, and takes what this path does not. */
  readonly control: ControlPlane;
  readonly counters: Counters;
  readonly logger: Logger;
  /** Port of the map-servers' control port. */
  readonly port: number;
  /** Milliseconds to wait for the map-server's Map-Referral. */
  readonly timeoutMs: number;
  /** Most requests waiting here at once; more go to the full path (which has a limit too). */
  readonly maxWaiting: number;
  /** Whether `address` may send a request now (the rate limit), or undefined: no limit. */
  readonly allow: ((address: string) => boolean) | undefined;
  /** The RLOCs of the unexpired cached MS-REFERRAL covering the host prefix `eid`, or undefined. */
  readonly msReferral: (eid: Prefix) => readonly string[] | undefined;
  /** The RLOC of `rlocs` to ask first (not suspect, not ourselves), or undefined. */
  readonly first: (rlocs: readonly string[]) => string | undefined;
  /** `rloc` did not answer in time. */
  readonly timedOut: (rloc: string) => void;
  /** The walk for the ITR's request (counted already), never with the ITR's nonce. */
  readonly walk: (r: Received) => void;
}

/** A request waiting for its map-server's Map-Referral. */
interface Waiting {
  hi: number;
  lo: number;
  /** The ITR's datagram (the transport's copy, ours to keep). */
  data: Uint8Array;
  from: Peer;
  rloc: string;
  timer: WheelTimer<Waiting> | undefined;
}

/** The cached path (see the module notes). */
export class DdtFastPath {
  readonly #o: DdtFastPathOptions;
  readonly #view = new MapRequestView();
  readonly #eid4: { -readonly [K in keyof Prefix]: Prefix[K] } = {
    iid: 0,
    family: "ipv4",
    bytes: new Uint8Array(4),
    len: 32,
  };
  readonly #eid6: { -readonly [K in keyof Prefix]: Prefix[K] } = {
    iid: 0,
    family: "ipv6",
    bytes: new Uint8Array(16),
    len: 128,
  };
  readonly #out = new Uint8Array(MAX_ECM);
  /** Waiting requests by {@link nonceKey} (nonces checked in full). */
  readonly #waiting = new Map<number, Waiting>();
  readonly #free: Waiting[] = [];
  readonly #peers = new Map<string, Peer>();
  readonly #wheel: TimerWheel<Waiting>;

  /** What this path counts, by `N_*` index: added to the series of {@link COUNTED}. */
  readonly #n = new Float64Array(4);

  /** The path over `options`. */
  constructor(options: DdtFastPathOptions) {
    this.#o = options;
    this.#wheel = new TimerWheel((w) => this.#expired(w));
    const n = this.#n;
    for (const [metric, labels, i] of COUNTED) options.counters.addend(metric, () => n[i]!, labels);
  }

  /** Requests waiting for their MS-ACK. */
  get size(): number {
    return this.#waiting.size;
  }

  /** Whether a request with the ITR's `nonce` waits here. */
  has(nonce: bigint): boolean {
    const hi = Number(nonce >> 32n);
    const lo = Number(nonce & 0xffffffffn);
    const w = this.#waiting.get(nonceKey(hi, lo));
    return w !== undefined && w.hi === hi && w.lo === lo;
  }

  /** Stops the timers; what waits is forgotten. */
  close(): void {
    this.#wheel.close();
    this.#waiting.clear();
  }

  /** One datagram from the control socket: handled here, or given to core/control.ts. */
  receive(data: Uint8Array, from: Peer): void {
    const type = data.length > 0 ? data[0]! >>> 4 : 0;
    if (type === TYPE_MAP_REFERRAL) {
      if (!this.#referral(data, from)) this.#o.control.receive(data, from);
    } else if (type !== TYPE_ECM || !this.#request(data, from)) {
      this.#o.control.receive(data, from);
    }
  }

  #request(b: Uint8Array, from: Peer): boolean {
    const v = this.#view;
    const end = b.length;
    if (end > MAX_ECM || !scanMapRequest(b, 0, end, v, 3) || v.ddt || v.innerTtl <= 1) {
      return false;
    }
    const o = this.#o;
    const eid = v.eidFamily === 4 ? this.#eid4 : this.#eid6;
    eid.iid = v.iid;
    const bytes = eid.bytes;
    for (let i = 0; i < bytes.length; i++) bytes[i] = b[v.eidAddress + i]!;
    const rlocs = o.msReferral(eid);
    if (rlocs === undefined) return false;
    const n = v.nonce;
    const hi = readU32(b, n);
    const lo = readU32(b, n + 4);
    const key = nonceKey(hi, lo);
    const same = this.#waiting.get(key);
    if (same !== undefined) {
      // The ITR's retransmission joins its request; another ITR with that nonce: the walk's.
      if (same.hi !== hi || same.lo !== lo || same.from.address !== from.address) return false;
      if (o.allow !== undefined && !o.allow(from.address)) return false;
      const n = this.#n;
      n[N_REQUESTS]!++;
      n[N_DUPLICATES]!++;
      return true;
    }
    const rloc = o.first(rlocs);
    if (rloc === undefined || this.#waiting.size >= o.maxWaiting) return false;
    // The rate limit last: what goes to the full path is taken there.
    if (o.allow !== undefined && !o.allow(from.address)) return false;
    const out = this.#out;
    if (!writeForward(b, 0, end, v.innerTtl - 1, out, 0)) return false;
    out[0] = out[0]! | ECM_D;
    this.#n[N_REQUESTS]!++;
    this.#n[N_SENT]!++;
    o.control.send(out.subarray(0, end), this.#peer(rloc));
    const w = this.#free.pop() ?? { hi, lo, data: b, from, rloc, timer: undefined };
    w.hi = hi;
    w.lo = lo;
    w.data = b;
    w.from = from;
    w.rloc = rloc;
    this.#waiting.set(key, w);
    w.timer = this.#wheel.add(w, o.timeoutMs);
    return true;
  }

  #peer(rloc: string): Peer {
    let p = this.#peers.get(rloc);
    if (p === undefined) {
      if (this.#peers.size >= 1024) this.#peers.clear();
      p = { address: rloc, port: this.#o.port };
      this.#peers.set(rloc, p);
    }
    return p;
  }

  /** A Map-Referral: taken when it answers a waiting request from the RLOC asked. */
  #referral(b: Uint8Array, from: Peer): boolean {
    // Header (12 bytes), then the first record: TTL (4), referral count,
    // mask length, ACT|A|I (RFC 8111 §6.4).
    if (b.length < 24 || b[3] === 0) return false;
    const hi = readU32(b, 4);
    const lo = readU32(b, 8);
    const key = nonceKey(hi, lo);
    const w = this.#waiting.get(key);
    if (w === undefined || w.hi !== hi || w.lo !== lo) return false;
    if (from.address !== w.rloc && canonicalIp(from.address) !== canonicalIp(w.rloc)) {
      return false;
    }
    this.#done(key, w);
    const c = this.#o.counters;
    const action = b[18]! >>> 5;
    if (action === REFERRAL_ACTION.MS_ACK) {
      this.#n[N_MS_ACKS]!++;
    } else {
      c.inc(METRICS.controlMessagesIn, { type: "map-referral" });
      c.inc(METRICS.mrReferrals, { action: referralActionName(action) });
      // Not trusted on the ITR's nonce: the set is asked again with our own.
      if (
        action !== REFERRAL_ACTION.MS_NOT_REGISTERED && action !== REFERRAL_ACTION.NOT_AUTHORITATIVE
      ) {
        c.inc(METRICS.mrDropped, { reason: "referral-to-itr-nonce" });
      }
      this.#walk(w);
    }
    this.#release(w);
    return true;
  }

  #done(key: number, w: Waiting): void {
    this.#waiting.delete(key);
    if (w.timer !== undefined) this.#wheel.cancel(w.timer);
    w.timer = undefined;
  }

  #release(w: Waiting): void {
    w.data = EMPTY;
    if (this.#free.length < 1024) this.#free.push(w);
  }

  /** Gives `w` to the walk, parsed (read in place already: it parses). */
  #walk(w: Waiting): void {
    let r: Received;
    try {
      const m = parseControlMessage(w.data);
      if (m.type !== "ecm") return;
      const message = parseControlMessage(m.msg.payload);
      r = {
        message,
        bytes: m.msg.payload,
        from: w.from,
        ecm: m.msg,
        via: "control",
        datagram: w.data,
      };
    } catch {
      return;
    }
    this.#o.walk(r);
  }

  #expired(w: Waiting): void {
    w.timer = undefined;
    this.#waiting.delete(nonceKey(w.hi, w.lo));
    const o = this.#o;
    o.counters.inc(METRICS.mrReferralTimeouts);
    o.logger.limited(`mr-timeout ${w.rloc}`, 60_000, "warn", "mr-ddt-node-timeout", {
      node: `${w.rloc}:${o.port}`,
    });
    o.timedOut(w.rloc);
    this.#walk(w);
    this.#release(w);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * `base` with every datagram it receives given to the cached path first
 * (`fast()`, once there is one), which gives on what it does not take.
 */
export function throughFastPath(
  base: ControlTransportFactory,
  fast: () => DdtFastPath | undefined,
): ControlTransportFactory {
  return (address, port, hooks) =>
    base(address, port, {
      ...hooks,
      receive: (d, from) => {
        const f = fast();
        if (f !== undefined) f.receive(d, from);
        else hooks.receive(d, from);
      },
    });
}
