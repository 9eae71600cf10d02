/**
 * The map-server's runtime edits (the API's `/api/v1/lisp-sites` and
 * `/api/v1/ms-static-registered-sites`): a `[[lisp-site]]` added takes
 * Map-Registers at once (the main thread's registrar looks sites up in
 * {@link Sites}; an answering Worker hands a Map-Register for a site it
 * did not start with to the main thread); a site removed takes no more, and
 * its registrations are withdrawn. A `[[ms-static-registered-site]]` added
 * is a static registration from then on; removed, it is withdrawn.
 *
 * Persisting them is not done here: web/state.ts records each edit and
 * replays it into the config at the next start.
 *
 * After each edit the answering Workers get the sites in force
 * ({@link SiteEditsContext.changed}, `ServingPool.updateSites`), so their
 * negative Map-Replies follow at once too (an EID of an added site is "not
 * registered", no longer "not an EID").
 *
 * @module
 */

import type { Config, LispSite, MsStaticRegisteredSite, Prefix } from "../../config/mod.ts";
import { formatPrefix, prefixFromConfig } from "../../core/prefix.ts";
import type { Logger } from "../../core/log.ts";
import { ACTION } from "../../wire/eid_record.ts";
import type { RegistrationStore } from "./registrations.ts";
import { STATIC_KEY } from "./registrations.ts";
import { type Sites, staticLocators } from "./sites.ts";

/** Whether two tables name the same EID prefix and instance. */
function sameSite(
  a: { readonly eidPrefix: Prefix; readonly iid: number },
  b: { readonly eidPrefix: Prefix; readonly iid: number },
): boolean {
  return a.iid === b.iid && a.eidPrefix.address === b.eidPrefix.address &&
    a.eidPrefix.length === b.eidPrefix.length && a.eidPrefix.family === b.eidPrefix.family;
}

/** What {@link SiteEdits} reads and changes. */
export interface SiteEditsContext {
  /** The configured sites (changed). */
  readonly sites: Sites;
  /** The registrations (changed). */
  readonly store: RegistrationStore;
  /** The running config (explicit locator paths by name, for static registrations). */
  readonly config: Config;
  /** Clock, ms since the epoch. */
  readonly now: () => number;
  /** Where each edit is logged. */
  readonly logger: Logger;
  /** Told the sites in force after each edit (the answering Workers). */
  readonly changed?: (
    lispSites: readonly LispSite[],
    staticSites: readonly MsStaticRegisteredSite[],
  ) => void;
}

/** Adds and removes sites and static registrations of a running map-server. */
export class SiteEdits {
  readonly #c: SiteEditsContext;
  /** The static registrations in force, as tables. */
  #static: MsStaticRegisteredSite[];

  /** Edits over `ctx`. */
  constructor(ctx: SiteEditsContext) {
    this.#c = ctx;
    this.#static = [...ctx.config.msStaticRegisteredSites];
  }

  #changed(): void {
    this.#c.changed?.(this.#c.sites.list.map((s) => s.config), this.#static);
  }

  /** Adds or replaces a `[[lisp-site]]`; it takes Map-Registers from now on. */
  addSite(s: LispSite): void {
    const site = this.#c.sites.add(s);
    this.#c.logger.info("lisp-site-added", { prefix: site.text, "key-type": s.keyType });
    this.#changed();
  }

  /**
   * Removes the `[[lisp-site]]` of exactly that prefix and instance and
   * withdraws what was registered under it; false if there is none.
   */
  removeSite(eidPrefix: Prefix, iid: number): boolean {
    const prefix = prefixFromConfig(eidPrefix, iid);
    const store = this.#c.store;
    const site = this.#c.sites.remove(prefix, store.get(prefix, STATIC_KEY) !== undefined);
    if (site === undefined) return false;
    let withdrawn = 0;
    for (const r of [...store.all()]) {
      if (r.static || r.site === undefined || formatPrefix(r.site) !== site.text) continue;
      store.remove(r.prefix, r.key);
      withdrawn++;
    }
    this.#c.logger.info("lisp-site-removed", { prefix: site.text, withdrawn });
    this.#changed();
    return true;
  }

  /** Adds or replaces a `[[ms-static-registered-site]]`: a static registration. */
  addStatic(s: MsStaticRegisteredSite): void {
    const prefix = prefixFromConfig(s.eidPrefix, s.iid);
    const now = this.#c.now();
    this.#c.sites.configured.set(prefix, true);
    this.#c.store.put({
      prefix,
      key: STATIC_KEY,
      static: true,
      locators: staticLocators(s, this.#c.config),
      ttl: s.ttl,
      action: ACTION.NO_ACTION,
      mapVersion: 0,
      proxyReply: true,
      firstSeen: now,
      lastSeen: now,
      expiresAt: Infinity,
    });
    this.#static = [...this.#static.filter((x) => !sameSite(x, s)), s];
    this.#c.logger.info("static-registration-added", { prefix: formatPrefix(prefix) });
    this.#changed();
  }

  /** Removes the static registration of exactly that prefix; false if there is none. */
  removeStatic(eidPrefix: Prefix, iid: number): boolean {
    const prefix = prefixFromConfig(eidPrefix, iid);
    if (this.#c.store.remove(prefix, STATIC_KEY) === undefined) return false;
    if (this.#c.sites.table.get(prefix) === undefined) this.#c.sites.configured.delete(prefix);
    this.#static = this.#static.filter((x) => !sameSite(x, { eidPrefix, iid }));
    this.#c.logger.info("static-registration-removed", { prefix: formatPrefix(prefix) });
    this.#changed();
    return true;
  }
}
