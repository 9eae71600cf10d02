/**
 * Keeps the answer table the Workers read (answers.ts) equal to the
 * registration store (registrations.ts): on every change of a prefix's
 * registrations, before the change's Map-Notify goes out, it publishes
 * what a Map-Request under that prefix gets, as answerer.ts would answer
 * it at that moment:
 *
 * - the prefix left the store: removed from the table;
 * - its live registrations (in answer order) call for a proxy reply (the
 *   site's `proxy-reply`, a P bit, a static registration): the proxy
 *   Map-Reply's record, valid until the first of them expires;
 * - otherwise (a forward to an ETR, or only expired registrations left in
 *   the store): kind "main thread", so the Workers hand the request over.
 *
 * Should the table refuse a change (full: a billion bytes, or 32,768
 * instance ids and families), it is disabled (`SharedTrie.disable()`) and
 * logged once (`answer-table-full`): from then on the Workers hand every
 * Map-Request to the main thread, which answers from the store.
 *
 * @module
 */

import { emitEidRecord } from "../../wire/eid_record.ts";
import type { Logger } from "../../core/log.ts";
import type { Prefix } from "../../core/prefix.ts";
import { ANSWER_MAIN, ANSWER_PROXY, type AnswerTable } from "./answers.ts";
import { proxyRecord } from "./answerer.ts";
import { liveOrder, type Registration, type RegistrationStore } from "./registrations.ts";
import type { Sites } from "./sites.ts";

/** Publishes the store's changes to the table (see the module notes). */
export class AnswerPublisher {
  readonly #table: AnswerTable;
  readonly #store: RegistrationStore;
  readonly #sites: Sites;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;

  /** Publishes every prefix the store holds now, then each change as it happens. */
  constructor(
    table: AnswerTable,
    store: RegistrationStore,
    sites: Sites,
    now: () => number,
    logger?: Logger,
  ) {
    this.#table = table;
    this.#store = store;
    this.#sites = sites;
    this.#now = now;
    this.#logger = logger;
    const seen = new Set<string>();
    for (const r of store.all()) {
      const k = `${r.prefix.iid} ${r.prefix.family} ${r.prefix.bytes.join(".")}/${r.prefix.len}`;
      if (seen.has(k)) continue;
      seen.add(k);
      this.publish(r.prefix);
    }
    store.onChange = (p) => this.publish(p);
    store.onRefresh = (r) => this.refreshed(r);
  }

  /**
   * `r`, its prefix's only registration, was refreshed with nothing
   * changed but its times: its proxy answer is valid until its new expiry.
   */
  refreshed(r: Registration): void {
    const t = this.#table;
    if (t.trie.broken) return;
    const p = r.prefix;
    if (p.family !== "ipv4" && p.family !== "ipv6") return;
    t.extend(p.iid, p.family === "ipv4" ? 4 : 6, p.bytes, 0, p.len, r.expiresAt);
  }

  /** Publishes the answer for `prefix` as the store holds it now. */
  publish(prefix: Prefix): void {
    if (this.#table.trie.broken) return;
    try {
      this.#publish(prefix);
    } catch (e) {
      this.#table.trie.disable();
      this.#logger?.error("answer-table-full", {
        error: e instanceof Error ? e.message : String(e),
        consequence: "the Workers hand every Map-Request to the main thread",
      });
    }
  }

  #publish(prefix: Prefix): void {
    if (prefix.family !== "ipv4" && prefix.family !== "ipv6") return;
    const family = prefix.family === "ipv4" ? 4 : 6;
    const all = [...this.#store.at(prefix)];
    if (all.length === 0) {
      this.#table.publish(prefix.iid, family, prefix.bytes, 0, prefix.len, undefined);
      return;
    }
    const now = this.#now();
    const dynamic: Registration[] = [];
    let stat: Registration | undefined;
    let validUntil = Infinity;
    for (const r of all) {
      if (r.expiresAt <= now) continue;
      if (r.static) stat = r;
      else {
        dynamic.push(r);
        if (r.expiresAt < validUntil) validUntil = r.expiresAt;
      }
    }
    const regs = liveOrder(dynamic, stat);
    const site = this.#sites.table.lookup(prefix)?.value;
    const proxy = regs.length > 0 &&
      (site?.config.proxyReply === true || regs.some((x) => x.proxyReply || x.static));
    this.#table.publish(
      prefix.iid,
      family,
      prefix.bytes,
      0,
      prefix.len,
      proxy
        ? { kind: ANSWER_PROXY, record: emitEidRecord(proxyRecord(prefix, regs)), validUntil }
        : { kind: ANSWER_MAIN, validUntil: 0 },
    );
  }
}
