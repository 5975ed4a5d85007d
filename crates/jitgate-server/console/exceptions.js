// jitgate web console: standing exceptions (docs/exceptions.md). The Exceptions page
// (/console/exceptions) lists them with state, owner, next re-validation and expiry; the
// detail page (/console/exceptions/<id>) shows the terms, uses and last use, and lets the
// owner or security staff re-validate it, and whoever may end it end it. Every action is a
// call to /api/v1/exceptions; the API decides who may. Loaded before app.js, whose helpers
// (h, api, field, busy, showError, clearErrors, announce, when, dur, state, reconcile, S)
// it uses when called.
'use strict';

async function viewExceptions(main) {
  main.append(h('p', { class: 'muted', text: 'Standing exceptions: access that stays standing, each owned, with compensating controls, re-validated on time and ending by itself when re-validation is overdue or it expires.' }));
  const filters = h('div', { class: 'filters', role: 'group', 'aria-label': 'Exception state' });
  const body = h('tbody', { id: 'exceptions-list' });
  const table = h('table', { class: 'list' },
    h('caption', { class: 'visually-hidden', text: 'Exceptions' }),
    h('thead', {}, h('tr', {}, ['Exception', 'State', 'Subject', 'Assets', 'Owner', 'Next re-validation', 'Expires', 'Uses']
      .map((t) => h('th', { scope: 'col', text: t })))),
    body);
  let current = 'all';
  const refresh = async (background) => {
    const q = current === 'all' ? '' : `?state=${current}`;
    const list = await api('GET', `/exceptions${q}`, undefined, { background });
    const td = (label, ...c) => h('td', { 'data-label': label }, ...c);
    reconcile(body, list, (x) => x.id, (x) => `${x.state}|${x.next_revalidation}|${x.uses}`, (x) => h('tr', {},
      td('Exception', h('a', { href: `/console/exceptions/${encodeURIComponent(x.id)}`, 'data-link': true, text: x.id })),
      td('State', state(x.state)),
      td('Subject', x.subject),
      td('Assets', x.assets.join(', ')),
      td('Owner', x.owner),
      td('Next re-validation', x.state === 'active' || x.state === 'overdue' ? when(x.next_revalidation) : '—'),
      td('Expires', when(x.expires_at)),
      td('Uses', String(x.uses))));
    if (!list.length) body.append(h('tr', {}, h('td', { colspan: '8', class: 'muted', text: 'None.' })));
  };
  for (const s of ['all', 'pending', 'active', 'overdue', 'ended', 'denied']) {
    const b = h('button', { type: 'button', 'aria-pressed': s === current ? 'true' : 'false', text: s });
    b.addEventListener('click', async () => {
      current = s;
      for (const x of filters.children) x.setAttribute('aria-pressed', x === b ? 'true' : 'false');
      body.replaceChildren();
      await refresh(false);
    });
    filters.append(b);
  }
  main.append(filters, table);
  S.view.refresh = refresh;
  await refresh(false);
}

async function viewException(main, id) {
  const holder = h('div', { id: 'exception-detail' });
  main.append(holder);
  const refresh = async (background) => {
    const x = await api('GET', `/exceptions/${encodeURIComponent(id)}`, undefined, { background });
    holder.replaceChildren(exceptionDetail(x, refresh));
  };
  S.view.refresh = refresh;
  await refresh(false);
}

function exceptionDetail(x, refresh) {
  const dd = (text) => h('dd', { text });
  const facts = h('dl', { class: 'facts' },
    h('dt', { text: 'State' }), h('dd', {}, state(x.state)),
    h('dt', { text: 'Subject' }), dd(x.subject),
    h('dt', { text: 'Requested by' }), dd(x.requester),
    h('dt', { text: 'Owner' }), dd(x.owner),
    h('dt', { text: 'Scope' }), h('dd', {}, h('ul', {}, x.scope.map((s) => h('li', { text: s })))),
    h('dt', { text: 'Reason' }), dd(x.reason),
    h('dt', { text: 'Compensating controls' }), h('dd', {}, h('ul', {}, x.controls.map((c) => h('li', { text: c })))),
    h('dt', { text: 'Re-validate every' }), dd(dur(x.revalidate_every_secs)),
    h('dt', { text: 'Next re-validation' }), dd(when(x.next_revalidation)),
    h('dt', { text: 'Expires' }), dd(when(x.expires_at)),
    h('dt', { text: 'Last re-validated' }), dd(x.last_revalidated_at ? `${when(x.last_revalidated_at)} by ${x.last_revalidated_by}` : 'never'),
    h('dt', { text: 'Uses' }), h('dd', { id: 'exception-uses', text: String(x.uses) }),
    h('dt', { text: 'Last use' }), dd(x.last_use ? when(x.last_use) : 'never'));
  if (x.grant_id) {
    facts.append(h('dt', { text: 'Grant' }), h('dd', {}, h('a', { href: `/console/grants/${encodeURIComponent(x.grant_id)}`, 'data-link': true, text: x.grant_id })));
  }
  if (x.end_reason) facts.append(h('dt', { text: 'Ended' }), dd(x.end_reason));
  if (x.state_reason) facts.append(h('dt', { text: 'Why' }), dd(x.state_reason));
  const card = h('article', { class: 'card' }, h('header', {}, h('h2', { text: `Exception ${x.id}` }), state(x.state)), facts);
  if (x.state === 'active') card.append(actionForm(x, 'revalidate', 'Re-validate', 'Note', 'Why the access is still needed (recorded).', 'note', refresh));
  if (x.state === 'active' || x.state === 'pending') card.append(actionForm(x, 'end', 'End now', 'Reason', 'Why the exception ends (recorded); an active one is revoked at once.', 'reason', refresh));
  return card;
}

function actionForm(x, action, label, fieldLabel, hint, key, refresh) {
  const text = h('textarea', { name: key, rows: '2' });
  const submit = h('button', { type: 'submit', text: label, class: action === 'end' ? 'danger' : '' });
  const form = h('form', { novalidate: true, 'aria-label': `${label}: exception ${x.id}` },
    h('p', { class: 'form-error', role: 'alert' }),
    field(fieldLabel, text, hint),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    await busy(submit, async () => {
      try {
        await api('POST', `/exceptions/${encodeURIComponent(x.id)}/${action}`, { [key]: text.value.trim() });
        announce(action === 'end' ? `Exception ${x.id} ended` : `Exception ${x.id} re-validated`);
        await refresh(false);
      } catch (err) {
        showError(form, err, (er) => (er.code === 'invalid_request' ? text : null));
      }
    });
  });
  return form;
}
