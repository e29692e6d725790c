// Runs one part in its own process (inside the network namespace for the
// browser parts): `node bench/run-part.mjs <part> <context.json> <result.json>`.
// The part module exports `run(context)` → `{ markdown, data }`; a part that
// throws still writes a result, with the reason, so the run goes on.
import { readFileSync, writeFileSync } from 'node:fs';

const [part, contextPath, resultPath] = process.argv.slice(2);
const context = JSON.parse(readFileSync(contextPath, 'utf8'));
const started = Date.now();
let result;
try {
  const module = await import(`./parts/${part}.mjs`);
  result = { ok: true, ...(await module.run(context)) };
} catch (e) {
  result = { ok: false, error: String(e?.stack ?? e) };
}
result.seconds = (Date.now() - started) / 1000;
writeFileSync(resultPath, JSON.stringify(result, null, 1));
// Browsers and servers the part forgot must not keep the namespace alive.
process.exit(0);
