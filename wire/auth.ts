/**
 * SHA-1, SHA-256, HMAC and the LISP message authentication built on them.
 *
 * Map-Register, Map-Notify, Map-Notify-Ack (RFC 9301 §5.6, §5.7) and
 * Info-Request/Info-Reply (NAT traversal draft) share one header layout:
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Type=x |       type-specific flags          |  Record Count   |  0
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                         Nonce . . .                           |  4
 * |                         . . . Nonce                           |  8
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |            Key ID             |  Authentication Data Length   | 12
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                     Authentication Data                       ~ 16
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * The authentication data is the HMAC of the whole message computed with
 * the authentication data field set to zero. Deployed peers (OOR,
 * lispers.net, OpenDaylight) put the full digest on the wire, not the
 * truncated -96/-128 form the key ID names: 20 bytes for key ID 1, 32 bytes
 * for key ID 2.
 *
 * Everything here is synchronous and pure TypeScript (no WebCrypto, no
 * `node:crypto`), so it runs in a browser. Scratch buffers live at module
 * level: the functions are not reentrant, which is fine for synchronous JS.
 *
 * @module
 */

// ---------------------------------------------------------------------------
// Field table (RFC 9301 §5.6 Map-Register; same offsets in Map-Notify,
// Map-Notify-Ack §5.7 and Info-Request/Info-Reply of the NAT traversal draft).

/** Byte offset of the 16-bit Key ID field. */
export const AUTH_KEY_ID_OFFSET = 12;
/** Byte offset of the 16-bit Authentication Data Length field. */
export const AUTH_LENGTH_OFFSET = 14;
/** Byte offset of the authentication data. */
export const AUTH_DATA_OFFSET = 16;

/** Key ID 0: no authentication (RFC 9301 §5.6). */
export const KEY_ID_NONE = 0;
/** Key ID 1: HMAC-SHA-1-96 by name; the full 20-byte digest on the wire. */
export const KEY_ID_HMAC_SHA1_96 = 1;
/** Key ID 2: HMAC-SHA-256-128 by name; the full 32-byte digest on the wire. */
export const KEY_ID_HMAC_SHA256_128 = 2;

/** Digest length of SHA-1, in bytes. */
export const SHA1_LENGTH = 20;
/** Digest length of SHA-256, in bytes. */
export const SHA256_LENGTH = 32;

/** Hash function names accepted wherever a key ID is. */
export type HashName = "sha1" | "sha256";

/**
 * Bytes of authentication data on the wire for a key ID: 0 for
 * {@link KEY_ID_NONE}, 20 for {@link KEY_ID_HMAC_SHA1_96}, 32 for
 * {@link KEY_ID_HMAC_SHA256_128}, `undefined` for a key ID we do not know.
 */
