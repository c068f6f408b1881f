"""Author-year citations resolved to reference entries: entries that share the first author and
year, and narrative citations with a locator."""

from citetune.engines import citations
from citetune.engines.citations import Entry, ReferenceIndex, author_count, fold
from citetune.engines.references import parse_reference

ENTRIES = ["Eddelbuettel D (2021). pkgKitten: Create Simple Packages. R package version 0.2.2.",
           "Eddelbuettel D, Emerson JW, Kane MJ (2021). BH: Boost C++ Header Files. R package.",
           "Eddelbuettel D, Balamuta JJ (2021). Extending R with C++. The American Statistician.",
           "Maronna RA, Martin RD, Yohai VJ (2006). Robust Statistics: Theory and Methods. Wiley."]


def linked(text: str, entries: list[str] = ENTRIES) -> list[str]:
    index = ReferenceIndex([Entry(f"ref{k}", None, fold(e), fold(e.split()[0]), author_count(parse_reference(e)))
                            for k, e in enumerate(entries, 1)])
    return [p.attrs["rid"] for g in citations.author_year_groups(text, index) for p in g.pieces
            if not isinstance(p, str)]


def test_entries_of_one_first_author_and_year_are_told_apart_by_how_many_authors_are_named():
    assert linked("It can be improved by pkgKitten (Eddelbuettel, 2021).") == ["ref1"]
    assert linked("Headers come from BH (Eddelbuettel et al., 2021).") == ["ref2"]
    assert linked("As Eddelbuettel and Balamuta (2021) show.") == ["ref3"]


def test_short_surnames_and_initials_first_are_counted_and_a_titles_words_are_not():
    two, three, one = ("Li X, Wang Y (2019) Graph networks. Nature 1:1-2",
                       "Li X, Wang Y, Zhang Z (2019) Graph networks. Nature 3:4-5",
                       "Li X (2019) Graph networks. Nature 6:7-8")
    assert linked("As Li and Wang (2019) show.", [three, two, one]) == ["ref2"]
    assert linked("As Li (2019) shows.", [two, one]) == ["ref2"]
    assert linked("As Li et al. (2019) show.", [two, three]) == ["ref2"]
    assert author_count(parse_reference("J. Smith, K. Lee, Learning, trees and graphs, in: Proc. X, 2019.")) == 2
    assert author_count(parse_reference("Smith J, Lee K, Park S, et al. (2019) Deep learning. Nature.")) == 3


def test_a_narrative_citation_with_a_page_or_chapter_is_linked():
    assert linked("The functions are given by Maronna et al. (2006, p. 31), though ours differ.") == ["ref4"]
    assert linked("The optimal function as given by Maronna et al. (2006, Section 5.9.1).") == ["ref4"]
    assert linked("As in (Maronna et al., 2006, pp. 31-32).") == ["ref4"]
    for locator in ("Sect. 2", "Chap 3", "Chap. 3", "Ch. 3"):
        assert linked(f"As shown by Maronna et al. (2006, {locator}), it holds.") == ["ref4"]
