// The companion's audio in the window: the reply's speech played in order (WebAudio), the mouth
// level for lip-sync, and the microphone sent to the host as 16 kHz mono int16 PCM.

/** Plays a reply's audio chunks back to back; reports when playback starts, when each sentence has
 * been heard in full, and how many were heard when it is cut off. */
export class Playback {
  constructor({ onStart, onHeard } = {}) {
    this.onStart = onStart || (() => {});
    this.onHeard = onHeard || (() => {});
    this.context = null;
    this.analyser = null;
    this.sources = new Set();
    this.pending = new Map(); // sentence index -> chunks still to finish
    this.heard = 0; // sentences heard in full, this reply
    this.nextAt = 0;
    this.started = false;
  }

  ensureContext() {
    if (!this.context) {
      this.context = new AudioContext();
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = 512;
      this.analyser.connect(this.context.destination);
    }
    if (this.context.state === "suspended") this.context.resume();
    return this.context;
  }

  get playing() {
    return this.sources.size > 0;
  }

  /** A new reply begins: counts start again. */
  reset() {
    this.stop();
    this.heard = 0;
    this.started = false;
    this.pending.clear();
  }

  /** Queue one chunk: ``pcm`` base64 int16 mono at ``sampleRate``, of sentence ``index``. */
  push(base64, sampleRate, index) {
    const context = this.ensureContext();
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const samples = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
    if (!samples.length) return;
    const buffer = context.createBuffer(1, samples.length, sampleRate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i += 1) channel[i] = samples[i] / 32768;
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.analyser);
    const at = Math.max(context.currentTime + 0.02, this.nextAt);
    this.nextAt = at + buffer.duration;
    this.pending.set(index, (this.pending.get(index) || 0) + 1);
    this.sources.add(source);
    source.onended = () => {
      if (!this.sources.delete(source)) return; // stopped: not heard
      const left = this.pending.get(index) - 1;
      this.pending.set(index, left);
      if (left === 0) {
        this.heard = Math.max(this.heard, index + 1);
        this.onHeard(this.heard);
      }
    };
    source.start(at);
    if (!this.started) {
      this.started = true;
      setTimeout(() => this.onStart(), Math.max(0, (at - context.currentTime) * 1000));
    }
  }

  /** Stop at once (barge-in); returns how many sentences were heard in full. */
  stop() {
    const sources = [...this.sources];
    this.sources.clear();
    for (const source of sources) {
      try {
        source.stop();
      } catch {
        // never started: nothing to stop
      }
    }
    this.nextAt = 0;
    return this.heard;
  }
}

/** The microphone, resampled by the browser to 16 kHz, sent in ~100 ms pieces to ``send(bytes)``. */
export class Microphone {
  constructor(send) {
    this.send = send;
    this.context = null;
    this.stream = null;
  }

  get on() {
    return this.stream !== null;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    this.context = new AudioContext({ sampleRate: 16000 });
    await this.context.audioWorklet.addModule("/static/mic-worklet.js");
    const node = new AudioWorkletNode(this.context, "zishu-mic");
    node.port.onmessage = (event) => this.send(event.data);
    this.context.createMediaStreamSource(this.stream).connect(node);
  }

  async stop() {
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.context) await this.context.close();
    this.stream = null;
    this.context = null;
  }
}
