// AURA playback queue at 24 kHz: starts on the first chunk, drops a response at once, reports what played.
class AuraPlayback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];          // [{id, samples: Float32Array, offset}]
    this.dropped = new Set(); // response ids never to play again
    this.played = new Map();  // response id → samples played
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.type === 'chunk') {
        if (!this.dropped.has(m.id)) this.queue.push({ id: m.id, samples: new Float32Array(m.samples), offset: 0 });
      } else if (m.type === 'drop') {
        this.dropped.add(m.id);
        this.queue = this.queue.filter((c) => c.id !== m.id);
        this.port.postMessage({ type: 'dropped', id: m.id, samples: this.played.get(m.id) || 0 });
      } else if (m.type === 'reset') { // a new connection: its response ids start again at 1
        this.queue = [];
        this.dropped.clear();
        this.played.clear();
      }
    };
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.queue.length) {
      const chunk = this.queue[0];
      const n = Math.min(out.length - i, chunk.samples.length - chunk.offset);
      out.set(chunk.samples.subarray(chunk.offset, chunk.offset + n), i);
      chunk.offset += n;
      i += n;
      this.played.set(chunk.id, (this.played.get(chunk.id) || 0) + n);
      if (chunk.offset === chunk.samples.length) {
        this.queue.shift();
        if (!this.queue.some((c) => c.id === chunk.id)) {
          this.port.postMessage({ type: 'drained', id: chunk.id, samples: this.played.get(chunk.id) });
        }
      }
    }
    out.fill(0, i);
    return true;
  }
}
registerProcessor('aura-playback', AuraPlayback);
