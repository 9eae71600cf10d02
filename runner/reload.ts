/**
 * Configuration reload: SIGHUP, or `POST /api/v1/reload` with the token,
 * reads the config file again and applies what changed to the running
 * role, without a restart and without dropping traffic.
 *
 * How ({@link Reloader.reload}):
 * 1. The file is read and validated as at start (`loadConfig`, errors with
 *    file:line). An invalid file is refused whole: the errors are logged
 *    (`reload-refused`) and answered (400 on the API); the old config stays
 *    in force.
 * 2. The running config and the new one are compared, each with the
 *    runtime edits of the state file on top (web/state.ts), as a restart
 *    would see them ({@link configDiff}). A changed key that cannot change
 *    while the role runs (`control-port`, `tun-name`, `[api]`,
 *    `[data-plane]`...; {@link RUNTIME_TABLES} lists those that can) refuses
 *    the reload whole, naming the key; so does a table this role has no
 *    way to change at runtime.
 * 3. Otherwise each change goes to the role through the same hooks as the
 *    API's edits ({@link StatusSource}): `[[database-mapping]]` and
 *    `[[static-map-cache]]` on tunnel routers (a new mapping registers at
 *    once, a removed one is withdrawn), `[[lisp-site]]` and
 *    `[[ms-static-registered-site]]` on a map-server, `[[ddt-deleg-site]]`
 *    on a ddt node (when it has the hooks); `[[map-server]]`,
 *    `map-resolver` and `[[proxy-etr-ipv4]]`/`[[proxy-etr-ipv6]]` together
 *    through `setPeers` on tunnel routers (roles/tunnel_router/peers.ts:
 *    withdrawn from a map-server gone, registered at once with a new one).
 *    Peers go first, then additions and replacements, removals last. Each
 *    is logged (`reload-applied`), then a summary (`reloaded`).
 *
 * Runtime API edits and the file: the edits saved in the state file stay
 * on top of the reloaded file, as at a restart: an entry an API edit added
 * or removed stays so, whatever the file says of it; every other entry is
 * as the file says. To hand an entry back to the file, delete the edit
 * through the API (or remove it from the state file before a restart).
 *
 * @module
 */

import type { Config, ConfigResult, Prefix } from "../config/mod.ts";
import { formatPrefix } from "../config/mod.ts";
import type { Logger } from "../core/log.ts";
import type { PeerLists, ReloadOutcome, StatusSource } from "../core/status.ts";

/** A table of the config whose entries a running role may take, remove or replace. */
export type RuntimeTable =
  | "database-mapping"
  | "static-map-cache"
  | "lisp-site"
  | "ms-static-registered-site"
  | "ddt-deleg-site";

/** Config fields of the runtime tables, by table. */
export const RUNTIME_TABLES: Readonly<Record<RuntimeTable, keyof Config>> = {
  "database-mapping": "databaseMappings",
  "static-map-cache": "staticMapCache",
  "lisp-site": "lispSites",
  "ms-static-registered-site": "msStaticRegisteredSites",
  "ddt-deleg-site": "ddtDelegSites",
};

/** One change a reload applies. */
export interface ConfigChange {
  /** The table. */
  readonly table: RuntimeTable;
  /** What happens to the entry. */
  readonly action: "added" | "changed" | "removed";
  /** The entry's EID prefix and instance. */
  readonly eidPrefix: Prefix;
  /** Instance id. */
  readonly iid: number;
  /** The new entry (added, changed). */
  readonly entry?: unknown;
}

/** The config fields of a tunnel router's peers, taken together by `StatusSource.setPeers`. */
export const PEER_FIELDS = [
  "mapServers",
  "mapResolvers",
  "proxyEtrsIpv4",
  "proxyEtrsIpv6",
] as const;

/** What {@link configDiff} finds. */
export interface ConfigDiff {
  /** Keys that changed but cannot change while the role runs, with why. */
  readonly fixed: readonly string[];
  /** The changes to apply, additions and replacements first. */
  readonly changes: readonly ConfigChange[];
  /** The new peer lists when any of them changed, and the keys that did. */
  readonly peers?: { readonly lists: PeerLists; readonly keys: readonly string[] };
}

/** The TOML name of a config field (`tunName` → `tun-name`), tables by their table name. */
export function tomlKey(field: string): string {
  const tables: Record<string, string> = {
    mapServers: "[[map-server]]",
    mapResolvers: "map-resolver",
    proxyEtrsIpv4: "[[proxy-etr-ipv4]]",
    proxyEtrsIpv6: "[[proxy-etr-ipv6]]",
    databaseMappings: "[[database-mapping]]",
    instances: "[[instance]]",
    rtrIfaces: "[[rtr-iface]]",
    rtrMsNodes: "[[rtr-ms-node]]",
    msRtrNodes: "[[ms-rtr-node]]",
    msRtrsSets: "[[ms-rtrs-set]]",
    ddtAuthSites: "[[ddt-auth-site]]",
    ddtDelegSites: "[[ddt-deleg-site]]",
    explicitLocatorPaths: "[[explicit-locator-path]]",
    dataPlane: "[data-plane]",
    api: "[api]",
    rlocProbing: "[rloc-probing]",
    natTraversalSupport: "nat_traversal_support",
  };
  return tables[field] ?? field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** JSON of a value with object keys sorted, so equal configs compare equal. */
function canonical(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x !== null && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) =>
            a < b ? -1 : a > b ? 1 : 0
          ),
        )
        : typeof x === "bigint"
        ? x.toString()
        : x,
  );
}

