/**
 * Line numbers for key paths in a TOML text.
 *
 * smol-toml gives values but not positions, so this scanner walks the text
 * (already accepted by the real parser) and records, for every key path it
 * meets, the line where it first appears: `[table]` and `[[array]]`
 * headers, `dotted.keys = ...`, elements of arrays and keys of inline tables,
 * across lines. Array-of-tables occurrences are counted per parent so that
 * `database-mapping[1].rloc-address[0]` points at the second
 * `[[database-mapping]]`'s first `[[database-mapping.rloc-address]]`.
 *
 * It never throws: on text it does not understand it stops recording and
 * the caller falls back to the nearest recorded parent.
 *
 * @module
 */

/** One step of a key path: a key name or an array index. */
export type PathSegment = string | number;

/** Formats a key path the way errors show it: `map-server[0].key-type`. */
export function formatPath(path: readonly PathSegment[]): string {
  let s = "";
  for (const seg of path) {
    if (typeof seg === "number") s += `[${seg}]`;
    else s += s.length === 0 ? seg : `.${seg}`;
  }
  return s;
}

/** Maps key paths of one TOML text to 1-based line numbers. */
export class LineLocator {
  readonly #lines = new Map<string, number>();

  /** Scans `text` (which should be valid TOML) and records key lines. */
  constructor(text: string) {
    try {
      new Scanner(text, this.#lines).run();
    } catch {
      // Keep whatever was recorded before the scanner got lost.
    }
  }

  /**
   * The line of `path`, or of its nearest recorded parent (for a missing
   * key: the line of its table header), or undefined if none is known.
   */
  lineOf(path: readonly PathSegment[]): number | undefined {
    for (let n = path.length; n > 0; n--) {
      const line = this.#lines.get(formatPath(path.slice(0, n)));
      if (line !== undefined) return line;
    }
    return undefined;
  }

  /** The line of exactly `path`, without falling back to a parent. */
  exactLineOf(path: readonly PathSegment[]): number | undefined {
    return this.#lines.get(formatPath(path));
  }
}

const BARE_KEY = /[A-Za-z0-9_-]/;

class Scanner {
  readonly #s: string;
  readonly #out: Map<string, number>;
  #p = 0;
  #line = 1;
  /** Number of elements seen so far in each array of tables, by path. */
  readonly #arrayCounts = new Map<string, number>();

  constructor(s: string, out: Map<string, number>) {
    this.#s = s;
    this.#out = out;
  }

