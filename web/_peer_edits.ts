/**
 * Runtime edits of a tunnel router's peer lists (`[[map-server]]`,
 * `map-resolver`, `[[proxy-etr-ipv4]]`, `[[proxy-etr-ipv6]]`; an mr's
 * `[[map-server]]`s): what web/state.ts keeps of them. Entries are keyed by
 * their address. An edit is what the lists in force differ by from the
 * config's: entries added or replaced, and config entries removed; applied
 * on top of the config at the next start (and at a reload), as the EID
 * tables' edits are.
 *
 * In the state file, under each table's name:
 *
 * ```json
 * "map-server": {"added": [{"address": "192.0.2.9", "key-type": 1, "key": "k",
 *                           "proxy-reply": false, "merge": false}], "removed": ["192.0.2.2"]},
 * "map-resolver": {"added": ["192.0.2.1"], "removed": []}
 * ```
 *
 * @module
 */

import type { Config, MapServer, ProxyEtr } from "../config/mod.ts";
import type { PeerLists } from "../core/status.ts";
import { canonicalAddress, FieldError } from "./_body.ts";
import {
  mapServerJson,
  parseMapResolver,
  parseMapServer,
  parseProxyEtr,
  proxyEtrJson,
} from "./_tables.ts";

/** Entries added or replaced, and addresses of config entries removed, of one list. */
export interface PeerEditList<T> {
  /** Added or replaced, in the order made. */
  readonly added: readonly T[];
  /** Addresses of config entries removed. */
  readonly removed: readonly string[];
}

/** The edits of every peer list. */
export interface PeerEditState {
  /** `[[map-server]]`. */
  readonly mapServers: PeerEditList<MapServer>;
  /** `map-resolver`. */
  readonly mapResolvers: PeerEditList<string>;
  /** `[[proxy-etr-ipv4]]`. */
  readonly proxyEtrsIpv4: PeerEditList<ProxyEtr>;
  /** `[[proxy-etr-ipv6]]`. */
  readonly proxyEtrsIpv6: PeerEditList<ProxyEtr>;
}

type Field = keyof PeerEditState;

/** The lists, their state-file keys, and how each entry is read and written. */
const LISTS: readonly {
  readonly field: Field;
  readonly key: string;
  readonly address: (e: never) => string;
  readonly parse: (v: unknown, at: string) => unknown;
  readonly json: (e: never) => unknown;
}[] = [
  {
    field: "mapServers",
    key: "map-server",
    address: (e: MapServer) => e.address,
    parse: parseMapServer,
    json: (e: MapServer) => mapServerJson(e, true),
  },
  {
    field: "mapResolvers",
    key: "map-resolver",
    address: (e: string) => e,
    parse: (v, at) => parseMapResolver({ address: v }, at),
    json: (e: string) => e,
  },
  {
    field: "proxyEtrsIpv4",
    key: "proxy-etr-ipv4",
    address: (e: ProxyEtr) => e.address,
    parse: (v, at) => parseProxyEtr(v, at).petr,
    json: proxyEtrJson,
  },
  {
    field: "proxyEtrsIpv6",
    key: "proxy-etr-ipv6",
    address: (e: ProxyEtr) => e.address,
    parse: (v, at) => parseProxyEtr(v, at).petr,
    json: proxyEtrJson,
  },
];

/** The state-file keys of the peer lists. */
export const PEER_STATE_KEYS: readonly string[] = LISTS.map((l) => l.key);

/** No peer edits. */
export const NO_PEER_EDITS: PeerEditState = {
  mapServers: { added: [], removed: [] },
  mapResolvers: { added: [], removed: [] },
  proxyEtrsIpv4: { added: [], removed: [] },
  proxyEtrsIpv6: { added: [], removed: [] },
};

/** Reads the peer lists' part of a state file (`o` is its top object); throws {@link FieldError}. */
export function parsePeerEdits(o: Readonly<Record<string, unknown>>): PeerEditState {
  const out: Record<string, PeerEditList<unknown>> = {};
  for (const l of LISTS) {
    const v = o[l.key];
    if (v === undefined) {
      out[l.field] = { added: [], removed: [] };
      continue;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new FieldError(l.key, "must be an object {added, removed}");
    }
    const t = v as Record<string, unknown>;
    for (const k of Object.keys(t)) {
      if (k !== "added" && k !== "removed") {
        throw new FieldError(`${l.key}.${k}`, "unknown key (expected added, removed)");
      }
    }
    const list = (k: string): unknown[] => {
      const x = t[k] ?? [];
      if (!Array.isArray(x)) throw new FieldError(`${l.key}.${k}`, "must be an array");
      return x;
    };
    out[l.field] = {
      added: list("added").map((x, i) => l.parse(x, `${l.key}.added[${i}].`)),
      removed: list("removed").map((x, i) => {
        const a = typeof x === "string" ? canonicalAddress(x) : undefined;
        if (a === undefined) {
          throw new FieldError(`${l.key}.removed[${i}]`, "must be an IPv4 or IPv6 address");
        }
        return a.text;
      }),
    };
  }
  return out as unknown as PeerEditState;
}

/** The peer lists' part of a state file. */
export function formatPeerEdits(s: PeerEditState): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const l of LISTS) {
    const e = s[l.field] as PeerEditList<never>;
    out[l.key] = { added: e.added.map((x) => l.json(x)), removed: [...e.removed] };
  }
  return out;
}

/** The config's peer lists. */
export function peerListsOf(c: Pick<Config, Field>): PeerLists {
  return {
    mapServers: c.mapServers,
    mapResolvers: c.mapResolvers,
    proxyEtrsIpv4: c.proxyEtrsIpv4,
    proxyEtrsIpv6: c.proxyEtrsIpv6,
  };
}

/** `base` with `edits` on top: removed and replaced entries left out, added ones after. */
export function mergePeers(base: PeerLists, edits: PeerEditState): PeerLists {
  const out: Record<string, unknown[]> = {};
  for (const l of LISTS) {
    const e = edits[l.field] as PeerEditList<never>;
    const addr = l.address as (x: unknown) => string;
    const added = new Set(e.added.map(addr));
    out[l.field] = [
      ...(base[l.field] as readonly unknown[]).filter((x) =>
        !e.removed.includes(addr(x)) && !added.has(addr(x))
      ),
      ...e.added,
    ];
  }
  return out as unknown as PeerLists;
}

/**
 * The edits that turn `base` into `lists`: entries of `lists` not in
 * `base` as they are (added or replaced), addresses of `base` missing from
 * `lists` (removed).
 */
export function peerEditsBetween(base: PeerLists, lists: PeerLists): PeerEditState {
  const out: Record<string, PeerEditList<unknown>> = {};
  for (const l of LISTS) {
    const addr = l.address as (x: unknown) => string;
    const was = base[l.field] as readonly unknown[];
    const now = lists[l.field] as readonly unknown[];
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    out[l.field] = {
      added: now.filter((x) => !was.some((w) => same(w, x))),
      removed: was.map(addr).filter((a) => !now.some((x) => addr(x) === a)),
    };
  }
  return out as unknown as PeerEditState;
}

/** Whether there is any peer edit. */
export function peerEditCount(s: PeerEditState): number {
  let n = 0;
  for (const l of LISTS) n += s[l.field].added.length + s[l.field].removed.length;
  return n;
}
