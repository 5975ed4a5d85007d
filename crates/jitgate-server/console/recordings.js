// jitgate web console: SSH session recordings. The session page
// (/console/grants/<grant>/sessions/<session>) plays a session's recording, and follows it
// while the session runs. Loaded before app.js, whose helpers (h, append, api, ApiError, S,
// state, when, assetLabel, signedOut) it uses when called.
//
// The player is asciinema-player, in a sandboxed frame of its own (player.html, player.js):
// this page fetches the cast with the session cookie and posts it into the frame, which can
// reach nothing else (crates/jitgate-server/src/console/assets.rs says why).
//
// Following a live session polls rather than streams: the gateway delivers the recording in
// chunks (one at least every 10 s, docs/gateway.md "Recordings") and the API serves the cast
// so far, so every REC_POLL_MS the page asks `GET /recordings?grant=` (small) whether more
// chunks are stored and `GET /sessions?grant=` whether the session still runs, and when it
// grew fetches only the chunks it does not have yet (`?from=<served>`). The player's streaming drivers (WebSocket, Server-Sent Events)
// would need an endpoint that pushes asciicast events, which the server does not have, and a
// connection the sandboxed frame may not open; a poll every 2 s costs two small requests and
// the view trails the session by the chunk age anyway.
'use strict';

const REC_POLL_MS = 2000;
/** After the session ended, how long to keep asking for the chunks not delivered yet. */
const REC_SETTLE_MS = 60000;
const REC_SPEEDS = [0.5, 1, 2, 4, 8, 16];

function sessionPath(grantId, sessionId) {
  return `/console/grants/${encodeURIComponent(grantId)}/sessions/${encodeURIComponent(sessionId)}`;
}

/**
 * The cast so far (from chunk `from` on: the caller has the chunks before), and how far it
 * goes: `X-Jitgate-Recording` is `complete` or `partial; chunks=<served>/<logged>`, served
 * counted from chunk 0. A refusal throws the API's error, as `api()` does.
 */
