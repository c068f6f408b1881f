"""citetune: from arXiv papers to a citation-grounded fine-tuning set and a model that cites real DOIs."""

__version__ = "0.1.0"
