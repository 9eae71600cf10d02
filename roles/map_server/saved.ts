/**
 * The Map-Server's registrations kept across a restart: written beside the
 * role's state file (`<state-file minus .json>.registrations.json`, so by
 * default `<config>.state.registrations.json`) every 10 s when they changed
 * (a refresh too: the file keeps each expiry) and when the role stops, read
 * back at start. The timer's write is asynchronous, off the event loop,
 * and the text of an entry is made again only when its registration
 * changed more than its times.
 *
 * Registrations are soft state (an ETR refreshes its own every minute), but
 * a map-server that forgets them at a restart answers negatively for every
 * site until each ETR's next refresh, and ITRs cache those answers. So a
 * restarted ms takes back what was live, as it was: each record in its wire
 * form (the codec writes and reads it), who registered it, when, and when it
 * expires. At start an entry is taken only if it has not expired and a
 * configured site still admits it (site prefix, more-specifics, its
 * `max-registrations`); the rest are counted and skipped. An unreadable file
 * is logged and ignored: the ETRs' refreshes rebuild it.
 *
 * The file is replaced atomically (written beside, then renamed). A kill -9
 * loses at most the last 10 s of changes.
 *
 * @module
 */

import { emitEidRecord, parseEidRecord } from "../../wire/eid_record.ts";
import { fromHex, toHex } from "../../wire/json.ts";
import { prefixContains, prefixEid, prefixEquals, prefixOf } from "../../core/prefix.ts";
import type { RoleDeps } from "../../core/role.ts";
import type { Registration, RegistrationStore } from "./registrations.ts";
import type { Sites } from "./sites.ts";

/** The version of the file's format. */
export const SAVED_FORMAT = 1;

/** How often changed registrations are written, ms. */
export const SAVE_INTERVAL_MS = 10_000;

/** Registrations encoded per turn of the event loop when the timer writes them. */
export const SAVE_SLICE = 2048;

/** One registration as the file keeps it. */
interface SavedRegistration {
  /** The EID record, hex (prefix, locators, TTL, action, map-version). */
  readonly record: string;
  readonly key: string;
  readonly xtrId?: string;
  readonly siteId?: string;
  readonly from?: { readonly address: string; readonly port: number };
  readonly proxyReply: boolean;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly expiresAt: number;
  readonly natPrivate?: string;
}

interface SavedFile {
  readonly format: number;
  readonly savedAt: number;
  readonly registrations: readonly SavedRegistration[];
}

/** Where the registrations of a role whose state file is `statePath` are kept. */
export function savedRegistrationsPath(statePath: string): string {
  return statePath.endsWith(".json")
    ? `${statePath.slice(0, -".json".length)}.registrations.json`
    : `${statePath}.registrations.json`;
}

/**
 * The live registrations made by Map-Registers, as the file's text. With
 * `cache` (each registration's entry text without its times, from earlier
 * calls), a registration whose only change since is its times (a refresh,
 * `RegistrationStore.refresh`) costs a lookup.
 */
export function encodeRegistrations(
  regs: Iterable<Registration>,
  now: number,
  cache?: WeakMap<Registration, string>,
): string {
  const out: string[] = [];
  for (const r of regs) {
    const entry = encodeEntry(r, now, cache);
    if (entry !== undefined) out.push(entry);
  }
  return fileText(out, now);
}

/** The file's text of its entries. */
function fileText(entries: readonly string[], now: number): string {
  return `{"format":${SAVED_FORMAT},"savedAt":${now},"registrations":[${entries.join(",")}]}`;
}

/** The entry of `r` in the file; undefined when the file leaves it out (static, expired). */
function encodeEntry(
  r: Registration,
  now: number,
  cache: WeakMap<Registration, string> | undefined,
): string | undefined {
  if (r.static || r.expiresAt <= now) return undefined;
  let head = cache?.get(r);
  if (head === undefined) {
    head = entryHead(r);
    cache?.set(r, head);
  }
  return `${head},"lastSeen":${r.lastSeen},"expiresAt":${r.expiresAt}}`;
}

