"""A fake of the Bluefin Pro exchange API: a real HTTP + WebSocket server on 127.0.0.1 (one port serves the
auth, data and trade hosts' paths and the ``/ws/market`` and ``/ws/account`` streams), run in a background
thread, so tests use it in-process; ``python -m tests.fakes.bluefin_pro --port N`` runs it alone.

It simulates one exchange: the markets of ``shared/exchange/markets.json`` (BTC-PERP and ETH-PERP by
default) priced by real 1-minute candles, accounts (created at first login), isolated-margin positions,
order matching, fees, funding and liquidation. It checks every signature with its own code (``crypto``),
never with the platform's client.

Modules: ``crypto`` (signatures, order hash), ``market`` (specs, candles, e9 arithmetic), ``engine`` (the
exchange), ``render`` (answers and stream payloads in the spec's shapes), ``validation`` (checks of the
signed requests), ``server`` (HTTP, streams, misbehaviour, the Python API).

Choices where Bluefin's spec is silent:
- The price is the close of the open candle; ``advance(n)`` releases n file rows one by one (each step
  runs expiries, resting fills, triggers and liquidations at that close); ``set_price`` overrides the open
  candle's close (and stays in that candle's history).
- Takers fill at the market price; a resting limit fills at its own price once the price reaches it
  (touch). ``liquidity[symbol]`` caps what one order takes per price step.
- Every position is margined as isolated (margin = notional / the account's leverage for the market),
  whatever ``isIsolated`` says; the flag is kept and echoed. An order's ``leverageE9`` is checked (0, or
  1x to the market maximum floor(1/IMR)) but the account's leverage is what margins the position.
- A leverage change cancels the market's open (and not yet processed) orders with LEVERAGE_UPDATE, not
  its standby (untriggered stop / take-profit) orders, so protective stops survive it.
- Wallet balance changes by realised PnL, fees, funding and deposits only; margin is reserved from it.
  Funding amounts are balance changes (negative = paid); trading fees are positive when paid.
- Order hashes are answered without 0x. A duplicate hash is answered 202 with that hash, then an
  OrderCancellationUpdate with DUPLICATE_ORDER; the first order is untouched.
- signedAtMillis more than ``signed_at_window_s`` (60 s) old: login 401, order 202 then SIGNED_AT_TOO_OLD,
  leverage / margin 400; more than that in the future: 400.
- Not served: withdraw, account authorisation, TWAP orders, zkLogin, rewards, preferences.
"""

from tests.fakes.bluefin_pro.server import FakeBluefinPro

__all__ = ["FakeBluefinPro"]
