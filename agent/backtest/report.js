// report.html's charts, drawn from #report-data with lightweight-charts (window.LightweightCharts);
// window.__report says what was drawn (for tests and debugging). Inlined by agent/backtest/report_page.py.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var debug = { candles: 0, markers: 0, equityPoints: 0, drawn: [] };
  window.__report = debug;
  var LWC = window.LightweightCharts;
  if (!LWC) {
    document.querySelectorAll(".chart").forEach(function (el) {
      el.innerHTML = '<p class="nochart">The charts need lightweight-charts: run npm ci --prefix websocket/dashboard and write the report again.</p>';
    });
    return;
  }
  function options(el) {
    return {
      autoSize: true, layout: { background: { color: "#ffffff" }, textColor: "#374151", fontSize: 11 },
      grid: { vertLines: { color: "#f1f5f9" }, horzLines: { color: "#f1f5f9" } },
      timeScale: { timeVisible: true, secondsVisible: false, minBarSpacing: 0.01 }, rightPriceScale: { borderVisible: false },
    };
  }
  function points(times, values) {
    var out = [];
    for (var i = 0; i < times.length; i++) if (values[i] !== null) out.push({ time: times[i], value: values[i] });
    return out;
  }
  var quiet = { priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false };
  var price = data.price;
  var priceEl = document.querySelector('[data-testid="report-price-chart"]');
  if (price && priceEl && price.time.length) {
    var chart = LWC.createChart(priceEl, options(priceEl));
    var candles = chart.addCandlestickSeries({ upColor: "#16a34a", downColor: "#dc2626", borderVisible: false,
      wickUpColor: "#16a34a", wickDownColor: "#dc2626" });
    var bars = price.time.map(function (t, i) {
      return { time: t, open: price.open[i], high: price.high[i], low: price.low[i], close: price.close[i] };
    });
    candles.setData(bars);
    var volume = chart.addHistogramSeries(Object.assign({ priceScaleId: "volume", priceFormat: { type: "volume" } }, quiet));
    chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    volume.setData(price.time.map(function (t, i) {
      return { time: t, value: price.volume[i] || 0,
        color: price.close[i] >= price.open[i] ? "rgba(22,163,74,0.35)" : "rgba(220,38,38,0.35)" };
    }));
    var styles = { ema_20: ["#0284c7", 0], ema_50: ["#d97706", 0], bb_upper: ["#7c3aed", 2], bb_mid: ["#7c3aed", 1], bb_lower: ["#7c3aed", 2] };
    Object.keys(styles).forEach(function (name) {
      var values = price.lines[name];
      if (!values) return;
      var s = chart.addLineSeries(Object.assign({ color: styles[name][0], lineWidth: 1, lineStyle: styles[name][1] }, quiet));
      s.setData(points(price.time, values));
    });
    var labelled = price.markers.length <= 20; // labels on many markers hide the candles
    candles.setMarkers(price.markers.map(function (m) {
      return { time: m.time, position: m.position, shape: m.shape, color: m.color, text: labelled ? m.text : "" };
    }));
    chart.timeScale().fitContent();
    debug.candles = bars.length;
    debug.markers = price.markers.length;
    debug.drawn.push("price");
  }
  var equity = data.equity;
  var equityEl = document.querySelector('[data-testid="report-equity-chart"]');
  var drawdownEl = document.querySelector('[data-testid="report-drawdown-chart"]');
  if (equity && equityEl && equity.time.length) {
    var eq = LWC.createChart(equityEl, options(equityEl));
    eq.addLineSeries({ color: "#0284c7", lineWidth: 2 }).setData(points(equity.time, equity.equity));
    eq.timeScale().fitContent();
    var dd = LWC.createChart(drawdownEl, options(drawdownEl));
    dd.addAreaSeries({ lineColor: "#dc2626", topColor: "rgba(220,38,38,0.05)", bottomColor: "rgba(220,38,38,0.4)",
      lineWidth: 1, invertFilledArea: true,
      priceFormat: { type: "custom", minMove: 0.01, formatter: function (v) { return v.toFixed(2) + "%"; } } }).setData(points(equity.time, equity.drawdown));
    dd.timeScale().fitContent();
    debug.equityPoints = equity.time.length;
    debug.drawn.push("equity", "drawdown");
  }
})();
