/**
 * The host's addresses for the mapping-system roles (ms, mr, ddt-mr), read
 * through rtnetlink (ffi/netlink.ts: an RTM_GETADDR dump, RTM_GETROUTE for
 * a source address), so no `--allow-sys` is needed. core/forward_guard.ts
 * asks for them now and then, never per packet.
 *
 * @module
 */

import { Netlink } from "../ffi/mod.ts";
import type { HostAddresses } from "../core/forward_guard.ts";

/** The host's addresses and route sources, each question on a netlink socket of its own. */
export function netlinkHostAddresses(): HostAddresses {
  return {
    addresses(): string[] {
      const nl = Netlink.open({ timeoutMs: 1000 });
      try {
        return nl.addresses().map((a) => a.address);
      } finally {
        nl.close();
      }
    },
    routeSource(dst: string): string | undefined {
      const nl = Netlink.open({ timeoutMs: 1000 });
      try {
        return nl.routeGet(dst).src;
      } catch {
        return undefined;
      } finally {
        nl.close();
      }
    },
  };
}
