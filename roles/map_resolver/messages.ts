/**
 * What the map-resolver (roles/mr.ts) sends and reads, as pure functions:
 * the DDT Map-Request it asks a DDT node with, the negative Map-Reply it
 * answers an ITR with and where that goes, and what a Map-Referral's
 * records mean for the walk.
 *
 * @module
 */

import { type Prefix, prefixContains, prefixEid } from "../../core/prefix.ts";
import type { Peer } from "../../core/control.ts";
import { type Address, ipAddress } from "../../wire/address.ts";
import { LISP_CONTROL_PORT } from "../../wire/data_header.ts";
import { type Ecm, type EcmInner, emitEcm } from "../../wire/ecm.ts";
import type { EidRecord } from "../../wire/eid_record.ts";
import { isIPv4 } from "../../wire/ip_text.ts";
import type { MapReply } from "../../wire/map_reply.ts";
import { emitMapRequest, type MapRequest } from "../../wire/map_request.ts";
import { forwardedEcm } from "./forward_path.ts";

/** An ITR's ECM Map-Request as the map-resolver received it. */
export interface ItrRequest {
  /** The Map-Request. */
  readonly request: MapRequest;
  /** The ECM it came in. */
  readonly ecm: Ecm;
  /** The ECM's outer source. */
  readonly from: Peer;
}

/** Random nonces drawn 256 at a time: one call into the CSPRNG (and no array) per nonce cost more. */
const nonces = new BigUint64Array(256);
let nextNonce = nonces.length;

/** 64 random bits: the nonce of one DDT Map-Request. */
export function randomNonce(): bigint {
  if (nextNonce === nonces.length) {
    crypto.getRandomValues(nonces);
    nextNonce = 0;
  }
  return nonces[nextNonce++]!;
}

/** Our own ITR-RLOC list per address we send from (a handful: one per family or route). */
const selfRlocCache = new Map<string, readonly Address[]>();

function selfRlocs(self: string): readonly Address[] {
  let list = selfRlocCache.get(self);
  if (list === undefined) {
    if (selfRlocCache.size >= 64) selfRlocCache.clear();
    list = [ipAddress(self)];
    selfRlocCache.set(self, list);
  }
  return list;
}

function ipOf(a: Address): string | undefined {
  return a.kind === "ipv4" || a.kind === "ipv6" ? a.ip : undefined;
}

/**
 * The DDT Map-Request (an ECM with the D bit) asking `node` for the ITR's
 * first record with `nonce`: from `self` (our address toward `node`) as
 * ITR-RLOC and inner source, at inner source port `port`, so what a DDT
 * map-server sends back to this request comes to us, not to the ITR. The
 * ITR's ITR-RLOCs and inner header only when there is no `self`. The inner
 * TTL is the ITR's less one.
 */
export function ddtMapRequest(
  itr: ItrRequest,
  nonce: bigint,
  node: string,
  self: string | undefined,
  port: number,
): Uint8Array {
  const record = itr.request.records[0]!;
  const ttl = itr.ecm.inner.ttl - 1;
  let inner: EcmInner = { ...itr.ecm.inner, ttl };
  let itrRlocs = itr.request.itrRlocs;
  if (self !== undefined) {
    const e = ipOf(record.eid.kind === "iid" ? record.eid.address : record.eid);
    const dst = e !== undefined && isIPv4(e) === isIPv4(self) ? e : node;
    inner = { src: self, dst, srcPort: port, dstPort: LISP_CONTROL_PORT, ttl };
    itrRlocs = selfRlocs(self);
  }
  return emitEcm({
    security: false,
    ddtOriginated: true,
    forRtr: false,
    rtrRelayed: false,
    inner,
    payload: emitMapRequest({ ...itr.request, nonce, itrRlocs, records: [record] }),
  });
}

/** ECM byte 0: the D bit (RFC 8111 §6.3). */
const ECM_D = 0x04;

/**
 * The ITR's own ECM Map-Request as a DDT map-resolver sends it to a DDT
 * Map-Server (RFC 8111 §7.3.1): the ITR's nonce, ITR-RLOCs and inner
 * header, inner TTL `ttl`, and the D bit, so that the map-server answers
 * the ITR and returns its Map-Referral to us. The `datagram` it came in,
 * rewritten in a copy, or `ecm` emitted anew.
 */
export function ddtForwardedEcm(ecm: Ecm, ttl: number, datagram?: Uint8Array): Uint8Array {
  const out = forwardedEcm(ecm, ttl, datagram);
  out[0] = out[0]! | ECM_D;
  return out;
}

/** A negative Map-Reply (no locators) for `prefix`, with the ITR's nonce. */
export function negativeMapReply(
  nonce: bigint,
  prefix: Prefix,
  ttl: number,
  action: number,
): MapReply {
  return {
    probe: false,
    echoNonce: false,
    security: false,
    nonce,
    records: [{
      ttl,
      maskLen: prefix.len,
      action,
      authoritative: false,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(prefix),
      locators: [],
    }],
  };
}

/**
 * Where a Map-Reply to the ITR goes (RFC 9301 §5.4): an ITR-RLOC of the
 * family the ECM came over (else the first IP one, else the ECM's inner
 * source), at the inner UDP source port.
 */
export function replyPeer(itr: ItrRequest): Peer {
  const v4 = isIPv4(itr.from.address);
  let first: string | undefined;
  for (const a of itr.request.itrRlocs) {
    const ip = ipOf(a);
    if (ip === undefined) continue;
    if (isIPv4(ip) === v4) return { address: ip, port: itr.ecm.inner.srcPort };
    first ??= ip;
  }
  return { address: first ?? itr.ecm.inner.src, port: itr.ecm.inner.srcPort };
}

/**
 * The prefix a negative referral (MS-NOT-REGISTERED, DELEGATION-HOLE) is
 * answered and cached for: the referral's own prefix when it covers the
 * requested one, or lies inside it (a DDT node answers a request wider than
 * a delegation for its first address). Never the requested prefix itself:
 * that may hold delegated space the node did not call negative. Undefined
 * for a referral that does not match the request (a bad referral).
 */
export function negativePrefix(rp: Prefix | undefined, eid: Prefix): Prefix | undefined {
  if (rp === undefined) return undefined;
  return prefixContains(rp, eid) || prefixContains(eid, rp) ? rp : undefined;
}

/** Usable referral RLOCs of a record: IP addresses, by priority, 255 ("do not use") left out. */
export function referralRlocs(record: EidRecord): string[] {
  return record.locators
    .filter((l) => l.priority !== 255 && (l.address.kind === "ipv4" || l.address.kind === "ipv6"))
    .sort((a, b) => a.priority - b.priority)
    .map((l) => (l.address as { ip: string }).ip);
}
