/**
 * OOR's `oor.conf` (libconfuse syntax), read as an `oor.toml`.
 *
 * Three steps, each usable alone:
 *
 * 1. {@link parseOorConfTree}: the libconfuse syntax OOR uses, to a tree of
 *    options and sections that keeps every line number.
 * 2. {@link convertOorConf}: that tree checked against OOR's keys (and the
 *    few keys oor adds) and written as `oor.toml` text, with, for each TOML
 *    line, the `oor.conf` line it came from.
 * 3. {@link parseOorConf}: that TOML validated by `parseConfig`, every error
 *    and warning moved back onto its `oor.conf` line. `loadConfig` uses it
 *    for files that {@link isOorConf} recognizes.
 *
 * The syntax is libconfuse's, as OOR reads it (option names in any case):
 *
 * ```
 * # comment          // comment          /* comment, any number of lines *\/
 * debug = 1                               an option: name = value
 * log-file = "/var/log/oor.log"           "..." with C escapes, or '...'
 * map-resolver = {192.0.2.1, "2001:db8::1"}   a list; `name = one` is a list of one
 * map-resolver += 192.0.2.2               += appends to a list
 * map-server { address = 192.0.2.2; key = secret }   a section; sections nest
 * ```
 *
 * Where this reader differs from libconfuse:
 *
 * - `;` after a value or a section (`key = x;`) ends the statement, as
 *   people write it; libconfuse would keep it as part of a bare value. A
 *   `;` inside a bare value (`key = a;b`) or in quotes is kept.
 * - `${VAR}` (environment substitution) and functions (`include(...)`)
 *   are errors: OOR defines no functions, and a converted file should not
 *   depend on the environment.
 * - A stray `*` or `+` is an error instead of being skipped silently.
 *
 * The mapping to `oor.toml` keeps OOR's names. Sections become tables:
 * `rloc-probing { }` and `api { }` become `[rloc-probing]` and `[api]`, the
 * others arrays of tables (`map-server { }` -> `[[map-server]]`,
 * `rloc-address { }` in a `database-mapping` ->
 * `[[database-mapping.rloc-address]]`), and each `rtr-iface { }` inside
 * `rtr-ifaces { }` becomes a top-level `[[rtr-iface]]`. The keys oor adds
 * to OOR's (`control-address`, `control-rate-limit`, `data-port`,
 * `tun-name`, `tun-mtu`, `api { enabled; listen; token; state-file }`,
 * `destination-prefixes`, `instance { iid; tun-name; site-interfaces }`, and
 * `key-type` in `rtr-ms-node`) are accepted in an `oor.conf` too. Two of
 * OOR's keys change on the way: `allowed-dst-eids` is oor's
 * `destination-prefixes`, and `local` of an `rloc-address` is dropped
 * with a warning (oor tells local from remote locators by the host's
 * addresses). OOR keys oor does not implement are errors that name them
 * ({@link UNSUPPORTED_KEYS}). config/oor_conf_keys.ts has the tables.
 *
 * Where OOR reads a value in its own way, the converted file says what OOR
 * meant, with a warning: an option given twice keeps its last value, a
 * second `rloc-probing` section is ignored, and `map-request-retries = 0`
 * (OOR's "use the default") becomes the default, 3.
 *
 * Pure: no file access.
 *
 * @module
 */

import { parse as parseToml } from "smol-toml";
import { ConfigError } from "./errors.ts";
import { DEFAULTS } from "./schema.ts";
import { type ConfigResult, parseConfig, type ParseConfigOptions } from "./validate.ts";
import { isSection, join, type Keys, type Spec, TOP, unknownKey } from "./oor_conf_keys.ts";

export {
  OOR_CONF_DROPPED,
  OOR_CONF_KEYS,
  OOR_CONF_RENAMED,
  UNSUPPORTED_KEYS,
} from "./oor_conf_keys.ts";

// ---------------------------------------------------------------------------
// The tree.

/** One value of an option, as written. */
export interface ConfValue {
  /** The text, quotes removed and escapes resolved. */
  readonly text: string;
  /** Whether it was written in quotes. */
  readonly quoted: boolean;
  /** 1-based line where it starts. */
  readonly line: number;
}