/** A registration's entry in the file, up to its times (lastSeen, expiresAt) and the closing brace. */
function entryHead(r: Registration): string {
  const record = emitEidRecord({
    ttl: r.ttl,
    maskLen: r.prefix.len,
    action: r.action,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: r.mapVersion,
    eid: prefixEid(r.prefix),
    locators: r.locators,
  });
  const entry: Omit<SavedRegistration, "lastSeen" | "expiresAt"> = {
    record: toHex(record),
    key: r.key,
    ...(r.xtrId !== undefined ? { xtrId: r.xtrId.toString(16) } : {}),
    ...(r.siteId !== undefined ? { siteId: r.siteId.toString(16) } : {}),
    ...(r.from !== undefined ? { from: { address: r.from.address, port: r.from.port } } : {}),
    proxyReply: r.proxyReply,
    firstSeen: r.firstSeen,
    ...(r.natPrivate !== undefined ? { natPrivate: r.natPrivate } : {}),
  };
  return JSON.stringify(entry).slice(0, -1);
}

function fail(why: string): never {
  throw new Error(why);
}

function num(v: unknown, what: string): number {
  return typeof v === "number" && Number.isFinite(v) ? v : fail(`${what} is not a number`);
}

function str(v: unknown, what: string): string {
  return typeof v === "string" ? v : fail(`${what} is not a string`);
}

/**
 * The registrations of a file's text (site not yet set: see
 * {@link restoreRegistrations}). Throws an Error saying what is wrong.
 */
