/**
 * The error (and warning) record of config validation.
 *
 * @module
 */

/** One problem in a config file, shown as `file:line: key.path: reason`. */
export class ConfigError {
  /** File name as given by the caller (e.g. `"oor.toml"`). */
  readonly file: string;
  /** 1-based line of the problem, when it can be placed on a line. */
  readonly line?: number;
  /** 1-based column, only for TOML syntax errors. */
  readonly column?: number;
  /** Key path like `map-server[0].key-type`; empty for whole-file problems. */
  readonly keyPath: string;
  /** What is wrong, in a few words. */
  readonly reason: string;

  /**
   * Makes a problem record.
   *
   * @param file file name to show
   * @param line 1-based line, or undefined if the problem has no line
   * @param keyPath key path, or "" for whole-file problems
   * @param reason what is wrong
   * @param column 1-based column, for syntax errors
   */
  constructor(
    file: string,
    line: number | undefined,
    keyPath: string,
    reason: string,
    column?: number,
  ) {
    this.file = file;
    if (line !== undefined) this.line = line;
    if (column !== undefined) this.column = column;
    this.keyPath = keyPath;
    this.reason = reason;
  }

  /** `oor.toml:14: map-server[0].key-type: must be 1 (HMAC-SHA-1) or 2 (HMAC-SHA-256)`. */
  toString(): string {
    let s = this.file;
    if (this.line !== undefined) s += `:${this.line}`;
    if (this.column !== undefined) s += `:${this.column}`;
    s += ": ";
    if (this.keyPath !== "") s += `${this.keyPath}: `;
    return s + this.reason;
  }
}
