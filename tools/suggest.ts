/**
 * "Did you mean": the closest of a few known words to a mistyped one, for
 * the command line (`oor xrt` -> `xtr`, `--confg` -> `--config`).
 *
 * @module
 */

import { editDistance } from "../config/oor_conf_keys.ts";

/**
 * The one word of `known` that `word` most likely meant, or undefined when
 * none is close or two are equally close. Case is ignored. Close means: the
 * same but for case, or `word` is the start of exactly one of them (at
 * least two letters), or at most one edit away (two for words of five
 * letters or more; a swap of neighbours is one edit).
 */
export function closest(word: string, known: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const list = [...known];
  const same = list.find((k) => k.toLowerCase() === w);
  if (same !== undefined) return same;
  if (w.replace(/^-+/, "").length >= 2) {
    const starts = list.filter((k) => k.toLowerCase().startsWith(w));
    if (starts.length === 1) return starts[0];
  }
  const limit = w.replace(/^-+/, "").length >= 5 ? 2 : 1;
  let best: string | undefined;
  let bestDistance = Infinity;
  let tie = false;
  for (const k of list) {
    const d = editDistance(w, k.toLowerCase());
    if (d > limit) continue;
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
      tie = false;
    } else if (d === bestDistance) {
      tie = true;
    }
  }
  return tie ? undefined : best;
}

/** `"; did you mean 'x'?"` for the closest of `known` to `word`, or `""`. */
export function didYouMean(word: string, known: Iterable<string>): string {
  const k = closest(word, known);
  return k === undefined ? "" : `; did you mean '${k}'?`;
}

/**
 * The long flag a single-dash word names: `-config` -> `--config`, the way
 * people mistype it (node's parser would read `-config` as `-c onfig`).
 * Undefined unless the word after its dash is one of `flags` exactly.
 */
export function singleDashFlag(arg: string, flags: Iterable<string>): string | undefined {
  if (!/^-[A-Za-z][A-Za-z0-9-]+$/.test(arg)) return undefined;
  const name = arg.slice(1).toLowerCase();
  for (const f of flags) if (f.length > 1 && f.toLowerCase() === name) return `--${f}`;
  return undefined;
}

/**
 * One line for a `node:util` `parseArgs` error, without the command name:
 * `unknown flag '--confg'; did you mean '--config'?`, `flag --config needs
 * a value`, `unexpected argument 'extra'`. `flags` are the long names the
 * command takes; `args` are its arguments, to catch `-config` for
 * `--config` (which the parser reads as `-c onfig`).
 */
export function flagError(e: unknown, flags: readonly string[], args: readonly string[]): string {
  for (const a of args) {
    if (a === "--") break;
    const meant = singleDashFlag(a, flags);
    if (meant !== undefined) return `unknown flag '${a}'; did you mean '${meant}'?`;
  }
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      const long = flags.map((f) => `--${f}`);
      return `unknown flag '${quoted}'${didYouMean(quoted.split("=")[0]!, long)}`;
    }
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument '${quoted}'`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const flag = /--[\w-]+/.exec(message)?.[0] ?? quoted;
      return message.includes("argument missing")
        ? `flag ${flag} needs a value`
        : `flag ${flag} takes no value`;
    }
    default:
      return message.split("\n")[0] ?? message;
  }
}