type Keyed = { readonly eidPrefix: Prefix; readonly iid: number };
const entryKey = (e: Keyed) => `${e.iid}/${formatPrefix(e.eidPrefix)}`;

/**
 * What changed from `running` to `next` (both with the runtime edits on
 * top). `[api] state-file` is not compared: it is read at start only (the
 * command line may set it).
 */
export function configDiff(running: Config, next: Config): ConfigDiff {
  const fixed: string[] = [];
  const peerKeys: string[] = [];
  const tableFields = new Set<string>(Object.values(RUNTIME_TABLES));
  const fields = new Set([...Object.keys(running), ...Object.keys(next)]);
  for (const f of fields) {
    if (tableFields.has(f) || f === "role") continue;
    let a = (running as unknown as Record<string, unknown>)[f];
    let b = (next as unknown as Record<string, unknown>)[f];
    if (f === "api") {
      a = { ...(a as object), stateFile: undefined };
      b = { ...(b as object), stateFile: undefined };
    }
    if (canonical(a) === canonical(b)) continue;
    if ((PEER_FIELDS as readonly string[]).includes(f)) peerKeys.push(tomlKey(f));
    else {
      fixed.push(`${tomlKey(f)}: cannot change while the role runs (restart to apply it)`);
    }
  }
  const upserts: ConfigChange[] = [];
  const removals: ConfigChange[] = [];
  for (const [table, field] of Object.entries(RUNTIME_TABLES) as [RuntimeTable, keyof Config][]) {
    const before = new Map(
      (running[field] as readonly Keyed[]).map((e) => [entryKey(e), e] as const),
    );
    const after = new Map((next[field] as readonly Keyed[]).map((e) => [entryKey(e), e] as const));
    for (const [k, e] of after) {
      const old = before.get(k);
      if (old === undefined) {
        upserts.push({ table, action: "added", eidPrefix: e.eidPrefix, iid: e.iid, entry: e });
      } else if (canonical(old) !== canonical(e)) {
        upserts.push({ table, action: "changed", eidPrefix: e.eidPrefix, iid: e.iid, entry: e });
      }
    }
    for (const [k, e] of before) {
      if (!after.has(k)) {
        removals.push({ table, action: "removed", eidPrefix: e.eidPrefix, iid: e.iid });
      }
    }
  }
  const peers = peerKeys.length > 0
    ? {
      lists: {
        mapServers: next.mapServers,
        mapResolvers: next.mapResolvers,
        proxyEtrsIpv4: next.proxyEtrsIpv4,
        proxyEtrsIpv6: next.proxyEtrsIpv6,
      },
      keys: peerKeys,
    }
    : undefined;
  return { fixed, changes: [...upserts, ...removals], ...(peers !== undefined ? { peers } : {}) };
}

/** A map-server's site edits and a ddt's delegation edits, as the API makes them (optional). */
interface SiteHooks {
  addLispSite?(site: unknown): unknown;
  removeLispSite?(eidPrefix: Prefix, iid: number): unknown;
  addStaticSite?(site: unknown): unknown;
  removeStaticSite?(eidPrefix: Prefix, iid: number): unknown;
  addDelegSite?(site: unknown): unknown;
  removeDelegSite?(eidPrefix: Prefix, iid: number): unknown;
}

/** The hooks of `source` that apply changes to `table`, when it has them. */
function hooks(
  source: StatusSource & SiteHooks,
  table: RuntimeTable,
): { add(e: unknown): unknown; remove(p: Prefix, iid: number): unknown } | undefined {
  const pair = <T>(
    add: ((e: T) => unknown) | undefined,
    remove: ((p: Prefix, iid: number) => unknown) | undefined,
  ) =>
    add !== undefined && remove !== undefined
      ? { add: (e: unknown) => add(e as T), remove: (p: Prefix, i: number) => remove(p, i) }
      : undefined;
  switch (table) {
    case "database-mapping":
      return pair(
        source.addDatabaseMapping?.bind(source),
        source.removeDatabaseMapping?.bind(source),
      );
    case "static-map-cache":
      return pair(source.addStaticMapping?.bind(source), source.removeStaticMapping?.bind(source));
    case "lisp-site":
      return pair(source.addLispSite?.bind(source), source.removeLispSite?.bind(source));
    case "ms-static-registered-site":
      return pair(source.addStaticSite?.bind(source), source.removeStaticSite?.bind(source));
    case "ddt-deleg-site":
      return pair(source.addDelegSite?.bind(source), source.removeDelegSite?.bind(source));
  }
}