export function authDataLength(keyId: number): number | undefined {
  switch (keyId) {
    case KEY_ID_NONE:
      return 0;
    case KEY_ID_HMAC_SHA1_96:
      return SHA1_LENGTH;
    case KEY_ID_HMAC_SHA256_128:
      return SHA256_LENGTH;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------
// Hash cores. Both work on a state of 32-bit ints and 64-byte blocks.

const ALG_SHA1 = 0;
const ALG_SHA256 = 1;
type Alg = typeof ALG_SHA1 | typeof ALG_SHA256;

const BLOCK = 64;

const SHA1_IV = new Int32Array([
  0x67452301,
  0xefcdab89 | 0,
  0x98badcfe | 0,
  0x10325476,
  0xc3d2e1f0 | 0,
]);

const SHA256_IV = new Int32Array([
  0x6a09e667,
  0xbb67ae85 | 0,
  0x3c6ef372,
  0xa54ff53a | 0,
  0x510e527f,
  0x9b05688c | 0,
  0x1f83d9ab,
  0x5be0cd19,
]);

const K256 = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

/** Message schedule scratch (80 words covers SHA-1; SHA-256 uses 64). */
const W = new Int32Array(80);
/** Working hash state (8 words covers SHA-256; SHA-1 uses 5). */
const STATE = new Int32Array(8);
/** One or two blocks for masked copies and final padding. */
const PAD = new Uint8Array(2 * BLOCK);
/** Inner digest of an HMAC, hashed again by the outer pass. */
const INNER = new Uint8Array(SHA256_LENGTH);
/** Computed MAC for verification. */
const EXPECT = new Uint8Array(SHA256_LENGTH);

/** SHA-1 compression of the 64-byte block at `b[p]` into `h` (FIPS 180-4 §6.1.2). */
function compress1(h: Int32Array, b: Uint8Array, p: number): void {
  const w = W;
  for (let i = 0; i < 16; i++, p += 4) {
    w[i] = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }
  for (let i = 16; i < 80; i++) {
    const x = w[i - 3]! ^ w[i - 8]! ^ w[i - 14]! ^ w[i - 16]!;
    w[i] = (x << 1) | (x >>> 31);
  }
  let a = h[0]!, bb = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!;
  let i = 0;
  for (; i < 20; i++) {
    const t = (((a << 5) | (a >>> 27)) + ((bb & c) | (~bb & d)) + e + w[i]! +
      0x5a827999) | 0;
    e = d;
    d = c;
    c = (bb << 30) | (bb >>> 2);
    bb = a;
    a = t;
  }
  for (; i < 40; i++) {
    const t = (((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + e + w[i]! +
      0x6ed9eba1) | 0;
    e = d;
    d = c;
    c = (bb << 30) | (bb >>> 2);
    bb = a;
    a = t;
  }
  for (; i < 60; i++) {
    const t = (((a << 5) | (a >>> 27)) + ((bb & c) | (bb & d) | (c & d)) + e +
      w[i]! - 0x70e44324) | 0; // 0x8f1bbcdc
    e = d;
    d = c;
    c = (bb << 30) | (bb >>> 2);
    bb = a;
    a = t;
  }
  for (; i < 80; i++) {
    const t = (((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + e + w[i]! -
      0x359d3e2a) | 0; // 0xca62c1d6
    e = d;
    d = c;
    c = (bb << 30) | (bb >>> 2);
    bb = a;
    a = t;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + bb) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
}

/** SHA-256 compression of the 64-byte block at `b[p]` into `h` (FIPS 180-4 §6.2.2). */
function compress256(h: Int32Array, b: Uint8Array, p: number): void {
  const w = W;
  const k = K256;
  for (let i = 0; i < 16; i++, p += 4) {
    w[i] = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!;
    const y = w[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^
      (y >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = h[0]!, b1 = h[1]!, c = h[2]!, d = h[3]!;
  let e = h[4]!, f = h[5]!, g = h[6]!, hh = h[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^
      ((e >>> 25) | (e << 7));
    const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + k[i]! + w[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^
      ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b1) ^ (a & c) ^ (b1 & c))) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b1;
    b1 = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + b1) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
  h[5] = (h[5]! + f) | 0;
  h[6] = (h[6]! + g) | 0;
  h[7] = (h[7]! + hh) | 0;
}

/**
 * Continues a hash whose state `h` has already absorbed `prefix` bytes (a
 * multiple of 64) with `data[start, end)`, reading bytes in `[zs, ze)`
 * (offsets into `data`) as zero, and applies the final padding. The
 * digest is left in `h`.
 */
function finish(
  alg: Alg,
  h: Int32Array,
  prefix: number,
  data: Uint8Array,
  start: number,
  end: number,
  zs: number,
  ze: number,
): void {
  const pad = PAD;
  const sha1 = alg === ALG_SHA1;
  let p = start;
  for (; p + BLOCK <= end; p += BLOCK) {
    if (p < ze && p + BLOCK > zs) {
      for (let j = 0, q = p; j < BLOCK; j++, q++) {
        pad[j] = q >= zs && q < ze ? 0 : data[q]!;
      }
      if (sha1) compress1(h, pad, 0);
      else compress256(h, pad, 0);
    } else if (sha1) compress1(h, data, p);
    else compress256(h, data, p);
  }
  const rest = end - p;
  for (let j = 0, q = p; j < rest; j++, q++) {
    pad[j] = q >= zs && q < ze ? 0 : data[q]!;
  }
  pad[rest] = 0x80;
  const last = rest < 56 ? 0 : BLOCK;
  pad.fill(0, rest + 1, last + 56);
  const total = prefix + (end - start);
  const hi = Math.floor(total / 0x20000000);
  const lo = (total * 8) >>> 0;
  pad[last + 56] = hi >>> 24;
  pad[last + 57] = hi >>> 16;
  pad[last + 58] = hi >>> 8;
  pad[last + 59] = hi;
  pad[last + 60] = lo >>> 24;
  pad[last + 61] = lo >>> 16;
  pad[last + 62] = lo >>> 8;
  pad[last + 63] = lo;
  if (sha1) {
    compress1(h, pad, 0);
    if (last) compress1(h, pad, BLOCK);
  } else {
    compress256(h, pad, 0);
    if (last) compress256(h, pad, BLOCK);
  }
}

/** Writes the first `n` bytes of the big-endian digest in `h` to `out[off]`. */
function store(h: Int32Array, n: number, out: Uint8Array, off: number): void {
  for (let i = 0; i < n; i++) {
    out[off + i] = h[i >>> 2]! >>> (24 - ((i & 3) << 3));
  }
}

const encoder = new TextEncoder();

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? encoder.encode(data) : data;
}

function digest(alg: Alg, data: Uint8Array | string): Uint8Array {
  const bytes = toBytes(data);
  const sha1 = alg === ALG_SHA1;
  STATE.set(sha1 ? SHA1_IV : SHA256_IV);
  finish(alg, STATE, 0, bytes, 0, bytes.length, 0, 0);
  const out = new Uint8Array(sha1 ? SHA1_LENGTH : SHA256_LENGTH);
  store(STATE, out.length, out, 0);
  return out;
}

/** SHA-1 digest (20 bytes) of `data`; a string is hashed as UTF-8. */
export function sha1(data: Uint8Array | string): Uint8Array {
  return digest(ALG_SHA1, data);
}

/** SHA-256 digest (32 bytes) of `data`; a string is hashed as UTF-8. */
export function sha256(data: Uint8Array | string): Uint8Array {
  return digest(ALG_SHA256, data);
}

// ---------------------------------------------------------------------------
// HMAC (RFC 2104)

function algOf(keyId: number | HashName): Alg {
  if (keyId === KEY_ID_HMAC_SHA1_96 || keyId === "sha1") return ALG_SHA1;
  if (keyId === KEY_ID_HMAC_SHA256_128 || keyId === "sha256") return ALG_SHA256;
  throw new RangeError(`unsupported key id or hash: ${String(keyId)}`);
}

/**
 * An HMAC key prepared once: the hash states after absorbing the key XOR
 * ipad and the key XOR opad blocks are cached, so each MAC costs only the
 * message blocks plus two compressions. Build one per configured site key
 * and reuse it for every registration.
 */
export class HmacKey {
  /** The LISP key ID this key signs with: 1 (HMAC-SHA-1) or 2 (HMAC-SHA-256). */
  readonly keyId: number;
  /** The hash underneath. */
  readonly hash: HashName;
  /** MAC length in bytes: 20 or 32 (the full digest). */
  readonly digestLength: number;
  #alg: Alg;
  #inner: Int32Array;
  #outer: Int32Array;

  /**
   * Prepares the inner and outer pad state of `key` for one hash.
   *
   * @param keyId `KEY_ID_HMAC_SHA1_96`, `KEY_ID_HMAC_SHA256_128`, `"sha1"` or `"sha256"`;
   *   anything else is a RangeError
   * @param key the shared secret; a string is taken as its UTF-8 bytes
   *   (the bytes OOR's `strlen`-based key handling uses for ASCII keys)
   */
  constructor(keyId: number | HashName, key: Uint8Array | string) {
    const alg = algOf(keyId);
    this.#alg = alg;
    const sha1 = alg === ALG_SHA1;
    this.keyId = sha1 ? KEY_ID_HMAC_SHA1_96 : KEY_ID_HMAC_SHA256_128;
    this.hash = sha1 ? "sha1" : "sha256";
    this.digestLength = sha1 ? SHA1_LENGTH : SHA256_LENGTH;
    let k = toBytes(key);
    if (k.length > BLOCK) k = digest(alg, k);
    const iv = sha1 ? SHA1_IV : SHA256_IV;
    const block = new Uint8Array(BLOCK);
    for (let i = 0; i < BLOCK; i++) block[i] = (k[i] ?? 0) ^ 0x36;
    this.#inner = iv.slice();
    if (sha1) compress1(this.#inner, block, 0);
    else compress256(this.#inner, block, 0);
    for (let i = 0; i < BLOCK; i++) block[i] = (k[i] ?? 0) ^ 0x5c;
    this.#outer = iv.slice();
    if (sha1) compress1(this.#outer, block, 0);
    else compress256(this.#outer, block, 0);
    block.fill(0);
  }

  /** The HMAC of `data`, as a new buffer of `digestLength` bytes. */
  mac(data: Uint8Array | string): Uint8Array {
    const bytes = toBytes(data);
    const out = new Uint8Array(this.digestLength);
    this.macInto(bytes, out);
    return out;
  }

  /**
   * Writes the HMAC of `data` to `out[outOffset, outOffset + digestLength)`,
   * reading the bytes of `data` in `[zeroStart, zeroEnd)` as zero without
   * touching them. `out` may overlap `data`: it is written only after
   * `data` has been read. Allocates nothing.
   */
  macInto(
    data: Uint8Array,
    out: Uint8Array,
    outOffset = 0,
    zeroStart = 0,
    zeroEnd = 0,
  ): void {
    const n = this.digestLength;
    if (outOffset < 0 || outOffset + n > out.length) {
      throw new RangeError(
        `macInto() needs ${n} bytes at offset ${outOffset}, buffer has ${out.length}`,
      );
    }
    this.macRangeInto(data, 0, data.length, out, outOffset, zeroStart, zeroEnd);
  }

  /**
   * Like {@link macInto} for the message at `data[start, end)` (a datagram
   * inside a receive batch); `zeroStart` and `zeroEnd` are offsets into
   * `data`. Allocates nothing.
   */
  macRangeInto(
    data: Uint8Array,
    start: number,
    end: number,
    out: Uint8Array,
    outOffset = 0,
    zeroStart = 0,
    zeroEnd = 0,
  ): void {
    const n = this.digestLength;
    if (start < 0 || end < start || end > data.length) {
      throw new RangeError(`macRangeInto(): [${start}, ${end}) is outside ${data.length} bytes`);
    }
    if (outOffset < 0 || outOffset + n > out.length) {
      throw new RangeError(
        `macRangeInto() needs ${n} bytes at offset ${outOffset}, buffer has ${out.length}`,
      );
    }
    const alg = this.#alg;
    const h = STATE;
    h.set(this.#inner);
    finish(alg, h, BLOCK, data, start, end, zeroStart, zeroEnd);
    store(h, n, INNER, 0);
    h.set(this.#outer);
    finish(alg, h, BLOCK, INNER, 0, n, 0, 0);
    store(h, n, out, outOffset);
  }
}

/**
 * One-shot HMAC of `data` under `key` with the hash named by a LISP key ID
 * (1 = SHA-1, 2 = SHA-256) or by name; the full digest is returned.
 */
export function hmac(
  keyId: number | HashName,
  key: Uint8Array | string,
  data: Uint8Array | string,
): Uint8Array {
  return new HmacKey(keyId, key).mac(data);
}

/**
 * Whether `a` and `b` hold the same bytes. Time depends only on the
 * lengths (which are not secret), never on where the contents differ.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// ---------------------------------------------------------------------------
// LISP message authentication

/**
 * Outcome of checking a message's authentication data, for counters:
 * - `"ok"`: the MAC matches;
 * - `"truncated"`: shorter than the 16-byte header plus the authentication
 *   data it announces;
 * - `"bad-key-id"`: key ID none or unknown, or not the one a prepared
 *   {@link HmacKey} was built for;
 * - `"bad-length"`: the Authentication Data Length is not the digest length
 *   of the key ID;
 * - `"mismatch"`: well-formed, but the MAC is wrong (wrong key or altered
 *   message).
 */
export type AuthStatus =
  | "ok"
  | "truncated"
  | "bad-key-id"
  | "bad-length"
  | "mismatch";

/** A shared secret as raw bytes, as a UTF-8 string, or prepared. */
export type AuthKey = Uint8Array | string | HmacKey;

/** The Key ID field of a message (bytes 12–13), or -1 if it is too short. */
export function authKeyId(message: Uint8Array): number {
  if (message.length < AUTH_DATA_OFFSET) return -1;
  return (message[AUTH_KEY_ID_OFFSET]! << 8) | message[AUTH_KEY_ID_OFFSET + 1]!;
}

/** The HmacKey for `keyId`, or a reason it cannot be had. */
function keyFor(keyId: number, key: AuthKey): HmacKey | "bad-key-id" {
  if (keyId !== KEY_ID_HMAC_SHA1_96 && keyId !== KEY_ID_HMAC_SHA256_128) {
    return "bad-key-id";
  }
  if (key instanceof HmacKey) {
    return key.keyId === keyId ? key : "bad-key-id";
  }
  return new HmacKey(keyId, key);
}

/**
 * Signs a Map-Register, Map-Notify, Map-Notify-Ack or Info message in place:
 * reads the Key ID and Authentication Data Length from the header, computes
 * the HMAC over the whole of `message` with the authentication field taken
 * as zero, and writes it into that field. `message` must be exactly the
 * message (header to last byte).
 *
 * Throws RangeError when the buffer is shorter than the header and the
 * announced authentication data, the key ID is none or unsupported (or
 * differs from a prepared key's), or the length field is not the key ID's
 * digest length.
 */
export function signAuthenticated(message: Uint8Array, key: AuthKey): void {
  if (message.length < AUTH_DATA_OFFSET) {
    throw new RangeError(
      `signAuthenticated() needs at least ${AUTH_DATA_OFFSET} bytes, got ${message.length}`,
    );
  }
  const keyId = authKeyId(message);
  const k = keyFor(keyId, key);
  if (k === "bad-key-id") {
    throw new RangeError(
      key instanceof HmacKey && authDataLength(keyId) !== undefined
        ? `message key id ${keyId} differs from the prepared key's ${key.keyId}`
        : `unsupported key id ${keyId}`,
    );
  }
  const len = (message[AUTH_LENGTH_OFFSET]! << 8) |
    message[AUTH_LENGTH_OFFSET + 1]!;
  if (len !== k.digestLength) {
    throw new RangeError(
      `authentication data length ${len} does not match key id ${keyId} (${k.digestLength})`,
    );
  }
  const end = AUTH_DATA_OFFSET + len;
  if (message.length < end) {
    throw new RangeError(
      `signAuthenticated() needs at least ${end} bytes, got ${message.length}`,
    );
  }
  k.macInto(message, message, AUTH_DATA_OFFSET, AUTH_DATA_OFFSET, end);
}

/**
 * Checks a message's authentication data and says why it fails. Never
 * throws and never modifies `message` (the field is read as zero, not
 * overwritten). The whole MAC is compared in constant time.
 */
export function authStatus(message: Uint8Array, key: AuthKey): AuthStatus {
  if (message.length < AUTH_DATA_OFFSET) return "truncated";
  const keyId = authKeyId(message);
  const k = keyFor(keyId, key);
  if (k === "bad-key-id") return k;
  const len = (message[AUTH_LENGTH_OFFSET]! << 8) |
    message[AUTH_LENGTH_OFFSET + 1]!;
  if (len !== k.digestLength) return "bad-length";
  const end = AUTH_DATA_OFFSET + len;
  if (message.length < end) return "truncated";
  const expect = EXPECT;
  k.macInto(message, expect, 0, AUTH_DATA_OFFSET, end);
  let diff = 0;
  for (let i = 0; i < len; i++) {
    diff |= expect[i]! ^ message[AUTH_DATA_OFFSET + i]!;
  }
  return diff === 0 ? "ok" : "mismatch";
}

/**
 * Whether a message's authentication data is the HMAC of the message under
 * `key`. False (never an exception) for a key ID that is none, unknown or
 * not the prepared key's, a length that does not fit the key ID, a message
 * too short, or a wrong MAC; {@link authStatus} says which.
 */
export function verifyAuthenticated(
  message: Uint8Array,
  key: AuthKey,
): boolean {
  return authStatus(message, key) === "ok";
}

/**
 * {@link authStatus} of the message at `bytes[start, end)` under a
 * prepared key, for a datagram read in place (a receive batch): no copy,
 * no allocation.
 */
export function authStatusAt(
  bytes: Uint8Array,
  start: number,
  end: number,
  key: HmacKey,
): AuthStatus {
  if (end - start < AUTH_DATA_OFFSET) return "truncated";
  const keyId = (bytes[start + AUTH_KEY_ID_OFFSET]! << 8) | bytes[start + AUTH_KEY_ID_OFFSET + 1]!;
  if (keyId !== key.keyId) return "bad-key-id";
  const len = (bytes[start + AUTH_LENGTH_OFFSET]! << 8) | bytes[start + AUTH_LENGTH_OFFSET + 1]!;
  if (len !== key.digestLength) return "bad-length";
  const data = start + AUTH_DATA_OFFSET;
  if (end < data + len) return "truncated";
  const expect = EXPECT;
  key.macRangeInto(bytes, start, end, expect, 0, data, data + len);
  let diff = 0;
  for (let i = 0; i < len; i++) diff |= expect[i]! ^ bytes[data + i]!;
  return diff === 0 ? "ok" : "mismatch";
}

/**
 * {@link signAuthenticated} of the message at `bytes[start, end)` with a
 * prepared key whose key ID and digest length the header already carries.
 * Allocates nothing. RangeError when they do not match.
 */
export function signAuthenticatedAt(
  bytes: Uint8Array,
  start: number,
  end: number,
  key: HmacKey,
): void {
  const keyId = (bytes[start + AUTH_KEY_ID_OFFSET]! << 8) | bytes[start + AUTH_KEY_ID_OFFSET + 1]!;
  const len = (bytes[start + AUTH_LENGTH_OFFSET]! << 8) | bytes[start + AUTH_LENGTH_OFFSET + 1]!;
  if (keyId !== key.keyId || len !== key.digestLength || end - start < AUTH_DATA_OFFSET + len) {
    throw new RangeError(
      `signAuthenticatedAt(): key id ${keyId} / length ${len} do not fit the key`,
    );
  }
  const data = start + AUTH_DATA_OFFSET;
  key.macRangeInto(bytes, start, end, bytes, data, data, data + len);
}
