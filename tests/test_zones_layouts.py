"""The built-in engine on layouts that publishers use: structured abstracts, footnotes and author
notes, raised citation labels glued to words, reference lists sharing their page with the body.
Each paper is drawn with PyMuPDF at chosen positions and sizes, extracted, and read back as JATS."""

import pytest
from lxml import etree

from citetune.parse import citation_rows, read_references
from citetune.testing.pdf_papers import SmallPaper

REFERENCES = ["1. Smith J, Lee K. A first study of the effect. Nature. 2019;5:1-2.",
              "2. Chen L. A second study of the effect. Science. 2020;6:3-4.",
              "3. Park M. A third study of the effect. Cell. 2021;7:5-6.",
              "4. Kim S. A fourth study of the effect. Lancet. 2022;8:7-8.",
              "5. Wu T. A fifth study of the effect. BMJ. 2023;9:9-10."]
FILLER = "Care in clinics differs from place to place, and so do the patients who come to them."


def cited(article) -> list[tuple[str, str]]:
    """(reference id, citing sentence) for each citation the parse stage reads."""
    rows, _ = citation_rows(article, "paper")
    return [(r["ref_id"], r["context"]) for r in rows]


def text_of(article, tag: str) -> list[str]:
    return [" ".join(etree.tostring(el, method="text", encoding=str).split()) for el in article.iter(tag)]


# --- a: structured abstracts -----------------------------------------------------------------------

def structured_abstract_paper(labels: str, heading: tuple[str, float, bool]) -> SmallPaper:
    """A boxed abstract set in 9 pt with Background/Methods/Results/Conclusions labels, run in
    ('Background: …') or on lines of their own in bold; then sections headed as `heading` says
    (first heading's text, size, bold)."""
    first, size, bold = heading
    paper = SmallPaper("Outcomes of a trial in many clinics", heading="")
    paper.write(72, 80, "Ann Smith, Bob Jones", size=11)
    paper.page.draw_rect((66, 98, 530, 262))
    paper.write(72, 110, "Abstract", size=11, bold=True)
    y = 124
    for label, text in [("Background", "Trials in many clinics are rare and their effects"),
                        ("Methods", "We ran a trial in forty clinics over two years, and"),
                        ("Results", "The effect was larger in small clinics than in"),
                        ("Conclusions", "Small clinics gain the most from the new care, as")]:
        if labels == "own line":
            paper.write(72, y, label, size=9, bold=True)
            y += 11
            paper.write(72, y, text, size=9)
        else:
            paper.run(72, y, [("bold", label + ": "), text], size=9)
        paper.write(72, y + 11, "results in the wider population of patients show.", size=9)
        y += 24
    paper.write(72, 290, first, size=size, bold=bold)
    y = paper.lines(308, ["Many trials were run in single clinics [1]. Few looked at many clinics at",
                          "once [2]. We report such a trial and compare it with earlier work [1, 2]."]
                    + [FILLER] * 10)
    paper.write(72, y + 10, "2 Methods" if first[0].isdigit() else "Methods", size=size, bold=bold)
    y = paper.lines(y + 28, ["The trial ran in forty clinics as described before [2]."])
    paper.write(72, y + 20, "References", size=12, bold=True)
    paper.lines(y + 40, REFERENCES[:2], step=14)
    return paper


@pytest.mark.parametrize("labels, heading", [
    ("run in", ("Background", 12, False)),  # headings in larger plain type
    ("own line", ("Background", 12, True)),  # labels that look like the headings after them
    ("run in", ("1 Introduction", 10, False)),  # numbered headings in the running text's type
    ("own line", ("1 INTRODUCTION", 10, False)),
])
def test_a_structured_abstract_ends_where_the_first_section_starts(tmp_path, labels, heading):
    article = structured_abstract_paper(labels, heading).extract(tmp_path / "abstract.pdf")
    abstract = text_of(article, "abstract")[0]
    assert "Trials in many clinics" in abstract and "Small clinics gain the most" in abstract
    assert "Many trials" not in abstract and "forty clinics as described" not in abstract
    first = heading[0].split()[-1]
    assert [s.findtext("title") for s in article.iter("sec")] == [first, "Methods"]
    assert cited(article) == [
        ("ref1", "Many trials were run in single clinics."), ("ref2", "Few looked at many clinics at once."),
        ("ref1", "We report such a trial and compare it with earlier work."),
        ("ref2", "We report such a trial and compare it with earlier work."),
        ("ref2", "The trial ran in forty clinics as described before.")]


