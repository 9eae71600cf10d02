/**
 * Runtime edits that outlive the process: static map-cache entries,
 * database mappings, a map-server's `[[lisp-site]]`s and
 * `[[ms-static-registered-site]]`s added or removed through the API are kept in a state
 * file (`[api] state-file`, by default `<config>.state.json`) and applied
 * again on top of the config at the next start, including after `kill -9`.
 *
 * The file is replaced atomically: the new text goes to `<file>.tmp`,
 * which is fsynced, then renamed over the file, then the directory is
 * fsynced. A reader sees the old file or the new one, never a mix; an edit
 * is answered only once its file is on disk.
 *
 * ```json
 * {
 *   "format": 1,
 *   "updated": "2025-01-01T00:00:00.000Z",
 *   "static-map-cache": {
 *     "added": [{"eid-prefix": "10.2.0.0/16", "iid": 0,
 *                "rloc-address": [{"address": "192.0.2.7", "priority": 1, "weight": 100}]}],
 *     "removed": [{"eid-prefix": "10.9.0.0/16", "iid": 0}]
 *   },
 *   "database-mapping": {"added": [], "removed": []},
 *   "lisp-site": {"added": [], "removed": []},
 *   "ms-static-registered-site": {"added": [], "removed": []}
 * }
 * ```
 *
 * `added` entries replace config entries of the same EID prefix and
 * instance; `removed` ones hide config entries. Removing an entry that
 * only an edit added forgets the edit.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import {
  type Config,
  type DatabaseMapping,
  type DdtDelegSite,
  formatPrefix as formatConfigPrefix,
  type LispSite,
  type MsStaticRegisteredSite,
  type Prefix,
  type StaticMapCacheEntry,
} from "../config/mod.ts";
import {
  delegSiteJson,
  lispSiteJson,
  parseConfigTable,
  parseLispSite,
  parseStaticSite,
  staticSiteJson,
} from "./_tables.ts";
import {
  formatPeerEdits,
  mergePeers,
  NO_PEER_EDITS,
  parsePeerEdits,
  PEER_STATE_KEYS,
  peerEditCount,
  peerEditsBetween,
  type PeerEditState,
  peerListsOf,
} from "./_peer_edits.ts";
import {
  databaseMappingJson,
  type EidKey,
  eidKeyJson,
  FieldError,
  parseDatabaseMapping,
  parseEidKey,
  parseStaticMapping,
  sameKey,
  staticMappingJson,
} from "./_body.ts";
import {
  type MaybePromise,
  type PeerLists,
  SourceError,
  type StatusSource,
} from "../core/status.ts";

export type { EidKey } from "./_body.ts";

/**
 * Where the state file of a role is: `[api] state-file` (a relative path
 * taken from the config file's directory), else `<config>.state.json`;
 * undefined when neither is known (a config that did not come from a file).
 */
export function stateFilePath(
  config: Pick<Config, "api">,
  configPath?: string,
): string | undefined {
  const given = config.api.stateFile;
  if (given !== undefined) {
    return isAbsolute(given) || configPath === undefined ? given : join(dirname(configPath), given);
  }
  return configPath !== undefined ? `${configPath}.state.json` : undefined;
}

/** The version of the state file format. */
export const STATE_FORMAT = 1;

/** Entries added and config entries removed, of one kind. */
export interface EditList<T> {
  /** Entries added or replaced at run time, in the order they were made. */
  readonly added: readonly T[];
  /** Keys of config entries removed at run time. */
  readonly removed: readonly EidKey[];
}

/** Everything the state file holds. */
export interface RuntimeState {
  /** Edits of `[[static-map-cache]]`. */
  readonly staticMapCache: EditList<StaticMapCacheEntry>;
  /** Edits of `[[database-mapping]]`. */
  readonly databaseMappings: EditList<DatabaseMapping>;
  /** Edits of `[[lisp-site]]` (map-server); none when absent. */
  readonly lispSites?: EditList<LispSite>;
  /** Edits of `[[ms-static-registered-site]]` (map-server); none when absent. */
  readonly staticSites?: EditList<MsStaticRegisteredSite>;
  /** Edits of `[[ddt-deleg-site]]` (ddt); none when absent. */
  readonly delegSites?: EditList<DdtDelegSite>;
  /** Edits of the peer lists (map-servers, map-resolvers, proxy-ETRs); none when absent. */
  readonly peers?: PeerEditState;
}

