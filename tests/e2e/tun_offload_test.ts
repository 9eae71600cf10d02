/**
 * Runs the TUN offload tests (tun_offload_netns.ts) in a fresh network
 * namespace, as root; ignored, with the reason in the test name, elsewhere.
 *
 * @module
 */

import assert from "node:assert/strict";
import { netnsTest, runInNetns } from "../netns.ts";

netnsTest(
  "TUN offloads: virtio-net header, TSO and USO super-packets out, merged writes in (in a netns)",
  async () => {
    const out = await runInNetns(new URL("./tun_offload_netns.ts", import.meta.url));
    console.log(out.split("\n").filter((l) => / \.\.\. ok|skipping/.test(l)).join("\n"));
    assert.match(out, /ok \| \d+ passed \| 0 failed/);
  },
);
