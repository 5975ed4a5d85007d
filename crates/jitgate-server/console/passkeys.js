// jitgate web console: passkeys (WebAuthn) for step-up approvals. The Passkeys page
// (/console/passkeys) enrols, lists and removes the person's passkeys; the inbox's "Use
// passkey" button answers a challenge bound to the request being approved
// (POST /requests/{id}/step-up/passkey) and sends the assertion with the approval. Loaded
// before app.js, whose helpers (h, api, field, busy, showError, clearErrors, announce, when,
// S) it uses when called. docs/passkeys.md describes what the challenge binds.
'use strict';

// WebAuthn takes and gives ArrayBuffers; the API speaks base64url without padding.
function b64urlToBytes(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}
function bytesToB64url(buf) {
  const bytes = new Uint8Array(buf);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The server's creation options (`{publicKey: ...}`) as `navigator.credentials.create` takes them. */
function creationOptions(json) {
  const pk = { ...json.publicKey };
  pk.challenge = b64urlToBytes(pk.challenge);
  pk.user = { ...pk.user, id: b64urlToBytes(pk.user.id) };
  if (pk.excludeCredentials) pk.excludeCredentials = pk.excludeCredentials.map((c) => ({ ...c, id: b64urlToBytes(c.id) }));
  return { publicKey: pk };
}

/** The server's request options (`{publicKey: ...}`) as `navigator.credentials.get` takes them. */
function requestOptions(json) {
  const pk = { ...json.publicKey };
  pk.challenge = b64urlToBytes(pk.challenge);
  if (pk.allowCredentials) pk.allowCredentials = pk.allowCredentials.map((c) => ({ ...c, id: b64urlToBytes(c.id) }));
  return { publicKey: pk };
}

function registrationJson(cred) {
  return {
    id: cred.id,
    rawId: bytesToB64url(cred.rawId),
    type: cred.type,
    response: {
      attestationObject: bytesToB64url(cred.response.attestationObject),
      clientDataJSON: bytesToB64url(cred.response.clientDataJSON),
    },
  };
}

function assertionJson(cred) {
  const r = cred.response;
  return {
    id: cred.id,
    rawId: bytesToB64url(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: bytesToB64url(r.authenticatorData),
      clientDataJSON: bytesToB64url(r.clientDataJSON),
      signature: bytesToB64url(r.signature),
      userHandle: r.userHandle ? bytesToB64url(r.userHandle) : null,
    },
  };
}

function passkeysSupported() {
  return !!(window.PublicKeyCredential && navigator.credentials && window.isSecureContext);
}

/** The browser refused or was cancelled: a message that says what to do. */
function webauthnError(e) {
  if (e instanceof ApiError) return e;
  const name = e && e.name;
  const why = name === 'NotAllowedError'
    ? 'The passkey step was cancelled or timed out; try again.'
    : name === 'SecurityError'
      ? `This browser refuses passkeys for ${location.origin}: open the console at the address the server's [passkeys] origin names (docs/passkeys.md).`
      : name === 'InvalidStateError'
        ? 'This authenticator holds a passkey of yours already.'
        : `The browser could not use a passkey: ${e && e.message ? e.message : e}`;
  return new ApiError(0, 'webauthn', why);
}

/**
 * The step-up for approving `r`: a challenge bound to this request and the scope digest
 * shown, answered by one of the person's passkeys. Resolves to the approval's `passkey` field.
 */
async function passkeyStepUp(r) {
  const c = await api('POST', `/requests/${encodeURIComponent(r.id)}/step-up/passkey`, { scope_digest: r.scope_digest });
  let cred;
  try {
    cred = await navigator.credentials.get(requestOptions(c.public_key));
  } catch (e) {
    throw webauthnError(e);
  }
  return { challenge_id: c.challenge_id, credential: assertionJson(cred) };
}

// ------------------------------------------------------------------ the Passkeys page

async function viewPasskeys(main) {
  main.append(h('p', { class: 'muted', text: 'Passkeys confirm approvals that need step-up, in place of a TOTP code. Each approval asks the passkey to sign a challenge bound to that request and its scope; TOTP stays available.' }));
  if (!passkeysSupported()) {
    main.append(h('p', { class: 'form-error', text: 'This browser cannot use passkeys here (they need a secure context: HTTPS, or plain HTTP on localhost).' }));
  }
  const list = h('div', { class: 'cards', id: 'passkey-list' });
  const name = h('input', { type: 'text', name: 'name', maxlength: '64', autocomplete: 'off' });
  const add = h('button', { type: 'submit', text: 'Add passkey' });
  const form = h('form', { novalidate: true, id: 'passkey-form', 'aria-label': 'Add a passkey' },
    h('h2', { text: 'Add a passkey' }),
    h('p', { class: 'form-error', role: 'alert' }),
    field('Name', name, 'What you will recognise it by: "laptop", "security key".'),
    h('div', { class: 'actions' }, add));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    await busy(add, async () => {
      try {
        const c = await api('POST', '/auth/passkeys/register/begin', { name: name.value });
        let cred;
        try {
          cred = await navigator.credentials.create(creationOptions(c.public_key));
        } catch (err) {
          throw webauthnError(err);
        }
        const v = await api('POST', '/auth/passkeys/register/finish', { challenge_id: c.challenge_id, credential: registrationJson(cred) });
        name.value = '';
        announce(`Passkey ${v.name} added`);
        await refresh();
      } catch (err) {
        showError(form, err, (x) => (x.code === 'invalid_request' ? name : null));
      }
    });
  });
  main.append(h('h2', { text: 'Your passkeys' }), list, form);
  const refresh = async () => {
    const keys = await api('GET', '/auth/passkeys');
    list.replaceChildren(...(keys.length ? keys.map((k) => passkeyCard(k, refresh)) : [h('p', { class: 'muted', text: 'No passkey yet.' })]));
  };
  S.view.refresh = refresh;
  await refresh();
}

function passkeyCard(k, refresh) {
  const totp = h('input', { type: 'text', name: 'totp', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '6' });
  const totpField = field('TOTP code', totp, 'Removing a passkey needs a sign-in of the last 5 minutes, or a current code.');
  totpField.hidden = true;
  const remove = h('button', { type: 'submit', class: 'danger', text: 'Remove' });
  const form = h('form', { novalidate: true, 'aria-label': `Remove passkey ${k.name}` },
    h('p', { class: 'form-error', role: 'alert' }), totpField, h('div', { class: 'actions' }, remove));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    await busy(remove, async () => {
      try {
        const body = totp.value.trim() ? { totp: totp.value.trim() } : {};
        await api('POST', `/auth/passkeys/${encodeURIComponent(k.credential_id)}/remove`, body);
        announce(`Passkey ${k.name} removed`);
        await refresh();
      } catch (err) {
        if (err.code === 'fresh_auth_required' || err.code === 'bad_totp') totpField.hidden = false;
        showError(form, err, (x) => (x.code === 'fresh_auth_required' || x.code === 'bad_totp' ? totp : null));
      }
    });
  });
  return h('article', { class: 'card passkey', 'data-credential': k.credential_id },
    h('header', {}, h('h3', { text: k.name })),
    h('dl', { class: 'facts' },
      h('dt', { text: 'Added' }), h('dd', { text: when(k.created_at) }),
      h('dt', { text: 'Last used' }), h('dd', { text: k.last_used_at ? when(k.last_used_at) : 'never' })),
    form);
}
