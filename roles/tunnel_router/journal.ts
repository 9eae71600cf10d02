/**
 * {@link Journal}: everything a tunnel router adds to the host, in order,
 * with how to undo it; shutdown undoes it in reverse, logging (never
 * throwing) what fails.
 *
 * @module
 */

import type { Logger } from "../../core/log.ts";
import { errText } from "./context.ts";
import { errCode } from "./platform.ts";

/** Errors that mean "already gone" when undoing (the kernel removed it with its link). */
const GONE = new Set(["ESRCH", "ENOENT", "EADDRNOTAVAIL", "ENODEV"]);

/**
 * Everything a role added to the host, in the order it was added, each
 * with its undo. Keys make entries unique, so state kept in step with the
 * host (the per-RLOC tables) can be added and removed one by one.
 */
export class Journal {
  readonly #entries = new Map<string, { readonly what: string; readonly undo: () => void }>();
  readonly #logger: Logger;

  /** A journal logging through `logger`. */
  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether `key` is recorded. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Keys starting with `prefix`, oldest first. */
  keys(prefix = ""): string[] {
    return [...this.#entries.keys()].filter((k) => k.startsWith(prefix));
  }

  /** What each entry is, oldest first (for logs and tests). */
  list(): string[] {
    return [...this.#entries.values()].map((e) => e.what);
  }

  /** Records that `what` was added and how to undo it. */
  add(key: string, what: string, undo: () => void): void {
    this.#entries.set(key, { what, undo });
  }

  /** Undoes one entry now (errors logged, not thrown); false if it was not there. */
  undo(key: string): boolean {
    const e = this.#entries.get(key);
    if (e === undefined) return false;
    this.#entries.delete(key);
    this.#run(e.what, e.undo);
    return true;
  }

  /** Undoes every entry, newest first. */
  undoAll(): void {
    const all = [...this.#entries.values()].reverse();
    this.#entries.clear();
    for (const e of all) this.#run(e.what, e.undo);
  }

  #run(what: string, undo: () => void): void {
    try {
      undo();
      this.#logger.debug("undone", { what });
    } catch (e) {
      const code = errCode(e);
      if (code !== undefined && GONE.has(code)) {
        this.#logger.debug("undo-already-gone", { what, code });
      } else {
        this.#logger.warn("undo-failed", { what, error: errText(e) });
      }
    }
  }
}
