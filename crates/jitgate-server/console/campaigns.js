// jitgate web console: review campaigns and post-session attestation. The campaign list
// (/console/campaigns) opens campaigns over a period; a campaign's page
// (/console/campaigns/<id>) has a keep / narrow / end form per undecided item and closes the
// campaign. The grant page shows the grant's attestation, and to its subject the form to give
// it once the grant has ended (attestationSection, called by viewGrant). Loaded before app.js,
// whose helpers (h, api, field, busy, clearErrors, showError, announce, state, when, go, S,
// nextId) it uses when called. The rules are the server's (docs/reviews.md): this only shows
// what the API answers, refusals included.
'use strict';

const DECISION_TEXT = {
  keep: 'keep — acceptable as it is',
  narrow: 'narrow — acceptable, but too wide (say what to narrow)',
  end: 'end — not acceptable: end it now',
};

function campaignPath(id) {
  return `/console/campaigns/${encodeURIComponent(id)}`;
}

/** A datetime-local input's value (the browser's local time) as RFC 3339 UTC. */
function localToUtc(value) {
  const t = new Date(value);
  return Number.isNaN(t.getTime()) ? null : t.toISOString();
}

async function viewCampaigns(main) {
  main.append(h('p', { class: 'muted', text: 'A review campaign lists only what needs judgement over a period: break-glass grants, partial or failed teardowns, missing attestations, exceptions and findings — not every entitlement.' }));
  const body = h('tbody', {});
  const table = h('table', { class: 'list' },
    h('caption', { class: 'visually-hidden', text: 'Review campaigns' }),
    h('thead', {}, h('tr', {}, ['Campaign', 'Period', 'Site', 'State', 'Decided'].map((t) => h('th', { scope: 'col', text: t })))),
    body);
  const from = h('input', { type: 'datetime-local', name: 'from', required: true });
  const to = h('input', { type: 'datetime-local', name: 'to', required: true });
  const site = h('input', { type: 'text', name: 'site', autocomplete: 'off' });
  const now = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  to.value = local(new Date(now.getTime() + 60000));
  from.value = local(new Date(now.getTime() - 30 * 86400000));
  const submit = h('button', { type: 'submit', text: 'Open campaign' });
  const form = h('form', { novalidate: true, class: 'panel', 'aria-label': 'Open a review campaign' },
    h('h2', { text: 'Open a campaign' }),
    h('p', { class: 'form-error', role: 'alert' }),
    field('From', from), field('To', to), field('Site (optional)', site, 'Only items on this site’s assets.'),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const periodStart = localToUtc(from.value);
    const periodEnd = localToUtc(to.value);
    if (!periodStart || !periodEnd) {
      showError(form, { message: 'Give the start and end of the period.' }, () => (periodStart ? to : from));
      return;
    }
    const b = { period_start: periodStart, period_end: periodEnd };
    if (site.value.trim()) b.site = site.value.trim();
    await busy(submit, async () => {
      try {
        const c = await api('POST', '/campaigns', b);
        announce(`Campaign ${c.id} opened with ${c.total} item(s)`);
        go(campaignPath(c.id));
      } catch (err) {
        showError(form, err, (x) => (/site/i.test(x.message) ? site : null));
      }
    });
  });
  const refresh = async (background) => {
    const list = await api('GET', '/campaigns', undefined, { background });
    const td = (label, ...c) => h('td', { 'data-label': label }, ...c);
    body.replaceChildren(...list.map((c) => h('tr', {},
      td('Campaign', h('a', { href: campaignPath(c.id), 'data-link': true, text: c.id })),
      td('Period', `${when(c.period_start)} → ${when(c.period_end)}`),
      td('Site', c.site || 'all'),
      td('State', state(c.state)),
      td('Decided', `${c.decided}/${c.total}`))));
    if (!list.length) body.append(h('tr', {}, h('td', { colspan: '5', class: 'muted', text: 'No campaigns yet.' })));
  };
  main.append(form, table);
  S.view.refresh = refresh;
  await refresh(false);
}

