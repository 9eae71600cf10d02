/**
 * Worker for libc_test.ts: pins its own thread to the CPU it is sent
 * (pinThread) and posts the CPUs it may then run on, or the error.
 *
 * @module
 */

import { pinThread, threadCpus } from "./libc.ts";

/** The worker's global scope (typed here: the project compiles with the window lib). */
const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((m: MessageEvent<number>) => void) | null;
};

scope.onmessage = (m) => {
  try {
    pinThread(m.data);
    scope.postMessage({ cpus: threadCpus() });
  } catch (e) {
    scope.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
};