/** `name = value`, `name = {a, b}` or `name += ...`. */
export interface ConfOption {
  /** Tells options from sections. */
  readonly kind: "option";
  /** The name as written. */
  readonly name: string;
  /** 1-based line of the name. */
  readonly line: number;
  /** `=` sets, `+=` appends to a list. */
  readonly op: "=" | "+=";
  /** Whether the values were written as a `{...}` list. */
  readonly braces: boolean;
  /** The values, in order (one unless written as a list). */
  readonly values: readonly ConfValue[];
}

/** `name { ... }`. */
export interface ConfSection {
  /** Tells sections from options. */
  readonly kind: "section";
  /** The name as written. */
  readonly name: string;
  /** 1-based line of the name. */
  readonly line: number;
  /** What the section holds, in order. */
  readonly entries: readonly ConfEntry[];
}

/** One statement of an `oor.conf`. */
export type ConfEntry = ConfOption | ConfSection;

/** What {@link parseOorConfTree} returns. */
export type ConfTreeResult =
  | {
    /** The text is well formed. */
    readonly ok: true;
    /** Its top-level statements. */
    readonly entries: readonly ConfEntry[];
  }
  | {
    /** The text has a syntax error. */
    readonly ok: false;
    /** The first syntax error, with line and column. */
    readonly error: ConfigError;
  };

// ---------------------------------------------------------------------------
// Lexer.

type TokenKind = "word" | "{" | "}" | "=" | "+=" | "," | "(" | ")" | ";" | "eof";

interface Token {
  readonly kind: TokenKind;
  /** Text of a word (quotes removed); the symbol itself otherwise. */
  readonly text: string;
  readonly quoted: boolean;
  readonly line: number;
  readonly column: number;
  /** Line where the token ends (differs for quoted text spanning lines). */
  readonly endLine: number;
}

class ConfSyntaxError extends Error {
  readonly line: number;
  readonly column: number;
  constructor(reason: string, line: number, column: number) {
    super(reason);
    this.line = line;
    this.column = column;
  }
}

/** Characters that end a bare word (besides white space). */
const WORD_STOP = new Set(["#", '"', "'", "=", "{", "}", "(", ")", "+", ",", "*"]);
const SPACE = new Set([" ", "\t", "\r", "\f", "\v"]);
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  n: "\n",
  r: "\r",
  b: "\b",
  f: "\f",
  a: "\x07",
  e: "\x1b",
  t: "\t",
  v: "\v",
};

class Lexer {
  readonly #s: string;
  #p = 0;
  #line = 1;
  #lineStart = 0;

  constructor(s: string) {
    this.#s = s.startsWith("\ufeff") ? s.slice(1) : s;
  }