async function viewCampaign(main, id) {
  const head = h('div', {});
  const list = h('div', { class: 'cards', id: 'campaign-items' });
  const closing = h('div', {});
  main.append(head, list, closing);
  const refresh = async (background) => {
    const c = await api('GET', `/campaigns/${encodeURIComponent(id)}`, undefined, { background });
    head.replaceChildren(h('div', { class: 'panel' },
      h('h2', { class: 'mono', text: c.id }),
      h('dl', { class: 'facts' },
        h('dt', { text: 'Period' }), h('dd', { text: `${when(c.period_start)} → ${when(c.period_end)}` }),
        h('dt', { text: 'Site' }), h('dd', { text: c.site || 'all' }),
        h('dt', { text: 'State' }), h('dd', {}, state(c.state)),
        h('dt', { text: 'Progress' }), h('dd', { id: 'campaign-progress', text: `${c.decided} of ${c.total} decided` }),
        h('dt', { text: 'Opened' }), h('dd', { text: `${when(c.opened_at)} by ${c.opened_by}` }))));
    // Live updates re-render only the items that changed, so a note being typed survives.
    reconcile(list, c.items || [], (i) => i.key, (i) => `${c.state}|${i.decision || ''}`, (i) => itemCard(c, i),
      'Nothing to review in this period.');
    closing.replaceChildren();
    if (c.state === 'open') closing.append(closeForm(c));
  };
  S.view.refresh = refresh;
  await refresh(false);
}

function itemCard(c, i) {
  const facts = h('dl', { class: 'facts' },
    h('dt', { text: 'Kind' }), h('dd', { text: i.kind.kind.replace(/_/g, ' ') }),
    h('dt', { text: 'Subject' }), h('dd', { text: i.subject }),
    h('dt', { text: 'What' }), h('dd', { text: i.summary }));
  if (i.kind.grant_id) {
    facts.append(h('dt', { text: 'Grant' }), h('dd', {}, h('a', { href: `/console/grants/${encodeURIComponent(i.kind.grant_id)}`, 'data-link': true, text: i.kind.grant_id })));
  }
  const card = h('article', { class: 'card', 'data-item': i.key }, h('header', {}, h('h3', { text: i.key }), state(i.decision || 'undecided')), facts);
  if (i.decision) {
    facts.append(h('dt', { text: 'Decision' }), h('dd', { text: `${i.decision} by ${i.reviewer}: ${i.note || ''}` }),
      h('dt', { text: 'Effect' }), h('dd', { text: effectText(i.effect) }));
    return card;
  }
  if (c.state !== 'open') return card;
  const name = nextId('decision');
  const note = h('textarea', { name: 'note', rows: '2', required: true });
  const submit = h('button', { type: 'submit', text: 'Record decision' });
  const form = h('form', { novalidate: true, 'aria-label': `Decide ${i.key}` },
    h('p', { class: 'form-error', role: 'alert' }),
    h('fieldset', {}, h('legend', { text: 'Decision' }), h('div', { class: 'radios' },
      ['keep', 'narrow', 'end'].map((d) => h('label', {}, h('input', { type: 'radio', name, value: d, checked: d === 'keep' }), DECISION_TEXT[d])))),
    field('Note', note, 'Required: what you checked and why this decision.'),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const decision = form.querySelector(`input[name=${name}]:checked`).value;
    if (!note.value.trim()) {
      showError(form, { message: 'A decision needs a note: what you checked and why.' }, () => note);
      return;
    }
    await busy(submit, async () => {
      try {
        const done = await api('POST', `/campaigns/${encodeURIComponent(c.id)}/items/${encodeURIComponent(i.key)}/decision`, { decision, note: note.value.trim() });
        announce(`${i.key}: ${done.decision} — ${effectText(done.effect)}`);
        await S.view.refresh(false);
      } catch (err) {
        showError(form, err, (x) => (/note/i.test(x.message) ? note : null));
      }
    });
  });
  card.append(form);
  return card;
}

