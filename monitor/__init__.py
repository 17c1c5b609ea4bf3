"""news-monitor: watch news feeds, match watch rules, alert once per story."""

__version__ = "0.1.0"
