/* AURA voice widget: <script src=".../static/aura/widget.js" data-key="pk_…" async></script>
 * or <aura-voice-widget key="pk_…">. No framework; Shadow DOM; protocol: docs/websocket-protocol.md */
(() => {
  'use strict';
  if (customElements.get('aura-voice-widget')) return;
  const script = document.currentScript;
  const BASE = new URL(script ? script.src : location.href).origin;
  const ASSETS = script ? script.src.replace(/widget\.js(\?.*)?$/, '') : BASE + '/static/aura/';
  const RATES = [8000, 16000, 24000, 44100, 48000];
  const STATES = {
    idle: 'Tap to talk', connecting: 'Connecting…', listening: 'Listening', hearing: 'Hearing you…',
    thinking: 'Thinking…', speaking: 'Speaking', muted: 'Muted', error: 'Unavailable',
  };
  const CLOSE_MESSAGES = {
    4004: 'This assistant is not enabled for this website.', 4005: 'This assistant is not available.',
    4008: 'Ended after a quiet minute. Tap to talk again.', 4009: 'The session reached its time limit.',
    4029: 'The assistant is busy or over its quota right now. Please try again later.',
    4400: 'The connection was closed after too many invalid messages.',
  };
  const CSS = `
  :host { all: initial; position: fixed; z-index: 2147483000; font: 15px/1.4 system-ui, sans-serif;
    --aura-accent: #4f46e5; --aura-on-accent: #fff; --aura-bg: #fff; --aura-fg: #111827; --aura-muted: #6b7280; --aura-radius: 16px;
    --aura-size: 60px; bottom: 20px; right: 20px; color: var(--aura-fg); }
  :host([placement="bottom-left"]) { right: auto; left: 20px; }
  :host([placement="inline"]) { position: static; display: inline-block; }
  button { font: inherit; cursor: pointer; }
  .launcher { width: var(--aura-size); height: var(--aura-size); border-radius: 50%; border: 0;
    background: var(--aura-accent); color: var(--aura-on-accent); box-shadow: 0 6px 20px rgba(0,0,0,.2); display: grid; place-items: center; }
  .launcher svg { width: 45%; height: 45%; }
  .panel { position: absolute; bottom: calc(var(--aura-size) + 12px); right: 0; width: min(360px, 92vw);
    background: var(--aura-bg); border-radius: var(--aura-radius); box-shadow: 0 12px 40px rgba(0,0,0,.22);
    display: none; flex-direction: column; overflow: hidden; }
  :host([placement="bottom-left"]) .panel { right: auto; left: 0; }
  :host([placement="inline"]) .panel { position: static; }
  .open .panel { display: flex; }
  .head { display: flex; align-items: center; gap: 10px; padding: 12px 14px; background: var(--aura-accent); color: var(--aura-on-accent); }
  .head strong { flex: 1; }
  .head button { background: transparent; border: 0; color: inherit; font-size: 20px; line-height: 1; }
  .status { display: flex; align-items: center; gap: 10px; padding: 10px 14px; border-bottom: 1px solid #e5e7eb; }
  .dot { width: 10px; height: 10px; border-radius: 50%; background: var(--aura-muted); }
  [data-state="listening"] .dot { background: #16a34a; } [data-state="hearing"] .dot { background: #f59e0b; }
  [data-state="speaking"] .dot { background: var(--aura-accent); } [data-state="error"] .dot { background: #dc2626; }
  [data-state="thinking"] .dot { animation: pulse 1s infinite; background: var(--aura-accent); }
  @keyframes pulse { 50% { opacity: .3; } }
  @media (prefers-reduced-motion: reduce) { [data-state="thinking"] .dot { animation: none; } }
  .meter { flex: 1; height: 6px; background: #e5e7eb; border-radius: 3px; overflow: hidden; }
  .meter i { display: block; height: 100%; width: 0; background: var(--aura-accent); }
  .notice { margin: 8px 14px 0; padding: 8px 10px; border-radius: 8px; background: #fef3c7; color: #78350f; font-size: 13px; }
  .demo { margin: 0; padding: 4px 14px; border-radius: 0; background: #f9fafb; color: #4b5563; font-size: 12px; }
  .notice[hidden], .error[hidden] { display: none; }
  .error { margin: 8px 14px 0; padding: 8px 10px; border-radius: 8px; background: #fee2e2; color: #7f1d1d; font-size: 14px; }
  .transcript { max-height: 260px; min-height: 80px; overflow-y: auto; flex: 0 1 auto; padding: 10px 14px; display: flex; flex-direction: column; gap: 6px; }
  :host([show-transcript="false"]) .transcript { display: none; }
  .msg { margin: 0; padding: 6px 10px; border-radius: 12px; max-width: 85%; flex-shrink: 0; overflow-wrap: anywhere; }
  .visitor { align-self: flex-end; background: #eef2ff; } .assistant { align-self: flex-start; background: #f3f4f6; }
  .assistant.cut::after { content: ' …'; color: var(--aura-muted); }
  form { display: flex; gap: 6px; padding: 10px 14px; border-top: 1px solid #e5e7eb; }
  input { flex: 1; font: inherit; padding: 8px 10px; border: 1px solid #d1d5db; border-radius: 10px; }
  .controls { display: flex; gap: 6px; padding: 0 14px 12px; }
  .controls button, form button { border: 1px solid #d1d5db; background: #fff; border-radius: 10px; padding: 7px 12px; }
  button:focus-visible, input:focus-visible, .transcript:focus-visible { outline: 3px solid var(--aura-accent); outline-offset: 2px; }
  .head button:focus-visible { outline-color: currentColor; outline-offset: -4px; }
  button:disabled, input:disabled { cursor: not-allowed; opacity: .55; }
  .sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }`;
  // Text on the accent: white or dark, whichever contrasts more (WCAG 2; tenants/appearance.py chooses alike).
  const DARK_TEXT = '#111827';
  function luminance(hex) {
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function textOn(accent) {
    const l = luminance(accent), ratio = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    return ratio(l, 1) >= ratio(l, luminance(DARK_TEXT)) ? '#ffffff' : DARK_TEXT;
  }
  const MIC = '<svg viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11z"/></svg>';

  // Chrome's echo canceller only removes audio that left through a peer connection, so replies played
  // with Web Audio leak into the microphone and the assistant interrupts itself. Playing them through
  // a peer connection to ourselves lets the canceller see them. Resolves to null where that fails.
  async function playThroughPeerConnection(context, node) {
    if (!window.RTCPeerConnection) return null;
    const sink = context.createMediaStreamDestination();
    node.connect(sink);
    const sender = new RTCPeerConnection(), receiver = new RTCPeerConnection();
    sender.onicecandidate = (e) => e.candidate && receiver.addIceCandidate(e.candidate);
    receiver.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
    const audio = new Audio();
    audio.autoplay = true;
    const track = new Promise((resolve) => { receiver.ontrack = (e) => resolve(e.streams[0]); });
    sink.stream.getTracks().forEach((t) => sender.addTrack(t, sink.stream));
    const close = () => { sender.close(); receiver.close(); audio.srcObject = null; };
    try {
      const offer = await sender.createOffer();
      await sender.setLocalDescription(offer);
      await receiver.setRemoteDescription(offer);
      const answer = await receiver.createAnswer();
      await receiver.setLocalDescription(answer);
      await sender.setRemoteDescription(answer);
      audio.srcObject = await Promise.race([track, new Promise((_, fail) => setTimeout(fail, 3000))]);
      await audio.play();
      return { close };
    } catch (err) {
      close();
      node.disconnect(sink);
      return null;
    }
  }

  class AuraVoiceWidget extends HTMLElement {
    constructor() {
      super();
      this.root = this.attachShadow({ mode: 'open' });
      this.ws = null; this.state = 'idle'; this.muted = false; this.active = false;
      this.interrupted = new Set(); this.received = new Map(); this.audioDone = new Set();
      this.currentBubble = null; this.retries = 0; this.bubbles = new Map();
    }

    connectedCallback() {
      if (this.root.childElementCount) return;
      const accent = this.getAttribute('accent');
      if (accent && /^#[0-9a-f]{6}$/i.test(accent)) {
        this.style.setProperty('--aura-accent', accent);
        this.style.setProperty('--aura-on-accent', textOn(accent));
      }
      const name = 'Voice assistant'; // the real title is set below as text, never parsed as HTML
      this.root.innerHTML = `<style>${CSS}</style>
        <div class="wrap" data-state="idle">
          <div class="panel" role="dialog" aria-label="${name}">
            <div class="head"><strong class="name">${name}</strong><button class="close" aria-label="Close">×</button></div>
            <div class="status"><span class="dot"></span><span class="label" aria-live="polite">${STATES.idle}</span>
              <span class="meter" aria-hidden="true"><i></i></span></div>
            <p class="notice demo" hidden></p><p class="notice mic" role="status" hidden></p>
            <div class="error" role="alert" hidden></div>
            <div class="transcript" role="log" tabindex="0" aria-label="Conversation"></div>
            <div class="controls"><button class="mute" aria-pressed="false">Mute</button>
              <button class="end">End</button></div>
            <form><label class="sr" for="aura-text">Type a message</label>
              <input id="aura-text" autocomplete="off" placeholder="Type instead of speaking…" maxlength="2000">
              <button type="submit" class="send">Send</button></form>
          </div>
          <button class="launcher" aria-label="Talk to ${name}" aria-expanded="false">${MIC}</button>
        </div>`;
      const $ = (s) => this.root.querySelector(s);
      this.setName(this.getAttribute('title') || name);
      this.el = { wrap: $('.wrap'), label: $('.label'), meter: $('.meter i'), demo: $('.demo'), mic: $('.mic'),
        error: $('.error'), transcript: $('.transcript'), input: $('input'), launcher: $('.launcher'), mute: $('.mute'),
        name: $('.name'), close: $('.close'), controls: [$('input'), $('.send'), $('.mute'), $('.end')] };
      $('.launcher').addEventListener('click', () => (this.active || this.refused ? this.toggle() : this.start()));
      $('.close').addEventListener('click', () => { this.toggle(false); this.el.launcher.focus(); });
      $('.panel').addEventListener('keydown', (e) => {
        if (e.key === 'Escape') { e.stopPropagation(); this.toggle(false); this.el.launcher.focus(); }
      });
      $('.end').addEventListener('click', () => this.stop());
      $('.mute').addEventListener('click', () => this.mute(!this.muted));
      $('form').addEventListener('submit', (e) => { e.preventDefault(); this.sendText(this.el.input.value); });
      if (this.hasAttribute('start-expanded')) this.toggle(true, false); // the page keeps its focus on load
    }

    setName(name) {
      this.root.querySelector('.name').textContent = name;
      this.root.querySelector('.panel').setAttribute('aria-label', name);
      this.root.querySelector('.launcher').setAttribute('aria-label', `Talk to ${name}`);
    }

    get key() { return this.getAttribute('key') || ''; }
    get textOnly() { return this.hasAttribute('text-only'); }

    toggle(open, focus = true) {
      const wasOpen = this.el.wrap.classList.contains('open');
      const isOpen = this.el.wrap.classList.toggle('open', open);
      this.el.launcher.setAttribute('aria-expanded', String(isOpen));
      // Opening moves the keyboard into the panel: the message field, or Close when typing is not possible.
      if (focus && isOpen && !wasOpen) (this.el.input.disabled ? this.el.close : this.el.input).focus();
    }

    // A site the key does not allow: say so and offer nothing that cannot work.
    refuse() {
      this.refused = true;
      for (const control of this.el.controls) control.disabled = true;
      if (this.el.wrap.classList.contains('open')) this.el.close.focus();
    }

    setState(state, detail) {
      this.state = state;
      this.el.wrap.dataset.state = state;
      this.el.label.textContent = detail || STATES[state] || state;
      this.dispatchEvent(new CustomEvent('aura:state', { detail: { state }, bubbles: true, composed: true }));
    }

    showError(message, code) {
      this.el.error.textContent = message; this.el.error.hidden = false;
      this.setState('error', STATES.error);
      this.dispatchEvent(new CustomEvent('aura:error', { detail: { message, code }, bubbles: true, composed: true }));
    }

    addBubble(role, text, id) {
      const p = document.createElement('p');
      p.className = `msg ${role}`; p.textContent = text;
      this.el.transcript.append(p); this.el.transcript.scrollTop = this.el.transcript.scrollHeight;
      if (id) this.bubbles.set(id, p);
      if (role === 'visitor') this.transcribed({ role, text }); // a reply's text is told once it is final
      return p;
    }

    transcribed(detail) {
      this.dispatchEvent(new CustomEvent('aura:transcript', { detail, bubbles: true, composed: true }));
    }

    async start() {
      if (this.active) return;
      this.active = true; this.toggle(true); this.el.error.hidden = true;
      this.setState('connecting');
      let session;
      try { session = await this.requestSession(); } catch (err) { // before the microphone is asked for
        this.teardown();
        this.showError(err.message || String(err), err.code);
        if (err.status === 403) this.refuse();
        return;
      }
      let mic = null;
      if (!this.textOnly) {
        try {
          mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
        } catch (err) {
          this.el.mic.textContent = 'Microphone access was denied, so you can type instead. Allow the microphone in your browser to talk.';
          this.el.mic.hidden = false;
          this.dispatchEvent(new CustomEvent('aura:error', { detail: { code: 'microphone_denied', message: String(err) }, bubbles: true, composed: true }));
        }
      }
      try { await this.connect(mic, session); } catch (err) {
        if (mic && !this.capture) mic.getTracks().forEach((t) => t.stop()); // never leave the microphone on
        this.teardown();
        this.showError(err.message || String(err), err.code);
      }
    }

    // Who the visitor is (docs/widget.md): a site's signed-in user comes with visitor-id and the visitor-hash
    // its server computed; anyone else is the anonymous visitor the server minted for this browser, whose
    // signed token is kept in localStorage and sent back. An id the browser makes up is never trusted.
    identity() {
      const id = this.getAttribute('visitor-id'), hash = this.getAttribute('visitor-hash');
      if (id && hash) return { visitor_id: id, visitor_hash: hash };
      let token = null;
      try { token = localStorage.getItem(this.visitorStore); localStorage.removeItem('aura-visitor'); } catch (err) { /* storage off */ }
      return token ? { visitor_token: token } : {};
    }

    get visitorStore() { return 'aura-visitor-token:' + this.key; }

    async requestSession() {
      // A reconnect continues the conversation with the resume token its first session was given.
      const resume = this.conversationId && this.resumeToken ? { resume: this.conversationId, resume_token: this.resumeToken } : {};
      let response;
      try {
        // The key in the address too: the browser's preflight carries no body, and the platform answers it
        // with CORS headers only for a site this key allows.
        response = await fetch(BASE + '/widget/session?key=' + encodeURIComponent(this.key), { method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ key: this.key, ...this.identity(), ...resume }) });
      } catch (err) {
        // A site the key does not allow gets no CORS headers, so the browser hides the 403 as a network error.
        // Whether the platform answers a no-cors request tells the two apart.
        const reachable = await fetch(BASE + '/healthz', { mode: 'no-cors', cache: 'no-store' }).then(() => true, () => false);
        if (reachable) throw Object.assign(new Error('This assistant is not enabled for this website.'), { code: 'origin_not_allowed', status: 403 });
        throw Object.assign(new Error('Cannot reach the assistant. Check your connection.'), { code: 'network' });
      }
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        const message = response.status === 403 ? 'This assistant is not enabled for this website.'
          : (body.error && body.error.message) || 'The assistant is unavailable.';
        throw Object.assign(new Error(message), { code: body.error && body.error.code, status: response.status });
      }
      if (body.visitor_token) { try { localStorage.setItem(this.visitorStore, body.visitor_token); } catch (err) { /* storage off */ } }
      this.conversationId = body.conversation_id; this.resumeToken = body.resume_token; // kept together
      return body;
    }

    async connect(mic, session) {
      const body = session || await this.requestSession(); // a reconnect asks for a new session
      if (mic && !this.capture) await this.setUpAudio(mic); // a reconnect keeps the audio it has
      const ws = new WebSocket(body.ws_url);
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      ws.onopen = () => {
        const rate = this.capture ? this.capture.context.sampleRate : 16000;
        ws.send(JSON.stringify({ type: 'session.start', sample_rate: rate, text_only: !this.capture,
          echo_cancellation: this.echo ? 'loopback' : 'none' }));
      };
      ws.onmessage = (e) => (typeof e.data === 'string' ? this.onEvent(JSON.parse(e.data)) : this.onAudio(e.data));
      ws.onclose = (e) => this.onClose(e);
    }

    async setUpAudio(mic) {
      let context = new AudioContext();
      if (!RATES.includes(context.sampleRate)) { await context.close(); context = new AudioContext({ sampleRate: 48000 }); }
      await context.audioWorklet.addModule(ASSETS + 'capture-worklet.js');
      const node = new AudioWorkletNode(context, 'aura-capture');
      context.createMediaStreamSource(mic).connect(node);
      const sink = context.createGain(); // silent: keeps the capture node in the rendered graph
      sink.gain.value = 0;
      node.connect(sink).connect(context.destination);
      node.port.onmessage = (e) => {
        if (this.ws && this.ws.readyState === 1 && this.started) this.ws.send(e.data.pcm);
        this.el.meter.style.width = Math.min(100, e.data.level * 400) + '%';
      };
      const out = new AudioContext({ sampleRate: 24000 });
      await out.audioWorklet.addModule(ASSETS + 'playback-worklet.js');
      const player = new AudioWorkletNode(out, 'aura-playback');
      player.port.onmessage = (e) => this.onPlayback(e.data);
      this.capture = { context, node, mic }; this.playback = { context: out, node: player };
      await Promise.all([context.resume(), out.resume()]);
      this.echo = await playThroughPeerConnection(out, player).catch(() => null);
      if (!this.echo) player.connect(out.destination);
    }

    onEvent(event) {
      switch (event.type) {
        case 'session.created':
          this.started = true; this.retries = 0; this.conversationId = event.conversation_id; this.quotaMessage = null;
          // Response ids start at 1 on every connection: forget the previous connection's.
          this.interrupted.clear(); this.received.clear(); this.audioDone.clear(); this.bubbles.clear();
          this.speakingId = null; this.played = null;
          if (this.playback) this.playback.node.port.postMessage({ type: 'reset' });
          this.setName(this.getAttribute('title') || event.assistant.name); // the site's title first
          if (event.simulated) {
            this.el.demo.textContent = 'Demo mode: simulated AI providers (no API keys configured), so replies are canned.';
            this.el.demo.hidden = false;
          }
          this.setState(this.muted ? 'muted' : (this.capture ? 'listening' : 'idle'), this.capture ? null : 'Type a message');
          if (this.pendingText) { const text = this.pendingText; this.pendingText = null; this.sendText(text); }
          break;
        case 'speech.started':
          this.setState('hearing');
          if (event.barge_in && this.speakingId) this.dropResponse(this.speakingId);
          break;
        case 'speech.stopped': this.setState('thinking'); break;
        case 'transcript.final':
          if (event.text) this.addBubble('visitor', event.text); else this.setState('listening', "Sorry, I didn't catch that");
          break;
        case 'response.started':
          this.currentBubble = this.addBubble('assistant', '', event.response_id);
          if (this.state !== 'speaking') this.setState('thinking');
          break;
        case 'response.text.delta':
          if (this.bubbles.has(event.response_id)) {
            this.bubbles.get(event.response_id).textContent += event.delta;
            this.el.transcript.scrollTop = this.el.transcript.scrollHeight;
          }
          break;
        case 'response.audio.done': this.audioDone.add(event.response_id); this.maybeFinished(event.response_id); break;
        case 'response.done': {
          if (!this.capture) this.setState('idle', 'Type a message');
          this.maybeFinished(event.response_id);
          // The reply's final text; of an interrupted one, what was heard (response.heard came first).
          const bubble = this.bubbles.get(event.response_id);
          const text = event.status === 'interrupted' ? (bubble ? bubble.textContent : '') : event.text;
          if (bubble) bubble.dataset.final = event.status;
          if (text) this.transcribed({ role: 'assistant', text, response_id: event.response_id, status: event.status });
          break;
        }
        case 'response.interrupted': this.dropResponse(event.response_id); break;
        case 'response.heard': {
          const bubble = this.bubbles.get(event.response_id);
          if (bubble) { bubble.textContent = event.text; bubble.classList.add('cut'); }
          if (bubble && bubble.dataset.final) { // told already: the visitor heard less than that
            bubble.dataset.final = 'interrupted';
            this.transcribed({ role: 'assistant', text: event.text, response_id: event.response_id, status: 'interrupted' });
          }
          break;
        }
        case 'error':
          if (['speech_to_text_failed', 'reply_failed', 'speech_failed'].includes(event.code)) this.addBubble('assistant', event.message);
          if (['quota_exceeded', 'subscription_inactive', 'concurrent_limit'].includes(event.code)) this.quotaMessage = event.message;
          this.dispatchEvent(new CustomEvent('aura:error', { detail: event, bubbles: true, composed: true }));
          break;
        case 'session.ended': this.ended = event.reason; break;
      }
    }

    onAudio(buffer) {
      const id = new DataView(buffer).getUint32(0, true);
      if (this.interrupted.has(id) || !this.playback) return;
      const pcm = new Int16Array(buffer, 4);
      const samples = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
      this.received.set(id, (this.received.get(id) || 0) + pcm.length);
      this.playback.node.port.postMessage({ type: 'chunk', id, samples: samples.buffer }, [samples.buffer]);
      if (this.speakingId !== id) { this.speakingId = id; this.setState('speaking'); }
    }

    dropResponse(id) {
      if (this.interrupted.has(id)) return;
      this.interrupted.add(id);
      if (this.playback) this.playback.node.port.postMessage({ type: 'drop', id });
      else this.report(id, 0);
      const bubble = this.bubbles.get(id);
      if (bubble) bubble.classList.add('cut');
    }

    onPlayback(m) {
      if (m.type === 'dropped') { this.report(m.id, m.samples); if (this.speakingId === m.id) this.speakingId = null; }
      if (m.type === 'drained') { this.played = m; this.maybeFinished(m.id); }
    }

    maybeFinished(id) {
      const received = this.received.get(id) || 0;
      const played = this.played && this.played.id === id ? this.played.samples : 0;
      if (this.audioDone.has(id) && played >= received && received > 0 && !this.interrupted.has(id)) {
        this.report(id, played);
        this.speakingId = null;
        this.setState(this.muted ? 'muted' : 'listening');
      }
    }

    report(id, samples) {
      if (this.ws && this.ws.readyState === 1) {
        this.ws.send(JSON.stringify({ type: 'response.played', response_id: id, played_ms: Math.round(samples / 24) }));
      }
    }

    sendText(text) {
      text = (text || '').trim();
      if (!text) return;
      if (!this.ws || this.ws.readyState !== 1 || !this.started) {
        this.pendingText = text;
        if (!this.active) this.start();
        return;
      }
      if (this.speakingId) this.dropResponse(this.speakingId);
      this.ws.send(JSON.stringify({ type: 'input.text', text }));
      this.el.input.value = '';
    }

    mute(on = true) {
      this.muted = on;
      this.el.mute.setAttribute('aria-pressed', String(on));
      this.el.mute.textContent = on ? 'Unmute' : 'Mute';
      if (this.capture) this.capture.node.port.postMessage({ muted: on });
      if (this.started) this.setState(on ? 'muted' : 'listening');
    }

    onClose(event) {
      this.started = false;
      const wasActive = this.active;
      const message = (event.code === 4029 && this.quotaMessage) || CLOSE_MESSAGES[event.code]; // the server's words first
      if (event.code === 1000 || !wasActive) { this.teardown(); this.setState('idle'); return; }
      if (message) { this.teardown(); this.showError(message, event.code); if (event.code === 4004) this.refuse(); return; }
      if (event.code === 4001 || event.code === 4002 || event.code === 4003 || event.code === 1006 || event.code === 1012 || event.code === 4012) {
        // Network drop or stale token: reconnect with back-off (a new token each time).
        const delay = Math.min(30000, 500 * 2 ** this.retries++);
        if (this.retries > 6) { this.teardown(); this.showError('Connection lost. Tap to try again.', event.code); return; }
        this.setState('connecting', `Reconnecting in ${Math.round(delay / 1000)} s…`);
        setTimeout(() => this.active && this.connect(this.capture && this.capture.mic)
          .catch((e) => { this.teardown(); this.showError(e.message); }), delay);
        return;
      }
      this.teardown(); this.showError('The conversation ended unexpectedly.', event.code);
    }

    teardown() {
      this.active = false;
      if (this.capture) { this.capture.mic.getTracks().forEach((t) => t.stop()); this.capture.context.close(); }
      if (this.playback) this.playback.context.close();
      if (this.echo) this.echo.close();
      this.capture = null; this.playback = null; this.speakingId = null; this.echo = null;
    }

    stop() {
      if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify({ type: 'session.end' }));
      else this.teardown();
      this.active = false;
    }
  }

  customElements.define('aura-voice-widget', AuraVoiceWidget);
  if (script && script.dataset.key) {
    const widget = document.createElement('aura-voice-widget');
    widget.setAttribute('key', script.dataset.key);
    for (const name of ['placement', 'title', 'accent', 'text-only', 'start-expanded', 'show-transcript', 'visitor-id', 'visitor-hash']) {
      const value = script.getAttribute('data-' + name);
      if (value !== null) widget.setAttribute(name, value);
    }
    const attach = () => document.body.append(widget);
    if (document.body) attach(); else document.addEventListener('DOMContentLoaded', attach);
    window.AuraVoice = widget;
  }
})();