# --- b: footnotes and author notes ----------------------------------------------------------------

def two_column_first_page(paper: SmallPaper, left: list, right: list, notes: list, note_size: float) -> None:
    """Left and right columns of body text from y=110 (10 pt on 12 pt), author notes at the foot of
    the left column in `note_size` type."""
    paper.lines(110, left, x=72)
    paper.lines(110, right, x=310)
    paper.lines(780 - 10 * (len(notes) - 1), notes, step=10, size=note_size, x=72)


@pytest.mark.parametrize("note_size", [7, 9])  # well below the running text's size, and nearly as large
def test_author_notes_at_the_foot_of_a_column_never_enter_a_sentence(tmp_path, note_size):
    paper = SmallPaper("Effects in larger cohorts")
    left = ["The effect is common in adults and in", "children of all ages in many places.",
            "It was seen in a large cohort of many", "thousands of patients that were followed"]
    left += ["for years by their doctors and nurses."] * 6 + ["A study in two towns showed it in"]
    right = ["patients of all ages [1]. Later work found it", "in smaller groups too [2]."]
    right += ["Nobody has seen it in animals so far."] * 9
    notes = [[("sup", "*"), "Corresponding author. E-mail: ann@example.org"],
             [("sup", "1"), "Department of Medicine, University of Somewhere"]]
    two_column_first_page(paper, left, right, notes, note_size)
    paper.write(310, 260, "References", size=12, bold=True)
    paper.lines(280, [(310, REFERENCES[0][:45]), (320, REFERENCES[0][45:]), (310, REFERENCES[1][:45]),
                      (320, REFERENCES[1][45:])])
    article = paper.extract(tmp_path / "notes.pdf")
    assert cited(article) == [("ref1", "A study in two towns showed it in patients of all ages."),
                              ("ref2", "Later work found it in smaller groups too.")]
    body = " ".join(text_of(article, "p"))
    assert "Corresponding" not in body and "Department" not in body and "E-mail" not in body


def test_a_footnote_amid_the_column_does_not_part_its_sentence(tmp_path):
    paper = SmallPaper("Effects in larger cohorts")
    y = paper.lines(110, [FILLER] * 8 + ["The results of the study show a sentence that runs past a",
                                         "footnote the publisher placed"])
    paper.lines(y + 4, [[("sup", "2"), "A footnote set amid the column in smaller type."]], size=7)
    paper.lines(y + 20, ["in the middle of the column [2]. Another sentence follows here [1]."] + [FILLER] * 4)
    paper.write(72, y + 100, "References", size=12, bold=True)
    paper.lines(y + 120, REFERENCES[:2], step=14)
    article = paper.extract(tmp_path / "amid.pdf")
    assert cited(article) == [
        ("ref2", "The results of the study show a sentence that runs past a footnote the publisher placed in the "
                 "middle of the column."),
        ("ref1", "Another sentence follows here.")]


# --- c: raised citation labels ---------------------------------------------------------------------

def test_raised_labels_glued_to_a_word_or_apart_by_spaces_keep_every_label(tmp_path):
    paper = SmallPaper("Effects in larger cohorts")
    paper.lines(110, [["The effect is common in one billion.", ("sup", "4"), "Many studies have"],
                      ["shown", ("sup", "1,2-3"), " that it grows with age, and the bias", ("sup", "1 5"),
                       " is small."],
                      ["A bias ", ("sup", "3, 5"), " was reported by others, and the error", ("sup", "2"),
                       " ", ("sup", "4")],
                      "was small."])
    paper.run(paper.write(72, 170, "The area was 10 cm"), 170, [("sup", "2"), " in each of them."])
    paper.write(72, 200, "References", size=12, bold=True)
    paper.lines(220, REFERENCES, step=14)
    rows, _ = citation_rows(paper.extract(tmp_path / "raised.pdf"), "paper")
    assert [(r["ref_id"], r["marker"], r["context"]) for r in rows] == [
        ("ref4", "4", "The effect is common in one billion."),
        *[(f"ref{n}", "1,2-3", "Many studies have shown that it grows with age, and the bias is small.")
          for n in (1, 2, 3)],
        ("ref5", "1 5", "Many studies have shown that it grows with age, and the bias is small."),  # ref1 once
        ("ref3", "3,5", "A bias was reported by others, and the error was small."),
        ("ref5", "3,5", "A bias was reported by others, and the error was small."),
        ("ref2", "2 4", "A bias was reported by others, and the error was small."),
        ("ref4", "2 4", "A bias was reported by others, and the error was small."),
    ]  # "cm²" is a unit's power, not a citation


