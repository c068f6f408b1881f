"""Imported once by the extract stage's fork server, so that every PDF's process is forked with the
built-in engine imported and the reference parser's model open, instead of opening it per PDF."""

from citetune.refparse.crf import shipped_tagger

try:
    shipped_tagger()
except Exception:  # noqa: BLE001 - the stage reports a missing or broken model before any PDF
    pass
