/**
 * The LISP mobile-node role (`oor mn`): a host whose own address is an
 * EID (a /32 or /128 `[[database-mapping]]`), reachable wherever its RLOC
 * is. It is its own ITR and ETR, and registers with the m bit.
 *
 * The host is set up as OOR's README ("Mobile Node mode") shows: the EID
 * as the address of the TUN, and 0.0.0.0/1 + 128.0.0.0/1 (::/1 + 8000::/1
 * for an IPv6 EID) routed into it, so every packet the host sends leaves
 * through LISP. The data and control sockets are bound to the RLOC, and a
 * `from <RLOC> lookup x` rule with table x holding the routes of the RLOC's
 * interface lets encapsulated traffic escape the /1 routes. Everything is
 * removed on shutdown. See `_tunnel_router.ts` for the engine.
 *
 * @module
 */

import type { RoleStart } from "../core/role.ts";
import {
  startTunnelRouter,
  type TunnelRouterHandle,
  type TunnelRouterOptions,
} from "./tunnel_router/router.ts";

/** A running mobile node. */
export type MnHandle = TunnelRouterHandle;

/** Starts a mobile node from `config` (options are for tests and embedding). */
export function startMnWith(options: TunnelRouterOptions): RoleStart<MnHandle> {
  return (config, deps) => startTunnelRouter("mn", config, deps, options);
}

/** Starts a mobile node from `config` on this host. */
export const startMn: RoleStart<MnHandle> = (config, deps) => startTunnelRouter("mn", config, deps);
