/**
 * The JSON the read routes answer with: the role's views (core/status.ts)
 * written with the config's kebab-case keys, so that what a GET returns
 * reads like oor.toml and can be posted back to the edit routes (which
 * ignore the read-only keys a GET adds, {@link READ_ONLY_KEYS}).
 *
 * | view field | JSON key |
 * | --- | --- |
 * | `eidPrefix` (or a registration's and site's `"[iid]prefix"`) | `eid-prefix` and `iid` |
 * | locators `rlocs` of map-cache, database and registrations | `rloc-address` (and `rloc-iface` for database locators taken from an interface) |
 * | referral `rlocs` | `deleg-nodes` |
 * | any other `camelCase` field | its `kebab-case` form (`expiresAt` -> `expires-at`) |
 *
 * Free-form maps (status `details`, counters) keep their keys as they are.
 *
 * @module
 */

import {
  type DatabaseView,
  type LocatorView,
  type MapCacheView,
  type ReferralView,
  type RegistrationView,
  type RoleStatus,
  type SitesView,
  type SiteView,
  splitIidPrefix,
} from "../core/status.ts";

type Json = Record<string, unknown>;

/**
 * Keys a GET adds that an edit body may carry back and that are ignored:
 * state the role reports, not configuration.
 */
export const READ_ONLY_KEYS: readonly string[] = [
  "kind",
  "action",
  "static",
  "origin",
  "expires-at",
  "since",
  "packets",
  "bytes",
  "registrations",
  "live-registrations",
  "source",
  "site",
  "from",
  "xtr-id",
  "site-id",
  "first-seen",
  "last-seen",
];

/** Keys of a locator a GET adds and an edit ignores. */
export const READ_ONLY_LOCATOR_KEYS: readonly string[] = ["state", "reachable"];

/** `camelCase` -> `kebab-case`. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** A record with every own key in kebab-case (one level; undefined values dropped). */
function kebabKeys(o: object): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[kebab(k)] = v;
  return out;
}

function locatorJson(l: LocatorView): Json {
  return kebabKeys(l);
}

/** One map-cache entry, as `GET /api/v1/map-cache` lists it. */
export function mapCacheJson(v: MapCacheView): Json {
  const { eidPrefix, iid, rlocs, ...rest } = v;
  return {
    "eid-prefix": eidPrefix,
    iid,
    ...kebabKeys(rest),
    "rloc-address": rlocs.map(locatorJson),
  };
}

/** One database mapping, as `GET /api/v1/database` lists it (`rloc-iface` apart). */
export function databaseJson(v: DatabaseView): Json {
  const { eidPrefix, iid, rlocs, ...rest } = v;
  const byAddress = rlocs.filter((l) => l.interface === undefined);
  const byIface = rlocs.filter((l) => l.interface !== undefined);
  const out: Json = { "eid-prefix": eidPrefix, iid, ...kebabKeys(rest) };
  if (byAddress.length > 0 || byIface.length === 0) {
    out["rloc-address"] = byAddress.map(locatorJson);
  }
  if (byIface.length > 0) {
    out["rloc-iface"] = byIface.map((l) => ({
      interface: l.interface,
      ip_version: l.address.includes(":") ? 6 : 4,
      priority: l.priority,
      weight: l.weight,
      address: l.address,
      state: l.state,
    }));
  }
  return out;
}

/** One registration, as `GET /api/v1/sites` lists it. */
export function registrationJson(v: RegistrationView): Json {
  const { prefix, iid, rlocs, ...rest } = v;
  return {
    "eid-prefix": splitIidPrefix(prefix).eidPrefix,
    iid,
    ...kebabKeys(rest),
    "rloc-address": rlocs.map((l) => kebabKeys(l)),
  };
}

/** One configured site, with the keys of its `[[lisp-site]]` (the key itself left out). */
export function siteJson(v: SiteView): Json {
  const { prefix, iid, ...rest } = v;
  return { "eid-prefix": splitIidPrefix(prefix).eidPrefix, iid, ...kebabKeys(rest) };
}

/** The sites, registrations, rejections and subscribers of a map-server (one page of each). */
export function sitesJson(
  v: Pick<SitesView, "sites" | "registrations" | "rejections" | "subscriptions">,
): Json {
  const out: Json = {
    sites: v.sites.map(siteJson),
    registrations: v.registrations.map(registrationJson),
  };
  if (v.rejections !== undefined) out["rejections"] = v.rejections.map((r) => kebabKeys(r));
  if (v.subscriptions !== undefined) {
    // RFC 9437 subscribers: `eid-prefix` and `iid` as everywhere, the rest kebab-case.
    out["subscriptions"] = v.subscriptions.map(({ prefix, iid, ...rest }) => ({
      "eid-prefix": splitIidPrefix(prefix).eidPrefix,
      iid,
      ...kebabKeys(rest),
    }));
  }
  return out;
}

/** One referral, as `GET /api/v1/referrals` lists it. */
export function referralJson(v: ReferralView): Json {
  const { eidPrefix, iid, rlocs, ...rest } = v;
  return { "eid-prefix": eidPrefix, iid, ...kebabKeys(rest), "deleg-nodes": rlocs };
}

/** What a role says of itself, in kebab-case (its `details` as they are). */
export function roleStatusJson(v: RoleStatus): Json {
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined) continue;
    if (k === "details") out[k] = x;
    else if (Array.isArray(x)) {
      out[kebab(k)] = x.map((e) => typeof e === "object" && e !== null ? kebabKeys(e) : e);
    } else out[kebab(k)] = x;
  }
  return out;
}