  run(): void {
    let table: PathSegment[] = [];
    for (;;) {
      this.#skipBlank(true);
      if (this.#p >= this.#s.length) return;
      const c = this.#s[this.#p];
      if (c === "[") {
        table = this.#header();
      } else {
        this.#keyValue(table);
      }
    }
  }

  #record(path: readonly PathSegment[], line: number): void {
    const key = formatPath(path);
    if (!this.#out.has(key)) this.#out.set(key, line);
  }

  /** Skips spaces, tabs, comments and (if `newlines`) line breaks. */
  #skipBlank(newlines: boolean): void {
    const s = this.#s;
    while (this.#p < s.length) {
      const c = s[this.#p];
      if (c === " " || c === "\t" || c === "\r") {
        this.#p++;
      } else if (c === "#") {
        while (this.#p < s.length && s[this.#p] !== "\n") this.#p++;
      } else if (c === "\n" && newlines) {
        this.#p++;
        this.#line++;
      } else {
        return;
      }
    }
  }

  /** Reads a dotted key (`a."b.c".d`) and returns its parts. */
  #key(): string[] {
    const parts: string[] = [];
    const s = this.#s;
    for (;;) {
      this.#skipBlank(false);
      const c = s[this.#p];
      if (c === '"') {
        parts.push(this.#basicString());
      } else if (c === "'") {
        const end = s.indexOf("'", this.#p + 1);
        if (end < 0) throw new Error("unterminated key");
        parts.push(s.slice(this.#p + 1, end));
        this.#p = end + 1;
      } else {
        const start = this.#p;
        while (this.#p < s.length && BARE_KEY.test(s[this.#p]!)) this.#p++;
        if (this.#p === start) throw new Error("expected a key");
        parts.push(s.slice(start, this.#p));
      }
      this.#skipBlank(false);
      if (s[this.#p] === ".") {
        this.#p++;
        continue;
      }
      return parts;
    }
  }

  /** Reads a one-line basic string starting at the quote; returns its text. */
  #basicString(): string {
    const s = this.#s;
    let out = "";
    this.#p++;
    while (this.#p < s.length) {
      const c = s[this.#p]!;
      if (c === "\\") {
        out += s.slice(this.#p, this.#p + 2);
        this.#p += 2;
      } else if (c === '"') {
        this.#p++;
        return out;
      } else {
        out += c;
        this.#p++;
      }
    }
    throw new Error("unterminated string");
  }

  /** Resolves the leading parts of a header path through arrays of tables. */
  #resolve(parts: readonly string[]): PathSegment[] {
    const path: PathSegment[] = [];
    for (const part of parts) {
      path.push(part);
      const n = this.#arrayCounts.get(formatPath(path));
      if (n !== undefined) path.push(n - 1);
    }
    return path;
  }

  /** Reads a `[table]` or `[[array]]` header; returns the new table path. */
  #header(): PathSegment[] {
    const line = this.#line;
    const s = this.#s;
    const array = s[this.#p + 1] === "[";
    this.#p += array ? 2 : 1;
    const parts = this.#key();
    this.#p += array ? 2 : 1;
    const parent = this.#resolve(parts.slice(0, -1));
    const last = parts[parts.length - 1]!;
    const path: PathSegment[] = [...parent, last];
    // Record each implicit parent too, so a missing key falls back sensibly.
    for (let n = 1; n < path.length; n++) this.#record(path.slice(0, n), line);
    if (array) {
      const key = formatPath(path);
      const n = (this.#arrayCounts.get(key) ?? 0) + 1;
      this.#arrayCounts.set(key, n);
      this.#record(path, line);
      path.push(n - 1);
    }
    this.#record(path, line);
    return path;
  }

  /** Reads `key = value` in `table`. */
  #keyValue(table: readonly PathSegment[]): void {
    const line = this.#line;
    const parts = this.#key();
    const path: PathSegment[] = [...table];
    for (const part of parts) {
      path.push(part);
      this.#record(path, line);
    }
    this.#skipBlank(false);
    if (this.#s[this.#p] !== "=") throw new Error("expected '='");
    this.#p++;
    this.#skipBlank(false);
    this.#value(path);
  }

  /** Skips one value, recording nested array elements and inline keys. */
  #value(path: readonly PathSegment[]): void {
    const s = this.#s;
    const c = s[this.#p];
    if (s.startsWith('"""', this.#p) || s.startsWith("'''", this.#p)) {
      const quote = s.slice(this.#p, this.#p + 3);
      let i = this.#p + 3;
      for (;;) {
        const end = s.indexOf(quote, i);
        if (end < 0) throw new Error("unterminated string");
        // An escaped quote in a basic string does not end it.
        if (quote === '"""' && isEscaped(s, end)) {
          i = end + 1;
          continue;
        }
        // Up to two extra quotes may close the string ("""a"""" is valid).
        let stop = end + 3;
        while (s[stop] === quote[0] && stop < end + 5) stop++;
        this.#advanceTo(stop);
        return;
      }
    }
    if (c === '"') {
      this.#basicString();
      return;
    }
    if (c === "'") {
      const end = s.indexOf("'", this.#p + 1);
      if (end < 0) throw new Error("unterminated string");
      this.#p = end + 1;
      return;
    }
    if (c === "[") {
      this.#p++;
      let index = 0;
      for (;;) {
        this.#skipBlank(true);
        if (s[this.#p] === "]") {
          this.#p++;
          return;
        }
        const elem = [...path, index];
        this.#record(elem, this.#line);
        this.#value(elem);
        this.#skipBlank(true);
        if (s[this.#p] === ",") {
          this.#p++;
          index++;
        }
      }
    }
    if (c === "{") {
      this.#p++;
      for (;;) {
        this.#skipBlank(true);
        if (s[this.#p] === "}") {
          this.#p++;
          return;
        }
        this.#keyValue(path);
        this.#skipBlank(true);
        if (s[this.#p] === ",") this.#p++;
      }
    }
    // A bare scalar (number, boolean, date): runs to a delimiter.
    const start = this.#p;
    while (
      this.#p < s.length && !",]}\n#".includes(s[this.#p]!)
    ) this.#p++;
    if (this.#p === start) throw new Error("expected a value");
  }

  /** Moves to `end`, counting the line breaks passed over. */
  #advanceTo(end: number): void {
    const s = this.#s;
    for (; this.#p < end; this.#p++) if (s[this.#p] === "\n") this.#line++;
  }
}

/** True if the character at `i` is preceded by an odd number of backslashes. */
function isEscaped(s: string, i: number): boolean {
  let n = 0;
  while (i - 1 - n >= 0 && s[i - 1 - n] === "\\") n++;
  return n % 2 === 1;
}