/** No edits. */
export const EMPTY_STATE: RuntimeState = {
  staticMapCache: { added: [], removed: [] },
  databaseMappings: { added: [], removed: [] },
  lispSites: { added: [], removed: [] },
  staticSites: { added: [], removed: [] },
  delegSites: { added: [], removed: [] },
  peers: NO_PEER_EDITS,
};

/** A state file that cannot be read, with the path and (when one is) the field at fault. */
export class StateError extends Error {
  /** The state file. */
  readonly path: string;

  /** `path` and what is wrong. */
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = "StateError";
    this.path = path;
  }
}

function editList<T>(
  v: unknown,
  at: string,
  entry: (body: unknown, at: string) => T,
): EditList<T> {
  if (v === undefined) return { added: [], removed: [] };
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new FieldError(at, "must be an object {added, removed}");
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== "added" && k !== "removed") {
      throw new FieldError(`${at}.${k}`, "unknown key (expected added, removed)");
    }
  }
  const list = (k: string): unknown[] => {
    const x = o[k] ?? [];
    if (!Array.isArray(x)) throw new FieldError(`${at}.${k}`, "must be an array");
    return x;
  };
  return {
    added: list("added").map((x, i) => entry(x, `${at}.added[${i}].`)),
    removed: list("removed").map((x, i) => {
      const f = `${at}.removed[${i}]`;
      if (typeof x !== "object" || x === null || Array.isArray(x)) {
        throw new FieldError(f, "must be an object {eid-prefix, iid}");
      }
      return parseEidKey(x as Record<string, unknown>, `${f}.`);
    }),
  };
}

/**
 * A `[[ddt-deleg-site]]` of the state file: checked as the API checked it,
 * but without the node's auth-sites (a delegation outside them is a hint).
 */
function parseSavedDelegSite(body: unknown, at: string): DdtDelegSite {
  const iid = typeof body === "object" && body !== null && "iid" in body
    ? (body as { iid: unknown }).iid
    : 0;
  const anywhere = ["0.0.0.0/0", "::/0"].map((p) => ({ "eid-prefix": p, iid }));
  return parseConfigTable("ddt-deleg-site", body, (c) => c.ddtDelegSites, at, {
    "ddt-auth-site": anywhere,
  });
}

/** Checks the parsed JSON of a state file; throws {@link FieldError}. */
export function parseState(v: unknown): RuntimeState {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new FieldError("(top)", "must be a JSON object");
  }
  const o = v as Record<string, unknown>;
  const keys = [
    "format",
    "updated",
    "static-map-cache",
    "database-mapping",
    "lisp-site",
    "ms-static-registered-site",
    "ddt-deleg-site",
    ...PEER_STATE_KEYS,
  ];
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) throw new FieldError(k, `unknown key (expected ${keys.join(", ")})`);
  }
  if (o["format"] !== STATE_FORMAT) {
    throw new FieldError("format", `must be ${STATE_FORMAT} (got ${JSON.stringify(o["format"])})`);
  }
  return {
    staticMapCache: editList(o["static-map-cache"], "static-map-cache", parseStaticMapping),
    databaseMappings: editList(o["database-mapping"], "database-mapping", parseDatabaseMapping),
    lispSites: editList(o["lisp-site"], "lisp-site", parseLispSite),
    staticSites: editList(
      o["ms-static-registered-site"],
      "ms-static-registered-site",
      parseStaticSite,
    ),
    delegSites: editList(o["ddt-deleg-site"], "ddt-deleg-site", parseSavedDelegSite),
    peers: parsePeerEdits(o),
  };
}

