/**
 * Text forms of IPv4, IPv6 and MAC addresses, to and from their wire bytes.
 *
 * - IPv4: strict dotted quad, RFC 791 / RFC 6943 §3.1.1: exactly four
 *   decimal parts 0..255, no leading zeros ("01.2.3.4" is rejected, since
 *   inet_aton would read it as octal), no signs, no spaces.
 * - IPv6: RFC 4291 §2.2 text (1..4 hex digits per group, case-insensitive,
 *   one "::", an optional trailing dotted quad); output is the RFC 5952
 *   canonical form. No zone ids ("%eth0") and no brackets.
 * - MAC: six two-digit hex bytes separated by ":" or "-" (not mixed);
 *   output is lowercase with ":".
 *
 * Parsers return `false` for invalid text and never throw; they loop over
 * `charCodeAt` without allocating so that they can sit on hot paths.
 *
 * @module
 */

const CH_0 = 48;
const CH_9 = 57;
const CH_DOT = 46;
const CH_COLON = 58;
const CH_DASH = 45;

/** Value of a hex digit, or -1. */
function hexValue(c: number): number {
  if (c >= CH_0 && c <= CH_9) return c - CH_0;
  const l = c | 0x20; // ASCII lowercase
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/**
 * Parses `text[start, end)` as a strict dotted quad into `out[off, off+4)`.
 * Returns false (after possibly writing some bytes) if it is not one.
 */
function ipv4Range(
  text: string,
  start: number,
  end: number,
  out: Uint8Array,
  off: number,
): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= CH_0 && c <= CH_9) {
      if (digits === 1 && value === 0) return false; // leading zero
      value = value * 10 + (c - CH_0);
      if (value > 255) return false;
      digits++;
    } else if (c === CH_DOT) {
      if (digits === 0 || part === 3) return false;
      out[off + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  if (digits === 0 || part !== 3) return false;
  out[off + 3] = value;
  return true;
}

/**
 * Writes the 4 bytes of the dotted quad `text` into `out[off, off+4)`.
 * Returns false if `text` is not a strict dotted quad (four decimal parts
 * 0..255, no leading zeros beyond a lone "0"); `out` may then be partly
 * written.
 */
export function ipv4ToBytes(
  text: string,
  out: Uint8Array,
  off: number,
): boolean {
  if (text.length < 7 || text.length > 15) return false;
  return ipv4Range(text, 0, text.length, out, off);
}

/** Formats the 4 bytes at `b[off, off+4)` as a dotted quad. */
export function ipv4FromBytes(b: Uint8Array, off: number): string {
  return b[off]! + "." + b[off + 1]! + "." + b[off + 2]! + "." + b[off + 3]!;
}

const scratch4 = new Uint8Array(4);

/** True if `text` is a strict dotted quad (see `ipv4ToBytes`). */
export function isIPv4(text: string): boolean {
  return ipv4ToBytes(text, scratch4, 0);
}

/**
 * Writes the 16 bytes of the IPv6 address `text` into `out[off, off+16)`.
 * Accepts RFC 4291 §2.2 forms: eight groups of 1..4 hex digits, one "::"
 * standing for one or more zero groups, and a trailing dotted quad in place
 * of the last two groups ("::ffff:1.2.3.4"). Returns false for anything
 * else (zone ids, brackets, a prefix length); `out` may then be partly
 * written.
 */
export function ipv6ToBytes(
  text: string,
  out: Uint8Array,
  off: number,
): boolean {
  const n = text.length;
  if (n < 2 || n > 45) return false;
  let i = 0;
  let g = 0; // groups written
  let gap = -1; // group index where "::" stands
  if (text.charCodeAt(0) === CH_COLON) {
    if (text.charCodeAt(1) !== CH_COLON) return false;
    gap = 0;
    i = 2;
    if (i === n) {
      out.fill(0, off, off + 16);
      return true;
    }
  }
  for (;;) {
    // One group (or a trailing dotted quad) starts at i.
    const start = i;
    let value = 0;
    let digits = 0;
    for (; i < n; i++) {
      const v = hexValue(text.charCodeAt(i));
      if (v < 0) break;
      value = (value << 4) | v;
      digits++;
    }
    if (i < n && text.charCodeAt(i) === CH_DOT) {
      // Embedded IPv4 takes the last two groups; it must end the text.
      if (g > 6) return false;
      if (!ipv4Range(text, start, n, out, off + g * 2)) return false;
      g += 2;
      break;
    }
    if (digits === 0 || digits > 4 || g === 8) return false;
    out[off + g * 2] = value >>> 8;
    out[off + g * 2 + 1] = value & 0xff;
    g++;
    if (i === n) break;
    if (text.charCodeAt(i) !== CH_COLON) return false;
    i++;
    if (i === n) return false; // trailing single ":"
    if (text.charCodeAt(i) === CH_COLON) {
      if (gap >= 0) return false; // second "::"
      gap = g;
      i++;
      if (i === n) break; // trailing "::"
    }
  }
  if (gap < 0) return g === 8;
  if (g > 7) return false; // "::" must stand for at least one group
  // Move the groups after the gap to the end and zero the gap.
  const tail = (g - gap) * 2;
  const from = off + gap * 2;
  out.copyWithin(off + 16 - tail, from, from + tail);
  out.fill(0, from, off + 16 - tail);
  return true;
}

const HEX = "0123456789abcdef";

/** One group, lowercase, no leading zeros. */
function groupText(v: number): string {
  if (v < 0x10) return HEX[v]!;
  if (v < 0x100) return HEX[v >>> 4]! + HEX[v & 15]!;
  if (v < 0x1000) return HEX[v >>> 8]! + HEX[(v >>> 4) & 15]! + HEX[v & 15]!;
  return HEX[v >>> 12]! + HEX[(v >>> 8) & 15]! + HEX[(v >>> 4) & 15]! +
    HEX[v & 15]!;
}

/**
 * Formats the 16 bytes at `b[off, off+16)` in the RFC 5952 canonical form:
 * lowercase hex, no leading zeros, the longest run of two or more zero
 * groups shortened to "::" (the first such run on a tie). IPv4-mapped
 * addresses (::ffff:0:0/96) use the mixed form of RFC 5952 §5:
 * "::ffff:192.0.2.1".
 */
export function ipv6FromBytes(b: Uint8Array, off: number): string {
  // IPv4-mapped: 80 zero bits, 16 one bits.
  if (
    b[off + 10] === 0xff && b[off + 11] === 0xff &&
    (b[off]! | b[off + 1]! | b[off + 2]! | b[off + 3]! | b[off + 4]! |
        b[off + 5]! | b[off + 6]! | b[off + 7]! | b[off + 8]! |
        b[off + 9]!) === 0
  ) {
    return "::ffff:" + ipv4FromBytes(b, off + 12);
  }
  let bestStart = -1;
  let bestLen = 1; // a run must be at least 2 groups
  let runStart = -1;
  for (let g = 0; g < 8; g++) {
    const zero = (b[off + g * 2]! | b[off + g * 2 + 1]!) === 0;
    if (zero) {
      if (runStart < 0) runStart = g;
      const len = g - runStart + 1;
      if (len > bestLen) {
        bestLen = len;
        bestStart = runStart;
      }
    } else {
      runStart = -1;
    }
  }
  let s = "";
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      s += "::";
      g += bestLen - 1;
      continue;
    }
    if (s.length > 0 && g !== bestStart + bestLen) s += ":";
    s += groupText((b[off + g * 2]! << 8) | b[off + g * 2 + 1]!);
  }
  return s;
}

