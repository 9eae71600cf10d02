/**
 * `oor completions bash|zsh`: shell completion scripts, made from the
 * command table of main.ts, so they offer exactly the subcommands and flags
 * the program takes.
 *
 * ```sh
 * oor completions bash > /etc/bash_completion.d/oor     # or: source <(oor completions bash)
 * oor completions zsh > "${fpath[1]}/_oor"              # or: source <(oor completions zsh)
 * ```
 *
 * @module
 */

/** What a flag's value or a positional argument is, for completion. */
export type ValueKind =
  | { readonly kind: "none" }
  | { readonly kind: "file" }
  | { readonly kind: "choice"; readonly choices: readonly string[] }
  | { readonly kind: "text" };

/** One flag of a subcommand. */
export interface CompletionFlag {
  /** Long name, without the dashes. */
  readonly name: string;
  /** One-letter form, without the dash. */
  readonly short?: string;
  /** One line of help. */
  readonly help: string;
  /** What its value is (`none` for a boolean flag). */
  readonly value: ValueKind;
}

/** One subcommand. */
export interface CompletionCommand {
  /** Its name. */
  readonly name: string;
  /** One line of help. */
  readonly summary: string;
  /** Its flags, `--help` included. */
  readonly flags: readonly CompletionFlag[];
  /** What its positional arguments are (`none` when it takes none). */
  readonly positionals: ValueKind;
}

/** The shells {@link completionScript} writes for. */
export const SHELLS = ["bash", "zsh"] as const;

/** One of {@link SHELLS}. */
export type Shell = typeof SHELLS[number];

/** The completion script for `shell`. */
export function completionScript(shell: Shell, commands: readonly CompletionCommand[]): string {
  return shell === "bash" ? bashScript(commands) : zshScript(commands);
}

/** A word list for a shell, each word made of safe characters only. */
function words(list: readonly string[]): string {
  for (const w of list) {
    if (!/^[A-Za-z0-9_.:@%+=,-]+$/.test(w)) throw new TypeError(`unsafe word ${w}`);
  }
  return list.join(" ");
}

function bashValue(v: ValueKind): string {
  switch (v.kind) {
    case "file":
      return 'COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null';
    case "choice":
      return `COMPREPLY=($(compgen -W "${words(v.choices)}" -- "$cur"))`;
    default:
      return "COMPREPLY=()";
  }
}

function bashScript(commands: readonly CompletionCommand[]): string {
  const names = commands.map((c) => c.name);
  const out: string[] = [
    "# bash completion for oor, from: oor completions bash",
    "# Install: oor completions bash > /etc/bash_completion.d/oor (or source it)",
    "_oor() {",
    '  local cur="${COMP_WORDS[COMP_CWORD]}"',
    '  local prev=""',
    '  [ "$COMP_CWORD" -gt 0 ] && prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  if [ "$COMP_CWORD" -le 1 ]; then',
    `    COMPREPLY=($(compgen -W "${words([...names, "--help", "--version"])}" -- "$cur"))`,
    "    return 0",
    "  fi",
    '  case "${COMP_WORDS[1]}" in',
  ];
  for (const c of commands) {
    out.push(`    ${c.name})`);
    const valued = c.flags.filter((f) => f.value.kind !== "none");
    if (valued.length > 0) {
      out.push('      case "$prev" in');
      for (const f of valued) {
        const forms = [`--${f.name}`, ...(f.short !== undefined ? [`-${f.short}`] : [])];
        out.push(`        ${forms.join("|")}) ${bashValue(f.value)}; return 0 ;;`);
      }
      out.push("      esac");
    }
    const flagWords = c.flags.flatMap((f) => [
      `--${f.name}`,
      ...(f.short !== undefined ? [`-${f.short}`] : []),
    ]);
    const offerFlags = `COMPREPLY=($(compgen -W "${words(flagWords)}" -- "$cur"))`;
    if (c.positionals.kind === "none") {
      // Nothing but flags: offer them at once.
      out.push(`      ${offerFlags}`, "      ;;");
    } else {
      out.push(
        '      if [[ "$cur" == -* ]]; then',
        `        ${offerFlags}`,
        "      else",
        `        ${bashValue(c.positionals)}`,
        "      fi",
        "      ;;",
      );
    }
  }
  out.push(
    "    *) COMPREPLY=() ;;",
    "  esac",
    "  return 0",
    "}",
    "complete -F _oor oor",
    "",
  );
  return out.join("\n");
}

/** Text inside zsh's `[...]` help of an _arguments spec. */
function zshHelp(text: string): string {
  return text.replace(/[\[\]:\\'"`$]/g, "").replace(/\s+/g, " ");
}

function zshValue(v: ValueKind, what: string): string {
  switch (v.kind) {
    case "file":
      return `:${what}:_files`;
    case "choice":
      return `:${what}:(${words(v.choices)})`;
    case "text":
      return `:${what}: `;
    default:
      return "";
  }
}

function zshScript(commands: readonly CompletionCommand[]): string {
  const out: string[] = [
    "#compdef oor",
    "# zsh completion for oor, from: oor completions zsh",
    '# Install: oor completions zsh > "${fpath[1]}/_oor" (or source it after compinit)',
    "_oor() {",
    "  local -a subcommands",
    "  subcommands=(",
    ...commands.map((c) => `    '${c.name}:${zshHelp(c.summary)}'`),
    "  )",
    "  if (( CURRENT == 2 )); then",
    "    _describe -t subcommands 'oor subcommand' subcommands",
    "    _arguments '--help[show the help]' '--version[print the version]'",
    "    return",
    "  fi",
    "  local sub=$words[2]",
    "  shift words",
    "  (( CURRENT-- ))",
    "  case $sub in",
  ];
  for (const c of commands) {
    const specs = c.flags.map((f) => {
      const help = `[${zshHelp(f.help)}]`;
      const value = zshValue(f.value, f.name);
      return f.short !== undefined
        ? `'(-${f.short} --${f.name})'{-${f.short},--${f.name}}'${help}${value}'`
        : `'--${f.name}${help}${value}'`;
    });
    if (c.positionals.kind !== "none") {
      specs.push(`'*${zshValue(c.positionals, "argument") || ": : "}'`);
    }
    out.push(`    ${c.name}) _arguments -s ${specs.join(" ")} ;;`);
  }
  out.push(
    "  esac",
    "}",
    'if [ "$funcstack[1]" = "_oor" ]; then',
    '  _oor "$@"',
    "else",
    "  compdef _oor oor",
    "fi",
    "",
  );
  return out.join("\n");
}
