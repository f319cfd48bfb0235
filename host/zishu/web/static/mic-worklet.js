// Runs on the audio thread: collects the microphone's samples (the context runs at 16 kHz) and
// posts them as int16 PCM every 100 ms.
const PIECE = 1600; // samples: 100 ms at 16 kHz

class ZishuMic extends AudioWorkletProcessor {
  constructor() {
    super();
    this.piece = new Int16Array(PIECE);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i += 1) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.piece[this.filled] = s < 0 ? s * 32768 : s * 32767;
      this.filled += 1;
      if (this.filled === PIECE) {
        this.port.postMessage(this.piece.buffer, [this.piece.buffer]);
        this.piece = new Int16Array(PIECE);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("zishu-mic", ZishuMic);
