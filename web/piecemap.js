// The piece map: one cell per piece, coloured by where its verified bytes
// came from (the engine's record, `track.pieces()`) or by having been heard.
// Cells carry `data-state`, so the map is readable from the DOM, and the
// container's `aria-label` says the counts in words.

/** Engine byte (see client-wasm `Track::pieces`) → state name. */
export const STATES = ['missing', 'fans', 'server', 'mixed', 'local'];

const LABELS = {
  missing: 'missing', fans: 'from fans', server: 'from the server',
  mixed: 'from fans and the server', local: 'from this device', played: 'played',
};

export class PieceMap {
  #el;
  #cells = [];
  #states = [];

  constructor(element) {
    this.#el = element;
    this.#el.setAttribute('role', 'img');
    this.#el.setAttribute('aria-label', 'Piece map: nothing loaded yet');
  }

  /** `engine`: one byte per piece; `played`: 1 where the listener heard it. */
  draw(engine, played) {
    if (this.#cells.length !== engine.length) this.#build(engine.length);
    const counts = {};
    for (let i = 0; i < engine.length; i++) {
      let state = STATES[engine[i]] ?? 'missing';
      if (state !== 'missing' && played[i]) state = 'played';
      counts[state] = (counts[state] ?? 0) + 1;
      if (this.#states[i] !== state) {
        this.#states[i] = state;
        this.#cells[i].dataset.state = state;
      }
    }
    const words = Object.entries(counts).map(([s, n]) => `${n} ${LABELS[s]}`);
    this.#el.setAttribute('aria-label', `Piece map of ${engine.length} pieces: ${words.join(', ')}`);
  }

  /** The state name of every piece, as drawn. */
  states() {
    return this.#states.slice();
  }

  #build(count) {
    // Rows so that cells stay at least ~3 px wide on a 320 px player.
    const rows = Math.max(1, Math.ceil(count / 96));
    this.#el.style.gridTemplateColumns = `repeat(${Math.ceil(count / rows)}, 1fr)`;
    this.#cells = Array.from({ length: count }, () => {
      const cell = document.createElement('i');
      cell.dataset.state = 'missing';
      return cell;
    });
    this.#states = new Array(count).fill('missing');
    this.#el.replaceChildren(...this.#cells);
  }
}
