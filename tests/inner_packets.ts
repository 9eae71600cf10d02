/**
 * Inner IPv4/IPv6 TCP and UDP packets built by hand for the offload tests
 * (dataplane/coalesce_test.ts, dataplane/worker tests), with their own
 * RFC 1071 checksum, independent of wire/: {@link naiveSum},
 * {@link tcpSegment}, {@link udpDatagram}, {@link checksumOk}, and
 * {@link readIovecs} to read back what a TUN write would have taken.
 *
 * @module
 */

/** RFC 1071, one 16-bit word at a time (not complemented). */
export function naiveSum(b: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) {
    s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Big-endian 16 bits at `o`. */
export const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
/** Big-endian 32 bits at `o`. */
export const be32 = (b: Uint8Array, o: number): number =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

function put32(b: Uint8Array, o: number, v: number): void {
  put16(b, o, Math.floor(v / 65536) & 0xffff);
  put16(b, o + 2, v & 0xffff);
}

/** The pseudo-header sum of IP packet `p` for `proto` and transport length `l4len`. */
export function pseudoSum(p: Uint8Array, proto: number, l4len: number): number {
  return p[0]! >>> 4 === 4 ? naiveSum(p, 12, 20, proto + l4len) : naiveSum(p, 8, 40, proto + l4len);
}

/** Whether the IPv4 header (if any) and TCP/UDP checksums of the whole packet `p` are right. */
export function checksumOk(p: Uint8Array): boolean {
  const v4 = p[0]! >>> 4 === 4;
  const iphl = v4 ? (p[0]! & 0x0f) * 4 : 40;
  if (v4 && naiveSum(p, 0, iphl) !== 0xffff) return false;
  const proto = v4 ? p[9]! : p[6]!;
  return naiveSum(p, iphl, p.length, pseudoSum(p, proto, p.length - iphl)) === 0xffff;
}

/** What a flow's packets share. */
export interface Flow {
  readonly v6: boolean;
  /** Source port (the flows of a test differ by it). */
  readonly sport: number;
  readonly dport?: number;
  /** IPv4 TTL / IPv6 hop limit. */
  readonly ttl?: number;
  readonly tos?: number;
}

/** A TCP segment's own fields. */
export interface Segment {
  readonly seq: number;
  readonly payload: number;
  /** Payload bytes start from this pattern seed (default: the sequence number). */
  readonly seed?: number;
  readonly flags?: number;
  readonly ack?: number;
  readonly window?: number;
  /** IPv4 identification. */
  readonly id?: number;
  /** TCP options (a multiple of 4 bytes; default a 12-byte timestamp block). */
  readonly options?: Uint8Array;
  /** Leave the checksum wrong. */
  readonly badChecksum?: boolean;
}

const TIMESTAMPS = Uint8Array.from([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]);

function ipHeader(f: Flow, p: Uint8Array, proto: number, id: number): number {
  const len = p.length;
  if (f.v6) {
    p[0] = 0x60 | ((f.tos ?? 0) >>> 4);
    p[1] = ((f.tos ?? 0) & 0x0f) << 4;
    put16(p, 4, len - 40);
    p[6] = proto;
    p[7] = f.ttl ?? 64;
    p.set([0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 8);
    p.set([0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 24);
    return 40;
  }
  p[0] = 0x45;
  p[1] = f.tos ?? 0;
  put16(p, 2, len);
  put16(p, 4, id & 0xffff);
  p[6] = 0x40;
  p[8] = f.ttl ?? 64;
  p[9] = proto;
  p.set([10, 1, 0, 10], 12);
  p.set([10, 2, 0, 10], 16);
  put16(p, 10, ~naiveSum(p, 0, 20) & 0xffff);
  return 20;
}

/** The payload byte at sequence position `k` of a stream seeded with `seed`. */
export function patternByte(seed: number, k: number): number {
  return ((seed + k) * 2654435761 >>> 24) & 0xff;
}

/** A whole, valid TCP segment of `f` (unless `badChecksum`). */
export function tcpSegment(f: Flow, s: Segment): Uint8Array {
  const opts = s.options ?? TIMESTAMPS;
  const iphl = f.v6 ? 40 : 20;
  const thl = 20 + opts.length;
  const p = new Uint8Array(iphl + thl + s.payload);
  ipHeader(f, p, 6, s.id ?? 1000);
  const t = iphl;
  put16(p, t, f.sport);
  put16(p, t + 2, f.dport ?? 5201);
  put32(p, t + 4, s.seq >>> 0);
  put32(p, t + 8, s.ack ?? 0x01020304);
  p[t + 12] = (thl >>> 2) << 4;
  p[t + 13] = s.flags ?? 0x10;
  put16(p, t + 14, s.window ?? 502);
  p.set(opts, t + 20);
  const seed = s.seed ?? s.seq;
  for (let k = 0; k < s.payload; k++) p[t + thl + k] = patternByte(seed, k);
  const c = ~naiveSum(p, t, p.length, pseudoSum(p, 6, p.length - t)) & 0xffff;
  put16(p, t + 16, s.badChecksum ? c ^ 0x0101 : c);
  return p;
}

/** A whole, valid UDP datagram of `f` with `payload` bytes from `seed`. */
export function udpDatagram(f: Flow, payload: number, seed: number, id = 2000): Uint8Array {
  const iphl = f.v6 ? 40 : 20;
  const p = new Uint8Array(iphl + 8 + payload);
  ipHeader(f, p, 17, id);
  put16(p, iphl, f.sport);
  put16(p, iphl + 2, f.dport ?? 5201);
  put16(p, iphl + 4, 8 + payload);
  for (let k = 0; k < payload; k++) p[iphl + 8 + k] = patternByte(seed, k);
  const c = ~naiveSum(p, iphl, p.length, pseudoSum(p, 17, p.length - iphl)) & 0xffff;
  put16(p, iphl + 6, c === 0 ? 0xffff : c);
  return p;
}

/** The bytes `count` iovecs (struct iovec at `iov[0...]`) point at, concatenated (needs --allow-ffi). */
export function readIovecs(iov: Uint8Array, count: number): Uint8Array {
  const v = new DataView(iov.buffer, iov.byteOffset, iov.byteLength);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let k = 0; k < count; k++) {
    const addr = v.getBigUint64(k * 16, true);
    const len = Number(v.getBigUint64(k * 16 + 8, true));
    const ptr = Deno.UnsafePointer.create(addr)!;
    const part = new Uint8Array(new Deno.UnsafePointerView(ptr).getArrayBuffer(len)).slice();
    parts.push(part);
    total += len;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
