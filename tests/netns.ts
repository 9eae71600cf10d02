/**
 * Test helpers: run a test module inside a fresh network namespace, guard
 * that module against running anywhere else, read `ip -j` output, count
 * open fds.
 *
 * An outer `x_test.ts` calls {@link runInNetns} with an inner module
 * (named without `_test`, so `deno test ffi/` does not pick it up
 * directly); the inner module calls {@link assertInTestNetns} first.
 *
 * @module
 */

import { testNeeding } from "./prereq.ts";

/** Environment variable naming the namespace an inner test module must run in. */
const NETNS_ENV = "OOR_TEST_NETNS";

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root (network namespaces, TUN and rtnetlink changes need it)";
  try {
    Deno.statSync("/dev/net/tun");
  } catch {
    return "/dev/net/tun is missing";
  }
  try {
    new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync();
  } catch {
    return "the `ip` command (iproute2) is missing";
  }
  return undefined;
}

/** Registers a test that needs network namespaces (see tests/prereq.ts for when they are missing). */
export function netnsTest(name: string, fn: () => Promise<void> | void): void {
  testNeeding(netnsSkipReason(), { name, fn });
}

function run(cmd: string, args: string[]): { code: number; out: string; err: string } {
  const o = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout), err: d.decode(o.stderr) };
}

/**
 * Creates namespace `oor-t-<random>`, runs `deno test -A <module>` inside
 * it and deletes the namespace. Throws, with the inner output, when the
 * inner tests fail.
 */
export async function runInNetns(module: URL, extraArgs: string[] = []): Promise<string> {
  const ns = `oor-t-${crypto.randomUUID().slice(0, 8)}`;
  const add = run("ip", ["netns", "add", ns]);
  if (add.code !== 0) throw new Error(`ip netns add ${ns}: ${add.err}`);
  try {
    const cmd = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "test",
        "-A",
        "--no-check",
        ...extraArgs,
        module.pathname,
      ],
      env: { [NETNS_ENV]: ns, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    });
    const o = await cmd.output();
    const d = new TextDecoder();
    const text = d.decode(o.stdout) + d.decode(o.stderr);
    if (o.code !== 0) throw new Error(`inner tests failed in ${ns}:\n${text}`);
    return text;
  } finally {
    run("ip", ["netns", "del", ns]);
  }
}

/**
 * Throws unless this process runs in the namespace {@link runInNetns}
 * made for it, so an inner module never changes the host's network.
 */
export function assertInTestNetns(): string {
  const ns = Deno.env.get(NETNS_ENV);
  if (ns === undefined || !/^oor-t-[0-9a-f]{8}$/.test(ns)) {
    throw new Error(`run this module through its *_test.ts (${NETNS_ENV} not set)`);
  }
  const mine = Deno.statSync("/proc/self/ns/net").ino;
  const want = Deno.statSync(`/run/netns/${ns}`).ino;
  if (mine === null || mine !== want) throw new Error(`not inside network namespace ${ns}`);
  return ns;
}

/** Runs `ip -j <args>` and parses its JSON output (`[]` for empty output). */
export function ipJson(...args: string[]): unknown[] {
  const r = run("ip", ["-j", ...args]);
  if (r.code !== 0) throw new Error(`ip -j ${args.join(" ")}: ${r.err}`);
  return r.out.trim() === "" ? [] : JSON.parse(r.out) as unknown[];
}

/** Runs `ip <args>`; throws with stderr on failure. */
export function ip(...args: string[]): string {
  const r = run("ip", args);
  if (r.code !== 0) throw new Error(`ip ${args.join(" ")}: ${r.err}`);
  return r.out;
}

/** Number of open fds of this process. */
export function fdCount(): number {
  let n = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
  return n;
}

/** Runs `fn` and asserts that it leaves no fd open. */
export async function noFdLeak(fn: () => Promise<void> | void): Promise<void> {
  const before = fdCount();
  await fn();
  const after = fdCount();
  if (after !== before) throw new Error(`fd leak: ${before} open before, ${after} after`);
}
