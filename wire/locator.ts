/**
 * Locator records (RFC 9301 §5.4), also used as the Ref entries of a
 * Map-Referral record (RFC 8111 §6.4).
 *
 * @module
 */

import { checkUint, Reader, target, Writer } from "./cursor.ts";
import { type Address, addressLength, readAddress, writeAddress } from "./address.ts";

// RFC 9301 §5.4, Locator record:
//   Priority (1) | Weight (1) | M Priority (1) | M Weight (1)
//   Unused Flags (13 bits) | L | p | R (16 bits) | Loc-AFI + Locator
/** Fixed part of a locator record before the Loc-AFI. */
const LOCATOR_FIXED = 6;
/** L bit: the locator is local to the sender (RFC 9301 §5.4). */
const FLAG_L = 0x4;
/** p bit: this record answers an RLOC-probe (RFC 9301 §5.4). */
const FLAG_P = 0x2;
/** R bit: the locator is reachable from the sender's point of view. */
const FLAG_R = 0x1;

/** One locator (RLOC) of a mapping, with its selection policy. */
export interface LocatorRecord {
  /** Unicast priority; lower is preferred, 255 means "do not use". */
  readonly priority: number;
  /** Unicast weight among locators of equal priority (0..100 by convention). */
  readonly weight: number;
  /** Multicast priority. */
  readonly mPriority: number;
  /** Multicast weight. */
  readonly mWeight: number;
  /** L bit: the locator belongs to the sender. */
  readonly local: boolean;
  /** p bit: the record is a reply to an RLOC-probe. */
  readonly probed: boolean;
  /** R bit: the locator is reachable. */
  readonly reachable: boolean;
  /** The locator's address (IPv4, IPv6 or an LCAF such as ELP or NAT traversal). */
  readonly address: Address;
}

/**
 * A unicast locator record for `address`: priority and weight (default 1
 * and 100), multicast priority 255 (unused) and weight 0, the R bit set,
 * and the L and p bits as `flags` say (default clear).
 */
export function locatorRecord(
  address: Address,
  priority = 1,
  weight = 100,
  flags: { readonly local?: boolean; readonly probed?: boolean } = {},
): LocatorRecord {
  return {
    priority,
    weight,
    mPriority: 255,
    mWeight: 0,
    local: flags.local ?? false,
    probed: flags.probed ?? false,
    reachable: true,
    address,
  };
}

/** Reads one locator record. */
export function readLocator(r: Reader, field = "locator"): LocatorRecord {
  r.need(LOCATOR_FIXED, field);
  const b = r.bytes;
  const p = r.pos;
  const flags = b[p + 5]!;
  r.pos = p + LOCATOR_FIXED;
  return {
    priority: b[p]!,
    weight: b[p + 1]!,
    mPriority: b[p + 2]!,
    mWeight: b[p + 3]!,
    local: (flags & FLAG_L) !== 0,
    probed: (flags & FLAG_P) !== 0,
    reachable: (flags & FLAG_R) !== 0,
    address: readAddress(r, `${field}.address`),
  };
}

/** Writes one locator record. */
export function writeLocator(w: Writer, l: LocatorRecord): void {
  checkUint(l.priority, 0xff, "locator priority");
  checkUint(l.weight, 0xff, "locator weight");
  checkUint(l.mPriority, 0xff, "locator m-priority");
  checkUint(l.mWeight, 0xff, "locator m-weight");
  w.u8(l.priority);
  w.u8(l.weight);
  w.u8(l.mPriority);
  w.u8(l.mWeight);
  w.u8(0);
  w.u8((l.local ? FLAG_L : 0) | (l.probed ? FLAG_P : 0) | (l.reachable ? FLAG_R : 0));
  writeAddress(w, l.address);
}

/** Encoded length of a locator record. */
export function locatorLength(l: LocatorRecord): number {
  return LOCATOR_FIXED + addressLength(l.address);
}

/** Parses a buffer holding exactly one locator record. */
export function parseLocator(bytes: Uint8Array): LocatorRecord {
  const r = new Reader(bytes);
  const l = readLocator(r);
  if (r.pos !== r.end) r.fail("locator", `${r.remaining} trailing bytes`);
  return l;
}

/** Emits one locator record into a new buffer or into `into` at `offset`. */
export function emitLocator(l: LocatorRecord, into?: Uint8Array, offset = 0): Uint8Array {
  const len = locatorLength(l);
  const w = target(len, into, offset, "emitLocator");
  writeLocator(w, l);
  return w.bytes.subarray(offset, offset + len);
}
