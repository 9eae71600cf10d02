/**
 * The version of oor, in one place. `oor --version` prints it.
 *
 * @module
 */

/** The oor release, semver. */
export const VERSION = "0.1.0";
