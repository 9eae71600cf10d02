/**
 * The Map-Server's registrations kept across a restart: written beside the
 * role's state file (`<state-file minus .json>.registrations.json`, so by
 * default `<config>.state.registrations.json`) every 10 s when they changed
 * and when the role stops, read back at start.
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

/** The live registrations made by Map-Registers, as the file's text. */
export function encodeRegistrations(regs: Iterable<Registration>, now: number): string {
  const out: SavedRegistration[] = [];
  for (const r of regs) {
    if (r.static || r.expiresAt <= now) continue;
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
    out.push({
      record: toHex(record),
      key: r.key,
      ...(r.xtrId !== undefined ? { xtrId: r.xtrId.toString(16) } : {}),
      ...(r.siteId !== undefined ? { siteId: r.siteId.toString(16) } : {}),
      ...(r.from !== undefined ? { from: { address: r.from.address, port: r.from.port } } : {}),
      proxyReply: r.proxyReply,
      firstSeen: r.firstSeen,
      lastSeen: r.lastSeen,
      expiresAt: r.expiresAt,
      ...(r.natPrivate !== undefined ? { natPrivate: r.natPrivate } : {}),
    });
  }
  const file: SavedFile = { format: SAVED_FORMAT, savedAt: now, registrations: out };
  return JSON.stringify(file);
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
    this.#deps.logger.info("registrations-restored", {
      file: this.#path,
      restored: r.restored,
      expired: r.expired,
      "no-site": r.noSite,
    });
  }

  /** Writes the file if the store changed since the last write (timer and close). */
  save(): void {
    const version = this.#store.version;
    if (version === this.#savedVersion) return;
    const tmp = `${this.#path}.tmp`;
    try {
      Deno.writeTextFileSync(tmp, encodeRegistrations(this.#store.all(), this.#deps.now()), {
        mode: 0o600,
      });
      Deno.renameSync(tmp, this.#path);
      this.#savedVersion = version;
    } catch (e) {
      this.#deps.logger.limited("registrations-save", 60_000, "warn", "registrations-not-saved", {
        file: this.#path,
        error: e instanceof Error ? e.message : String(e),
        consequence: "a restart now would forget registrations until the ETRs refresh them",
      });
    }
  }
}
