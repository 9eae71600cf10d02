/**
 * Address and prefix text checks for the config, on top of wire/ip_text.ts.
 *
 * @module
 */

import { ipv4FromBytes, ipv4ToBytes, ipv6FromBytes, ipv6ToBytes } from "../wire/ip_text.ts";
import type { Prefix } from "./schema.ts";

/** An address in canonical text with its family. */
export interface ParsedAddress {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Canonical text: dotted quad, or RFC 5952 IPv6. */
  readonly text: string;
  /** The address bytes (4 or 16). */
  readonly bytes: Uint8Array;
}

/** Parses an IPv4 or IPv6 address; undefined if `text` is neither. */
export function parseAddress(text: string): ParsedAddress | undefined {
  const b4 = new Uint8Array(4);
  if (ipv4ToBytes(text, b4, 0)) {
    return { family: 4, text: ipv4FromBytes(b4, 0), bytes: b4 };
  }
  const b6 = new Uint8Array(16);
  if (ipv6ToBytes(text, b6, 0)) {
    return { family: 6, text: ipv6FromBytes(b6, 0), bytes: b6 };
  }
  return undefined;
}

/** True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
export function isLoopback(a: ParsedAddress): boolean {
  if (a.family === 4) return a.bytes[0] === 127;
  if (a.text === "::1") return true;
  return a.text.startsWith("::ffff:127.");
}

/** A prefix, or why the text is not one. */
export type PrefixResult =
  | { readonly ok: true; readonly prefix: Prefix }
  | { readonly ok: false; readonly reason: string };

const DIGITS = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Parses `addr/len`. Rejects a missing or out-of-range length and set host
 * bits (suggesting the network prefix the text probably meant).
 */
export function parsePrefix(text: string): PrefixResult {
  const slash = text.indexOf("/");
  const example = "like 10.0.0.0/24 or 2001:db8::/32";
  if (slash < 0) {
    const a = parseAddress(text);
    if (a !== undefined) {
      const host = a.family === 4 ? 32 : 128;
      return {
        ok: false,
        reason: `must be a prefix with a length, like ${a.text}/${host}`,
      };
    }
    return {
      ok: false,
      reason: `must be an IPv4 or IPv6 prefix ${example} (got "${text}")`,
    };
  }
  const a = parseAddress(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (a === undefined || !DIGITS.test(lenText)) {
    return {
      ok: false,
      reason: `must be an IPv4 or IPv6 prefix ${example} (got "${text}")`,
    };
  }
  const max = a.family === 4 ? 32 : 128;
  const length = Number(lenText);
  if (length > max) {
    return {
      ok: false,
      reason: `prefix length must be 0..${max} for IPv${a.family} (got ${length})`,
    };
  }
  const masked = a.bytes.slice();
  for (let bit = length; bit < max; bit++) {
    masked[bit >> 3]! &= ~(0x80 >> (bit & 7));
  }
  const network = a.family === 4 ? ipv4FromBytes(masked, 0) : ipv6FromBytes(masked, 0);
  if (network !== a.text) {
    return {
      ok: false,
      reason: `host bits set (did you mean ${network}/${length}?)`,
    };
  }
  return { ok: true, prefix: { family: a.family, address: a.text, length } };
}

/** True if `inner` lies within `outer` (same family, `outer` no longer). */
export function prefixCovers(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.length > inner.length) {
    return false;
  }
  const o = parseAddress(outer.address)!.bytes;
  const i = parseAddress(inner.address)!.bytes;
  for (let bit = 0; bit < outer.length; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((o[bit >> 3]! & m) !== (i[bit >> 3]! & m)) return false;
  }
  return true;
}

const IFNAME_BAD = /[\s/:]/;
const utf8 = new TextEncoder();

/** True for a Linux interface name: 1..15 bytes, no whitespace, '/' or ':'. */
export function isInterfaceName(name: string): boolean {
  const bytes = utf8.encode(name).length;
  return bytes >= 1 && bytes <= 15 && !IFNAME_BAD.test(name) &&
    name !== "." && name !== "..";
}
