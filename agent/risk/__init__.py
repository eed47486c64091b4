"""Risk management: sizing and vetoes. Nothing reaches the exchange without passing here."""
