/**
 * What packaging/systemd/oor@.service grants is enough: the basic lab with
 * its ms run as user nobody with no capability at all (as the unit runs a
 * mapping-system role) and xtr1 as nobody with CAP_NET_ADMIN and
 * CAP_NET_RAW only, ambient (as the unit with tunnel-router.conf runs a
 * tunnel router), both with their state in `--state-file`. They register,
 * and hosta and hostb talk through the overlay. Lab `e2e-caps`.
 *
 * /dev/net/tun is 0666 on a Debian host (udev's default rule), so any user
 * may open it and CAP_NET_ADMIN decides; where it is not (0600 on this
 * build machine), the xtr gets a 0666 node of its own, bind-mounted over
 * /dev/net/tun in a mount namespace of its own, and the host's stays as
 * it is.
 *
 * Needs root (to build the lab and drop to nobody); skipped otherwise.
 *
 * @module
 */

import assert from "node:assert/strict";
import { makeTopology, PLAN, REPO_ROOT, upTopology } from "../../scripts/lab/topologies.ts";
import { assertClean, bothWays, e2e } from "./_lab.ts";
import { commandsMissing } from "../prereq.ts";

/** Whether the host's /dev/net/tun lets any user open it. */
function tunOpenToAll(): boolean {
  return ((Deno.statSync("/dev/net/tun").mode ?? 0) & 0o006) === 0o006;
}

/** `setpriv` to user nobody with exactly `caps` (none when empty), as systemd would. */
function asNobody(caps: readonly string[], dir: string, argv: readonly string[]): string[] {
  const set = ["-all", ...caps.map((c) => `+${c}`)].join(",");
  const tun = caps.length > 0 && !tunOpenToAll()
    ? [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      `mknod ${dir}/tun c 10 200 && chmod 666 ${dir}/tun && ` +
      `mount --bind ${dir}/tun /dev/net/tun && exec "$@"`,
      "sh",
    ]
    : [];
  return [
    ...tun,
    "setpriv",
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
    `--inh-caps=${set}`,
    `--ambient-caps=${set}`,
    `--bounding-set=${set}`,
    "env",
    `DENO_DIR=${dir}/deno`,
    "DENO_NO_UPDATE_CHECK=1",
    ...argv,
  ];
}

/**
 * Lets user nobody reach the checkout and the Deno binary: a directory on
 * the way that others may not enter (a clone under `mktemp -d`, mode 0700)
 * gets o+x for the test. Returns what puts every mode back.
 */
async function openPathForNobody(paths: readonly string[]): Promise<() => Promise<void>> {
  const changed = new Map<string, number>();
  for (const p of paths) {
    for (let d = p; d !== "/" && d !== "."; d = d.slice(0, d.lastIndexOf("/")) || "/") {
      if (changed.has(d)) continue;
      const st = await Deno.stat(d);
      if (!st.isDirectory) continue;
      const mode = (st.mode ?? 0) & 0o7777;
      if ((mode & 0o001) === 0) {
        await Deno.chmod(d, mode | 0o001);
        changed.set(d, mode);
      }
    }
  }
  return async () => {
    for (const [d, mode] of changed) await Deno.chmod(d, mode).catch(() => {});
  };
}

e2e(
  "the unit's capabilities suffice: ms as nobody with none, xtr1 as nobody with NET_ADMIN+NET_RAW",
  async () => {
    const topo = makeTopology("basic");
    const stateDir = await Deno.makeTempDir({ prefix: "oor-e2e-caps-" });
    // Where nobody reads its configs and writes its state and cache.
    const dir = await Deno.makeTempDir({ prefix: "oor-caps-" });
    await Deno.chmod(dir, 0o777);
    const restoreModes = await openPathForNobody([REPO_ROOT, Deno.execPath()]);
    const { lab } = await upTopology(topo, { name: "e2e-caps", stateDir, only: ["mr", "xtr2"] })
      .catch(async (e) => {
        await restoreModes();
        throw e;
      });
    try {
      const run = async (name: string, caps: string[]) => {
        const spec = topo.lisp.find((p) => p.name === name)!;
        const config = `${dir}/${name}.toml`;
        await Deno.writeTextFile(config, spec.config);
        const p = await lab.spawn(
          spec.node,
          name,
          asNobody(caps, dir, [
            Deno.execPath(),
            "run",
            "-A",
            `${REPO_ROOT}/main.ts`,
            spec.role,
            "--config",
            config,
            "--state-file",
            `${dir}/${name}.state.json`,
          ]),
          { cwd: REPO_ROOT },
        );
        await p.waitForLog(/ started( |$)/m, 20_000);
        return p;
      };
      const ms = await run("ms", []);
      const xtr1 = await run("xtr1", ["net_admin", "net_raw"]);
      // Really nobody, really only those capabilities.
      for (const [p, eff] of [[ms, "0000000000000000"], [xtr1, "0000000000003000"]] as const) {
        const pid = Number(/ started pid=(\d+)/.exec(p.readLog())?.[1]);
        const status = Deno.readTextFileSync(`/proc/${pid}/status`);
        assert.match(status, /^Uid:\t65534\t/m, p.name);
        assert.match(status, new RegExp(`^CapEff:\\t${eff}$`, "m"), p.name);
      }
      await xtr1.waitForLog(/ registered /, 20_000);
      await lab.processes.get("xtr2")!.waitForLog(/ registered /, 20_000);
      await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
      assert.doesNotMatch(xtr1.readLog(), /start-failed|error /);
      assert.doesNotMatch(ms.readLog(), /start-failed|error /);
      // SIGTERM: the unprivileged xtr still removes what it added.
      await lab.stop("xtr1");
      assert.equal(lab.processes.get("xtr1")!.status?.code, 0);
      assert.match(xtr1.readLog(), /host-restored/);
      await assertClean(lab, "xtr1");
    } catch (e) {
      for (const p of lab.processes.values()) {
        console.error(`--- ${p.name}:\n${p.readLog().split("\n").slice(-20).join("\n")}`);
      }
      throw e;
    } finally {
      await lab.down();
      await restoreModes();
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
  commandsMissing(["setpriv"], "Debian package util-linux"),
);
