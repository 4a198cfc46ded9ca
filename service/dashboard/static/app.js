// The dashboard: jobs list, job page (progress, teacher table, plots, what-if, probe runs), sample browser. Every
// number comes from the /v1 API with the user's key; the page itself is static. Routes live in the URL fragment
// (#/jobs/ID).
'use strict';

(() => {
  const KEY_NAME = 'frontier.apiKey';
  // Beyond this many candidates the plots draw every k-th sample (the server picks k): an SVG of a 50k-sample
  // job's 150k dots would stall the tab, and a uniform 1-in-k picture shows the same shape.
  const MAX_POINTS = 10000;
  const view = document.getElementById('view');
  const authBanner = document.getElementById('auth-banner');
  const errorBanner = document.getElementById('error-banner');
  const keyForm = document.getElementById('key-form');
  const keyInput = document.getElementById('key-input');
  const keyRemember = document.getElementById('key-remember');
  const keyState = document.getElementById('key-state');
  const state = { generation: 0, timer: null };

  // ---- API key: sessionStorage by default (gone with the tab), localStorage when "remember" is ticked.
  function storedKey() {
    return sessionStorage.getItem(KEY_NAME) || localStorage.getItem(KEY_NAME) || '';
  }

  function showKeyState() {
    const where = localStorage.getItem(KEY_NAME) ? 'remembered' : sessionStorage.getItem(KEY_NAME) ? 'this tab' : '';
    keyState.textContent = where ? `key set (${where})` : 'no key';
  }

  keyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    sessionStorage.removeItem(KEY_NAME);
    localStorage.removeItem(KEY_NAME);
    (keyRemember.checked ? localStorage : sessionStorage).setItem(KEY_NAME, key);
    keyInput.value = '';
    hideAuth();
    showKeyState();
    render();
  });

  document.getElementById('key-clear').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_NAME);
    localStorage.removeItem(KEY_NAME);
    showKeyState();
    render();
  });

  // ---- HTTP
  class AuthRequired extends Error {}

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function detailMessage(payload) {
    const detail = payload && payload.detail;
    if (!detail) return '';
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join('; ');
    return detail.message || JSON.stringify(detail);
  }

  function showAuth(message, hadKey) {
    authBanner.replaceChildren(
      el('strong', {}, hadKey ? 'Your API key was refused. ' : 'This server needs an API key. '),
      'Enter your API key in the box at the top right ',
      el('span', { class: 'muted' }, '(create one with ', el('code', {}, 'frontier keys create --tenant TEAM'), ')'),
      '.',
      message ? el('div', { class: 'muted' }, `Server said: ${message}`) : null,
    );
    authBanner.hidden = false;
    keyForm.classList.add('wanted');
    keyInput.focus();
  }

  function hideAuth() {
    authBanner.hidden = true;
    keyForm.classList.remove('wanted');
  }

  function showError(error) {
    errorBanner.textContent = error instanceof ApiError ? `${error.status || 'network'}: ${error.message}` : String(error);
    errorBanner.hidden = false;
  }

  async function api(path, { method = 'GET', body } = {}) {
    const headers = { Accept: 'application/json' };
    const key = storedKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new ApiError(0, `the API did not answer (${error.message})`);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null;
    }
    if (response.status === 401) {
      const message = detailMessage(payload);
      showAuth(message, Boolean(key));
      throw new AuthRequired(message);
    }
    if (!response.ok) throw new ApiError(response.status, detailMessage(payload) || response.statusText);
    hideAuth();
    return payload;
  }

  // A read that may legitimately be refused while a job is unfinished (409) or has no such thing (404).
  async function apiOrNull(path) {
    try {
      return await api(path);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 409 || error.status === 404)) return null;
      throw error;
    }
  }

  // ---- DOM
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const fmt = Charts.format;
  const pct = (v) => (v === null || v === undefined ? '–' : `${Math.round(v * 100)}%`);
  const num = (v, digits = 3) => (v === null || v === undefined ? '–' : Number(v).toFixed(digits));
  const signed = (v) => (v === null || v === undefined ? '–' : `${v >= 0 ? '+' : ''}${v.toFixed(2)}`);
  const shortId = (id) => id.slice(0, 8);
  const badge = (text, extra = '') => el('span', { class: `badge ${text || ''} ${extra}` }, text || '–');
  const policyText = (policy) => `${policy.name} v${policy.version} ${JSON.stringify(policy.params)}`;

  function progressBar(progress, status) {
    const share = progress.total ? progress.scored / progress.total : 0;
    return el('div', { class: `progress ${status === 'succeeded' ? 'done' : ''}`, role: 'progressbar',
      'aria-valuemin': 0, 'aria-valuemax': progress.total, 'aria-valuenow': progress.scored },
    el('div', { class: 'fill', style: `width: ${(share * 100).toFixed(1)}%` }));
  }

  function panel(title, ...children) {
    return el('section', { class: 'panel' }, title ? el('h2', {}, title) : null, ...children);
  }

  // ---- routing and polling
  function parseRoute() {
    const hash = location.hash.replace(/^#/, '') || '/';
    const [path, query = ''] = hash.split('?');
    return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
  }

  // Re-run `tick` every `ms` while this view is shown and `tick` returns true; an auth failure stops it.
  function poll(ctx, tick, ms) {
    const again = () => {
      state.timer = setTimeout(async () => {
        if (!ctx.alive()) return;
        try {
          if (await tick()) again();
        } catch (error) {
          if (!(error instanceof AuthRequired) && ctx.alive()) {
            showError(error);
            again();
          }
        }
      }, ms);
    };
    again();
  }

  async function render() {
    state.generation += 1;
    clearTimeout(state.timer);
    const generation = state.generation;
    const ctx = { alive: () => generation === state.generation };
    errorBanner.hidden = true;
    view.replaceChildren();
    const { parts, params } = parseRoute();
    try {
      if (parts[0] === 'jobs' && parts[1] && parts[2] === 'samples') await samplesView(ctx, parts[1], params);
      else if (parts[0] === 'jobs' && parts[1]) await jobView(ctx, parts[1], params);
      else await jobsView(ctx);
    } catch (error) {
      if (!ctx.alive()) return;
      if (error instanceof AuthRequired) {
        view.append(panel(null, el('p', { class: 'empty', id: 'needs-key' }, 'Enter your API key above to see your jobs.')));
      } else {
        showError(error);
      }
    }
  }

  window.addEventListener('hashchange', render);

  // ---- jobs list
  async function jobsView(ctx) {
    const body = el('div', { id: 'jobs' });
    view.append(panel(null, el('h1', {}, 'Jobs'),
      el('p', { class: 'caption' }, 'Newest first, refreshed every 2 s. Open a job for its plots and samples.'), body));
    const refresh = async () => {
      const page = await api('/v1/jobs?limit=100');
      if (!ctx.alive()) return false;
      body.replaceChildren(jobsTable(page.items));
      return true;
    };
    await refresh();
    poll(ctx, refresh, 2000);
  }

  function jobsTable(jobs) {
    if (!jobs.length) {
      return el('p', { class: 'empty' }, 'No jobs yet. Create one with ',
        el('code', {}, 'curl -F file=@data.jsonl -F student=DIR localhost:8000/v1/jobs'), '.');
    }
    const head = el('tr', {}, ...['job', 'status', 'progress', 'samples', 'candidates', 'retained', 'rejected', 'unscored',
      'policy', 'dataset', 'created'].map((h) => el('th', { class: ['samples', 'candidates', 'retained', 'rejected', 'unscored'].includes(h) ? 'num' : '' }, h)));
    const rows = jobs.map((job) => el('tr', { class: 'job-row', id: `job-${job.id}` },
      el('td', {}, el('a', { class: 'job-link mono', href: `#/jobs/${job.id}` }, shortId(job.id))),
      el('td', {}, badge(job.status)),
      el('td', {}, progressBar(job.progress, job.status),
        el('span', { class: 'progress-label' }, `${job.progress.scored} / ${job.progress.total} scored`)),
      el('td', { class: 'num' }, job.progress.total),
      el('td', { class: 'num' }, job.progress.candidates),
      el('td', { class: 'num' }, job.counts.retained),
      el('td', { class: 'num' }, job.counts.rejected),
      el('td', { class: 'num' }, job.counts.unscored),
      el('td', {}, job.policy.name),
      el('td', {}, job.dataset.name || '–'),
      el('td', { class: 'muted' }, new Date(job.timings.created_at).toLocaleString())));
    return el('table', { class: 'data', id: 'jobs-table' }, el('thead', {}, head), el('tbody', {}, rows));
  }

  // ---- one job
  async function jobView(ctx, jobId, params) {
    const head = el('div', { id: 'job-head' });
    const analysis = el('div', { id: 'analysis' });
    view.append(panel(null, head), analysis);
    let analysed = false;
    const refresh = async () => {
      const job = await api(`/v1/jobs/${jobId}`);
      if (!ctx.alive()) return false;
      head.replaceChildren(...jobHead(job));
      if (job.status === 'succeeded' && !analysed) {
        analysed = true;
        await loadAnalysis(ctx, job, analysis, params);
      } else if (job.status === 'failed' || job.status === 'cancelled') {
        analysis.replaceChildren(panel(null, el('p', { class: 'empty' }, `This job is ${job.status}: no decisions to plot.`)));
      } else if (!analysed) {
        analysis.replaceChildren(panel(null, el('p', { class: 'empty' }, 'Plots appear when the job has succeeded.')));
      }
      return job.status === 'ingesting' || job.status === 'queued' || job.status === 'running';
    };
    if (await refresh()) poll(ctx, refresh, 1500);
  }

  function jobHead(job) {
    const share = job.progress.total ? job.progress.scored / job.progress.total : 0;
    return [
      el('h1', {}, 'Job ', el('span', { class: 'mono' }, job.id), ' ', badge(job.status, 'job-status')),
      el('div', { class: 'job-head' },
        el('div', {},
          progressBar(job.progress, job.status),
          el('div', { class: 'progress-label', id: 'progress-label' },
            (job.status === 'ingesting' ? `ingesting: ${job.ingested_records} records stored so far; ` : '')
            + `${job.progress.scored} of ${job.progress.total} samples scored (${Math.round(share * 100)}%), `
            + `${job.progress.candidates} candidates, ${job.progress.cached} from the score cache`),
          el('p', { class: 'counts', id: 'job-counts' },
            el('span', {}, badge('retained'), ' ', job.counts.retained),
            el('span', {}, badge('rejected'), ' ', job.counts.rejected),
            el('span', {}, badge('unscored'), ' ', job.counts.unscored)),
          el('p', {}, el('a', { id: 'browse-samples', href: `#/jobs/${job.id}/samples` }, 'Browse samples →'))),
        el('dl', { class: 'facts' },
          el('dt', {}, 'dataset'), el('dd', {}, `${job.dataset.name || '–'} (${job.dataset.format || '?'})`),
          el('dt', {}, 'student'), el('dd', { class: 'mono' }, `${job.student.path} · ${job.student.model_type} · fingerprint ${job.student.fingerprint.slice(0, 12)}`),
          el('dt', {}, 'policy'), el('dd', { class: 'mono' }, policyText(job.policy)),
          el('dt', {}, 'template'), el('dd', {}, job.template),
          el('dt', {}, 'created'), el('dd', {}, new Date(job.timings.created_at).toLocaleString()),
          el('dt', {}, 'throughput'), el('dd', {}, job.timings.samples_per_second ? `${job.timings.samples_per_second.toFixed(1)} samples/s` : '–'),
          job.error ? el('dt', {}, 'error') : null, job.error ? el('dd', { class: 'mono' }, job.error) : null)),
    ];
  }

  async function loadAnalysis(ctx, job, container, params) {
    const [points, report] = await Promise.all([api(`/v1/jobs/${job.id}/points?max_points=${MAX_POINTS}`), api(`/v1/jobs/${job.id}/report`)]);
    if (!ctx.alive()) return;
    const policy = points.decision_set.policy;
    const setNote = el('p', { class: 'caption', id: 'decision-set-note' },
      `Decisions of decision set ${points.decision_set.id} (${points.decision_set.latest ? 'the latest' : ''}`
      + `${points.decision_set.own ? ', the job\'s own' : ', a re-decision'}): ${policyText(policy)}.`);
    const whatIf = el('div', { id: 'whatif' });
    container.replaceChildren(
      teacherPanel(report, setNote),
      el('div', { class: 'grid2' },
        scatterPanel(points, policy),
        panel('What-if: retained fraction', whatIf)),
      histogramPanel(points, report, policy));
    const probes = el('section', { class: 'panel', id: 'probes' });
    container.append(probes);
    await Promise.all([whatIfPanel(ctx, job, policy, report, whatIf), probesPanel(ctx, job, probes, params)]);
  }

  // ---- probe runs: a fresh copy of the student fine-tuned per condition, its learning curves and results.
  // Conditions are whatever the run lists (teachers, originals, union, decision sets, ...): none is named here.
  const ACTIVE = new Set(['queued', 'running']);

  async function probesPanel(ctx, job, container, params) {
    const runs = el('div', { id: 'probe-runs' });
    const detail = el('div', { id: 'probe-detail' });
    container.append(el('h2', {}, 'Probes'),
      el('p', { class: 'caption' }, 'A probe run fine-tunes a fresh copy of the student for a short budget on each '
        + 'condition\'s training data and measures exact match by greedy generation on held-out problems. Start one with ',
      el('code', {}, `frontier jobs probe ${job.id} --wait`), '.'),
      runs, detail);
    let selected = params && params.get('probe') ? Number(params.get('probe')) : null;
    const choose = (probeId) => {
      selected = probeId;
      history.replaceState(null, '', `#/jobs/${job.id}?probe=${probeId}`);
      refresh().catch((error) => { if (!(error instanceof AuthRequired)) showError(error); });
    };
    const refresh = async () => {
      const listing = await apiOrNull(`/v1/jobs/${job.id}/probes`);
      if (!ctx.alive()) return false;
      const items = (listing && listing.items) || [];
      if (!items.length) {
        runs.replaceChildren(el('p', { class: 'empty' }, 'No probe runs for this job yet.'));
        detail.replaceChildren();
        return false;
      }
      if (!items.some((p) => p.id === selected)) selected = items[0].id;
      runs.replaceChildren(probeRunsTable(items, selected, choose));
      const probe = items.find((p) => p.id === selected);
      detail.replaceChildren(...probeDetail(probe).filter(Boolean));
      return items.some((p) => ACTIVE.has(p.status));
    };
    if (await refresh()) poll(ctx, refresh, 2000);
  }

  function probeProgress(probe) {
    const progress = probe.progress || {};
    const share = Math.min(1, Math.max(0, progress.fraction || 0));
    return el('div', {},
      el('div', { class: `progress ${probe.status === 'succeeded' ? 'done' : ''}`, role: 'progressbar',
        'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(share * 100) },
      el('div', { class: 'fill', style: `width: ${(share * 100).toFixed(1)}%` })),
      el('span', { class: 'progress-label' }, `${progress.tasks_done ?? 0} / ${progress.tasks_total ?? 0} tasks, `
        + `${progress.steps_done ?? 0} / ${progress.steps_total ?? 0} steps`));
  }

  function probeRunsTable(items, selected, choose) {
    const head = el('tr', {}, ['run', 'status', 'progress', 'conditions', 'seeds', 'steps', 'eval', 'created']
      .map((h) => el('th', { class: ['conditions', 'seeds', 'steps'].includes(h) ? 'num' : '' }, h)));
    const rows = items.map((probe) => el('tr', {
      class: `clickable probe-row ${probe.id === selected ? 'selected' : ''}`, id: `probe-${probe.id}`,
      'data-probe-id': probe.id, onclick: () => choose(probe.id),
    },
    el('td', { class: 'mono' }, `#${probe.id}`),
    el('td', {}, badge(probe.status, 'probe-status')),
    el('td', {}, probeProgress(probe)),
    el('td', { class: 'num' }, (probe.conditions || []).length),
    el('td', { class: 'num' }, probe.budget ? probe.budget.seeds : '–'),
    el('td', { class: 'num' }, probe.budget ? probe.budget.steps : '–'),
    el('td', {}, probe.eval ? `${probe.eval.n_items} (${probe.eval.source})` : '–'),
    el('td', { class: 'muted' }, probe.created_at ? new Date(probe.created_at).toLocaleString() : '–')));
    return el('table', { class: 'data', id: 'probe-runs-table' }, el('thead', {}, head), el('tbody', {}, rows));
  }

  // Per condition and metric: the mean over seeds at each measured step, and the min–max band with 2+ seeds.
  function seedSummary(result, metric) {
    const bySteps = new Map();
    let seeded = 0;
    for (const seed of result.seeds || []) {
      const curve = (seed.curve || []).filter((p) => p[metric] !== null && p[metric] !== undefined);
      if (!curve.length) continue;
      seeded += 1;
      for (const p of curve) {
        if (!bySteps.has(p.step)) bySteps.set(p.step, []);
        bySteps.get(p.step).push(p[metric]);
      }
    }
    const steps = [...bySteps.keys()].sort((a, b) => a - b);
    const mean = steps.map((step) => {
      const values = bySteps.get(step);
      return { x: step, y: values.reduce((a, b) => a + b, 0) / values.length, n: values.length };
    });
    const band = seeded > 1
      ? steps.map((step) => ({ x: step, lo: Math.min(...bySteps.get(step)), hi: Math.max(...bySteps.get(step)) }))
      : null;
    return { mean, band };
  }

  const meanSd = (summary, show) => {
    if (!summary || summary.mean === null || summary.mean === undefined) return '–';
    return summary.sd === null || summary.sd === undefined ? show(summary.mean) : `${show(summary.mean)} ± ${show(summary.sd)}`;
  };

  function probeDetail(probe) {
    const colour = (i) => Charts.PALETTE[i % Charts.PALETTE.length];
    const results = probe.results || [];
    const order = new Map((probe.conditions || results.map((r) => r.condition)).map((name, i) => [name, i]));
    const colourOf = (name) => colour(order.has(name) ? order.get(name) : order.size);
    const steps = probe.budget ? probe.budget.steps : undefined;
    const series = (metric) => results.map((r) => ({ name: r.condition, color: colourOf(r.condition), ...seedSummary(r, metric) }));
    const seeds = probe.budget ? probe.budget.seeds : 1;
    const budget = probe.budget || {};
    const evaluation = probe.eval || {};
    const legend = el('div', { class: 'legend', id: 'probe-legend' }, results.map((r) => el('span', { 'data-condition': r.condition },
      el('span', { class: 'swatch', style: `background: ${colourOf(r.condition)}` }), r.condition)));
    const sum = (r, name) => (r.seeds || []).reduce((total, s) => total + ((s.cost && Number(s.cost[name])) || 0), 0);
    const columns = [
      ['condition', (r) => el('span', {}, el('span', { class: 'swatch', style: `background: ${colourOf(r.condition)}` }), r.condition)],
      ['examples', (r) => r.n_examples ?? '–', 'num'],
      ['exact match', (r) => meanSd(r.exact_match, (v) => `${(v * 100).toFixed(1)}%`), 'num'],
      ['held-out loss', (r) => meanSd(r.loss, (v) => v.toFixed(3)), 'num'],
      ['seeds done', (r) => `${(r.seeds || []).filter((s) => s.status === 'done').length} / ${(r.seeds || []).length}`, 'num'],
      ['steps', (r) => sum(r, 'steps').toLocaleString(), 'num'],
      ['tokens', (r) => sum(r, 'tokens').toLocaleString(), 'num'],
      ['seconds', (r) => sum(r, 'seconds').toFixed(1), 'num'],
    ];
    const table = el('table', { class: 'data', id: 'probe-results' },
      el('thead', {}, el('tr', {}, columns.map(([name, , cls]) => el('th', { class: cls || '' }, name)))),
      el('tbody', {}, results.map((r) => el('tr', { class: 'probe-result', 'data-condition': r.condition },
        columns.map(([, value, cls]) => el('td', { class: cls || '' }, value(r)))))));
    const failures = results.flatMap((r) => (r.seeds || []).filter((s) => s.error).map((s) => `${r.condition}, seed ${s.seed}: ${s.error}`));
    const cost = probe.cost || {};
    const spread = seeds > 1 ? ` Shaded: min–max over the ${seeds} seeds.` : '';
    return [
      el('h3', { id: 'probe-title' }, `Probe run #${probe.id} `, badge(probe.status)),
      el('p', { class: 'caption', id: 'probe-eval' },
        `Eval: ${evaluation.n_items ?? '?'} items (${evaluation.source || '?'})${evaluation.note ? ` — ${evaluation.note}` : ''}. `
        + `Budget: ${budget.steps} steps${budget.schedule_steps && budget.schedule_steps !== budget.steps ? ` (the first of a ${budget.schedule_steps}-step schedule)` : ''} `
        + `of ${budget.batch_size} examples, peak lr ${budget.peak_lr ?? 'auto'}, ${budget.warmup_steps} warm-up, `
        + `a curve point every ${budget.eval_every} steps, ${budget.seeds} seed${budget.seeds === 1 ? '' : 's'}, `
        + `${budget.max_new_tokens ?? 'room for each condition\'s longest response in'} new tokens${probe.answer_pattern ? `, answers by /${probe.answer_pattern}/` : ''}.`),
      probe.error ? el('p', { class: 'warnings' }, probe.error) : null,
      legend,
      el('div', { class: 'grid2 probe-charts' },
        el('figure', { class: 'probe-chart' }, el('figcaption', {}, 'Exact match'),
          el('div', { id: 'probe-em-chart' }, Charts.learningCurves(series('exact_match'), { x: 'optimiser step', y: 'exact match' }, { percent: true, xMax: steps }))),
        el('figure', { class: 'probe-chart' }, el('figcaption', {}, 'Held-out loss'),
          el('div', { id: 'probe-loss-chart' }, Charts.learningCurves(series('loss'), { x: 'optimiser step', y: 'loss per token' }, { xMax: steps })))),
      el('p', { class: 'caption' }, `Lines: mean over the seeds measured at each step.${spread} Exact match: greedy `
        + 'completion\'s extracted answer equals the reference; loss: teacher-forced loss per token of the reference responses.'),
      el('div', { style: 'overflow-x: auto' }, table),
      el('p', { class: 'caption', id: 'probe-cost' }, `Run cost: ${(cost.steps ?? 0).toLocaleString()} steps, `
        + `${(cost.tokens ?? 0).toLocaleString()} tokens, ${Number(cost.seconds ?? 0).toFixed(1)} s. Exact match and loss `
        + 'are mean ± sd over the seeds done (sd with two or more).'),
      failures.length ? el('ul', { class: 'warnings', id: 'probe-failures' }, failures.map((f) => el('li', {}, f))) : null,
    ];
  }

  function teacherPanel(report, setNote) {
    const columns = [
      ['rank', (t) => t.rank ?? '–', 'num'], ['teacher', (t) => t.teacher], ['candidates', (t) => t.candidates, 'num'],
      ['scored', (t) => t.scored, 'num'], ['accepted', (t) => pct(t.accepted_share), 'num'],
      ['usable inside', (t) => pct(t.zones.inside), 'num'],
      ['band: below / inside / beyond', (t) => `${pct(t.band.below)} / ${pct(t.band.inside)} / ${pct(t.band.beyond)}`, 'num'],
      ['misaligned', (t) => pct(t.zones.misaligned), 'num'], ['not feasible', (t) => pct(t.zones.not_feasible), 'num'],
      ['beat original', (t) => pct(t.beat_original_share), 'num'], ['median IFD', (t) => num(t.ifd && t.ifd.p50), 'num'],
      ['median r-IFD', (t) => num(t.rifd && t.rifd.p50), 'num'],
      ['median frontier', (t) => signed(t.frontier_score && t.frontier_score.p50), 'num'],
      ['RSR', (t) => num(t.rsr), 'num'],
      ['Δ hedging', (t) => signed(t.hedging.mean_change_vs_original), 'num'],
      ['overconfident', (t) => pct(t.hedging.overconfident_share), 'num'],
      ['probe exact match', (t) => (t.probe && t.probe.exact_match != null
        ? pct(t.probe.exact_match) + (t.probe.exact_match_sd != null ? ` ± ${pct(t.probe.exact_match_sd)}` : '') : '–'), 'num'],
    ];
    const bases = {
      probe: 'probe exact match (a short fine-tune per teacher, higher first)',
      rsr: 'dataset RSR (lower first)',
      frontier: 'share inside the frontier band',
    };
    const probe = report.probe;
    const probeNote = probe
      ? ` Probe run #${probe.probe_id}: ${probe.steps} steps × ${probe.batch_size}, ${probe.seeds} seed(s), `
        + `${probe.eval_items} ${probe.eval_source.replace('_', '-')} problems; `
        + (probe.conclusive ? 'conclusive' : 'inconclusive')
        + ` (margin ${pct(probe.margin)} vs eval noise ±${pct(probe.noise)})`
        + (probe.margin_exceeds_spread == null ? '; seed spread unknown.'
          : probe.margin_exceeds_spread ? '; the margin exceeds the seed spread.' : '; the margin is within the seed spread.')
        + (probe.conclusive ? '' : ` Not separated by the probe: ${(probe.contenders || []).join(', ')}.`)
        + (probe.at_ceiling ? ' The first solved every eval problem: a longer probe cannot separate them.' : '')
        + (probe.follow_up ? ` Follow-up: probe ${probe.follow_up.teachers.join(', ')} alone for ${probe.follow_up.steps} steps.` : '')
        + (probe.earlier_probe_id ? ` The other teachers follow in the order of probe run #${probe.earlier_probe_id}.` : '')
      : '';
    const table = el('table', { class: 'data', id: 'teacher-table' },
      el('thead', {}, el('tr', {}, columns.map(([name, , cls]) => el('th', { class: cls || '' }, name)))),
      el('tbody', {}, report.teachers.map((t) => el('tr', { class: 'teacher-row', 'data-teacher': t.teacher },
        columns.map(([, value, cls]) => el('td', { class: cls || '' }, value(t)))))));
    const band = report.frontier.params;
    return panel('Teacher comparison', setNote,
      report.recommendation ? el('p', { class: 'recommendation' }, report.recommendation) : null,
      el('p', { class: 'caption', id: 'ranking-basis' },
        `Ranked by ${bases[report.ranking_basis] || report.ranking_basis}`
        + (report.signals_agree ? '; the signals agree on the first teacher.' : '; the signals disagree on the first teacher.')
        + probeNote),
      (report.warnings || []).length
        ? el('ul', { class: 'warnings', id: 'report-warnings' }, report.warnings.map((w) => el('li', { 'data-code': w.code }, w.message)))
        : null,
      el('div', { style: 'overflow-x: auto' }, table),
      el('p', { class: 'caption' },
        `Shares of each teacher's candidates (band: of its scored candidates, by frontier score alone). Band [${signed(band.low)}, ${signed(band.high)}] on the frontier score `
        + `(${report.frontier.from_decision_set ? 'this decision set\'s' : 'frontier_band defaults'}). `
        + 'Usable inside: IFD < ifd_max, r-IFD < rifd_max and inside the band; accepted: chosen for a retained sample; '
        + 'beat original: lower r-IFD than the original (docs/policies.md).'));
  }

  // What the scatter draws for each policy: its cuts on the IFD × r-IFD plane and a legend sentence.
  function policyRegion(policy, band) {
    const p = policy.params;
    switch (policy.name) {
      case 'reflection':
        if (p.variant === 'paper') {
          return { text: 'Policy reflection (paper variant): no absolute thresholds; per sample the student keeps the '
            + 'candidate with the lowest r-IFD (a refinement that rewrote the instruction must also raise IFD).' };
        }
        return { ifdMax: p.ifd_max, rifdMax: p.rifd_max, shade: true,
          text: `Policy reflection (code variant): a candidate is eligible when IFD < ${fmt(p.ifd_max)} and r-IFD < `
            + `${fmt(p.rifd_max)} (shaded); per sample the eligible candidate with the lowest r-IFD is kept.` };
      case 'ifd_topk':
        return { ifdMax: 1, shade: true,
          text: `Policy ifd_topk: candidates left of IFD = 1 are aligned (shaded); of those, the samples with the highest `
            + `${p.score === 'ifd' ? 'IFD' : 'loss-ratio IFD'} are kept, the top ${fmt(p.k_percent)}% of all samples.` };
      case 'frontier_band':
        return { ifdMax: p.ifd_max, rifdMax: p.rifd_max, shade: true,
          text: `Policy frontier_band: aligned (IFD < ${fmt(p.ifd_max)}) and feasible (r-IFD < ${fmt(p.rifd_max)}) is `
            + `shaded; inside it a candidate is kept when its frontier score lies in [${signed(band.low)}, `
            + `${signed(band.high)}] (the histograms' band), nearest the band's middle.` };
      case 'best_candidate':
        if (p.ifd_max !== null && p.ifd_max !== undefined) {
          return { ifdMax: p.ifd_max, shade: true,
            text: `Policy best_candidate: candidates with IFD < ${fmt(p.ifd_max)} (shaded) compete; per sample the one `
              + 'with the lowest L(A|Q), the most probable for the student, is kept.' };
        }
        return { text: 'Policy best_candidate: per sample the candidate with the lowest L(A|Q) (the most probable for '
          + 'the student) is kept; no threshold on these axes.' };
      default:
        return { text: `Policy ${policy.name}.` };
    }
  }

  function scatterPanel(points, policy) {
    const plotted = points.points.filter((p) => p.ifd !== null && p.rifd !== null && p.ifd > 0 && p.rifd > 0);
    const count = (d) => points.points.filter((p) => p.decision === d).length;
    const region = policyRegion(policy, points.frontier);
    const legend = el('div', { class: 'legend', id: 'scatter-legend' },
      el('span', {}, el('span', { class: 'swatch', style: 'background: var(--retained)' }), `retained (chosen): ${count('retained')}`),
      el('span', {}, el('span', { class: 'swatch', style: 'background: var(--rejected)' }), `rejected / not chosen: ${count('rejected')}`),
      el('span', { class: 'muted' }, `unscored (not plotted): ${count('unscored')}`),
      region.shade ? el('span', {}, el('span', { class: 'swatch area' }), `kept region of ${policy.name}`) : null);
    return panel('Every candidate: IFD × r-IFD',
      el('div', { id: 'scatter' }, Charts.scatter(plotted, region)),
      legend,
      el('p', { class: 'caption', id: 'scatter-policy' }, region.text,
        ' One dot per scored candidate (original and each refinement); hover for its sample, teacher and scores.',
        subsampled(points)));
  }

  function histogramPanel(points, report, policy) {
    const groups = new Map();
    const order = ['original', ...report.ranking];
    for (const name of order) groups.set(name, []);
    for (const p of points.points) {
      if (p.frontier_score === null) continue;
      const name = p.teacher || 'original';
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(p.frontier_score);
    }
    const list = [...groups.entries()].filter(([, values]) => values.length).map(([name, values]) => ({ name, values }));
    const band = points.frontier;
    if (!list.length) return panel('Frontier score by teacher', el('p', { class: 'empty' }, 'No scored candidates.'));
    const charts = Charts.histograms(list, band);
    const figures = list.map((group, i) => {
      const sorted = [...group.values].sort((a, b) => a - b);
      const median = sorted[Math.floor((sorted.length - 1) / 2)];
      return el('figure', { class: 'histogram', 'data-teacher': group.name },
        el('figcaption', {}, `${group.name} `, el('span', { class: 'muted' }, `n=${group.values.length}, median ${signed(median)}`)),
        charts[i]);
    });
    const whose = policy.name === 'frontier_band' ? 'this decision set\'s frontier_band band' : `the frontier_band default band (the policy here is ${policy.name})`;
    return panel('Frontier score by teacher',
      el('div', { class: 'multiples', id: 'histograms' }, figures),
      el('p', { class: 'caption' },
        `Share of each teacher's scored candidates per frontier-score bin (same bins and y scale in every panel). `
        + `Frontier score = (1 − w)·z(L(A|Q)) + w·z(log IFD), w = ${fmt(band.ifd_weight)}, robust z over this job's `
        + `candidates. Shaded: ${whose} [${signed(band.low)}, ${signed(band.high)}]; left of it is already known to `
        + 'the student, right of it beyond its frontier.', subsampled(points)));
  }

  function subsampled(points) {
    if (points.stride <= 1) return null;
    return el('strong', { class: 'subsampled' }, ` Drawn: 1 sample in every ${points.stride}, ${points.points.length} of `
      + `${points.total_points} candidates (a uniform picture of the job; frontier scores are over all of it).`);
  }

  // ---- what-if: sweep one parameter of the decision set's policy over the stored scores (nothing is written).
  const THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1, 1.05, 1.1, 1.25, 1.5, 2, 3];
  const SWEEPS = {
    reflection: [['rifd_max', THRESHOLDS], ['ifd_max', THRESHOLDS]],
    ifd_topk: [['k_percent', [1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 90, 100]]],
    frontier_band: [
      ['high', [-0.5, -0.25, 0, 0.25, 0.5, 0.8416, 1, 1.25, 1.5, 2, 2.5, 3]],
      ['low', [-3, -2.5, -2, -1.5, -1.25, -1, -0.8416, -0.5, -0.25, 0, 0.25, 0.5]],
      ['rifd_max', THRESHOLDS], ['ifd_max', THRESHOLDS]],
    best_candidate: [['ifd_max', THRESHOLDS]],
  };

  function sweepPlan(policy, param, values) {
    const params = { ...policy.params };
    let note = '';
    // The paper variant has no thresholds to sweep: sweep the released code's instead, and say so.
    if (policy.name === 'reflection' && params.variant === 'paper') {
      params.variant = 'code';
      delete params.ifd_max;
      delete params.rifd_max;
      note = ' (code variant: the paper variant has no threshold)';
    }
    let grid = [...values];
    if (policy.name === 'frontier_band' && param === 'high') grid = grid.filter((v) => v > params.low);
    if (policy.name === 'frontier_band' && param === 'low') grid = grid.filter((v) => v < params.high);
    const current = typeof params[param] === 'number' ? params[param] : null;
    if (current !== null && !grid.includes(current)) grid = [...grid, current].sort((a, b) => a - b);
    delete params[param];
    return { params, grid, current: note ? null : current, note };
  }

  async function whatIfPanel(ctx, job, policy, report, container) {
    const options = SWEEPS[policy.name] || [];
    if (!options.length) {
      container.append(el('p', { class: 'empty' }, `No sweep is defined for policy ${policy.name}.`));
      return;
    }
    const select = el('select', { id: 'whatif-param' }, options.map(([param]) => el('option', { value: param }, param)));
    const chart = el('div', { id: 'whatif-chart' });
    const caption = el('p', { class: 'caption' });
    const legend = el('div', { class: 'legend' });
    container.append(el('div', { class: 'filters' }, el('label', {}, `${policy.name} parameter `, select)), chart, legend, caption);
    const draw = async () => {
      const [param, values] = options.find(([name]) => name === select.value);
      const plan = sweepPlan(policy, param, values);
      chart.replaceChildren(el('p', { class: 'empty' }, 'Computing…'));
      const result = await api(`/v1/jobs/${job.id}/what-if`, {
        method: 'POST', body: { policy: policy.name, params: plan.params, sweep: { param, values: plan.grid } },
      });
      if (!ctx.alive()) return;
      const main = { points: result.points.map((p) => ({ x: Number(p.value), y: p.retained_fraction,
        title: `${param} = ${fmt(Number(p.value))}: ${p.counts.retained} retained (${pct(p.retained_fraction)})` })) };
      const names = [...new Set(result.points.flatMap((p) => Object.keys(p.teachers)))];
      const series = names.map((name) => ({ name, points: result.points.map((p) => ({
        x: Number(p.value), y: p.teachers[name] ? p.teachers[name].acceptance : null })) }));
      chart.replaceChildren(Charts.curve(main, series, { x: `${param}${plan.note}`, y: 'retained fraction' }, plan.current));
      legend.replaceChildren(
        el('span', {}, el('span', { class: 'swatch', style: 'background: var(--accent)' }), 'retained fraction of samples'),
        ...names.map((name, i) => el('span', {}, el('span', { class: 'swatch', style: `background: ${Charts.PALETTE[i % Charts.PALETTE.length]}` }),
          `${name}: share of its candidates chosen`)));
      caption.textContent = `POST /v1/jobs/${shortId(job.id)}…/what-if: ${policy.name} re-run in memory at each value of `
        + `${param}${plan.note}, the other parameters as in the decision set; nothing is written.`;
    };
    select.addEventListener('change', () => draw().catch((error) => { if (!(error instanceof AuthRequired)) showError(error); }));
    await draw();
  }

  // ---- sample browser
  async function samplesView(ctx, jobId, params) {
    const [job, manifest, report] = await Promise.all([
      api(`/v1/jobs/${jobId}`), apiOrNull(`/v1/jobs/${jobId}/manifest`), apiOrNull(`/v1/jobs/${jobId}/report`),
    ]);
    if (!ctx.alive()) return;
    const filters = { decision: params.get('decision') || '', reason: params.get('reason') || '', teacher: params.get('teacher') || '' };
    const go = (next) => {
      const query = new URLSearchParams(Object.entries({ ...filters, ...next }).filter(([, v]) => v));
      location.hash = `#/jobs/${jobId}/samples${query.toString() ? `?${query}` : ''}`;
    };
    const reasons = new Map();
    for (const [decision, byReason] of Object.entries((manifest && manifest.reasons) || {})) {
      if (filters.decision && decision !== filters.decision) continue;
      for (const [reason, n] of Object.entries(byReason)) reasons.set(reason, (reasons.get(reason) || 0) + n);
    }
    if (filters.reason && !reasons.has(filters.reason)) reasons.set(filters.reason, null);
    const teachers = report ? report.teachers.filter((t) => !t.is_original).map((t) => t.teacher) : [];
    if (filters.teacher && !teachers.includes(filters.teacher)) teachers.push(filters.teacher);
    const select = (id, current, options, key) => el('select', { id, onchange: (e) => go({ [key]: e.target.value }) },
      options.map(([value, label]) => el('option', { value, selected: value === current }, label)));
    const count = (n) => (n === null ? '' : ` (${n})`);
    const filterBar = el('div', { class: 'filters' },
      el('label', {}, 'decision ', select('filter-decision', filters.decision, [['', 'all'], ['retained', 'retained'], ['rejected', 'rejected'], ['unscored', 'unscored']], 'decision')),
      el('label', {}, 'reason ', select('filter-reason', filters.reason, [['', 'all'], ...[...reasons].map(([r, n]) => [r, `${r}${count(n)}`])], 'reason')),
      el('label', {}, 'teacher ', select('filter-teacher', filters.teacher, [['', 'all'], ...teachers.map((t) => [t, t])], 'teacher')));
    const listBody = el('tbody');
    const shown = el('span', { class: 'muted', id: 'samples-shown' });
    const more = el('button', { id: 'samples-more', hidden: true }, 'Load more');
    const detail = el('section', { class: 'panel', id: 'sample-detail' },
      el('p', { class: 'empty' }, 'Click a sample to compare its original with each refinement.'));
    view.append(
      panel(null,
        el('h1', {}, 'Samples of job ', el('a', { class: 'mono', href: `#/jobs/${jobId}` }, shortId(jobId)), ' ', badge(job.status)),
        manifest ? el('p', { class: 'caption' }, `Decision set ${manifest.decision_set.id}: ${policyText(manifest.decision_set.policy)}`) : null,
        filterBar,
        el('div', { class: 'sample-list' }, el('table', { class: 'data', id: 'sample-table' },
          el('thead', {}, el('tr', {}, ['sample', 'decision', 'reason', 'chosen', 'candidates'].map((h) => el('th', {}, h)))),
          listBody)),
        el('p', {}, shown, ' ', more)),
      detail);

    let cursor = null;
    let total = 0;
    const select_ = async (sampleId, row) => {
      for (const other of listBody.querySelectorAll('tr.selected')) other.classList.remove('selected');
      if (row) row.classList.add('selected');
      // replaceState: the selection goes into the URL (shareable) without re-rendering the list.
      const query = new URLSearchParams(Object.entries({ ...filters, sample: sampleId }).filter(([, v]) => v));
      history.replaceState(null, '', `#/jobs/${jobId}/samples?${query}`);
      const sample = await api(`/v1/jobs/${jobId}/samples/${encodeURIComponent(sampleId)}`);
      if (ctx.alive()) detail.replaceChildren(...sampleDetail(sample));
    };
    const loadPage = async () => {
      const query = new URLSearchParams(Object.entries({ ...filters, limit: '50', cursor }).filter(([, v]) => v));
      const page = await api(`/v1/jobs/${jobId}/samples?${query}`);
      if (!ctx.alive()) return;
      for (const item of page.items) {
        const row = el('tr', { class: 'clickable sample-row', 'data-sample-id': item.sample_id },
          el('td', { class: 'mono' }, item.sample_id), el('td', {}, badge(item.decision)), el('td', {}, item.reason || '–'),
          el('td', {}, item.chosen_candidate || '–'), el('td', {}, item.candidates.map((c) => c.name).join(', ')));
        row.addEventListener('click', () => select_(item.sample_id, row).catch((error) => {
          if (!(error instanceof AuthRequired)) showError(error);
        }));
        listBody.append(row);
      }
      total += page.items.length;
      cursor = page.next_cursor;
      shown.textContent = `${total} sample${total === 1 ? '' : 's'} shown${cursor ? '' : ' (all)'}`;
      more.hidden = !cursor;
      if (!total) listBody.append(el('tr', {}, el('td', { colspan: 5, class: 'empty' }, 'No sample matches these filters.')));
    };
    more.addEventListener('click', () => loadPage().catch(showError));
    await loadPage();
    const wanted = params.get('sample');
    if (wanted) await select_(wanted, listBody.querySelector(`tr[data-sample-id="${CSS.escape(wanted)}"]`));
  }

  function sampleDetail(sample) {
    const original = sample.candidates[0] || {};
    const frontier = (sample.detail && sample.detail.frontier_score) || {};
    const zones = (sample.detail && sample.detail.zone) || {};
    const columns = sample.candidates.map((c) => {
      const chosen = sample.decision === 'retained' && sample.chosen_candidate === c.name;
      const rewrote = c.teacher && (c.instruction !== original.instruction || c.input !== original.input);
      const rows = [
        ['IFD', num(c.ifd)], ['r-IFD', num(c.rifd)], ['PPL(A|Q)', num(c.ppl_response_given_instruction, 2)],
        ['L(A|Q)', num(c.nll_response_given_instruction)], ['response tokens', c.n_response_tokens ?? '–'],
        ['RSR', num(c.rsr)], [`mean rank (clip ${c.rank_clip ?? '–'})`, num(c.rank_mean, 2)],
      ];
      if (c.name in frontier) rows.push(['frontier score', signed(frontier[c.name])]);
      if (c.name in zones) rows.push(['zone', zones[c.name]]);
      if (c.status !== 'scored') rows.push(['status', `${c.status}${c.error ? `: ${c.error}` : ''}`]);
      return el('article', { class: `candidate ${chosen ? 'is-chosen' : ''}`, 'data-candidate': c.name },
        el('h3', {}, c.teacher ? `refinement: ${c.teacher}` : 'original', chosen ? badge('chosen') : null),
        el('table', { class: 'scores' }, el('tbody', {}, rows.map(([k, v]) => el('tr', {}, el('td', { class: 'muted' }, k), el('td', { class: 'mono' }, v))))),
        rewrote ? el('div', { class: 'rewritten' }, el('strong', {}, 'rewritten instruction: '), [c.instruction, c.input].filter(Boolean).join('\n\n')) : null,
        el('pre', { class: 'text' }, c.response || ''));
    });
    return [
      el('div', { class: 'sample-head' },
        el('h2', {}, 'Sample ', el('span', { class: 'mono', id: 'sample-title' }, sample.sample_id)),
        el('span', {}, 'decision ', badge(sample.decision, 'sample-decision')),
        el('span', {}, 'reason ', el('code', { id: 'sample-reason' }, sample.reason || '–')),
        el('span', {}, 'chosen ', el('code', {}, sample.chosen_candidate || 'none'))),
      el('div', { class: 'question' }, el('strong', {}, 'Instruction: '), original.instruction || '',
        original.input ? el('div', {}, el('strong', {}, 'Input: '), original.input) : null),
      el('div', { class: 'side-by-side', id: 'candidates' }, columns),
    ];
  }

  showKeyState();
  render();
})();
