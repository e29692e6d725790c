// The piece map: cells coloured by where each piece's verified bytes came
// from (the engine's record, `track.pieces()`) or by having been heard.
// Cells carry `data-state`, so the map is readable from the DOM, and the
// container's `aria-label` says the per-piece counts in words. Up to
// MAX_CELLS pieces get a cell each; a longer track groups neighbouring
// pieces per cell, showing the state most of them are in.

/** Engine byte (see client-wasm `Track::pieces`) → state name. */
export const STATES = ['missing', 'fans', 'server', 'mixed', 'local'];

/** Three rows of 96: cells stay ≥ 2 px wide and ≥ 5 px high on a phone. */
const MAX_CELLS = 288;
const PER_ROW = 96;

const LABELS = {
  missing: 'missing', fans: 'from fans', server: 'from the server',
  mixed: 'from fans and the server', local: 'from this device', played: 'played',
};

export class PieceMap {
  #el;
  #cells = [];
  #group = 1;
  #states = [];

  constructor(element) {
    this.#el = element;
    this.#el.setAttribute('role', 'img');
    this.#el.setAttribute('aria-label', 'Piece map: nothing loaded yet');
  }

  /** `engine`: one byte per piece; `played`: 1 where the listener heard it. */
  draw(engine, played) {
    if (this.#states.length !== engine.length) this.#build(engine.length);
    const counts = {};
    statesOf(engine, played).forEach((state, i) => {
      counts[state] = (counts[state] ?? 0) + 1;
      this.#states[i] = state;
    });
    this.#cells.forEach((cell, c) => {
      const state = mode(this.#states, c * this.#group, (c + 1) * this.#group);
      if (cell.dataset.state !== state) cell.dataset.state = state;
    });
    const words = Object.entries(counts).map(([s, n]) => `${n} ${LABELS[s]}`);
    this.#el.setAttribute('aria-label', `Piece map of ${engine.length} pieces: ${words.join(', ')}`);
  }

  /** The state name of every piece, as drawn. */
  states() {
    return this.#states.slice();
  }

  #build(count) {
    this.#group = Math.max(1, Math.ceil(count / MAX_CELLS));
    const cells = Math.ceil(count / this.#group);
    const rows = Math.max(1, Math.ceil(cells / PER_ROW));
    this.#el.style.gridTemplateColumns = `repeat(${Math.ceil(cells / rows)}, 1fr)`;
    this.#cells = Array.from({ length: cells }, () => {
      const cell = document.createElement('i');
      cell.dataset.state = 'missing';
      return cell;
    });
    this.#states = new Array(count).fill('missing');
    this.#el.replaceChildren(...this.#cells);
  }
}

/** The state name of every piece, without drawing: `engine` and `played`
 *  as for `draw`. */
export function statesOf(engine, played) {
  return Array.from(engine, (byte, i) => {
    const state = STATES[byte] ?? 'missing';
    return state !== 'missing' && played[i] ? 'played' : state;
  });
}

/** The most common state among `states[from..to)`; ties: the first seen. */
function mode(states, from, to) {
  const n = {};
  let best = states[from] ?? 'missing';
  for (let i = from; i < Math.min(to, states.length); i++) {
    n[states[i]] = (n[states[i]] ?? 0) + 1;
    if (n[states[i]] > (n[best] ?? 0)) best = states[i];
  }
  return best;
}
