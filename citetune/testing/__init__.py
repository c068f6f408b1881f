"""Test support shared by tests/ and bench/: loopback arXiv and Crossref servers, a stand-in for
CERMINE's command line, SFT records from the sample corpus, and gold-set scoring.

The library proper never imports this package.
"""
