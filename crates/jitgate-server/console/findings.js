// jitgate web console: the Findings page (/console/findings) — the findings of a period
// (shared accounts, vendors used from two places, workloads from changing sources,
// approvers who approve each other, JIT that became standing) and the standing-privilege
// inventory, from GET /findings and GET /standing. Each cited evidence event links to the
// event itself in the log. Loaded before app.js, whose helpers (h, api, when, state, S) it
// uses when called. docs/findings.md says what each kind means and what to do about it.
'use strict';

/** `YYYY-MM-DD` of a Date, in UTC. */
function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

/** Links to the evidence events a finding or standing item cites. */
function evidenceLinks(ev) {
  const out = h('span', { class: 'evidence' });
  for (const seq of ev.seqs) {
    out.append(h('a', {
      href: `/api/v1/events?after=${seq - 1}&limit=1`, target: '_blank', rel: 'noopener',
      'data-seq': String(seq), title: `evidence event ${seq}`, text: `#${seq}`,
    }), ' ');
  }
  if (ev.more) out.append(h('span', { class: 'muted', text: `and ${ev.more} more` }));
  if (!ev.seqs.length && !ev.more) out.append(h('span', { class: 'muted', text: '—' }));
  return out;
}

function findingRow(f) {
  return h('tr', { 'data-id': f.id },
    h('td', {}, state(f.severity)),
    h('td', { text: f.kind }),
    h('td', { text: f.subjects.join(', ') }),
    h('td', { text: f.asset || '—' }),
    h('td', { text: `${when(f.from)} – ${when(f.to)}` }),
    h('td', { text: f.summary }),
    h('td', {}, evidenceLinks(f.evidence)));
}

function standingRow(s) {
  return h('tr', { 'data-id': s.id },
    h('td', { text: s.kind }),
    h('td', { text: s.subject || '—' }),
    h('td', { text: s.asset || '—' }),
    h('td', { class: 'num', text: s.exposure_hours.toFixed(1) }),
    h('td', { text: s.since ? when(s.since) : '—' }),
    h('td', { text: s.last_used ? when(s.last_used) : 'never' }),
    h('td', { text: s.detail }),
    h('td', {}, evidenceLinks(s.evidence)));
}

function table(caption, headers, rows, emptyText, id) {
  if (!rows.length) return h('p', { class: 'muted', id, text: emptyText });
  return h('table', { class: 'list', id },
    h('caption', { text: caption }),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', text: x })))),
    h('tbody', {}, rows));
}

async function viewFindings(main) {
  main.append(h('p', { class: 'muted', text: 'What the evidence of a period shows: shared accounts, rubber-stamping, JIT access that became standing, and everything that grants access outside a just-in-time grant. Security staff and auditors only.' }));
  const now = new Date();
  const from = h('input', { type: 'date', name: 'from', value: isoDay(new Date(now.getTime() - 30 * 86400000)) });
  const to = h('input', { type: 'date', name: 'to', value: isoDay(new Date(now.getTime() + 86400000)) });
  const show = h('button', { type: 'submit', text: 'Show' });
  const form = h('form', { class: 'filters', 'aria-label': 'Period' },
    h('label', {}, 'From ', from), h('label', {}, 'To ', to), show,
    h('p', { class: 'form-error', role: 'alert' }));
  const out = h('div', { id: 'findings-out' });
  main.append(form, out);
  const refresh = async () => {
    const q = `from=${from.value}T00:00:00Z&to=${to.value}T00:00:00Z`;
    out.replaceChildren(h('p', { class: 'muted', text: 'Reading the evidence…' }));
    try {
      const [findings, standing] = await Promise.all([api('GET', `/findings?${q}`), api('GET', `/standing?${q}`)]);
      out.replaceChildren(
        h('h2', { text: `Findings (${findings.length})` }),
        table('Findings of the period', ['Severity', 'Kind', 'Subjects', 'Asset', 'Seen', 'Summary', 'Evidence'],
          findings.map(findingRow), 'No findings in the period.', 'findings-table'),
        h('h2', { text: `Standing privilege (${standing.length})` }),
        table('Standing-privilege inventory', ['Kind', 'Subject', 'Asset', 'Hours', 'Since', 'Last used', 'Detail', 'Evidence'],
          standing.map(standingRow), 'Nothing stands outside just-in-time grants.', 'standing-table'));
    } catch (err) {
      out.replaceChildren(h('p', { class: 'form-error', role: 'alert', text: err.message }));
    }
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    await busy(show, refresh);
  });
  S.view.refresh = async () => {};
  await refresh();
}
