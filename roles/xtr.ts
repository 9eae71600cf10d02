/**
 * The xTR role (`oor xtr`): a site's tunnel router. As an ITR it
 * encapsulates traffic from its EID prefixes to the locators of the
 * destination (resolved through the map-resolvers); as an ETR it
 * decapsulates traffic for its EID prefixes, registers them with the
 * map-servers and answers Map-Requests and RLOC-probes for them.
 *
 * Its parts (roles/tunnel_router/): the TUN, OOR's rules and table 100,
 * and its `[[instance]]` TUNs (`xtrHost`); the `[[database-mapping]]`s as
 * its locators, registered without the m bit; the xTR side of NAT
 * traversal when `nat_traversal_support` is on; a data plane from the TUN
 * to UDP and back; sockets on the wildcard (or `control-address`).
 *
 * @module
 */

import type { RoleStart } from "../core/role.ts";
import type {
  TunnelRouterHandle,
  TunnelRouterOptions,
  TunnelRouterSpec,
} from "./tunnel_router/context.ts";
import { xtrHost } from "./tunnel_router/host.ts";
import { startTunnelRouter } from "./tunnel_router/router.ts";

/** A running xTR. */
export type XtrHandle = TunnelRouterHandle;

/** What an xTR is made of (see the module notes). */
export const XTR: TunnelRouterSpec = {
  mode: "xtr",
  dataPlane: "xtr",
  host: xtrHost,
  locals: { kind: "database", mobileNode: false },
  nat: "client",
  probeAnyEid: false,
  forwarding: true,
  bindToRloc: false,
};

/** Starts an xTR from `config` (options are for tests and embedding). */
export function startXtrWith(options: TunnelRouterOptions): RoleStart<XtrHandle> {
  return (config, deps) => startTunnelRouter(XTR, config, deps, options);
}

/** Starts an xTR from `config` on this host. */
export const startXtr: RoleStart<XtrHandle> = startXtrWith({});
