/**
 * The RTR role (`oor rtr`): a re-encapsulating tunnel router. It
 * decapsulates LISP (or VXLAN-GPE) traffic sent to its locators, looks the
 * inner destination up in its own map-cache (filled by Map-Requests on
 * misses, by `[[static-map-cache]]`, and by the registrations it relays
 * for xTRs behind a NAT) and encapsulates it again towards that
 * destination's locators.
 *
 * Its parts (roles/tunnel_router/): no TUN, only the per-RLOC rules of
 * OOR's README ("RTR mode", `rtrHost`); its locators are the addresses of
 * its `[[rtr-iface]]`s, with which it answers RLOC-probes for any EID; it
 * registers nothing; it relays NATed xTRs' registrations; its data plane
 * goes from UDP to UDP.
 *
 * @module
 */

import type { RoleStart } from "../core/role.ts";
import type {
  TunnelRouterHandle,
  TunnelRouterOptions,
  TunnelRouterSpec,
} from "./tunnel_router/context.ts";
import { rtrHost } from "./tunnel_router/host.ts";
import { startTunnelRouter } from "./tunnel_router/router.ts";

/** A running RTR. */
export type RtrHandle = TunnelRouterHandle;

/** What an RTR is made of (see the module notes). */
export const RTR: TunnelRouterSpec = {
  mode: "rtr",
  dataPlane: "rtr",
  host: rtrHost,
  locals: { kind: "rtr-ifaces" },
  nat: "relay",
  probeAnyEid: true,
  forwarding: true,
  bindToRloc: false,
};

/** Starts an RTR from `config` (options are for tests and embedding). */
export function startRtrWith(options: TunnelRouterOptions): RoleStart<RtrHandle> {
  return (config, deps) => startTunnelRouter(RTR, config, deps, options);
}

/** Starts an RTR from `config` on this host. */
export const startRtr: RoleStart<RtrHandle> = startRtrWith({});
