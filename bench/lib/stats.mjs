// Medians, spreads and markdown tables: every part reports the same way.

/** Median of the finite numbers in `values` (NaN when there are none). */
export function median(values) {
  const v = finite(values).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Percentile `p` (0–100, nearest rank) of `values`. */
export function percentile(values, p) {
  const v = finite(values).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const rank = Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1));
  return v[rank];
}

/** `{ median, min, max, n }` of the finite numbers in `values`. */
export function summary(values) {
  const v = finite(values);
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** "1.23 (1.10–1.40)" with `digits` decimals; "–" when nothing was measured. */
export function spread(values, digits = 2) {
  const s = summary(values);
  if (s.n === 0) return '–';
  const f = (x) => fixed(x, digits);
  return s.n === 1 ? `${f(s.median)} (1 run)` : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

/** A number with thousands separators and `digits` decimals. */
export function fixed(x, digits = 0) {
  if (!Number.isFinite(x)) return '–';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Ratio a/b of two medians as "1.23×". */
export function ratio(a, b) {
  const r = median(a) / median(b);
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : '–';
}

/** A markdown table: `head` is an array of column names, `rows` of cells. */
export function table(head, rows) {
  const line = (cells) => `| ${cells.map((c) => String(c)).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

function finite(values) {
  return values.filter((x) => typeof x === 'number' && Number.isFinite(x));
}
