/**
 * Worker for libc_test.ts: fails two calls and posts the errno of each,
 * read through this thread's own errno location.
 *
 * @module
 */

import { cString, errno, libc } from "./libc.ts";

/** The worker's global scope (typed here: the project compiles with the window lib). */
const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((m: MessageEvent) => void) | null;
};

const c = libc();
c.close(-1);
const first = errno();
c.open(cString("/nonexistent/oor"), 0, 0);
const second = errno();
scope.postMessage([first, second]);
