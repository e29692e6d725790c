// Where things are: the repository root and the benchmark's output folder.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (work tree) root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Results, logs and the prepared library and web folder of a run. */
export const OUT = join(ROOT, 'target', 'bench');
/** The release server every part runs: where scripts/bench's cargo build
 *  put it, under CARGO_TARGET_DIR when that is set. */
export const SERVER_BIN = join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'release', 'signal-server');