function effectText(e) {
  if (!e) return '';
  switch (e.kind) {
    case 'record_only': return 'recorded';
    case 'revoke_grant': return `grant ${e.grant_id} revoked`;
    case 'grant_already_ended': return `grant ${e.grant_id} had ended already`;
    case 'end_exception': return `exception ${e.id} ended`;
    case 'narrow_exception': return `exception ${e.id} to be narrowed`;
    case 'end_finding': return `finding ${e.id} acted on`;
    default: return e.kind;
  }
}

function closeForm(c) {
  const submit = h('button', { type: 'submit', text: 'Close campaign' });
  const form = h('form', { novalidate: true, class: 'panel', 'aria-label': 'Close the campaign' },
    h('p', { class: 'form-error', role: 'alert' }),
    h('p', { class: 'muted', text: 'A campaign closes once every item is decided.' }),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    await busy(submit, async () => {
      try {
        await api('POST', `/campaigns/${encodeURIComponent(c.id)}/close`);
        announce(`Campaign ${c.id} closed`);
        await S.view.refresh(false);
      } catch (err) {
        showError(form, err);
      }
    });
  });
  return form;
}

/**
 * The grant page's attestation: what was attested, or (to its subject, once the grant has
 * ended) the form to attest. `g` is the GrantView.
 */
async function attestationSection(g, background) {
  const section = h('section', { 'aria-labelledby': 'att-title', id: 'attestation' }, h('h2', { id: 'att-title', text: 'Attestation' }));
  let a = null;
  try {
    a = await api('GET', `/grants/${encodeURIComponent(g.id)}/attestation`, undefined, { background });
  } catch (err) {
    if (err.status !== 404) throw err;
  }
  // The grant page re-renders on live updates; it keeps this section unless its version moved.
  section.dataset.version = `${a ? a.state : 'none'}|${g.state === 'active' ? 'active' : 'ended'}`;
  if (a && a.state === 'given') {
    section.append(h('dl', { class: 'facts' },
      h('dt', { text: 'Task' }), h('dd', { text: a.task_done ? 'done' : 'not done' }),
      h('dt', { text: 'Changes' }), h('dd', {}, a.changes.length ? h('ul', { class: 'plain' }, a.changes.map((c) => h('li', { text: c }))) : 'none'),
      h('dt', { text: 'Note' }), h('dd', { text: a.note || '—' }),
      h('dt', { text: 'By' }), h('dd', { text: `${a.attester}, ${when(a.attested_at)}` })));
    return section;
  }
  if (a) section.append(h('p', {}, state(a.state), ' — the policy requires the subject to attest what was done.'));
  if (g.state === 'active') {
    section.append(h('p', { class: 'muted', text: 'The subject attests once the grant has ended.' }));
    return section;
  }
  if (S.me.id !== g.subject) {
    if (!a) section.append(h('p', { class: 'muted', text: 'None given.' }));
    return section;
  }
  const name = nextId('task');
  const changes = h('textarea', { name: 'changes', rows: '3' });
  const note = h('textarea', { name: 'note', rows: '2' });
  const submit = h('button', { type: 'submit', text: 'Attest' });
  const form = h('form', { novalidate: true, 'aria-label': `Attest grant ${g.id}` },
    h('p', { class: 'form-error', role: 'alert' }),
    h('fieldset', {}, h('legend', { text: 'Task' }), h('div', { class: 'radios' },
      h('label', {}, h('input', { type: 'radio', name, value: 'done', checked: true }), 'done'),
      h('label', {}, h('input', { type: 'radio', name, value: 'not_done' }), 'not done'))),
    field('Changes made', changes, 'One per line; leave empty when nothing was changed.'),
    field('Note', note),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const taskDone = form.querySelector(`input[name=${name}]:checked`).value === 'done';
    const list = changes.value.split('\n').map((l) => l.trim()).filter(Boolean);
    await busy(submit, async () => {
      try {
        await api('POST', `/grants/${encodeURIComponent(g.id)}/attestation`, { task_done: taskDone, changes: list, note: note.value.trim() });
        announce(`Grant ${g.id} attested`);
        await S.view.refresh(false);
      } catch (err) {
        showError(form, err, (x) => (/change/i.test(x.message) ? changes : /note/i.test(x.message) ? note : null));
      }
    });
  });
  section.append(form);
  return section;
}
