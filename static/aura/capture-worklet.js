// AURA microphone capture: Float32 at the context's rate → 16-bit PCM frames of 40 ms, plus a level.
// 40 ms, not 20: half the messages for the server to handle, at most 20 ms more latency (docs/benchmarks.md).
class AuraCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate / 25);
    this.frame = new Int16Array(this.size);
    this.filled = 0;
    this.energy = 0;
    this.muted = false;
    this.port.onmessage = (e) => { if (e.data && 'muted' in e.data) this.muted = e.data.muted; };
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const s = this.muted ? 0 : Math.max(-1, Math.min(1, channel[i]));
      this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      this.energy += s * s;
      if (this.filled === this.size) {
        const level = Math.sqrt(this.energy / this.filled);
        this.port.postMessage({ pcm: this.frame.buffer, level }, [this.frame.buffer]);
        this.frame = new Int16Array(this.size); // the last one was transferred (detached)
        this.filled = 0;
        this.energy = 0;
      }
    }
    return true;
  }
}
registerProcessor('aura-capture', AuraCapture);
