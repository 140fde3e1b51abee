// Charts: uPlot (served by Observian, loaded as a classic script: globalThis.uPlot) for time
// series, with markers (deploys, releases) drawn as vertical lines and zoom by dragging; and
// small SVG sparklines, which need no library.
import { h } from "./dom.js";

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** Colours for series, from the theme (light or dark). */
export function palette() {
  return [css("--series-1"), css("--series-2"), css("--series-3"), css("--series-4")];
}

/**
 * A time-series chart in `el`. `data`: [xs (seconds), ...ys]; `series`: [{label, color?,
 * value?(v) → text}]; `markers`: [{time (ISO), title, kind, url}]; `onZoom(fromMs, toMs)` when a
 * range is dragged. Resizes with its container. Returns {setData(data, markers), destroy()}.
 */
export function timeChart(el, { title, series, data, markers = [], onZoom, height = 220 }) {
  const uPlot = globalThis.uPlot;
  const colors = palette();
  let marks = markers;
  const axis = {
    stroke: css("--muted"),
    grid: { stroke: css("--grid"), width: 1 },
    ticks: { show: false },
  };
  const opts = {
    title,
    width: Math.max(200, el.clientWidth),
    height,
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true } },
    axes: [axis, { ...axis, size: 60 }],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color ?? colors[i % colors.length],
        width: 1.5,
        points: { show: false },
        value: s.value ? (_, v) => (v === null ? "–" : s.value(v)) : undefined,
      })),
    ],
    hooks: {
      draw: [(u) => drawMarkers(u, marks)],
      setSelect: [(u) => {
        if (u.select.width < 2 || !onZoom) return;
        const from = u.posToVal(u.select.left, "x") * 1000;
        const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        onZoom(Math.round(from), Math.round(to));
      }],
    },
  };
  const plot = new uPlot(opts, data, el);
  const resize = new ResizeObserver(() =>
    plot.setSize({ width: Math.max(200, el.clientWidth), height })
  );
  resize.observe(el);
  return {
    setData(next, nextMarkers = marks) {
      marks = nextMarkers;
      plot.setData(next);
    },
    destroy() {
      resize.disconnect();
      plot.destroy();
    },
  };
}

function drawMarkers(u, markers) {
  if (!markers.length) return;
  const ctx = u.ctx;
  const { top, height } = u.bbox;
  ctx.save();
  ctx.lineWidth = Math.max(1, devicePixelRatio);
  ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
  for (const m of markers) {
    const x = Math.round(u.valToPos(Date.parse(m.time) / 1000, "x", true));
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
    ctx.strokeStyle = m.kind === "release" ? css("--marker-release") : css("--marker-deploy");
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
  }
  ctx.restore();
}

/**
 * An SVG sparkline of one or two series (e.g. requests and errors) over the same points, with an
 * accessible label. Values ≥ 0.
 */
export function sparkline(series, { width = 120, height = 28, label }) {
  const n = Math.max(...series.map((s) => s.values.length));
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.classList.add("sparkline");
  for (const s of series) {
    const points = s.values.map((v, i) =>
      `${n <= 1 ? width / 2 : (i / (n - 1)) * width},${height - 1 - (v / max) * (height - 2)}`
    );
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("class", s.className);
    svg.append(line);
  }
  return h("span", { class: "spark" }, svg);
}
