// BluefinAI Trader dashboard: the price chart (candles, volume, EMA 20/50, Bollinger bands, entries and exits
// as markers, the working stop and targets as price lines) and the equity / drawdown chart, drawn with
// TradingView's lightweight-charts (window.LightweightCharts, served from node_modules). The data comes from
// the agent API (/api/candles, /api/chart/overlays, /api/equity) through the dashboard's callApi; a
// `market` event of the chosen symbol (a candle closed) reloads the price chart, a trade the equity.
// window.__bluefinai shows what was drawn (for tests and debugging).
(function () {
  "use strict";
  const LWC = window.LightweightCharts;
  const EQUITY_EVERY_MS = 60000;
  const RELOAD_DELAY_MS = 250;
  const COLORS = {
    text: "#d7deea", grid: "#1f2a3d", up: "#22c55e", down: "#ef4444", ema20: "#38bdf8", ema50: "#f59e0b",
    bb: "#a78bfa", stop: "#ef4444", target: "#22c55e", entry: "#38bdf8", equity: "#38bdf8", drawdown: "#ef4444",
  };
  const $ = (id) => document.getElementById(id);
  const debug = {
    candles: 0, markers: 0, priceLines: 0, equityPoints: 0, lastEquity: null, loads: 0, symbol: null, timeframe: null,
  };
  window.__bluefinai = debug;

  let api = null;
  let price = null;
  let equity = null;
  let lines = [];
  let reloadTimer = null;

  function baseOptions(el) {
    return {
      width: el.clientWidth, height: el.clientHeight, autoSize: true,
      layout: { background: { color: "transparent" }, textColor: COLORS.text, fontSize: 11 },
      grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: COLORS.grid },
      rightPriceScale: { borderColor: COLORS.grid },
    };
  }

  const quiet = { priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false };

  function createPriceChart(el) {
    const chart = LWC.createChart(el, baseOptions(el));
    const candles = chart.addCandlestickSeries({
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false, wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    });
    const volume = chart.addHistogramSeries({ priceScaleId: "volume", priceFormat: { type: "volume" }, ...quiet });
    chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    const line = (color, style) => chart.addLineSeries({ color, lineWidth: 1, lineStyle: style, ...quiet });
    const dashed = LWC.LineStyle.Dashed;
    const indicators = {
      ema_20: line(COLORS.ema20, LWC.LineStyle.Solid), ema_50: line(COLORS.ema50, LWC.LineStyle.Solid),
      bb_upper: line(COLORS.bb, dashed), bb_mid: line(COLORS.bb, LWC.LineStyle.Dotted), bb_lower: line(COLORS.bb, dashed),
    };
    return { chart, candles, volume, indicators };
  }

  function createEquityChart(el) {
    const chart = LWC.createChart(el, { ...baseOptions(el), leftPriceScale: { visible: true, borderColor: COLORS.grid } });
    const curve = chart.addLineSeries({ color: COLORS.equity, lineWidth: 2, priceScaleId: "right" });
    const drawdown = chart.addAreaSeries({
      priceScaleId: "left", lineColor: COLORS.drawdown, topColor: "rgba(239,68,68,0.05)",
      bottomColor: "rgba(239,68,68,0.35)", lineWidth: 1, priceFormat: { type: "percent" }, ...quiet,
    });
    return { chart, curve, drawdown };
  }

  function setStatus(id, kind, text) {
    const el = $(id);
    el.dataset.kind = kind;
    el.textContent = text;
  }

  const stamp = () => `${new Date().toISOString().slice(11, 19)} UTC`;

  function fillTimeframes(timeframes, chosen) {
    const select = $("chart-timeframe");
    const current = [...select.options].map((o) => o.value).join(",");
    if (current !== timeframes.join(",")) {
      select.replaceChildren(...timeframes.map((tf) => { const o = document.createElement("option"); o.value = tf; o.textContent = tf; return o; }));
    }
    select.value = chosen;
  }

  // markers on bars: a time after the last closed candle (a trade in the candle still open) goes on the last bar
  function toMarkers(items, first, last) {
    return items
      .filter((m) => m.time >= first)
      .map((m) => {
        const buy = m.side === "BUY";
        return {
          time: Math.min(m.time, last), position: buy ? "belowBar" : "aboveBar", shape: buy ? "arrowUp" : "arrowDown",
          color: m.kind === "exit" ? COLORS.ema50 : buy ? COLORS.up : COLORS.down, text: m.text,
        };
      })
      .sort((a, b) => a.time - b.time);
  }

  function drawLines(items) {
    lines.forEach((l) => price.candles.removePriceLine(l));
    lines = items.map((l) => price.candles.createPriceLine({
      price: l.price, color: COLORS[l.kind] || COLORS.text, lineWidth: 1,
      lineStyle: l.kind === "entry" ? LWC.LineStyle.Dotted : LWC.LineStyle.Dashed, axisLabelVisible: true, title: l.title,
    }));
  }

  function query(params) {
    return Object.entries(params).filter(([, v]) => v).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
  }

  async function loadPrice() {
    const symbol = $("chart-symbol").value;
    const timeframe = $("chart-timeframe").value || debug.timeframe;
    try {
      const [data, overlays] = await Promise.all([
        api(`/api/candles?${query({ symbol, timeframe, limit: 300 })}`),
        api(`/api/chart/overlays?${query({ symbol, timeframe })}`),
      ]);
      if (symbol !== $("chart-symbol").value) return;  // the selection changed meanwhile: its own load follows
      const rows = data.candles || [];
      price.candles.setData(rows.map((c) => ({ time: c.time, open: c.open, high: c.high, low: c.low, close: c.close })));
      price.volume.setData(rows.map((c) => ({
        time: c.time, value: c.volume, color: c.close >= c.open ? "rgba(34,197,94,0.35)" : "rgba(239,68,68,0.35)",
      })));
      Object.entries(price.indicators).forEach(([name, series]) =>
        series.setData(rows.filter((c) => c[name] !== null).map((c) => ({ time: c.time, value: c[name] }))));
      const markers = rows.length ? toMarkers(overlays.markers || [], rows[0].time, rows[rows.length - 1].time) : [];
      price.candles.setMarkers(markers);
      drawLines(overlays.price_lines || []);
      fillTimeframes(data.timeframes || [], data.timeframe);
      Object.assign(debug, {
        candles: rows.length, markers: markers.length, priceLines: lines.length, loads: debug.loads + 1,
        symbol: data.symbol, timeframe: data.timeframe,
      });
      const el = $("price-chart");
      Object.assign(el.dataset, {
        candles: rows.length, markers: markers.length, priceLines: lines.length, symbol: data.symbol, timeframe: data.timeframe,
      });
      const source = data.stale ? `${data.source} prices, STALE` : `${data.source} prices`;
      setStatus("chart-status", "ok", `${rows.length} ${data.timeframe} candles of ${data.symbol} (${source}) · updated ${stamp()}`);
    } catch (err) {
      setStatus("chart-status", "error", `Price chart unavailable: ${err.message}`);
    }
  }

  async function loadEquity() {
    try {
      const data = await api("/api/equity");
      const points = [...(data.points || [])];
      const now = data.current || {};
      if (!points.length || now.time > points[points.length - 1].time) {
        const peak = Math.max(data.starting_equity, ...points.map((p) => p.equity), now.equity);
        points.push({ time: now.time, equity: now.equity, drawdown: now.equity / peak - 1 });
      }
      equity.curve.setData(points.map((p) => ({ time: p.time, value: p.equity })));
      equity.drawdown.setData(points.map((p) => ({ time: p.time, value: p.drawdown * 100 })));
      equity.chart.timeScale().fitContent();
      Object.assign(debug, { equityPoints: points.length, lastEquity: points[points.length - 1].equity });
      $("equity-chart").dataset.points = points.length;
      const worst = Math.min(...points.map((p) => p.drawdown));
      setStatus("equity-status", "ok",
        `${points.length} points from the closed trades and the equity now · worst drawdown ${(worst * 100).toFixed(2)}% · updated ${stamp()}`);
    } catch (err) {
      setStatus("equity-status", "error", `Equity chart unavailable: ${err.message}`);
    }
  }

  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(loadPrice, RELOAD_DELAY_MS);
  }

  function start(options) {
    api = options.api;
    if (!LWC) {
      setStatus("chart-status", "error", "Charts unavailable: lightweight-charts missing (npm ci --prefix websocket/dashboard)");
      return;
    }
    if (!price) {
      price = createPriceChart($("price-chart"));
      equity = createEquityChart($("equity-chart"));
      $("chart-symbol").addEventListener("change", () => { $("chart-timeframe").value = ""; debug.timeframe = null; loadPrice(); });
      $("chart-timeframe").addEventListener("change", loadPrice);
      setInterval(loadEquity, EQUITY_EVERY_MS);
    }
    const mine = (d) => d && d.symbol === $("chart-symbol").value;
    options.socket.on("market", (d) => { if (mine(d)) reloadSoon(); });
    ["order", "position"].forEach((name) => options.socket.on(name, (d) => { if (mine(d)) reloadSoon(); }));
    options.socket.on("trade", (d) => { if (mine(d)) reloadSoon(); loadEquity(); });
    loadPrice();
    loadEquity();
  }

  window.bluefinaiCharts = { start, reload: loadPrice, reloadEquity: loadEquity };
})();
