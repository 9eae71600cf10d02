/**
 * `deno task lab` as a user runs it (scripts/lab.ts in its own process):
 * `lab down` without a name tears nothing down and asks for a name or
 * `--all`; `lab status` draws the lab's nodes, links and addresses. Lab
 * `e2e-labcli`, built from the basic topology without its LISP processes.
 *
 * Needs root; skipped otherwise.
 *
 * @module
 */

import assert from "node:assert/strict";
import { labNamespaces } from "../../scripts/lab/topology.ts";
import { REPO_ROOT } from "../../scripts/lab/topologies.ts";
import { e2e } from "./_lab.ts";

const LAB = "e2e-labcli";

async function lab(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}/scripts/lab.ts`, ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

e2e(
  "lab down needs a name or --all; lab status draws the lab's nodes, links and addresses",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "oor-labcli-" });
    try {
      const up = await lab("up", "basic", "--name", LAB, "--dir", dir, "--no-start");
      assert.equal(up.code, 0, up.err);

      // No name: a usage error that lists the labs, and nothing is torn down.
      const down = await lab("down");
      assert.equal(down.code, 2, down.out);
      assert.match(down.err, /down takes the name of the lab to tear down, or --all/);
      assert.match(down.err, new RegExp(`labs here: .*\\b${LAB}\\b`));
      assert.equal((await labNamespaces(LAB)).length, 6, "the lab is still there");
      const both = await lab("down", LAB, "--all");
      assert.equal(both.code, 2);
      assert.match(both.err, /not both/);

      const status = await lab("status", LAB);
      assert.equal(status.code, 0, status.err);
      const lines = status.out.split("\n");
      assert.ok(lines[0]?.startsWith(`lab ${LAB} (topology basic`), status.out);
      for (
        const want of [
          "  router",
          "  ├── to-ms 100.64.100.1/24 ─── eth0 100.64.100.2/24 100.64.100.3/24  ms",
          "  ├── to-xtr1 100.64.1.1/24 ─── rloc0 100.64.1.2/24  xtr1",
          "  │   └── site0 10.1.0.1/24 ─── eth0 10.1.0.10/24  hosta",
          "  └── to-xtr2 100.64.2.1/24 ─── rloc0 100.64.2.2/24  xtr2",
          "      └── site0 10.2.0.1/24 ─── eth0 10.2.0.10/24  hostb",
        ]
      ) assert.ok(lines.includes(want), `missing line:\n${want}\nin:\n${status.out}`);
      const json = JSON.parse((await lab("status", LAB, "--json")).out) as {
        network: { links: unknown[]; nodes: { name: string }[] };
      }[];
      assert.equal(json[0]?.network.links.length, 5);
      assert.deepEqual(json[0]?.network.nodes.map((n) => n.name).sort(), [
        "hosta",
        "hostb",
        "ms",
        "router",
        "xtr1",
        "xtr2",
      ]);
      const none = await lab("status", "no-such-lab-here");
      assert.equal(none.code, 1);

      const gone = await lab("down", LAB);
      assert.equal(gone.code, 0, gone.err);
      assert.match(gone.out, new RegExp(`lab ${LAB}: 6 namespaces removed`));
      assert.deepEqual(await labNamespaces(LAB), []);
    } finally {
      await lab("down", LAB);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
