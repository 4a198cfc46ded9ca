// Small SVG charts for the dashboard: a log-log scatter with policy regions, histogram small multiples, a line
// chart, and learning curves with their spread over seeds. Hand-written on purpose: the service ships no front-end
// build and its machines may have no internet.
'use strict';

const Charts = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'];

  function svgEl(tag, attrs = {}, text) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value !== null && value !== undefined) node.setAttribute(key, String(value));
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function format(value) {
    if (!Number.isFinite(value)) return String(value);
    const magnitude = Math.abs(value);
    if (magnitude >= 1000) return value.toFixed(0);
    if (magnitude >= 100) return String(Math.round(value));
    return String(Number(value.toPrecision(3)));
  }

  function linearTicks(lo, hi, count) {
    const span = hi - lo || 1;
    const raw = span / count;
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => span / s <= count) || power * 10;
    const ticks = [];
    for (let tick = Math.ceil(lo / step) * step; tick <= hi + step * 1e-9; tick += step) {
      ticks.push(Math.abs(tick) < step * 1e-9 ? 0 : Number(tick.toPrecision(12)));
    }
    return ticks;
  }

  function logTicks(lo, hi) {
    const first = Math.floor(Math.log10(lo));
    const last = Math.ceil(Math.log10(hi));
    for (const mantissas of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
      const ticks = [];
      for (let exponent = first; exponent <= last; exponent += 1) {
        for (const m of mantissas) {
          const tick = Number((m * 10 ** exponent).toPrecision(12));
          if (tick >= lo && tick <= hi) ticks.push(tick);
        }
      }
      if (ticks.length >= 4) return ticks;
    }
    // Less than a decade wide: evenly spaced labels read better than one or two powers.
    return linearTicks(lo, hi, 8);
  }

  // A scale maps a value onto pixels; `ticks` are the values worth labelling.
  function scale(kind, lo, hi, from, to, tickCount = 6) {
    const f = kind === 'log' ? Math.log10 : (v) => v;
    const a = f(lo);
    const b = f(hi);
    const map = (value) => from + ((f(value) - a) / (b - a || 1)) * (to - from);
    map.ticks = () => (kind === 'log' ? logTicks(lo, hi) : linearTicks(lo, hi, tickCount));
    map.lo = lo;
    map.hi = hi;
    return map;
  }

  function frame(width, height, margin) {
    const root = svgEl('svg', {
      class: 'chart',
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: 'img',
      preserveAspectRatio: 'xMinYMin meet',
    });
    return { root, left: margin.left, right: width - margin.right, top: margin.top, bottom: height - margin.bottom };
  }

  function axes(box, x, y, labels, options = {}) {
    const grid = svgEl('g', { class: 'grid' });
    const axis = svgEl('g', { class: 'axis' });
    for (const tick of x.ticks()) {
      const px = x(tick);
      if (options.grid !== false) grid.append(svgEl('line', { x1: px, x2: px, y1: box.top, y2: box.bottom }));
      axis.append(svgEl('line', { x1: px, x2: px, y1: box.bottom, y2: box.bottom + 4 }));
      axis.append(svgEl('text', { x: px, y: box.bottom + 15, 'text-anchor': 'middle' }, format(tick)));
    }
    if (y) {
      for (const tick of y.ticks()) {
        const py = y(tick);
        if (options.grid !== false) grid.append(svgEl('line', { x1: box.left, x2: box.right, y1: py, y2: py }));
        axis.append(svgEl('line', { x1: box.left - 4, x2: box.left, y1: py, y2: py }));
        const label = options.yFormat ? options.yFormat(tick) : format(tick);
        axis.append(svgEl('text', { x: box.left - 7, y: py + 3.5, 'text-anchor': 'end' }, label));
      }
      axis.append(svgEl('line', { x1: box.left, x2: box.left, y1: box.top, y2: box.bottom }));
    }
    axis.append(svgEl('line', { x1: box.left, x2: box.right, y1: box.bottom, y2: box.bottom }));
    if (labels.x) {
      const cx = (box.left + box.right) / 2;
      axis.append(svgEl('text', { class: 'axis-title', x: cx, y: box.bottom + 32, 'text-anchor': 'middle' }, labels.x));
    }
    if (labels.y) {
      const cy = (box.top + box.bottom) / 2;
      axis.append(svgEl('text', {
        class: 'axis-title', x: 14, y: cy, 'text-anchor': 'middle', transform: `rotate(-90 14 ${cy})`,
      }, labels.y));
    }
    box.root.append(grid, axis);
  }

  function clamp(value, lo, hi) {
    return Math.min(Math.max(value, lo), hi);
  }

  // The padded positive extent of `values` (log axes need positive bounds).
  function logExtent(values) {
    const positive = values.filter((v) => Number.isFinite(v) && v > 0);
    if (!positive.length) return [0.1, 10];
    const lo = Math.min(...positive);
    const hi = Math.max(...positive);
    return [lo / 1.15, hi * 1.15];
  }

  /**
   * IFD × r-IFD of every scored candidate, log-log, coloured by decision; `region` draws the policy's cuts:
   * {ifdMax, rifdMax} as dashed lines, the kept side shaded when `shade` is true.
   */
  function scatter(points, region) {
    const box = frame(660, 440, { left: 60, right: 18, top: 14, bottom: 46 });
    const thresholds = region || {};
    const xs = points.map((p) => p.ifd).concat(thresholds.ifdMax ? [thresholds.ifdMax] : []);
    const ys = points.map((p) => p.rifd).concat(thresholds.rifdMax ? [thresholds.rifdMax] : []);
    const [x0, x1] = logExtent(xs);
    const [y0, y1] = logExtent(ys);
    const x = scale('log', x0, x1, box.left, box.right);
    const y = scale('log', y0, y1, box.bottom, box.top);
    axes(box, x, y, { x: 'IFD = PPL(A|Q) / PPL(A)   (log scale)', y: 'r-IFD = PPL(Q|A′) / PPL(Q)   (log scale)' });

    const overlay = svgEl('g', { class: 'regions' });
    if (thresholds.shade) {
      const right = thresholds.ifdMax ? clamp(x(thresholds.ifdMax), box.left, box.right) : box.right;
      const top = thresholds.rifdMax ? clamp(y(thresholds.rifdMax), box.top, box.bottom) : box.top;
      overlay.append(svgEl('rect', {
        class: 'region', x: box.left, y: top, width: Math.max(0, right - box.left), height: Math.max(0, box.bottom - top),
      }));
    }
    if (thresholds.ifdMax) {
      const px = x(thresholds.ifdMax);
      overlay.append(svgEl('line', { class: 'threshold', x1: px, x2: px, y1: box.top, y2: box.bottom }));
      overlay.append(svgEl('text', { class: 'threshold-label', x: px + 4, y: box.top + 12 }, `IFD = ${format(thresholds.ifdMax)}`));
    }
    if (thresholds.rifdMax) {
      const py = y(thresholds.rifdMax);
      overlay.append(svgEl('line', { class: 'threshold', x1: box.left, x2: box.right, y1: py, y2: py }));
      overlay.append(svgEl('text', { class: 'threshold-label', x: box.right - 4, y: py - 5, 'text-anchor': 'end' }, `r-IFD = ${format(thresholds.rifdMax)}`));
    }
    box.root.append(overlay);

    // Rejected first, so the retained (fewer, the answer to "what was kept") sit on top.
    const layer = svgEl('g', { class: 'points' });
    for (const decision of ['rejected', 'retained']) {
      for (const p of points) {
        if (p.decision !== decision) continue;
        const dot = svgEl('circle', { class: `point ${decision}`, cx: x(p.ifd).toFixed(1), cy: y(p.rifd).toFixed(1), r: 3.3 });
        dot.dataset.sample = p.sample_id;
        const score = p.frontier_score === null ? '–' : p.frontier_score.toFixed(2);
        dot.append(svgEl('title', {}, `${p.sample_id} · ${p.teacher || 'original'}\nIFD ${format(p.ifd)} · r-IFD ${format(p.rifd)} · frontier ${score}\n${decision} (sample: ${p.sample_decision || '–'}, ${p.reason || '–'})`));
        layer.append(dot);
      }
    }
    box.root.append(layer);
    return box.root;
  }

  /**
   * One small histogram per group ({name, values}) over shared bins and a shared y scale (share of the group's
   * values), with the band [low, high] shaded.
   */
  function histograms(groups, band, bins = 24) {
    const all = groups.flatMap((g) => g.values);
    let lo = Math.min(...all, band.low);
    let hi = Math.max(...all, band.high);
    const pad = (hi - lo) * 0.02 || 1;
    lo -= pad;
    hi += pad;
    const width = (hi - lo) / bins;
    const shares = groups.map((group) => {
      const counts = new Array(bins).fill(0);
      for (const v of group.values) counts[Math.min(bins - 1, Math.floor((v - lo) / width))] += 1;
      return counts.map((c) => ({ count: c, share: group.values.length ? c / group.values.length : 0 }));
    });
    const top = Math.max(0.05, ...shares.flat().map((b) => b.share));
    return groups.map((group, index) => {
      const box = frame(300, 150, { left: 40, right: 8, top: 8, bottom: 34 });
      const x = scale('linear', lo, hi, box.left, box.right, 5);
      const y = scale('linear', 0, top, box.bottom, box.top, 3);
      box.root.append(svgEl('rect', {
        class: 'band', x: x(band.low), y: box.top, width: Math.max(0, x(band.high) - x(band.low)), height: box.bottom - box.top,
      }));
      for (const edge of [band.low, band.high]) {
        box.root.append(svgEl('line', { class: 'band-edge', x1: x(edge), x2: x(edge), y1: box.top, y2: box.bottom }));
      }
      axes(box, x, y, { x: 'frontier score' }, { yFormat: (v) => `${Math.round(v * 100)}%` });
      const bars = svgEl('g', { class: 'bars' });
      shares[index].forEach((bin, i) => {
        if (!bin.count) return;
        const left = x(lo + i * width);
        const rect = svgEl('rect', {
          class: 'bar', x: (left + 0.5).toFixed(1), y: y(bin.share).toFixed(1),
          width: Math.max(1, x(lo + (i + 1) * width) - left - 1).toFixed(1), height: (box.bottom - y(bin.share)).toFixed(1),
        });
        const from = lo + i * width;
        rect.append(svgEl('title', {}, `${group.name}: ${bin.count} candidates (${Math.round(bin.share * 100)}%) in [${from.toFixed(2)}, ${(from + width).toFixed(2)})`));
        bars.append(rect);
      });
      box.root.append(bars);
      return box.root;
    });
  }

  /**
   * A line chart: `main` ({points: [{x, y}]}) drawn thick with a dot per point, `series` ({name, points}) thin,
   * y in [0, 1] as percentages, an optional dashed marker at x = `current`.
   */
  function curve(main, series, labels, current) {
    const box = frame(560, 320, { left: 52, right: 18, top: 12, bottom: 46 });
    const xs = main.points.map((p) => p.x);
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    const x = scale('linear', lo, hi === lo ? lo + 1 : hi, box.left, box.right, 7);
    const y = scale('linear', 0, 1, box.bottom, box.top, 5);
    axes(box, x, y, labels, { yFormat: (v) => `${Math.round(v * 100)}%` });
    if (current !== null && current !== undefined && current >= lo && current <= hi) {
      box.root.append(svgEl('line', { class: 'current', x1: x(current), x2: x(current), y1: box.top, y2: box.bottom }));
      box.root.append(svgEl('text', { class: 'threshold-label', x: x(current) + 4, y: box.top + 11 }, "decision set's value"));
    }
    const line = (points) => points.filter((p) => p.y !== null && p.y !== undefined)
      .map((p, i) => `${i ? 'L' : 'M'}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ');
    series.forEach((s, i) => {
      const path = svgEl('path', { class: 'teacher-curve', d: line(s.points), stroke: PALETTE[i % PALETTE.length] });
      path.append(svgEl('title', {}, s.name));
      box.root.append(path);
    });
    box.root.append(svgEl('path', { class: 'curve', id: 'whatif-retained', d: line(main.points) }));
    for (const p of main.points) {
      const dot = svgEl('circle', { class: 'curve-point', cx: x(p.x).toFixed(1), cy: y(p.y).toFixed(1), r: 3.6 });
      dot.append(svgEl('title', {}, p.title || `${format(p.x)}: ${Math.round(p.y * 1000) / 10}%`));
      box.root.append(dot);
    }
    return box.root;
  }

  /**
   * Learning curves: per series ({name, color, mean: [{x, y}], band: [{x, lo, hi}] | null}) the mean as a line with
   * a dot per point and, when given, the spread as a shaded band. `options.percent` puts y in [0, 1] as
   * percentages; otherwise y spans the data. x runs from 0 to `options.xMax` (or the last point).
   */
  function learningCurves(series, labels, options = {}) {
    const box = frame(560, 300, { left: 56, right: 18, top: 12, bottom: 46 });
    const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);
    const xs = series.flatMap((s) => s.mean.map((p) => p.x));
    const xHi = Math.max(options.xMax || 0, ...xs, 1);
    const x = scale('linear', 0, xHi, box.left, box.right, 6);
    let y;
    if (options.percent) {
      y = scale('linear', 0, 1, box.bottom, box.top, 5);
    } else {
      const ys = series.flatMap((s) => s.mean.map((p) => p.y).concat((s.band || []).flatMap((b) => [b.lo, b.hi]))).filter(finite);
      let lo = ys.length ? Math.min(...ys) : 0;
      let hi = ys.length ? Math.max(...ys) : 1;
      const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
      lo = Math.max(0, lo - pad);
      hi += pad;
      y = scale('linear', lo, hi, box.bottom, box.top, 5);
    }
    axes(box, x, y, labels, options.percent ? { yFormat: (v) => `${Math.round(v * 100)}%` } : {});
    const show = options.percent ? (v) => `${(v * 100).toFixed(1)}%` : (v) => v.toFixed(3);
    const bands = svgEl('g', { class: 'bands' });
    const lines = svgEl('g', { class: 'lines' });
    for (const s of series) {
      const band = (s.band || []).filter((b) => finite(b.lo) && finite(b.hi));
      if (band.length) {
        const upper = band.map((b, i) => `${i ? 'L' : 'M'}${x(b.x).toFixed(1)},${y(b.hi).toFixed(1)}`);
        const lower = [...band].reverse().map((b) => `L${x(b.x).toFixed(1)},${y(b.lo).toFixed(1)}`);
        const area = svgEl('path', { class: 'probe-band', d: `${upper.join(' ')} ${lower.join(' ')} Z`, fill: s.color, 'data-condition': s.name });
        area.append(svgEl('title', {}, `${s.name}: min–max over seeds`));
        bands.append(area);
      }
      const points = s.mean.filter((p) => finite(p.y));
      if (!points.length) continue;
      const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ');
      const line = svgEl('path', { class: 'probe-curve', d, stroke: s.color, 'data-condition': s.name });
      line.append(svgEl('title', {}, s.name));
      lines.append(line);
      for (const p of points) {
        const dot = svgEl('circle', { class: 'probe-point', cx: x(p.x).toFixed(1), cy: y(p.y).toFixed(1), r: 2.8, fill: s.color });
        dot.append(svgEl('title', {}, `${s.name}, step ${p.x}: ${show(p.y)}${p.n > 1 ? ` (mean of ${p.n} seeds)` : ''}`));
        lines.append(dot);
      }
    }
    box.root.append(bands, lines);
    return box.root;
  }

  return { scatter, histograms, curve, learningCurves, format, PALETTE };
})();