  #column(p = this.#p): number {
    return p - this.#lineStart + 1;
  }

  #newline(at: number): void {
    this.#line++;
    this.#lineStart = at + 1;
  }

  #fail(reason: string, line = this.#line, column = this.#column()): never {
    throw new ConfSyntaxError(reason, line, column);
  }

  next(): Token {
    const s = this.#s;
    for (;;) {
      const c = s[this.#p];
      if (c === undefined) {
        return this.#token("eof", "", false, this.#line, this.#column());
      }
      if (SPACE.has(c)) {
        this.#p++;
      } else if (c === "\n") {
        this.#newline(this.#p);
        this.#p++;
      } else if (c === "#" || (c === "/" && s[this.#p + 1] === "/")) {
        while (this.#p < s.length && s[this.#p] !== "\n") this.#p++;
      } else if (c === "/" && s[this.#p + 1] === "*") {
        const line = this.#line;
        const column = this.#column();
        const end = s.indexOf("*/", this.#p + 2);
        if (end < 0) this.#fail("unterminated /* comment", line, column);
        this.#advanceTo(end + 2);
      } else {
        break;
      }
    }
    const c = s[this.#p]!;
    const line = this.#line;
    const column = this.#column();
    if (c === "+") {
      if (s[this.#p + 1] !== "=") {
        this.#fail("unexpected '+' (write += to add to a list, or quote a value that has a '+')");
      }
      this.#p += 2;
      return this.#token("+=", "+=", false, line, column);
    }
    if ("{}=,();".includes(c)) {
      this.#p++;
      return this.#token(c as TokenKind, c, false, line, column);
    }
    if (c === '"') return this.#doubleQuoted();
    if (c === "'") return this.#singleQuoted();
    if (c === "$" && s[this.#p + 1] === "{") {
      this.#fail("${...} (environment variable) is not supported: write the value itself");
    }
    if (c === "*") {
      this.#fail(
        s[this.#p + 1] === "/"
          ? "'*/' closes no comment"
          : "unexpected '*' (quote a value that has a '*')",
      );
    }
    // A bare word: up to white space or a character that means something.
    const start = this.#p;
    let p = start;
    while (p < s.length) {
      const d = s[p]!;
      if (SPACE.has(d) || d === "\n" || WORD_STOP.has(d)) break;
      if (d === "/" && s[p + 1] === "*") break;
      if (d === "$" && s[p + 1] === "{") {
        this.#fail(
          "${...} (environment variable) is not supported: write the value itself",
          line,
          this.#column(p),
        );
      }
      p++;
    }
    // A trailing ';' ends the statement rather than belonging to the word.
    let end = p;
    while (end > start && s[end - 1] === ";") end--;
    this.#p = end;
    return this.#token("word", s.slice(start, end), false, line, column);
  }

  #token(
    kind: TokenKind,
    text: string,
    quoted: boolean,
    line: number,
    column: number,
  ): Token {
    return { kind, text, quoted, line, column, endLine: this.#line };
  }

  #advanceTo(end: number): void {
    for (; this.#p < end; this.#p++) {
      if (this.#s[this.#p] === "\n") this.#newline(this.#p);
    }
  }

  #doubleQuoted(): Token {
    const s = this.#s;
    const line = this.#line;
    const column = this.#column();
    let out = "";
    this.#p++;
    for (;;) {
      const c = s[this.#p];
      if (c === undefined) this.#fail('unterminated "string"', line, column);
      if (c === '"') {
        this.#p++;
        return this.#token("word", out, true, line, column);
      }
      if (c === "\n") {
        this.#newline(this.#p);
        out += c;
        this.#p++;
        continue;
      }
      if (c === "$" && s[this.#p + 1] === "{") {
        this.#fail("${...} (environment variable) is not supported: write the value itself");
      }
      if (c !== "\\") {
        out += c;
        this.#p++;
        continue;
      }
      const n = s[this.#p + 1];
      if (n === undefined) this.#fail('unterminated "string"', line, column);
      if (n === "\n" || (n === "\r" && s[this.#p + 2] === "\n")) {
        // A backslash at the end of a line continues the string.
        const nl = n === "\n" ? this.#p + 1 : this.#p + 2;
        this.#newline(nl);
        this.#p = nl + 1;
        continue;
      }
      if (n >= "0" && n <= "9") {
        let q = this.#p + 1;
        while (q < s.length && s[q]! >= "0" && s[q]! <= "9") q++;
        const digits = s.slice(this.#p + 1, q);
        if (digits.length > 3 || /[89]/.test(digits)) {
          this.#fail(`bad escape sequence '\\${digits}'`);
        }
        const code = parseInt(digits, 8);
        if (code > 0xff) this.#fail(`octal escape '\\${digits}' is above \\377`);
        out += String.fromCharCode(code);
        this.#p = q;
        continue;
      }
      if (n === "x") {
        const m = /^[0-9A-Fa-f]{1,2}/.exec(s.slice(this.#p + 2, this.#p + 4));
        if (m !== null) {
          out += String.fromCharCode(parseInt(m[0], 16));
          this.#p += 2 + m[0].length;
          continue;
        }
      }
      out += SIMPLE_ESCAPES[n] ?? n;
      this.#p += 2;
    }
  }

  #singleQuoted(): Token {
    const s = this.#s;
    const line = this.#line;
    const column = this.#column();
    let out = "";
    this.#p++;
    for (;;) {
      const c = s[this.#p];
      if (c === undefined) this.#fail("unterminated 'string'", line, column);
      if (c === "'") {
        this.#p++;
        return this.#token("word", out, true, line, column);
      }
      if (c === "\n") {
        this.#newline(this.#p);
        out += c;
        this.#p++;
        continue;
      }
      if (c !== "\\") {
        out += c;
        this.#p++;
        continue;
      }
      const n = s[this.#p + 1];
      if (n === undefined) this.#fail("unterminated 'string'", line, column);
      if (n === "\n") {
        this.#newline(this.#p + 1);
        this.#p += 2;
      } else if (n === "\\" || n === "'") {
        out += n;
        this.#p += 2;
      } else {
        out += "\\";
        this.#p++;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Parser.

/** How a token is shown in a message. */
function shown(t: Token): string {
  if (t.kind === "eof") return "the end of the file";
  if (t.kind === "word") return t.quoted ? `"${t.text}"` : `'${t.text}'`;
  return `'${t.text}'`;
}

class Parser {
  readonly #lex: Lexer;
  #ahead: Token | undefined;
  /** Where the last value ended, for the "quote values with spaces" hint. */
  #lastValueLine = 0;

  constructor(text: string) {
    this.#lex = new Lexer(text);
  }

  #next(): Token {
    const t = this.#ahead ?? this.#lex.next();
    this.#ahead = undefined;
    return t;
  }

  #peek(): Token {
    this.#ahead ??= this.#lex.next();
    return this.#ahead;
  }

  #fail(reason: string, t: Token): never {
    throw new ConfSyntaxError(reason, t.line, t.column);
  }

  /** Statements up to the end of the file (`open` undefined) or a `}`. */
  entries(open?: Token): ConfEntry[] {
    const out: ConfEntry[] = [];
    for (;;) {
      const t = this.#next();
      if (t.kind === "eof") {
        if (open !== undefined) {
          this.#fail(`section '${open.text}' is not closed: a '}' is missing`, open);
        }
        return out;
      }
      if (t.kind === "}") {
        if (open === undefined) this.#fail("unexpected '}': no section is open", t);
        this.#skipSemicolons();
        return out;
      }
      if (t.kind === ";") continue;
      if (t.kind !== "word") {
        this.#fail(`expected a key name, found ${shown(t)}`, t);
      }
      out.push(this.#statement(t));
    }
  }

  #skipSemicolons(): void {
    while (this.#peek().kind === ";") this.#next();
  }

  #statement(name: Token): ConfEntry {
    const op = this.#next();
    if (op.kind === "{") {
      const entries = this.entries(name);
      return { kind: "section", name: name.text, line: name.line, entries };
    }
    if (op.kind === "=" || op.kind === "+=") {
      return this.#option(name, op.kind);
    }
    if (op.kind === "(") {
      this.#fail(`'${name.text}(...)': functions such as include() are not supported`, op);
    }
    let reason = `expected '=' or '{' after '${name.text}', found ${shown(op)}`;
    let at = op;
    if (name.line === this.#lastValueLine && !name.quoted) {
      // `key = two words`: the second word was taken for a key name.
      reason += " (a value with spaces must be quoted)";
      at = name;
    } else if (op.kind === "word" && op.quoted) {
      reason += " (sections have no titles in oor.conf)";
    }
    this.#fail(reason, at);
  }

  #option(name: Token, op: "=" | "+="): ConfOption {
    const first = this.#next();
    const values: ConfValue[] = [];
    const value = (t: Token): ConfValue => {
      this.#lastValueLine = t.endLine;
      return { text: t.text, quoted: t.quoted, line: t.line };
    };
    if (first.kind === "word") {
      values.push(value(first));
      this.#skipSemicolons();
      return { kind: "option", name: name.text, line: name.line, op, braces: false, values };
    }
    if (first.kind !== "{") {
      this.#fail(`expected a value for '${name.text}', found ${shown(first)}`, first);
    }
    for (;;) {
      const t = this.#next();
      if (t.kind === "}") break;
      if (t.kind !== "word") {
        this.#fail(`expected a value or '}' in the list of '${name.text}', found ${shown(t)}`, t);
      }
      values.push(value(t));
      const sep = this.#next();
      if (sep.kind === "}") break;
      if (sep.kind !== ",") {
        this.#fail(
          `expected ',' or '}' in the list of '${name.text}', found ${shown(sep)}` +
            " (separate list items with commas)",
          sep,
        );
      }
    }
    // A closing brace ends a list unambiguously: no hint after it.
    this.#lastValueLine = 0;
    this.#skipSemicolons();
    return { kind: "option", name: name.text, line: name.line, op, braces: true, values };
  }
}

/**
 * Parses the libconfuse syntax of an `oor.conf` into a tree, without
 * checking any key. Stops at the first syntax error, which has a line and
 * a column: `oor.conf:12:5: expected '=' or '{' after 'debug', found '1'`.
 */
export function parseOorConfTree(text: string, file = "oor.conf"): ConfTreeResult {
  try {
    return { ok: true, entries: new Parser(text).entries() };
  } catch (e) {
    if (e instanceof ConfSyntaxError) {
      return { ok: false, error: new ConfigError(file, e.line, "", e.message, e.column) };
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------
// The TOML model the tree is converted into.

type TomlScalar = string | number | boolean;

interface TomlValue {
  readonly value: TomlScalar | readonly string[];
  /** The oor.conf name it was given under (OOR's name, when it differs from the TOML key). */
  readonly from: string;
  /** The oor.conf line of the key (for a list) or of the value. */
  readonly line: number;
  /** For a list: the oor.conf line of each item. */
  readonly itemLines?: readonly number[];
}

class TomlTable {
  readonly line: number;
  readonly values = new Map<string, TomlValue>();
  readonly tables = new Map<string, TomlTable>();
  readonly arrays = new Map<string, TomlTable[]>();
  constructor(line: number) {
    this.line = line;
  }
}

class Ctx {
  readonly file: string;
  readonly errors: ConfigError[] = [];
  readonly warnings: ConfigError[] = [];
  /** Dropped keys already warned about: once per file each. */
  readonly dropped = new Set<string>();
  constructor(file: string) {
    this.file = file;
  }
  error(line: number, path: string, reason: string): void {
    this.errors.push(new ConfigError(this.file, line, path, reason));
  }
  warn(line: number, path: string, reason: string): void {
    this.warnings.push(new ConfigError(this.file, line, path, reason));
  }
}

const TRUE_WORDS = ["true", "yes", "on"];
const FALSE_WORDS = ["false", "no", "off"];

/** An integer as libconfuse reads it (C's strtol, base 0: 0x.. hex, 0.. octal). */
function parseInteger(text: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text.trimStart());
  if (m === null) return undefined;
  const body = m[2]!;
  let n: number;
  if (body.length > 2 && (body[1] === "x" || body[1] === "X")) {
    n = parseInt(body.slice(2), 16);
  } else if (body.length > 1) {
    n = body[0] === "0" ? parseInt(body, 8) : parseInt(body, 10);
  } else {
    n = Number(body);
  }
  if (m[1] === "-") n = -n;
  return Number.isSafeInteger(n) ? n : undefined;
}

function convertScalar(
  ctx: Ctx,
  kind: "string" | "integer" | "boolean",
  v: ConfValue,
  path: string,
): TomlScalar | undefined {
  if (kind === "string") return v.text;
  if (kind === "integer") {
    const n = parseInteger(v.text);
    if (n !== undefined) return n;
    let reason = `must be an integer (got '${v.text}')`;
    if (/^[+-]?0[0-9]+$/.test(v.text.trim())) {
      reason += "; a leading 0 makes it octal in oor.conf, and 8 and 9 are not octal digits";
    }
    ctx.error(v.line, path, reason);
    return undefined;
  }
  const w = v.text.toLowerCase();
  if (TRUE_WORDS.includes(w)) return true;
  if (FALSE_WORDS.includes(w)) return false;
  ctx.error(v.line, path, `must be true or false (or yes/no, on/off; got '${v.text}')`);
  return undefined;
}

/** Converts the statements of one section (or the file) into `target`. */
function convertEntries(
  ctx: Ctx,
  entries: readonly ConfEntry[],
  keys: Keys,
  path: string,
  target: TomlTable,
  seen: Map<string, number>,
): void {
  for (const entry of entries) {
    const lower = entry.name.toLowerCase();
    const found = keys.find(([k]) => k.toLowerCase() === lower);
    if (found === undefined) {
      ctx.error(entry.line, path, unknownKey(entry.name, keys, path));
      continue;
    }
    const [name, spec] = found;
    const keyPath = join(path, name);
    if (spec.kind === "unsupported") {
      ctx.error(entry.line, keyPath, `not supported: ${spec.reason}`);
      continue;
    }
    const section = isSection(spec);
    if (entry.kind === "option" && section) {
      ctx.error(entry.line, keyPath, `is a section: write ${name} { ... } without '='`);
      continue;
    }
    if (entry.kind === "section" && !section) {
      ctx.error(entry.line, keyPath, `takes a value: write ${name} = ..., not a section`);
      continue;
    }
    if (entry.kind === "section") {
      convertSection(ctx, entry, name, spec, keyPath, target, seen);
    } else if (spec.kind === "dropped") {
      dropOption(ctx, entry, spec, keyPath);
    } else if (!isSection(spec)) {
      convertOption(ctx, entry, name, spec, keyPath, target);
    }
  }
}

function convertSection(
  ctx: Ctx,
  entry: ConfSection,
  name: string,
  spec: Spec,
  keyPath: string,
  target: TomlTable,
  seen: Map<string, number>,
): void {
  const first = seen.get(keyPath);
  if (first === undefined) seen.set(keyPath, entry.line);
  if (spec.kind === "table") {
    if (first !== undefined) {
      ctx.warn(
        entry.line,
        keyPath,
        `a second ${name} section is ignored: OOR reads only the first (line ${first})`,
      );
      return;
    }
    const table = new TomlTable(entry.line);
    target.tables.set(name, table);
    convertEntries(ctx, entry.entries, spec.keys, keyPath, table, new Map());
  } else if (spec.kind === "array") {
    const table = new TomlTable(entry.line);
    const list = target.arrays.get(name) ?? [];
    list.push(table);
    target.arrays.set(name, list);
    convertEntries(ctx, entry.entries, spec.keys, keyPath, table, new Map());
  } else if (spec.kind === "wrapper") {
    if (first !== undefined) {
      ctx.warn(
        entry.line,
        keyPath,
        `another ${name} section: OOR reads only the first (line ${first}); oor takes the entries of all`,
      );
    }
    // Its sections become arrays of the table that holds it.
    convertEntries(ctx, entry.entries, spec.keys, keyPath, target, seen);
  }
}

/**
 * A key oor drops: its value is still checked as OOR would read it, and
 * the reason is given once per file, on the first line that has it.
 */
function dropOption(
  ctx: Ctx,
  entry: ConfOption,
  spec: Extract<Spec, { kind: "dropped" }>,
  keyPath: string,
): void {
  const v = entry.values[0];
  if (entry.op === "+=" || entry.braces || v === undefined || entry.values.length !== 1) {
    ctx.error(entry.line, keyPath, "takes one value, not a {...} list");
    return;
  }
  if (convertScalar(ctx, spec.value, v, keyPath) === undefined) return;
  if (ctx.dropped.has(keyPath)) return;
  ctx.dropped.add(keyPath);
  ctx.warn(v.line, keyPath, spec.reason);
}

function convertOption(
  ctx: Ctx,
  entry: ConfOption,
  confName: string,
  spec: Extract<Spec, { kind: "string" | "integer" | "boolean" | "list" }>,
  keyPath: string,
  target: TomlTable,
): void {
  const kind = spec.kind;
  // The oor.toml key: OOR's name, or the one oor gives the same setting.
  const name = spec.as ?? confName;
  const before = target.values.get(name);
  if (before !== undefined && before.from !== confName) {
    ctx.error(
      entry.line,
      keyPath,
      `is ${name} in oor.toml, which ${before.from} (line ${before.line}) already sets: give one of them`,
    );
    return;
  }
  if (kind === "list") {
    const items = entry.values.map((v) => v.text);
    const itemLines = entry.values.map((v) => v.line);
    if (entry.op === "+=" && before !== undefined && Array.isArray(before.value)) {
      target.values.set(name, {
        value: [...before.value, ...items],
        from: confName,
        line: before.line,
        itemLines: [...(before.itemLines ?? []), ...itemLines],
      });
      return;
    }
    if (before !== undefined) {
      ctx.warn(
        entry.line,
        keyPath,
        `set again (first at line ${before.line}): this list replaces it, as in OOR (use += to add)`,
      );
    }
    target.values.set(name, { value: items, from: confName, line: entry.line, itemLines });
    return;
  }
  if (entry.op === "+=") {
    ctx.error(entry.line, keyPath, "takes one value: += only adds to lists");
    return;
  }
  const v = entry.values[0];
  if (entry.braces || v === undefined || entry.values.length !== 1) {
    ctx.error(entry.line, keyPath, "takes one value, not a {...} list");
    return;
  }
  let value = convertScalar(ctx, kind, v, keyPath);
  if (value === undefined) return;
  if (keyPath === "map-request-retries" && value === 0) {
    ctx.warn(
      v.line,
      keyPath,
      `OOR reads 0 as its default, ${DEFAULTS.mapRequestRetries}; converted to ${DEFAULTS.mapRequestRetries}`,
    );
    value = DEFAULTS.mapRequestRetries;
  }
  if (before !== undefined) {
    ctx.warn(
      v.line,
      keyPath,
      `set again (first at line ${before.line}): the last value counts, as in OOR`,
    );
  }
  target.values.set(name, { value, from: confName, line: v.line });
}

// ---------------------------------------------------------------------------
// Writing TOML.

/** A TOML basic string. */
function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out + '"';
}

function tomlScalar(v: TomlScalar): string {
  return typeof v === "string" ? tomlString(v) : String(v);
}

class TomlWriter {
  readonly lines: string[] = [];
  /** For each line, the oor.conf line it came from. */
  readonly origins: (number | undefined)[] = [];

  push(text: string, origin: number | undefined): void {
    this.lines.push(text);
    this.origins.push(origin);
  }

  blank(): void {
    if (this.lines.length > 0 && this.lines.at(-1) !== "") this.push("", undefined);
  }

  table(t: TomlTable, keys: Keys, prefix: string): void {
    for (const [name, spec] of keys) {
      const v = t.values.get(name);
      if (v === undefined) continue;
      if (spec.kind === "list" && Array.isArray(v.value)) {
        this.list(name, v.value as readonly string[], v.line, v.itemLines ?? []);
      } else {
        this.push(`${name} = ${tomlScalar(v.value as TomlScalar)}`, v.line);
      }
    }
    for (const [name, spec] of keys) {
      const sub = t.tables.get(name);
      if (sub === undefined || spec.kind !== "table") continue;
      this.blank();
      this.push(`[${join(prefix, name)}]`, sub.line);
      this.table(sub, spec.keys, join(prefix, name));
    }
    for (const [outer, spec] of keys) {
      // A wrapper's arrays belong to this table, in the wrapper's place.
      const arrays: Keys = spec.kind === "array"
        ? [[outer, spec]]
        : spec.kind === "wrapper"
        ? spec.keys
        : [];
      for (const [name, inner] of arrays) {
        if (inner.kind !== "array") continue;
        for (const el of t.arrays.get(name) ?? []) {
          if (prefix === "") this.blank();
          this.push(`[[${join(prefix, name)}]]`, el.line);
          this.table(el, inner.keys, join(prefix, name));
        }
      }
    }
  }

  list(name: string, items: readonly string[], line: number, itemLines: readonly number[]): void {
    const oneLine = itemLines.every((l) => l === line);
    if (oneLine) {
      this.push(`${name} = [${items.map(tomlString).join(", ")}]`, line);
      return;
    }
    this.push(`${name} = [`, line);
    items.forEach((item, i) => this.push(`  ${tomlString(item)},`, itemLines[i] ?? line));
    this.push("]", itemLines.at(-1) ?? line);
  }
}

/** What {@link convertOorConf} returns. */
export type ConvertResult =
  | {
    /** The file converted. */
    readonly ok: true;
    /** The `oor.toml` text, ending in a newline. */
    readonly toml: string;
    /**
     * For each line of `toml` (index 0 is line 1), the `oor.conf` line it
     * came from; undefined for comments and blank lines.
     */
    readonly origins: readonly (number | undefined)[];
    /** Things OOR reads differently, said once, on their oor.conf lines. */
    readonly warnings: readonly ConfigError[];
  }
  | {
    /** The file did not convert. */
    readonly ok: false;
    /** Syntax error (one) or key errors (all), on their oor.conf lines. */
    readonly errors: readonly ConfigError[];
    /** Warnings found along the way. */
    readonly warnings: readonly ConfigError[];
  };

/** Options of {@link convertOorConf}. */
export interface ConvertOptions {
  /** File name to show in errors and in the header comment; `"oor.conf"` if not given. */
  readonly file?: string;
}

/** Stable sort by line; problems with no line go last. */
function byLine(list: readonly ConfigError[]): ConfigError[] {
  return list
    .map((e, i) => ({ e, i }))
    .sort((a, b) => (a.e.line ?? Infinity) - (b.e.line ?? Infinity) || a.i - b.i)
    .map((x) => x.e);
}

/**
 * Converts the text of an `oor.conf` into `oor.toml` text. Checks the
 * syntax and the key names and value types (`oor.conf:12: map-server:
 * unknown key 'kye' (did you mean 'key'?)`), not the values themselves:
 * {@link parseOorConf} does that.
 */
export function convertOorConf(text: string, options: ConvertOptions = {}): ConvertResult {
  const file = options.file ?? "oor.conf";
  const tree = parseOorConfTree(text, file);
  if (!tree.ok) return { ok: false, errors: [tree.error], warnings: [] };
  const ctx = new Ctx(file);
  const top = new TomlTable(1);
  convertEntries(ctx, tree.entries, TOP, "", top, new Map());
  const warnings = byLine(ctx.warnings);
  if (ctx.errors.length > 0) return { ok: false, errors: byLine(ctx.errors), warnings };
  const w = new TomlWriter();
  // deno-lint-ignore no-control-regex
  const name = file.replace(/[\x00-\x1f\x7f]/g, "?");
  w.push(`# oor.toml converted by 'oor convert-config' from the OOR config ${name}.`, undefined);
  w.push("# The keys keep OOR's names. Check it with: oor check-config FILE", undefined);
  w.push("", undefined);
  w.table(top, TOP, "");
  while (w.lines.at(-1) === "") {
    w.lines.pop();
    w.origins.pop();
  }
  return { ok: true, toml: w.lines.join("\n") + "\n", origins: w.origins, warnings };
}

/**
 * Parses and validates the text of an `oor.conf`, as `parseConfig` does an
 * `oor.toml`: the same checks and the same {@link ConfigResult}, with every
 * error and warning on its `oor.conf` line. The key paths in messages are
 * those of the converted TOML (`database-mapping[0].rloc-address[1].weight`).
 */
export function parseOorConf(text: string, options: ParseConfigOptions = {}): ConfigResult {
  const file = options.file ?? "oor.conf";
  const converted = convertOorConf(text, { file });
  if (!converted.ok) return converted;
  const result = parseConfig(converted.toml, { ...options, file });
  const origins = converted.origins;
  const remap = (e: ConfigError): ConfigError => {
    const line = e.line !== undefined ? origins[e.line - 1] : undefined;
    return new ConfigError(file, line, e.keyPath, e.reason);
  };
  const warnings = byLine([...converted.warnings, ...result.warnings.map(remap)]);
  if (!result.ok) return { ok: false, errors: byLine(result.errors.map(remap)), warnings };
  return { ok: true, config: result.config, warnings };
}

// ---------------------------------------------------------------------------
// Telling the two formats apart.

/**
 * Whether the file at `path` with this `text` is an OOR `oor.conf` rather
 * than an `oor.toml`: by extension (`.conf` yes, `.toml` no), otherwise by
 * content. A text with a libconfuse section (`name {`) or a C-style comment
 * is one; else a text that is valid TOML is TOML; else a text that parses
 * as libconfuse is one.
 */
export function isOorConf(path: string, text: string): boolean {
  const lower = path.toLowerCase();
  if (lower.endsWith(".conf")) return true;
  if (lower.endsWith(".toml")) return false;
  if (/^[ \t]*(?:[A-Za-z0-9_-]+[ \t]*\{|\/\/|\/\*)/m.test(text)) return true;
  try {
    parseToml(text);
    return false;
  } catch {
    return parseOorConfTree(text).ok;
  }
}
