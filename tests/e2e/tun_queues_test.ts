/**
 * Runs the multi-queue TUN and reuse-port spreading tests
 * (tun_queues_netns.ts) in a fresh network namespace, as root; ignored,
 * with the reason in the test name, elsewhere.
 *
 * @module
 */

import assert from "node:assert/strict";
import { netnsTest, runInNetns } from "../netns.ts";

netnsTest(
  "several Workers at the kernel's end: TUN queues per flow, reuse-port sockets by inner flow (in a netns)",
  async () => {
    const out = await runInNetns(new URL("./tun_queues_netns.ts", import.meta.url));
    console.log(out.split("\n").filter((l) => / \.\.\. ok|skipping/.test(l)).join("\n"));
    assert.match(out, /ok \| \d+ passed \| 0 failed/);
  },
);