export function decodeRegistrations(text: string): Omit<Registration, "site">[] {
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch (e) {
    fail(`not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const f = file as Partial<SavedFile> | null;
  if (f === null || typeof f !== "object") fail("not a JSON object");
  if (f.format !== SAVED_FORMAT) {
    fail(`format ${String(f.format)}, this version reads ${SAVED_FORMAT}`);
  }
  if (!Array.isArray(f.registrations)) fail("no registrations list");
  return f.registrations.map((s, i) => {
    const at = `registrations[${i}]`;
    const rec = parseEidRecord(fromHex(str(s.record, `${at}.record`)));
    const prefix = prefixOf(rec.eid, rec.maskLen) ?? fail(`${at}.record: not an EID prefix`);
    const from = s.from === undefined ? undefined : {
      address: str(s.from.address, `${at}.from.address`),
      port: num(s.from.port, `${at}.from.port`),
    };
    return {
      prefix,
      key: str(s.key, `${at}.key`),
      static: false,
      ...(s.xtrId !== undefined ? { xtrId: BigInt(`0x${str(s.xtrId, `${at}.xtrId`)}`) } : {}),
      ...(s.siteId !== undefined ? { siteId: BigInt(`0x${str(s.siteId, `${at}.siteId`)}`) } : {}),
      ...(from !== undefined ? { from } : {}),
      locators: rec.locators,
      ttl: rec.ttl,
      action: rec.action,
      mapVersion: rec.mapVersion,
      proxyReply: s.proxyReply === true,
      firstSeen: num(s.firstSeen, `${at}.firstSeen`),
      lastSeen: num(s.lastSeen, `${at}.lastSeen`),
      expiresAt: num(s.expiresAt, `${at}.expiresAt`),
      ...(s.natPrivate !== undefined ? { natPrivate: str(s.natPrivate, `${at}.natPrivate`) } : {}),
    };
  });
}

/** What {@link restoreRegistrations} did. */
export interface Restored {
  readonly restored: number;
  readonly expired: number;
  /** No configured site admits them any more (or the site is full). */
  readonly noSite: number;
}

/** Puts the saved registrations that are live and still admitted by a site into `store`. */
export function restoreRegistrations(
  saved: readonly Omit<Registration, "site">[],
  sites: Sites,
  store: RegistrationStore,
  now: number,
): Restored {
  let restored = 0;
  let expired = 0;
  let noSite = 0;
  for (const r of saved) {
    if (r.expiresAt <= now) {
      expired++;
      continue;
    }
    const site = sites.table.lookup(r.prefix)?.value;
    const admitted = site !== undefined && prefixContains(site.prefix, r.prefix) &&
      (site.config.acceptMoreSpecifics || prefixEquals(site.prefix, r.prefix)) &&
      (store.get(r.prefix, r.key) !== undefined ||
        store.siteCount(site.prefix) < site.config.maxRegistrations);
    if (!admitted) {
      noSite++;
      continue;
    }
    store.put({ ...r, site: site.prefix });
    restored++;
  }
  return { restored, expired, noSite };
}

/** Keeps a store's registrations in a file (see the module notes). */
export class SavedRegistrations {
  readonly #path: string;
  readonly #store: RegistrationStore;
  readonly #deps: RoleDeps;
  #savedVersion = -1;
  #savedRefreshes = -1;
  /** Each registration last written, with its entry's text but its times. */
  readonly #cache = new WeakMap<Registration, string>();
  /** The write under way, if any. */
  #writing: Promise<void> | undefined;

  constructor(path: string, store: RegistrationStore, deps: RoleDeps) {
    this.#path = path;
    this.#store = store;
    this.#deps = deps;
  }

  /** Reads the file into the store; logs what it took. A missing file is no error. */
  load(sites: Sites): void {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.#path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      this.#deps.logger.warn("registrations-file-unreadable", {
        file: this.#path,
        error: e instanceof Error ? e.message : String(e),
      });
      return;
    }
    let saved: Omit<Registration, "site">[];
    try {
      saved = decodeRegistrations(text);
    } catch (e) {
      this.#deps.logger.warn("registrations-file-unreadable", {
        file: this.#path,
        error: `${
          e instanceof Error ? e.message : String(e)
        } (ignored: the ETRs' refreshes rebuild it)`,
      });
      return;
    }
    const r = restoreRegistrations(saved, sites, this.#store, this.#deps.now());
    this.#savedVersion = this.#store.version;
    this.#savedRefreshes = this.#store.refreshes;
    this.#deps.logger.info("registrations-restored", {
      file: this.#path,
      restored: r.restored,
      expired: r.expired,
      "no-site": r.noSite,
    });
  }

  /** Whether the store changed (a change, or a refresh's times) since the last write. */
  #changed(): boolean {
    return this.#store.version !== this.#savedVersion ||
      this.#store.refreshes !== this.#savedRefreshes;
  }

  /**
   * Timer: if the store changed since the last write, writes the file
   * without holding the event loop: the registrations are encoded
   * {@link SAVE_SLICE} at a time, the event loop running between slices
   * (only the entries of registrations changed more than their times are
   * made anew), then written asynchronously and renamed. One write at a
   * time. A registration removed or replaced meanwhile is left out; one
   * added meanwhile waits for the next write (the store's version moved).
   */
  saveSoon(): void {
    if (this.#writing !== undefined || !this.#changed()) return;
    this.#writing = this.#saveInSlices().finally(() => {
      this.#writing = undefined;
    });
  }

  async #saveInSlices(): Promise<void> {
    const store = this.#store;
    const version = store.version;
    const refreshes = store.refreshes;
    const regs = [...store.all()];
    const out: string[] = [];
    try {
      for (let i = 0; i < regs.length; i += SAVE_SLICE) {
        if (i > 0) await new Promise((r) => setTimeout(r, 0));
        const now = this.#deps.now();
        const moved = store.version !== version;
        const end = Math.min(regs.length, i + SAVE_SLICE);
        for (let k = i; k < end; k++) {
          const r = regs[k]!;
          if (moved && store.holder(r) === undefined) continue;
          const entry = encodeEntry(r, now, this.#cache);
          if (entry !== undefined) out.push(entry);
        }
      }
      const tmp = `${this.#path}.tmp`;
      await Deno.writeTextFile(tmp, fileText(out, this.#deps.now()), { mode: 0o600 });
      await Deno.rename(tmp, this.#path);
      this.#savedVersion = version;
      this.#savedRefreshes = refreshes;
    } catch (e) {
      this.#notSaved(e);
    }
  }

  /** Writes the file now if the store changed since the last write (close). */
  save(): void {
    if (!this.#changed()) return;
    const version = this.#store.version;
    const refreshes = this.#store.refreshes;
    const tmp = `${this.#path}.tmp`;
    try {
      const text = encodeRegistrations(this.#store.all(), this.#deps.now(), this.#cache);
      Deno.writeTextFileSync(tmp, text, { mode: 0o600 });
      Deno.renameSync(tmp, this.#path);
      this.#savedVersion = version;
      this.#savedRefreshes = refreshes;
    } catch (e) {
      this.#notSaved(e);
    }
  }

  /** Waits for a write under way, then writes what changed since (the role stops). */
  async close(): Promise<void> {
    await this.#writing;
    this.save();
  }

  #notSaved(e: unknown): void {
    this.#deps.logger.limited("registrations-save", 60_000, "warn", "registrations-not-saved", {
      file: this.#path,
      error: e instanceof Error ? e.message : String(e),
      consequence: "a restart now would forget registrations until the ETRs refresh them",
    });
  }
}
