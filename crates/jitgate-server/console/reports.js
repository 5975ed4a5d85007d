// jitgate web console: the compliance report (/console/reports), for security, audit and
// admin roles. Loaded before app.js, whose helpers (h, api, field, S, clearErrors, showError,
// busy) it uses when called.
//
// The page only builds the address of `GET /api/v1/reports/compliance` for a month (or a
// period) and a site: the report is signed by the server and opened as its own page (HTML,
// which verifies as a whole with `jitgate evidence verify-report`) or downloaded as JSON.
// The browser sends the session cookie with that GET; nothing is rendered here from the
// report, so what an auditor prints is exactly what was signed.
'use strict';

/** `[from, to)` of a `YYYY-MM` month, as RFC 3339 UTC. */
function monthPeriod(month) {
  const m = /^(\d{4})-(\d{2})$/.exec(month || '');
  if (!m) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  if (mo < 1 || mo > 12) return null;
  const from = new Date(Date.UTC(y, mo - 1, 1));
  const to = new Date(Date.UTC(mo === 12 ? y + 1 : y, mo === 12 ? 0 : mo, 1));
  return { from: from.toISOString(), to: to.toISOString() };
}

/** The last full month before today (UTC), as `YYYY-MM`. */
function lastMonth() {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return d.toISOString().slice(0, 7);
}

function reportUrl(period, site, format) {
  const q = new URLSearchParams({ from: period.from, to: period.to, format });
  if (site) q.set('site', site);
  return `/api/v1/reports/compliance?${q}`;
}

async function viewReports(main) {
  main.append(h('p', { class: 'muted', text: 'The signed compliance report of a month and a site: grants, exposure per asset and per day, teardowns, break-glass reviews and enforcement, mapped to NIST CSF 2.0, NIST SP 800-207 and the OWASP NHI Top 10. The page verifies offline with jitgate evidence verify-report.' }));
  if (!S.seesEverything) {
    main.append(h('p', { text: 'Compliance reports are for security, audit and admin roles.' }));
    return;
  }
  const sites = await api('GET', '/sites').catch(() => []);
  const month = h('input', { type: 'month', name: 'month', value: lastMonth(), required: true });
  const site = h('select', { name: 'site' }, h('option', { value: '', text: 'All sites' }),
    ...sites.map((s) => h('option', { value: s.id, text: s.name ? `${s.id} — ${s.name}` : s.id })));
  const links = h('p', { class: 'actions', id: 'report-links' });
  const submit = h('button', { type: 'submit', text: 'Make the report' });
  const form = h('form', { novalidate: true, 'aria-label': 'Compliance report' },
    h('p', { class: 'form-error', role: 'alert' }),
    field('Month (UTC)', month, 'A month that is over: a report of a running period would change after it is signed.'),
    field('Site', site),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    links.replaceChildren();
    const period = monthPeriod(month.value);
    if (!period) {
      showError(form, new Error('Pick a month, e.g. 2026-11.'), () => month);
      return;
    }
    await busy(submit, async () => {
      try {
        // Ask for the JSON first: it checks the period and the site, and says what is wrong.
        const signed = await api('GET', reportUrl(period, site.value, 'json').replace('/api/v1', ''));
        const r = signed.report;
        links.append(
          h('span', { text: `${r.grants.issued} grants issued, ${(r.grants.exposure_secs / 3600).toFixed(1)} h of access, teardowns ${r.teardowns.verified} verified / ${r.teardowns.partial} partial / ${r.teardowns.failed} failed. ` }),
          h('a', { href: reportUrl(period, site.value, 'html'), target: '_blank', rel: 'noopener', text: 'Open the printable report' }),
          ' · ',
          h('a', { href: reportUrl(period, site.value, 'json'), download: `compliance-${site.value || 'all'}-${month.value}.json`, text: 'Download the signed JSON' }));
      } catch (err) {
        showError(form, err, (x) => (/site/i.test(x.message) ? site : month));
      }
    });
  });
  main.append(form, links);
}
