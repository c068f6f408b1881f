"""PDF -> JATS engines; the extract stage (citetune/extract.py) chooses one and runs it.

builtin   PyMuPDF-based, pure Python: layout -> zones -> structure -> references -> citations
cermine   CERMINE 1.13 run as a batch through java
"""
