/**
 * Explicit locator paths (RFC 8060 §4.9): where a packet mapped to an ELP
 * locator goes from this host, honouring each hop's bits.
 *
 * This host's place on the path is after the last hop that is one of its
 * addresses (an ITR is before the first hop). From there:
 *
 * - **L (lookup)**: the hop's address is an EID; the RLOC to send to is
 *   what the mapping system maps it to (the map-cache's entry for it,
 *   resolved like any EID and again when it expires). Until it is
 *   resolved the hop is unreachable.
 * - **P (probe)**: the hop is RLOC-probed (and a hop without P never is,
 *   as the RFC asks). A probed hop ahead of us that is down makes the whole
 *   path down: its locator is marked down in the data plane.
 * - **S (strict)**: the hop must be used. A hop is unreachable when it is
 *   an unresolved L hop, has no route from this host, or is a P hop probed
 *   down. An unreachable hop without S is skipped (the packet goes to the
 *   hop after it, in the end straight to the last hop); an unreachable
 *   strict hop makes the locator unusable, and a packet with no other
 *   usable locator is dropped and counted (`dropped:elp-strict`) instead
 *   of being sent past it.
 * - The last hop (the ETR) is never skipped: when it is unreachable the
 *   locator is down.
 *
 * Pure: what it reads of the map-cache, probing and routes is passed in.
 *
 * @module
 */

import type { Address, ElpAddress, ElpHop } from "../../wire/address.ts";
import { hostPrefixOf, type Prefix } from "../../core/prefix.ts";

/** What {@link elpNextHop} reads from the other parts. */
export interface ElpReader {
  /** This host's addresses (a hop that is us). */
  readonly here: ReadonlySet<string>;
  /**
   * The RLOC the mapping system gives the EID `eid` (an L hop), undefined
   * while it has none; may ask the mapping system for it.
   */
  resolve(eid: Prefix): string | undefined;
  /** Whether probing marked `ip` down. */
  probedDown(ip: string): boolean;
  /** Whether this host has a route to `ip`. */
  hasRoute(ip: string): boolean;
}

/** Why a hop cannot be used. */
export type HopProblem = "unresolved" | "no-route" | "probed-down";

/** Where a packet on an explicit locator path goes from this host. */
export type ElpNextHop =
  /** Encapsulate to `ip`, hop `hop` of the path (`skipped`: unreachable loose hops passed over). */
  | { readonly kind: "send"; readonly ip: string; readonly hop: number; readonly skipped: number }
  /**
   * The locator is down: a probed hop is down, or the last hop cannot be
   * reached. `ip`: an address to name it by in the data plane.
   */
  | {
    readonly kind: "down";
    readonly ip: string;
    readonly hop: number;
    readonly problem: HopProblem;
  }
  /** A strict hop cannot be reached: packets are dropped (`dropped:elp-strict`). */
  | {
    readonly kind: "strict";
    readonly ip: string;
    readonly hop: number;
    readonly problem: HopProblem;
  }
  /** This host is the path's last hop: nothing to send to. */
  | { readonly kind: "last" };

/** The address of a hop as it is written (an IP, or the EID of an L hop); undefined for others. */
export function hopIp(a: Address): string | undefined {
  if (a.kind === "ipv4" || a.kind === "ipv6") return a.ip;
  if (a.kind === "iid") return hopIp(a.address);
  return undefined;
}

/** The EID of an L hop as a host prefix (in its instance, else iid 0). */
export function hopEid(h: ElpHop): Prefix | undefined {
  return hostPrefixOf(h.address);
}

/** The IP to use for hop `h`: its address, or for an L hop its EID's RLOC. */
function hopTarget(h: ElpHop, r: ElpReader): string | undefined {
  if (!h.lookup) return hopIp(h.address);
  const eid = hopEid(h);
  return eid !== undefined ? r.resolve(eid) : undefined;
}

/** Each hop's IP to use (an L hop's RLOC, undefined while unresolved), each asked once. */
function targetsOf(elp: ElpAddress, r: ElpReader): (string | undefined)[] {
  return elp.hops.map((h) => hopTarget(h, r));
}

/** The first hop ahead of us: after the last one that is ours (as written, or its RLOC). */
function positionIn(
  elp: ElpAddress,
  targets: readonly (string | undefined)[],
  r: ElpReader,
): number {
  if (r.here.size === 0) return 0;
  for (let i = elp.hops.length - 1; i >= 0; i--) {
    const ip = hopIp(elp.hops[i]!.address);
    const t = targets[i];
    if ((ip !== undefined && r.here.has(ip)) || (t !== undefined && r.here.has(t))) return i + 1;
  }
  return 0;
}

/**
 * The index of the first hop ahead of this host: after the last hop that
 * is one of its addresses (as written, or an L hop's RLOC), else 0.
 */
export function elpPosition(elp: ElpAddress, r: ElpReader): number {
  return positionIn(elp, targetsOf(elp, r), r);
}

/** Where a packet mapped to `elp` goes from this host (see the module notes). */
export function elpNextHop(elp: ElpAddress, r: ElpReader): ElpNextHop {
  const targets = targetsOf(elp, r);
  const first = positionIn(elp, targets, r);
  const n = elp.hops.length;
  if (first >= n) return { kind: "last" };
  const name = (i: number) => targets[i] ?? hopIp(elp.hops[i]!.address) ?? "0.0.0.0";
  // A probed hop ahead that is down: the path is down.
  for (let i = first; i < n; i++) {
    const h = elp.hops[i]!;
    const ip = targets[i];
    if (h.probe && ip !== undefined && r.probedDown(ip)) {
      return { kind: h.strict ? "strict" : "down", ip, hop: i, problem: "probed-down" };
    }
  }
  let skipped = 0;
  for (let i = first; i < n; i++) {
    const h = elp.hops[i]!;
    const ip = targets[i];
    const problem: HopProblem | undefined = ip === undefined
      ? "unresolved"
      : !r.hasRoute(ip)
      ? "no-route"
      : undefined;
    if (problem === undefined) return { kind: "send", ip: ip!, hop: i, skipped };
    if (h.strict) return { kind: "strict", ip: name(i), hop: i, problem };
    if (i === n - 1) return { kind: "down", ip: name(i), hop: i, problem };
    skipped++;
  }
  return { kind: "last" }; // not reached: the last hop returns above
}

/**
 * The hops this host RLOC-probes on `elp`: the P hops ahead of it whose
 * address is known (an L hop once resolved).
 */
export function elpProbeTargets(elp: ElpAddress, r: ElpReader): string[] {
  const targets = targetsOf(elp, r);
  const out: string[] = [];
  for (let i = positionIn(elp, targets, r); i < elp.hops.length; i++) {
    const ip = targets[i];
    if (elp.hops[i]!.probe && ip !== undefined && !out.includes(ip)) out.push(ip);
  }
  return out;
}

/** The EIDs of the L hops of `elp` (for the entries that depend on their resolution). */
export function elpLookupEids(elp: ElpAddress): Prefix[] {
  const out: Prefix[] = [];
  for (const h of elp.hops) {
    if (!h.lookup) continue;
    const eid = hopEid(h);
    if (eid !== undefined) out.push(eid);
  }
  return out;
}