/** The layers a reload works with: the edits of the state file, as web/state.ts keeps them. */
export interface EditsLayer {
  /** `config` with the runtime edits on top; remembers it as the file's config. */
  apply(config: Config): Config;
}

/** What a {@link Reloader} needs. */
export interface ReloaderOptions {
  /** The role (for the refusal of an `operating-mode` change). */
  readonly role: string;
  /** The config file, as given. */
  readonly file: string;
  /** Reads and validates the file (`loadConfig(file, role)`). */
  readonly read: () => Promise<ConfigResult>;
  /** The config the role runs with, as the file said (before the runtime edits). */
  readonly current: Config;
  /** The runtime edits; none: the file alone. */
  readonly edits?: EditsLayer;
  /** The role's own hooks: not the ones that save runtime edits. */
  readonly source: StatusSource;
  /** Its logger. */
  readonly log: Logger;
}

/** Reloads of one running role, one at a time (see the module notes). */
export class Reloader {
  readonly #o: ReloaderOptions;
  #current: Config;
  #queue: Promise<unknown> = Promise.resolve();

  /** A reloader of the role running `opts.current`. */
  constructor(opts: ReloaderOptions) {
    this.#o = opts;
    this.#current = opts.current;
  }

  /** The file's config in force now (the last one applied). */
  get current(): Config {
    return this.#current;
  }

  /** Reads the file again and applies what changed; after any reload in progress. */
  reload(trigger: string): Promise<ReloadOutcome> {
    const run = this.#queue.then(() => this.#reload(trigger));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #reload(trigger: string): Promise<ReloadOutcome> {
    const { log, file } = this.#o;
    const refuse = (errors: string[]): ReloadOutcome => {
      log.error("reload-refused", {
        trigger,
        file,
        errors: errors.length,
        reasons: errors.join("; "),
        kept: "the config in force",
      });
      return { ok: false, errors, changes: [] };
    };
    let result: ConfigResult;
    try {
      result = await this.#o.read();
    } catch (e) {
      return refuse([`${file}: ${e instanceof Error ? e.message : String(e)}`]);
    }
    if (!result.ok) return refuse(result.errors.map((e) => e.toString()));
    const nextFile = result.config;
    const edits = this.#o.edits;
    // The running state: the file in force with the edits saved since on top.
    const running = edits !== undefined ? edits.apply(this.#current) : this.#current;
    const next = edits !== undefined ? edits.apply(nextFile) : nextFile;
    const diff = configDiff(running, next);
    const missing = [...new Set(diff.changes.map((c) => c.table))]
      .filter((t) => hooks(this.#o.source, t) === undefined)
      .map((t) => `[[${t}]]: this role (${this.#o.role}) cannot change it while it runs`);
    const setPeers = this.#o.source.setPeers?.bind(this.#o.source);
    if (diff.peers !== undefined && setPeers === undefined) {
      missing.push(
        `${diff.peers.keys.join(", ")}: this role (${this.#o.role}) cannot change ${
          diff.peers.keys.length > 1 ? "them" : "it"
        } while it runs`,
      );
    }
    if (diff.fixed.length > 0 || missing.length > 0) {
      // The edits layer must go on remembering the file in force.
      if (edits !== undefined) edits.apply(this.#current);
      return refuse([...diff.fixed, ...missing]);
    }
    const changes: string[] = [];
    const failed: string[] = [];
    // Peers first: a new mapping then registers with the new map-servers too.
    if (diff.peers !== undefined && setPeers !== undefined) {
      try {
        for (const c of await setPeers(diff.peers.lists)) {
          changes.push(c);
          log.info("reload-applied", { table: "peers", entry: c, trigger });
        }
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        failed.push(`${diff.peers.keys.join(", ")} not changed: ${why}`);
        log.error("reload-change-failed", { table: "peers", error: why });
      }
    }
    for (const c of diff.changes) {
      const h = hooks(this.#o.source, c.table)!;
      const what = `[[${c.table}]] ${c.iid !== 0 ? `[${c.iid}]` : ""}${formatPrefix(c.eidPrefix)}`;
      try {
        if (c.action === "removed") await h.remove(c.eidPrefix, c.iid);
        else await h.add(c.entry);
        changes.push(`${what} ${c.action}`);
        log.info("reload-applied", { table: c.table, action: c.action, entry: what, trigger });
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        failed.push(`${what} not ${c.action}: ${why}`);
        log.error("reload-change-failed", {
          table: c.table,
          action: c.action,
          entry: what,
          error: why,
        });
      }
    }
    this.#current = nextFile;
    log.info("reloaded", {
      trigger,
      file,
      changes: changes.length,
      ...(failed.length > 0 ? { failed: failed.length } : {}),
      ...(changes.length === 0 && failed.length === 0 ? { note: "nothing changed" } : {}),
    });
    return failed.length > 0
      ? { ok: false, errors: failed, changes }
      : { ok: true, errors: [], changes };
  }
}
