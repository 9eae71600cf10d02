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
 * Known limit: the answering Workers build their index of sites when they
 * start, so until a restart their negative Map-Replies for EIDs of an added
 * site that nothing registered say "not an EID" (a hole) rather than "not
 * registered"; registered prefixes are answered from the shared answer
 * table and are right at once.
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
}

/** Adds and removes sites and static registrations of a running map-server. */
export class SiteEdits {
  readonly #c: SiteEditsContext;

  /** Edits over `ctx`. */
  constructor(ctx: SiteEditsContext) {
    this.#c = ctx;
  }

  /** Adds or replaces a `[[lisp-site]]`; it takes Map-Registers from now on. */
  addSite(s: LispSite): void {
    const site = this.#c.sites.add(s);
    this.#c.logger.info("lisp-site-added", { prefix: site.text, "key-type": s.keyType });
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
    this.#c.logger.info("static-registration-added", { prefix: formatPrefix(prefix) });
  }

  /** Removes the static registration of exactly that prefix; false if there is none. */
  removeStatic(eidPrefix: Prefix, iid: number): boolean {
    const prefix = prefixFromConfig(eidPrefix, iid);
    if (this.#c.store.remove(prefix, STATIC_KEY) === undefined) return false;
    if (this.#c.sites.table.get(prefix) === undefined) this.#c.sites.configured.delete(prefix);
    this.#c.logger.info("static-registration-removed", { prefix: formatPrefix(prefix) });
    return true;
  }
}