# --- d: a reference list sharing its last page with the body ---------------------------------------

def test_a_body_column_beside_the_reference_list_keeps_its_sentences_and_the_list_its_entries(tmp_path):
    """Last page: the references in the left column, the end of the body in the right one, whose lines
    may begin with citations; a journal's running line above both."""
    paper = SmallPaper("Effects in larger cohorts")
    paper.lines(110, ["The effect is common [1]. It was seen before [2, 3]."] + [FILLER] * 3)
    paper.on(1)
    paper.write(72, 40, "Journal of Clinic Studies 12 (2019) 1-10", size=9)
    paper.write(72, 80, "References", size=12, bold=True)
    entries = [(72 if k % 2 == 0 else 84, part) for n, ref in enumerate(REFERENCES)
               for k, part in enumerate([ref[:ref.index(" ", 30)], ref[ref.index(" ", 30) + 1:]])]
    paper.lines(100, entries)
    paper.lines(100, [(310, line) for line in [
        "[4], [5]. We have shown that the effect", "is common in all the clinics we saw.",
        "The care they need is the same [5].", "Few clinics give that care today, and",
        "most of them are small ones in towns.", "We thank the nurses of all clinics.",
        "They made this study possible at all.", "Funding came from the towns."]])
    article = paper.extract(tmp_path / "shared.pdf")
    refs = read_references(article)
    assert [r.raw for r in refs.values()] == [" ".join(r.split()[1:]) for r in REFERENCES]
    assert ("ref5", "The care they need is the same.") in cited(article)
    body = " ".join(text_of(article, "p"))
    assert "We have shown that the effect is common in all the clinics we saw." in body
    assert "Journal of Clinic" not in body


# --- e: what follows an author-year list, and bold type in a figure ----------------------------------

AUTHOR_YEAR = [("Baltagi BH (2002). Econometrics. 3rd edition. Springer-Verlag,", "New York."),
               ("Greene WH (2003). Econometric Analysis. 5th edition. Prentice", "Hall, Upper Saddle River, NJ."),
               ("Juselius K (2006). The Cointegrated VAR Model. Oxford University", "Press, Oxford.")]


def author_year_paper(after) -> SmallPaper:
    """Body citing the three entries, then the list with hanging indents; `after(paper, y)` draws
    what the paper prints below the list."""
    paper = SmallPaper("Econometrics in practice")
    paper.lines(110, ["Panel data are treated by Baltagi (2002) at length.",
                      "Greene (2003) covers the rest of the field.", FILLER])
    paper.on(1)
    paper.write(72, 80, "References", size=14, bold=True)
    y = paper.lines(100, [(72 if k == 0 else 84, part) for entry in AUTHOR_YEAR for k, part in enumerate(entry)])
    after(paper, y + 20)
    return paper


def raw_entries(article) -> list[str]:
    return [r.raw for r in read_references(article).values()]


@pytest.mark.parametrize("bold", [True, False])
def test_the_authors_affiliation_block_after_the_list_is_no_entry(tmp_path, bold):
    """jss.cls prints 'Affiliation:' (bold or not, larger than the text) and each author's address,
    e-mail and URL, one a line, after the reference list."""
    def affiliation(paper, y):
        paper.write(72, y, "Affiliation:", size=12, bold=bold)
        paper.lines(y + 18, ["Christian Kleiber", "Faculty of Business and Economics", "Universitat Basel",
                             "4002 Basel, Switzerland", "E-mail: Christian.Kleiber@unibas.ch",
                             "URL: https://wwz.unibas.ch/en/kleiber/"])
    article = author_year_paper(affiliation).extract(tmp_path / "jss.pdf")
    assert raw_entries(article) == [" ".join(e) for e in AUTHOR_YEAR]
    assert ("ref2", "Greene covers the rest of the field.") in cited(article)
    assert "Basel" not in " ".join(text_of(article, "p"))


def test_addresses_in_smaller_type_after_the_list_are_no_entries(tmp_path):
    """amsart prints the authors' addresses after the list, without a heading, in smaller type."""
    def addresses(paper, y):
        paper.lines(y, [(84, "Universitat Hannover, LG Bioinformatik, FB Gartenbau, Herrenhauser"),
                        (72, "Str. 2, D-30419 Hannover"), (84, "Email address: bretz@ifgb.uni-hannover.de"),
                        (84, "Department of Mathematics, Washington State University, Pullman")], size=8)
    article = author_year_paper(addresses).extract(tmp_path / "amsart.pdf")
    assert raw_entries(article) == [" ".join(e) for e in AUTHOR_YEAR]