/** The text of a state file for `state`. */
export function formatState(state: RuntimeState, updated: Date = new Date()): string {
  const doc = {
    format: STATE_FORMAT,
    updated: updated.toISOString(),
    "static-map-cache": {
      added: state.staticMapCache.added.map(staticMappingJson),
      removed: state.staticMapCache.removed.map(eidKeyJson),
    },
    "database-mapping": {
      added: state.databaseMappings.added.map(databaseMappingJson),
      removed: state.databaseMappings.removed.map(eidKeyJson),
    },
    "lisp-site": {
      added: (state.lispSites?.added ?? []).map(lispSiteJson),
      removed: (state.lispSites?.removed ?? []).map(eidKeyJson),
    },
    "ms-static-registered-site": {
      added: (state.staticSites?.added ?? []).map(staticSiteJson),
      removed: (state.staticSites?.removed ?? []).map(eidKeyJson),
    },
    "ddt-deleg-site": {
      added: (state.delegSites?.added ?? []).map(delegSiteJson),
      removed: (state.delegSites?.removed ?? []).map(eidKeyJson),
    },
    ...formatPeerEdits(state.peers ?? NO_PEER_EDITS),
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

/**
 * Reads the state file at `path`: no file means no edits. Throws
 * {@link StateError} for a file that is not a valid state (naming the
 * field), or that cannot be read.
 */
export async function loadState(path: string): Promise<RuntimeState> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return EMPTY_STATE;
    throw new StateError(path, `cannot read: ${e instanceof Error ? e.message : String(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new StateError(path, `not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return parseState(json);
  } catch (e) {
    if (e instanceof FieldError) throw new StateError(path, e.message);
    throw e;
  }
}

/**
 * Writes `state` to `path` atomically and durably: `<path>.tmp`, fsync,
 * rename, fsync of the directory. Rejects if any step fails (the old file
 * is then still whole).
 */
export async function saveState(path: string, state: RuntimeState): Promise<void> {
  const tmp = `${path}.tmp`;
  const bytes = new TextEncoder().encode(formatState(state));
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
  let dir: Deno.FsFile | undefined;
  try {
    dir = await Deno.open(dirname(path), { read: true });
    await dir.sync();
  } catch {
    // Some file systems cannot fsync a directory; the rename is still atomic.
  } finally {
    dir?.close();
  }
}

/**
 * An edit applied to the running role whose state file could not be
 * written: answered 500 with what becomes of the edit; the reason (with
 * the path) is the error's `cause`, which goes to the log.
 */
export class StateSaveError extends SourceError {
  /** The state file and what writing it threw. */
  constructor(path: string, error: unknown) {
    super(
      500,
      "the edit is in effect in the running role, but the state file could not be written: " +
        "the edit is kept in memory and saved with the next edit that can be written; " +
        "if none is before the role stops, it is gone at the next start",
    );
    this.name = "StateSaveError";
    this.cause = new Error(
      `saving the state file ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

type Mutable<T> = { added: T[]; removed: EidKey[] };

function keyOf(e: { eidPrefix: Prefix; iid: number }): EidKey {
  return { eidPrefix: e.eidPrefix, iid: e.iid };
}

/**
 * The runtime edits of one role process and their state file.
 *
 * `runRole()` opens it before the role starts, gives the role the config
 * with the edits applied ({@link apply}), and puts {@link wrap} in front of
 * the role's {@link StatusSource}: each successful write hook is then
 * recorded and saved before the API answers. With no path, edits are kept
 * in memory only.
 */
export class RuntimeEdits {
  /** The state file, or undefined for memory only. */
  readonly path: string | undefined;
  readonly #static: Mutable<StaticMapCacheEntry>;
  readonly #database: Mutable<DatabaseMapping>;
  readonly #sites: Mutable<LispSite>;
  readonly #staticSites: Mutable<MsStaticRegisteredSite>;
  readonly #delegSites: Mutable<DdtDelegSite>;
  #peers: PeerEditState;
  #basePeers: PeerLists = peerListsOf({
    mapServers: [],
    mapResolvers: [],
    proxyEtrsIpv4: [],
    proxyEtrsIpv6: [],
  });
  #baseDelegSites: EidKey[] = [];
  #baseStatic: EidKey[] = [];
  #baseDatabase: EidKey[] = [];
  #baseSites: EidKey[] = [];
  #baseStaticSites: EidKey[] = [];
  #queue: Promise<void> = Promise.resolve();

  /** Edits from `state` (default none), saved to `path` when given. */
  constructor(path: string | undefined, state: RuntimeState = EMPTY_STATE) {
    this.path = path;
    this.#static = {
      added: [...state.staticMapCache.added],
      removed: [...state.staticMapCache.removed],
    };
    this.#database = {
      added: [...state.databaseMappings.added],
      removed: [...state.databaseMappings.removed],
    };
    this.#sites = {
      added: [...state.lispSites?.added ?? []],
      removed: [...state.lispSites?.removed ?? []],
    };
    this.#staticSites = {
      added: [...state.staticSites?.added ?? []],
      removed: [...state.staticSites?.removed ?? []],
    };
    this.#delegSites = {
      added: [...state.delegSites?.added ?? []],
      removed: [...state.delegSites?.removed ?? []],
    };
    this.#peers = state.peers ?? NO_PEER_EDITS;
  }

  /** Loads the edits saved at `path` (none if the file does not exist); see {@link loadState}. */
  static async open(path: string | undefined): Promise<RuntimeEdits> {
    return new RuntimeEdits(path, path !== undefined ? await loadState(path) : EMPTY_STATE);
  }

  /** The edits now. */
  get state(): RuntimeState {
    return {
      staticMapCache: { added: [...this.#static.added], removed: [...this.#static.removed] },
      databaseMappings: {
        added: [...this.#database.added],
        removed: [...this.#database.removed],
      },
      lispSites: { added: [...this.#sites.added], removed: [...this.#sites.removed] },
      staticSites: {
        added: [...this.#staticSites.added],
        removed: [...this.#staticSites.removed],
      },
      delegSites: { added: [...this.#delegSites.added], removed: [...this.#delegSites.removed] },
      peers: this.#peers,
    };
  }

  /** Number of edits (entries added and removed). */
  get size(): number {
    return [this.#static, this.#database, this.#sites, this.#staticSites, this.#delegSites]
      .reduce((n, l) => n + l.added.length + l.removed.length, peerEditCount(this.#peers));
  }

  /**
   * `config` with the edits applied: config entries removed or replaced
   * by an edit are left out, added ones follow the config's. Remembers the
   * config's entries, so that removing one of them later is saved.
   */
  apply(config: Config): Config {
    this.#baseStatic = config.staticMapCache.map(keyOf);
    this.#baseDatabase = config.databaseMappings.map(keyOf);
    this.#baseSites = config.lispSites.map(keyOf);
    this.#baseStaticSites = config.msStaticRegisteredSites.map(keyOf);
    this.#baseDelegSites = config.ddtDelegSites.map(keyOf);
    this.#basePeers = peerListsOf(config);
    const merge = <T extends { eidPrefix: Prefix; iid: number }>(
      base: readonly T[],
      edits: Mutable<T>,
    ): T[] => [
      ...base.filter((e) =>
        !edits.removed.some((k) => sameKey(k, e)) && !edits.added.some((a) => sameKey(a, e))
      ),
      ...edits.added,
    ];
    return {
      ...config,
      staticMapCache: merge(config.staticMapCache, this.#static),
      databaseMappings: merge(config.databaseMappings, this.#database),
      lispSites: merge(config.lispSites, this.#sites),
      msStaticRegisteredSites: merge(config.msStaticRegisteredSites, this.#staticSites),
      ddtDelegSites: merge(config.ddtDelegSites, this.#delegSites),
      ...mergePeers(this.#basePeers, this.#peers),
    };
  }

  #added<T extends { eidPrefix: Prefix; iid: number }>(list: Mutable<T>, entry: T): void {
    const i = list.added.findIndex((a) => sameKey(a, entry));
    if (i >= 0) list.added.splice(i, 1);
    list.added.push(entry);
    const j = list.removed.findIndex((k) => sameKey(k, entry));
    if (j >= 0) list.removed.splice(j, 1);
  }

  #removed<T extends { eidPrefix: Prefix; iid: number }>(
    list: Mutable<T>,
    base: readonly EidKey[],
    key: EidKey,
  ): void {
    const i = list.added.findIndex((a) => sameKey(a, key));
    if (i >= 0) list.added.splice(i, 1);
    if (base.some((k) => sameKey(k, key)) && !list.removed.some((k) => sameKey(k, key))) {
      list.removed.push(key);
    }
  }

  /** Saves the edits now (in order with other saves); a no-op without a path. */
  save(): Promise<void> {
    const path = this.path;
    if (path === undefined) return Promise.resolve();
    const p = this.#queue.then(() => saveState(path, this.state));
    this.#queue = p.catch(() => {});
    return p;
  }

  async #commit(): Promise<void> {
    try {
      await this.save();
    } catch (e) {
      throw new StateSaveError(this.path ?? "", e);
    }
  }

  /** Records an added or replaced static map-cache entry and saves. */
  async addStaticMapping(entry: StaticMapCacheEntry): Promise<void> {
    this.#added(this.#static, entry);
    await this.#commit();
  }

  /** Records a removed static map-cache entry and saves. */
  async removeStaticMapping(eidPrefix: Prefix, iid: number): Promise<void> {
    this.#removed(this.#static, this.#baseStatic, { eidPrefix, iid });
    await this.#commit();
  }

  /** Records an added or replaced database mapping and saves. */
  async addDatabaseMapping(mapping: DatabaseMapping): Promise<void> {
    this.#added(this.#database, mapping);
    await this.#commit();
  }

  /** Records a removed database mapping and saves. */
  async removeDatabaseMapping(eidPrefix: Prefix, iid: number): Promise<void> {
    this.#removed(this.#database, this.#baseDatabase, { eidPrefix, iid });
    await this.#commit();
  }

  /** Records an added or replaced `[[lisp-site]]` and saves. */
  async addLispSite(site: LispSite): Promise<void> {
    this.#added(this.#sites, site);
    await this.#commit();
  }

  /** Records a removed `[[lisp-site]]` and saves. */
  async removeLispSite(eidPrefix: Prefix, iid: number): Promise<void> {
    this.#removed(this.#sites, this.#baseSites, { eidPrefix, iid });
    await this.#commit();
  }

  /** Records an added or replaced `[[ms-static-registered-site]]` and saves. */
  async addStaticSite(site: MsStaticRegisteredSite): Promise<void> {
    this.#added(this.#staticSites, site);
    await this.#commit();
  }

  /** Records a removed `[[ms-static-registered-site]]` and saves. */
  async removeStaticSite(eidPrefix: Prefix, iid: number): Promise<void> {
    this.#removed(this.#staticSites, this.#baseStaticSites, { eidPrefix, iid });
    await this.#commit();
  }

  /** Records an added or replaced `[[ddt-deleg-site]]` and saves. */
  async addDelegSite(site: DdtDelegSite): Promise<void> {
    this.#added(this.#delegSites, site);
    await this.#commit();
  }

  /** Records a removed `[[ddt-deleg-site]]` and saves. */
  async removeDelegSite(eidPrefix: Prefix, iid: number): Promise<void> {
    this.#removed(this.#delegSites, this.#baseDelegSites, { eidPrefix, iid });
    await this.#commit();
  }

  /** The peer lists in force: the config's with the edits on top. */
  get peerLists(): PeerLists {
    return mergePeers(this.#basePeers, this.#peers);
  }

  /** Records peer lists the role took (what they differ by from the config's) and saves. */
  async setPeers(lists: PeerLists): Promise<void> {
    this.#peers = peerEditsBetween(this.#basePeers, lists);
    await this.#commit();
  }

  /** Whether an entry of that key was added by an edit (`origin: "api"`). */
  #isEdit(list: Mutable<{ eidPrefix: Prefix; iid: number }>, prefix: string, iid: number): boolean {
    return list.added.some((a) => a.iid === iid && formatConfigPrefix(a.eidPrefix) === prefix);
  }

  /**
   * `source` with its write hooks followed by recording and saving the
   * edit (the API answers once the file is on disk), and the map-cache and
   * database entries that edits added marked `origin: "api"`. Providers
   * the source does not have stay absent.
   */
  wrap(source: StatusSource): StatusSource {
    const out: {
      -readonly [K in keyof StatusSource]: StatusSource[K];
    } = {};
    if (source.status) out.status = () => source.status!();
    if (source.sites) out.sites = () => source.sites!();
    if (source.referrals) out.referrals = () => source.referrals!();
    if (source.counters) out.counters = () => source.counters!();
    if (source.mapCache) {
      out.mapCache = async (q) =>
        (await source.mapCache!(q)).map((x) =>
          x.origin === undefined && x.static && this.#isEdit(this.#static, x.eidPrefix, x.iid)
            ? { ...x, origin: "api" as const }
            : x
        );
    }
    if (source.database) {
      out.database = async () =>
        (await source.database!()).map((x) =>
          x.origin === undefined && this.#isEdit(this.#database, x.eidPrefix, x.iid)
            ? { ...x, origin: "api" as const }
            : x
        );
    }
    const after = <A extends unknown[], R>(
      hook: ((...a: A) => MaybePromise<R>) | undefined,
      record: (r: R, ...a: A) => Promise<void>,
    ): ((...a: A) => Promise<R>) | undefined =>
      hook === undefined ? undefined : async (...a: A) => {
        const r = await hook.apply(source, a);
        await record(r, ...a);
        return r;
      };
    const addStatic = after(source.addStaticMapping, (_, e) => this.addStaticMapping(e));
    if (addStatic) out.addStaticMapping = addStatic;
    const removeStatic = after(
      source.removeStaticMapping,
      async (ok, p, iid) => ok ? await this.removeStaticMapping(p, iid) : undefined,
    );
    if (removeStatic) out.removeStaticMapping = removeStatic;
    const addDb = after(source.addDatabaseMapping, (_, m) => this.addDatabaseMapping(m));
    if (addDb) out.addDatabaseMapping = addDb;
    const removeDb = after(
      source.removeDatabaseMapping,
      async (ok, p, iid) => ok ? await this.removeDatabaseMapping(p, iid) : undefined,
    );
    if (removeDb) out.removeDatabaseMapping = removeDb;
    const addSite = after(source.addLispSite, (_, s) => this.addLispSite(s));
    if (addSite) out.addLispSite = addSite;
    const removeSite = after(
      source.removeLispSite,
      async (ok, p, iid) => ok ? await this.removeLispSite(p, iid) : undefined,
    );
    if (removeSite) out.removeLispSite = removeSite;
    const addStaticSite = after(source.addStaticSite, (_, s) => this.addStaticSite(s));
    if (addStaticSite) out.addStaticSite = addStaticSite;
    const removeStaticSite = after(
      source.removeStaticSite,
      async (ok, p, iid) => ok ? await this.removeStaticSite(p, iid) : undefined,
    );
    if (removeStaticSite) out.removeStaticSite = removeStaticSite;
    const addDeleg = after(source.addDelegSite, (_, s) => this.addDelegSite(s));
    if (addDeleg) out.addDelegSite = addDeleg;
    const removeDeleg = after(
      source.removeDelegSite,
      async (ok, p, iid) => ok ? await this.removeDelegSite(p, iid) : undefined,
    );
    if (removeDeleg) out.removeDelegSite = removeDeleg;
    const setPeers = after(source.setPeers, (_, lists) => this.setPeers(lists));
    if (setPeers) {
      out.setPeers = setPeers;
      out.peerLists = () => this.peerLists;
    }
    return out;
  }
}
