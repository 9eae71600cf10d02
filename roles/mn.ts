/**
 * The LISP mobile-node role (`oor mn`): a host whose own address is an
 * EID (a /32 or /128 `[[database-mapping]]`), reachable wherever its RLOC
 * is. It is its own ITR and ETR, and registers with the m bit.
 *
 * Its parts (roles/tunnel_router/): as OOR's README ("Mobile Node mode")
 * shows, the EID as the address of the TUN and 0.0.0.0/1 + 128.0.0.0/1
 * (::/1 + 8000::/1 for an IPv6 EID) routed into it, so every packet the
 * host sends leaves through LISP (`mnHost`). Its data and control sockets
 * are bound to its RLOC, and a `from <RLOC> lookup x` rule with table x
 * holding the routes of the RLOC's interface lets encapsulated traffic
 * escape the /1 routes; when its RLOC moves, the sockets are bound again.
 * It does not forward for others, so the preflight leaves ip_forward alone.
 *
 * @module
 */

import type { RoleStart } from "../core/role.ts";
import type {
  TunnelRouterHandle,
  TunnelRouterOptions,
  TunnelRouterSpec,
} from "./tunnel_router/context.ts";
import { mnHost } from "./tunnel_router/host.ts";
import { startTunnelRouter } from "./tunnel_router/router.ts";

/** A running mobile node. */
export type MnHandle = TunnelRouterHandle;

/** What a mobile node is made of (see the module notes). */
export const MN: TunnelRouterSpec = {
  mode: "mn",
  dataPlane: "xtr",
  host: mnHost,
  locals: { kind: "database", mobileNode: true },
  nat: "client",
  probeAnyEid: false,
  forwarding: false,
  bindToRloc: true,
};

/** Starts a mobile node from `config` (options are for tests and embedding). */
export function startMnWith(options: TunnelRouterOptions): RoleStart<MnHandle> {
  return (config, deps) => startTunnelRouter(MN, config, deps, options);
}

/** Starts a mobile node from `config` on this host. */
export const startMn: RoleStart<MnHandle> = startMnWith({});