async function fetchCast(sessionId, background, from = 0) {
  const headers = {};
  if (background) headers['X-Jitgate-Background'] = '1';
  const query = from > 0 ? `?from=${from}` : '';
  let resp;
  try {
    resp = await fetch(`/api/v1/sessions/${encodeURIComponent(sessionId)}/recording${query}`, { headers, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 'network', 'The server cannot be reached; check the connection and try again.');
  }
  if (!resp.ok) {
    const data = await resp.json().catch(() => null);
    const err = new ApiError(resp.status, (data && data.code) || 'error', (data && data.message) || resp.statusText);
    if (resp.status === 401 && err.code === 'unauthenticated' && S.me) signedOut(err.message);
    throw err;
  }
  const text = await resp.text();
  const how = resp.headers.get('x-jitgate-recording') || '';
  const m = how.match(/chunks=(\d+)\/(\d+)/);
  return {
    text,
    complete: how === 'complete',
    served: m ? Number(m[1]) : null,
    logged: m ? Number(m[2]) : null,
  };
}

/** What an incomplete recording lacks, in words. */
function missingText(rec) {
  if (rec.served === null) return '';
  if (rec.served < rec.logged) return `the server holds ${rec.served} of its ${rec.logged} logged chunks`;
  return `all ${rec.logged} logged chunks are here, but not the last one, which the gateway logs when the session ends`;
}

/** A recording's state as the timeline shows it, from a `RecordingView`. */
function recordingBadge(r) {
  if (r.complete && r.stored_chunks === r.chunks) {
    return h('span', { class: 'muted' }, state('complete'), ` ${r.chunks} chunk(s), ${Math.ceil(r.bytes / 1024)} KiB`);
  }
  const why = r.stored_chunks < r.chunks ? `${r.stored_chunks} of ${r.chunks} chunks delivered` : 'last chunk not logged yet';
  return h('span', { class: 'muted' }, state('incomplete'), ` ${why}`);
}

/** The grant timeline's control for a session with a recording. */
function recordingControl(grantId, r, live) {
  return h('p', { class: 'rec-control' },
    h('a', { class: 'button ghost', href: sessionPath(grantId, r.session_id), 'data-link': true, text: live ? 'Watch live' : 'Play recording' }),
    ' ', recordingBadge(r));
}

// ------------------------------------------------------------------ the player frame

/** The sandboxed player: `send(msg)` posts to it once it said it is ready. */
function playerFrame(title, onError) {
  const iframe = h('iframe', {
    class: 'player', title, src: '/console/static/player.html',
    sandbox: 'allow-scripts', allow: 'fullscreen', referrerpolicy: 'no-referrer',
  });
  let ready = false;
  let pending = null;
  const deliver = (msg) => {
    // The frame's origin is opaque ('null'), so it cannot be named as the target; the window
    // is this page's own iframe, which only loads player.html.
    iframe.contentWindow.postMessage(msg, '*');
  };
  const onMessage = (e) => {
    if (!iframe.isConnected) { window.removeEventListener('message', onMessage); return; }
    if (e.source !== iframe.contentWindow) return;
    const msg = e.data || {};
    if (msg.type === 'ready') {
      ready = true;
      if (pending) { deliver(pending); pending = null; }
    } else if (msg.type === 'size' && Number.isFinite(msg.height) && msg.height > 0) {
      iframe.style.height = `${Math.ceil(msg.height)}px`;
    } else if (msg.type === 'error') {
      onError(String(msg.message || 'the player failed'));
    }
  };
  window.addEventListener('message', onMessage);
  return {
    el: iframe,
    send(msg) { if (ready) deliver(msg); else pending = msg; },
  };
}

// ------------------------------------------------------------------ the session page

async function viewSession(main, [grantId, sessionId]) {
  const view = S.view;
  let session = null;
  const loadSession = async () => {
    const list = await api('GET', `/sessions?grant=${encodeURIComponent(grantId)}`, undefined, { background: true });
    session = list.find((s) => s.session_id === sessionId) || session;
  };
  // A session's first chunk comes up to 10 s after it started: until then the API has no
  // recording, and the session list says whether one is coming. A person who may not see the
  // grant gets the recording's refusal, as the API words it.
  let rec = null;
  let refusal = null;
  try { rec = await fetchCast(sessionId, false); } catch (e) { if (e.status !== 404) throw e; refusal = e; }
  await loadSession().catch(() => null);
  if (!rec) {
    if (!session) throw refusal;
    rec = { text: '', complete: false, served: 0, logged: 0 };
  }

  const facts = h('dl', { class: 'facts' });
  const badge = h('span', {});
  const status = h('p', { class: 'rec-status', id: 'rec-status', role: 'status' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const speed = h('select', { name: 'speed' }, REC_SPEEDS.map((x) => h('option', { value: String(x), selected: x === 1, text: `${x}×` })));
  const retry = h('button', { type: 'button', class: 'ghost', text: 'Check again', hidden: true });
  const frame = playerFrame(`Terminal recording of session ${sessionId}`, (m) => { error.textContent = m; });
  main.append(
    h('div', { class: 'panel' },
      h('h2', { class: 'mono', text: sessionId }), facts,
      h('p', {}, badge, ' ', status),
      h('div', { class: 'actions rec-tools' },
        h('label', { class: 'inline' }, 'Speed ', speed),
        h('a', { class: 'button ghost', href: `/api/v1/sessions/${encodeURIComponent(sessionId)}/recording`, download: `${sessionId}.cast`, text: 'Download .cast' }),
        retry)),
    error, frame.el);

  let endedSeen = null; // when this page saw the session ended (its end time if known)
  // A session the gateway never reported ended (it crashed) is over once its grant expired.
  const live = () => !!(session && session.live && Date.parse(session.expires_at) > Date.now());
  const sawEnd = () => {
    if (endedSeen === null && !live()) endedSeen = (session && Date.parse(session.ended_at)) || Date.now();
  };
  const following = () => !rec.complete && (live() || Date.now() - endedSeen < REC_SETTLE_MS);

  const show = () => {
    const s = session;
    facts.replaceChildren();
    append(facts, [
      h('dt', { text: 'Grant' }), h('dd', {}, h('a', { href: `/console/grants/${encodeURIComponent(grantId)}`, 'data-link': true, text: grantId })),
      s ? [
        h('dt', { text: 'Subject' }), h('dd', { text: s.subject }),
        h('dt', { text: 'Asset' }), h('dd', { text: assetLabel(s.asset) }),
        h('dt', { text: 'Protocol' }), h('dd', { text: s.protocol }),
        h('dt', { text: 'Gateway' }), h('dd', { text: `${s.gateway}${s.peer ? ` (client ${s.peer})` : ''}` }),
        h('dt', { text: 'Started' }), h('dd', { text: when(s.started_at) }),
        h('dt', { text: 'Ended' }), h('dd', { text: live() ? 'still running' : !s.ended_at ? 'not reported: the gateway stopped before the session ended'
          : `${when(s.ended_at)}${s.end_reason ? ` — ${s.end_reason}` : ''}` }),
      ] : null]);
    frame.el.hidden = !rec.text;
    badge.replaceChildren(live() ? state('live') : rec.complete ? state('complete')
      : rec.text || following() ? state('incomplete') : h('span', { class: 'state', text: 'no recording' }));
    retry.hidden = rec.complete || following();
    if (!rec.text && !following()) {
      status.textContent = session && session.protocol !== 'ssh'
        ? `No recording: only sessions with a terminal (SSH) are recorded; this one spoke ${session.protocol}.`
        : 'No recording of this session reached the server.';
    } else if (!rec.text) {
      status.textContent = 'Waiting for the first chunk of the recording: the gateway sends one at least every 10 s.';
    } else if (live()) {
      status.textContent = 'Live: following the session as its recording arrives. The gateway sends it in chunks (one at least every 10 s), so this view trails the session by that much. '
        + `Recording so far: incomplete until the session ends${rec.logged !== null ? ` (${rec.served} chunk(s))` : ''}.`;
    } else if (rec.complete) {
      status.textContent = 'Session ended; the recording is complete. Play, pause and seek with the player\'s controls (keys: space, ← →); the speed here.';
    } else if (following()) {
      status.textContent = `Session ended; the recording is incomplete so far: ${missingText(rec)}. Waiting for the gateway to deliver the rest…`;
    } else {
      status.textContent = `Incomplete recording: ${missingText(rec)}. The rest may still be spooled at the gateway (it delivers when it reaches the server again), or was lost when the gateway was cut off or stopped before the session ended; the playback ends where the recording does. \`jitgate verify-bundle\` on the grant's evidence names what is missing.`;
    }
  };
  let sent = false; // the player has had a cast
  const play = (autoPlay, follow = following()) => {
    if (!rec.text) return;
    frame.send({ type: 'cast', cast: rec.text, speed: Number(speed.value), follow, autoPlay: autoPlay || !sent });
    sent = true;
  };

  sawEnd();
  show();
  // A live session opens on its screen as it is now; an ended one plays from the start.
  play(true, live());
  speed.addEventListener('change', () => play(false));

  let stored = null; // the stored chunks last seen
  const poll = async () => {
    if (S.view !== view || !main.isConnected) return; // the person left the page
    if (!following()) { show(); return; }
    try {
      await loadSession();
      sawEnd();
      const recs = await api('GET', `/recordings?grant=${encodeURIComponent(grantId)}`, undefined, { background: true });
      const r = recs.find((x) => x.session_id === sessionId);
      const now = r ? `${r.stored_chunks}/${r.chunks}/${r.complete}` : null;
      if (now !== stored && r && r.stored_chunks > 0) {
        stored = now;
        // Only the chunks after those the page has; `served` is unknown only once complete.
        const from = rec.served === null ? 0 : rec.served;
        const more = await fetchCast(sessionId, true, from);
        rec = { ...more, text: from > 0 ? rec.text + more.text : more.text };
        play(false, true); // the last chunks of a session followed so far play on too
      }
      error.textContent = '';
    } catch (e) {
      error.textContent = e.message;
    }
    show();
    setTimeout(poll, REC_POLL_MS);
  };
  retry.addEventListener('click', () => { endedSeen = Date.now(); stored = null; show(); poll(); });
  setTimeout(poll, REC_POLL_MS);
}
