// The recording player's own document (player.html), embedded by the console page as an
// iframe. Its Content-Security-Policy makes it a sandbox with an opaque origin: it holds no
// cookie, cannot call the API and cannot reach the console page. The console page fetches the
// cast and posts it here ({cast, speed, follow, autoPlay}); this script plays it with
// asciinema-player and posts back its height and errors.
//
// Why a frame of its own: asciinema-player's terminal emulator is WebAssembly, and compiling
// WebAssembly needs 'wasm-unsafe-eval', which the console page's policy does not allow.
// This document alone allows it (docs/console.md, "Session recordings").
'use strict';

(() => {
  const stage = document.getElementById('stage');
  // The console page is this document's URL origin; nothing else may drive the player.
  const console_ = location.origin;
  let current = null; // {player, el, cast, speed, playing, ended}

  const post = (msg) => parent.postMessage(msg, console_);

  /** The time of the cast's last event, in seconds (0 when it has none yet). */
  function castEnd(cast) {
    const lines = cast.trimEnd().split('\n');
    for (let i = lines.length - 1; i > 0; i--) {
      if (lines[i][0] !== '[') continue;
      try { return Number(JSON.parse(lines[i])[0]) || 0; } catch (e) { /* keep looking */ }
    }
    return 0;
  }

  /**
   * Show `cast`. asciinema-player takes its data and speed once, at creation, so a longer
   * cast (a live session's new chunks) or another speed means a new player started where the
   * old one was: playing on if it played (or, when following, if it had reached the end),
   * paused if the viewer paused it.
   */
  function show({ cast, speed = 1, follow = false, autoPlay = false }) {
    if (current && current.cast === cast && current.speed === speed) return;
    let at = 0;
    let play = autoPlay;
    if (current) {
      const t = current.player.getCurrentTime();
      at = typeof t === 'number' && Number.isFinite(t) ? t : castEnd(current.cast);
      play = current.playing || (follow && current.ended);
    } else if (follow) {
      at = castEnd(cast); // a live view opens on the session's screen as it is now
      play = true;
    }
    const el = document.createElement('div');
    el.className = 'slot';
    stage.append(el);
    let player;
    try {
      player = AsciinemaPlayer.create({ data: cast }, el, {
        startAt: at, autoPlay: play, preload: true, speed, fit: 'width', controls: true,
      });
    } catch (e) {
      el.remove();
      post({ type: 'error', message: `the player could not start: ${e.message}` });
      return;
    }
    const next = { player, el, cast, speed, playing: play, ended: false };
    player.addEventListener('play', () => { next.playing = true; next.ended = false; });
    player.addEventListener('playing', () => { next.playing = true; next.ended = false; });
    player.addEventListener('pause', () => { next.playing = false; });
    player.addEventListener('ended', () => { next.playing = false; next.ended = true; });
    player.addEventListener('error', () => post({ type: 'error', message: 'the player could not read this recording' }));
    const old = current;
    current = next;
    if (old) {
      // The old player stays on screen (under the new one) until the new one has drawn.
      setTimeout(() => { old.player.dispose(); old.el.remove(); }, 500);
    }
  }

  window.addEventListener('message', (e) => {
    if (e.source !== parent || e.origin !== console_) return;
    const msg = e.data || {};
    if (msg.type === 'cast' && typeof msg.cast === 'string') show(msg);
  });

  new ResizeObserver(() => post({ type: 'size', height: document.documentElement.scrollHeight }))
    .observe(document.body);
  post({ type: 'ready' });
})();
