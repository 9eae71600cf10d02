/**
 * What a tunnel router shows: the local RLOCs with their state (and the
 * configured ones that are not usable now), the database, and the
 * role-specific details of the status page. The map-cache, registration
 * and probing parts list their own state.
 *
 * @module
 */

import { addressToString } from "../../wire/address.ts";
import { canonicalIp } from "../../wire/ip_text.ts";
import { formatPrefix as configPrefixText } from "../../config/mod.ts";
import type { DatabaseView, LocatorView, RlocStatus } from "../../core/status.ts";
import type { DatabaseInfo, Env, LocatorInfo } from "./context.ts";
import { RTR_PROBE_TTL } from "./etr.ts";
import type { LocalLocator, LocalLocators } from "./locals.ts";

/** The database as {@link TunnelRouterHandle.database} lists it (an rtr: its own locators). */
export function databaseInfo(locals: LocalLocators): DatabaseInfo[] {
  const info = (l: LocalLocator): LocatorInfo => ({
    address: addressToString(l.address),
    priority: l.priority,
    weight: l.weight,
    up: true,
  });
  if (locals.hasOwn) {
    return [{ prefix: "rtr", ttl: RTR_PROBE_TTL, locators: locals.own.map(info) }];
  }
  return locals.mappings.map((m) => ({
    prefix: m.text,
    ttl: m.config.ttl,
    locators: m.locators.map(info),
  }));
}

/** The API's view of the database, with configured addresses whose link is down. */
export function databaseView(locals: LocalLocators): DatabaseView[] {
  const view = (l: LocalLocator): LocatorView => ({
    address: addressToString(l.address),
    priority: l.priority,
    weight: l.weight,
    state: "up",
    ...(l.iface !== undefined ? { interface: l.iface } : {}),
  });
  return locals.mappings.map((m) => {
    const rlocs = m.locators.map(view);
    for (const r of m.config.rlocAddresses) {
      if (r.kind !== "address") continue;
      const ip = canonicalIp(r.address);
      if (ip === undefined || rlocs.some((x) => x.address === ip)) continue;
      rlocs.push({ address: ip, priority: r.priority, weight: r.weight, state: "down" });
    }
    return {
      eidPrefix: configPrefixText(m.config.eidPrefix),
      iid: m.prefix.iid,
      ttl: m.config.ttl,
      rlocs,
    };
  });
}

/** Local locators: those in use (up) and configured ones that are not usable now (down). */
export function rlocStatus(env: Env, locals: LocalLocators): RlocStatus[] {
  const out = new Map<string, RlocStatus>();
  const used = (l: LocalLocator) => {
    const address = addressToString(l.address);
    if (out.has(address)) return;
    out.set(address, {
      address,
      state: "up",
      priority: l.priority,
      weight: l.weight,
      ...(l.iface !== undefined ? { interface: l.iface } : {}),
    });
  };
  const ifaceDown = (iface: string, priority: number, weight: number) => {
    const resolved = [...out.values()].some((r) => r.interface === iface);
    if (resolved || out.has(`iface ${iface}`)) return;
    out.set(`iface ${iface}`, {
      address: "",
      state: "down",
      interface: iface,
      priority,
      weight,
      reason: "no usable address (link down or no address)",
    });
  };
  if (locals.hasOwn) {
    for (const l of locals.own) used(l);
    for (const f of env.config.rtrIfaces) ifaceDown(f.iface, f.priority, f.weight);
    return [...out.values()];
  }
  for (const m of locals.mappings) for (const l of m.locators) used(l);
  for (const m of locals.mappings) {
    for (const r of m.config.rlocAddresses) {
      if (r.kind !== "address") continue;
      const ip = canonicalIp(r.address);
      if (ip === undefined || out.has(ip)) continue;
      out.set(ip, {
        address: ip,
        state: "down",
        priority: r.priority,
        weight: r.weight,
        reason: "link down",
      });
    }
    for (const f of m.config.rlocIfaces) ifaceDown(f.interface, f.priority, f.weight);
  }
  return [...out.values()];
}