const scratch16 = new Uint8Array(16);

/** True if `text` is an IPv6 address that `ipv6ToBytes` accepts. */
export function isIPv6(text: string): boolean {
  return ipv6ToBytes(text, scratch16, 0);
}

/**
 * `text` as one canonical IP address text: a strict dotted quad as is, an
 * IPv6 address in RFC 5952 form (`2001:DB8:0::1` gives `2001:db8::1`), so
 * that two texts of one address compare equal. Undefined for anything else.
 */
export function canonicalIp(text: string): string | undefined {
  if (isIPv4(text)) return text;
  if (ipv6ToBytes(text, scratch16, 0)) return ipv6FromBytes(scratch16, 0);
  return undefined;
}

/**
 * Writes the 6 bytes of the MAC address `text` ("aa:bb:cc:dd:ee:ff" or
 * "aa-bb-cc-dd-ee-ff", any case, exactly two hex digits per byte, one kind
 * of separator) into `out[off, off+6)`. Returns false for anything else.
 */
export function macToBytes(
  text: string,
  out: Uint8Array,
  off: number,
): boolean {
  if (text.length !== 17) return false;
  const sep = text.charCodeAt(2);
  if (sep !== CH_COLON && sep !== CH_DASH) return false;
  for (let k = 0; k < 6; k++) {
    const p = k * 3;
    const hi = hexValue(text.charCodeAt(p));
    const lo = hexValue(text.charCodeAt(p + 1));
    if (hi < 0 || lo < 0) return false;
    if (k < 5 && text.charCodeAt(p + 2) !== sep) return false;
    out[off + k] = (hi << 4) | lo;
  }
  return true;
}

/** Formats the 6 bytes at `b[off, off+6)` as lowercase "aa:bb:cc:dd:ee:ff". */
export function macFromBytes(b: Uint8Array, off: number): string {
  let s = "";
  for (let k = 0; k < 6; k++) {
    const v = b[off + k]!;
    if (k > 0) s += ":";
    s += HEX[v >>> 4]! + HEX[v & 15]!;
  }
  return s;
}
