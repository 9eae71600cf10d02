/**
 * Tests that need something the machine may lack (root, network
 * namespaces, tshark, nft, Chromium, the real OOR): {@link testNeeding}
 * runs them when it is there, and otherwise registers them as skipped with
 * the reason in their name, so a run says what it did not cover.
 *
 * Under `CI=true` a missing prerequisite is a failure instead: `.ci/run`
 * installs every one of them, so a green CI always includes these tests.
 *
 * @module
 */

/** Whether this run is CI's (`CI=true`), where nothing may be skipped. */
export function inCi(): boolean {
  try {
    return Deno.env.get("CI") === "true";
  } catch {
    return false;
  }
}

/**
 * Registers `def`, which needs what `missing` describes when it is not
 * undefined (e.g. `"needs root for network namespaces"`): skipped with that
 * reason in its name, or failing with it under `CI=true`.
 */
export function testNeeding(missing: string | undefined, def: Deno.TestDefinition): void {
  if (missing === undefined) {
    Deno.test(def);
  } else if (inCi()) {
    Deno.test({
      name: def.name,
      fn() {
        throw new Error(`CI=true, but this test cannot run: ${missing}`);
      },
    });
  } else {
    Deno.test({ ...def, name: `${def.name} (skipped: ${missing})`, ignore: true });
  }
}

/** Why root-only tests cannot run here (Linux, uid 0), or undefined. */
export function rootMissing(): string | undefined {
  if (Deno.build.os !== "linux") return "needs Linux network namespaces";
  if (Deno.uid() !== 0) return "needs root for network namespaces and TUN devices";
  return undefined;
}

/** Which of `commands` are not on the PATH, as a reason, or undefined when all are. */
export function commandsMissing(commands: readonly string[], install: string): string | undefined {
  const missing = commands.filter((c) => {
    try {
      new Deno.Command(c, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
      return false;
    } catch {
      return true;
    }
  });
  return missing.length === 0 ? undefined : `needs ${missing.join(" and ")} (${install})`;
}