def test_an_appendix_in_larger_type_after_the_list_stays_text_and_out_of_the_list(tmp_path):
    """pinp sets the references small; an appendix of code and text follows on the next page in the
    running text's type, its heading run in."""
    def appendix(paper, y):
        paper.on(2)
        paper.lines(80, ["Appendix 2: A Minimal Makevars. Here the use of GMP is unconditional.",
                         "CXX_STD = CXX11", "PKG_CXXFLAGS = -I. -DGMP", "PKG_LIBS = -lgmp"], size=12, step=15)
        paper.write(72, 150, "Appendix 3: A Wrapper.", size=10.5, bold=True)
        paper.lines(170, ['#include "queue.h"', "bool corels() {", "return true;", "}"], size=12, step=15)
    article = author_year_paper(appendix).extract(tmp_path / "appendix.pdf")
    assert raw_entries(article) == [" ".join(e) for e in AUTHOR_YEAR]
    assert "the use of GMP is unconditional" in " ".join(text_of(article, "p"))


def test_bold_words_in_a_figure_do_not_open_a_section_of_a_paper_without_headings(tmp_path):
    """A vignette without section headings: its text is the body, and a plot's bold panel titles,
    set in small type, are no heading that would leave the text before them out."""
    paper = SmallPaper("Kernel density estimation", heading="")
    paper.lines(110, ["Kernel density estimation is a popular tool. See Baltagi (2002), for example.",
                      FILLER, FILLER])
    paper.write(150, 200, "SCV SCV diagonal", size=7, bold=True)
    paper.write(150, 260, "x[, 1] x[, 1]", size=6)
    paper.lines(300, ["Greene (2003) covers the rest of the field.", FILLER])
    paper.on(1)
    paper.write(72, 80, "References", size=14, bold=True)
    paper.lines(100, [(72 if k == 0 else 84, part) for entry in AUTHOR_YEAR for k, part in enumerate(entry)])
    article = paper.extract(tmp_path / "vignette.pdf")
    assert cited(article) == [("ref1", "See Baltagi, for example."), ("ref2", "Greene covers the rest of the field.")]


def test_a_url_broken_after_its_scheme_joins_without_a_space():
    from citetune.engines.builtin import join_lines
    assert join_lines(["Rule Lists.” https:", "//github.com/nlarusstone/corels. Also online"]) == \
        "Rule Lists.” https://github.com/nlarusstone/corels. Also online"


def test_a_numbered_first_heading_is_no_title_when_the_title_was_dropped_as_a_running_head(tmp_path):
    """jss.cls's title matches the PDF's metadata and is dropped with the running heads; the largest
    type left on the first page is '1. Introduction', whose text is the body, not the title block."""
    paper = SmallPaper("", heading="")
    paper.write(200, 80, "Achim Zeileis, David Meyer, and Kurt Hornik", size=12, bold=True)
    paper.write(250, 140, "1. Introduction", size=14, bold=True)
    paper.lines(170, ["In this vignette, we show how all examples from Baltagi (2002) are reproduced.", FILLER])
    paper.write(250, 240, "2. Arthritis data", size=14, bold=True)
    paper.lines(270, ["Greene (2003) covers the rest of the field.", FILLER])
    paper.on(1)
    paper.write(72, 80, "References", size=14, bold=True)
    paper.lines(100, [(72 if k == 0 else 84, part) for entry in AUTHOR_YEAR for k, part in enumerate(entry)])
    article = paper.extract(tmp_path / "jss_title.pdf")
    assert ("ref1", "In this vignette, we show how all examples from Baltagi are reproduced.") in cited(article)


@pytest.mark.parametrize("title", ["50 Years of Data Science", "100 Years of Clinical Trials"])
def test_a_title_that_starts_with_a_number_is_the_title(tmp_path, title):
    paper = SmallPaper(title)
    paper.lines(110, ["Panel data are treated by Baltagi (2002) at length.", FILLER])
    paper.on(1)
    paper.write(72, 80, "References", size=14, bold=True)
    paper.lines(100, [(72 if k == 0 else 84, part) for entry in AUTHOR_YEAR for k, part in enumerate(entry)])
    article = paper.extract(tmp_path / "number.pdf")
    assert article.findtext(".//article-meta//article-title") == title
