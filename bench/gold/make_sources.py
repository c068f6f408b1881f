"""Write the LaTeX sources of the gold extraction set: bench/gold/src/<paper_id>/{main.tex,refs.bib,cites.json}.

Deterministic (seeded): running it again writes the same files. cites.json records, for every citing
sentence of the body, its text with the citation commands left as placeholders and the cited keys, so
build.py can write the gold annotation once bibtex has fixed the printed order.

    python bench/gold/make_sources.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"

# ----------------------------------------------------------------------------------------------------
# Reference pool
# ----------------------------------------------------------------------------------------------------

SURNAMES = [
    "Smith", "Lee", "Park", "Chen", "Wang", "Nguyen", "Garc{\\'\\i}a", "M{\\\"u}ller", "Sch{\\\"o}lkopf",
    "Dvo{\\v{r}}{\\'a}k", "Petrovi{\\'c}", "Ko{\\v{c}}i", "Stra{\\ss}er", "Gro{\\ss}", "L{\\'e}vy",
    "Br{\\\"u}ckner", "van der Maaten", "de Souza", "Lopez-Paz", "Ben-David", "Okafor", "Tanaka",
    "Johansson", "Kowalski", "Rossi", "Moreau", "Fischer", "Andersen", "Hern{\\'a}ndez", "Ivanov",
    "Kim", "Sato", "Brown", "Taylor", "Wilson", "Patel", "Singh", "O'Brien", "McAllister", "Novak",
    "Jim{\\'e}nez", "{\\v{S}}imon", "Erd{\\H{o}}s", "N{\\'u}{\\~n}ez", "Zhang", "Liu", "Huang", "Schmidt",
    "Becker", "Wagner", "Dubois", "Lef{\\`e}vre", "van den Berg", "di Stefano", "Costa", "Silva",
    "Kuznetsov", "Yamamoto", "Khan", "Ahmed", "Roberts", "Evans", "Walker", "Hall", "Young",
    "Mart{\\'\\i}nez-Gil", "Sch{\\\"a}fer", "J{\\o}rgensen", "{\\AA}berg", "Wei{\\ss}", "Nakamura",
]
FIRST = [
    "John", "Kyung", "Ji-Woo", "Wei", "Anna", "Maria", "Thomas", "Lukas", "Sofia", "Pierre",
    "Elena", "Martin", "Hiroshi", "Amara", "Carlos", "Ingrid", "Piotr", "Giulia", "Claire", "Rahul",
    "David", "Laura", "Bernhard", "Laurens", "Rafael", "Olga", "Yuki", "Fatima", "James", "Emily",
    "Jan", "Marek", "Li", "Sarah", "Michael", "Chiara", "Hans", "Noah", "Aisha", "Daniel",
]

TOPICS = {
    "physics": {
        "title_a": ["Anomalous", "Topological", "Nonequilibrium", "Coherent", "Quantum", "Emergent", "Ultrafast",
                    "Superconducting", "Frustrated", "Correlated"],
        "title_b": ["spin transport", "phase transitions", "edge states", "magnon dynamics", "charge order",
                    "entanglement growth", "Floquet engineering", "vortex lattices", "exciton condensation",
                    "thermal conductivity", "Kondo screening", "dark-matter searches"],
        "title_c": ["in twisted bilayer graphene", "in kagome antiferromagnets", "of cold atomic gases",
                    "in iron-based superconductors", "at finite temperature", "in disordered chains",
                    "near a quantum critical point", "in van der Waals heterostructures", "with trapped ions",
                    "in the Hubbard model"],
        "journals": [("Physical Review Letters", "Phys Rev Lett"), ("Physical Review B", "Phys Rev B"),
                     ("Nature Physics", "Nat Phys"), ("Reviews of Modern Physics", "Rev Mod Phys"),
                     ("Physical Review X", "Phys Rev X"), ("Journal of Applied Physics", "J Appl Phys"),
                     ("New Journal of Physics", "New J Phys")],
        "conf": ["Proceedings of the International Conference on Low Temperature Physics",
                 "Proceedings of the APS March Meeting"],
        "nouns": ["the spin gap", "the Hall conductance", "the magnon spectrum", "the order parameter",
                  "the correlation length", "the critical temperature", "the Berry curvature",
                  "the entanglement entropy", "the quasiparticle lifetime", "the phonon bath",
                  "the tunnelling rate", "the Fermi surface"],
        "methods": ["density-matrix renormalization group", "quantum Monte Carlo", "mean-field theory",
                    "exact diagonalization", "tensor-network ansatz", "Keldysh formalism",
                    "Boltzmann transport model", "tight-binding model"],
        "unit": "K",
    },
    "cs": {
        "title_a": ["Scalable", "Robust", "Efficient", "Self-Supervised", "Sparse", "Differentiable",
                    "Federated", "Contrastive", "Adaptive", "Provably Convergent"],
        "title_b": ["representation learning", "graph neural networks", "program synthesis",
                    "dense retrieval", "visual transformers", "reinforcement learning", "language modelling",
                    "kernel methods", "dimensionality reduction", "anomaly detection", "code generation",
                    "citation parsing"],
        "title_c": ["for scientific documents", "at web scale", "with limited supervision",
                    "under distribution shift", "on edge devices", "with noisy labels",
                    "for low-resource languages", "in the wild", "via optimal transport", "without negatives"],
        "journals": [("Journal of Machine Learning Research", "J Mach Learn Res"),
                     ("IEEE Transactions on Pattern Analysis and Machine Intelligence",
                      "IEEE Trans Pattern Anal Mach Intell"),
                     ("Transactions of the Association for Computational Linguistics", "Trans Assoc Comput Linguist"),
                     ("Communications of the ACM", "Commun ACM"), ("Machine Learning", "Mach Learn"),
                     ("ACM Computing Surveys", "ACM Comput Surv")],
        "conf": ["Proceedings of the International Conference on Machine Learning",
                 "Advances in Neural Information Processing Systems",
                 "Proceedings of the Annual Meeting of the Association for Computational Linguistics",
                 "Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition",
                 "Proceedings of the ACM SIGIR Conference on Research and Development in Information Retrieval"],
        "nouns": ["the encoder", "the retrieval index", "the attention layer", "the training loss",
                  "the embedding space", "the tokenizer", "the decoding strategy", "the label noise",
                  "the validation split", "the learning-rate schedule", "the negative sampler", "the vocabulary"],
        "methods": ["contrastive pre-training", "gradient boosting", "beam search", "knowledge distillation",
                    "low-rank adaptation", "graph convolution", "conditional random fields",
                    "stochastic gradient descent"],
        "unit": "ms",
    },
    "medicine": {
        "title_a": ["Long-term", "Randomized", "Population-based", "Prospective", "Multicentre", "Early",
                    "Sex-specific", "Genome-wide", "Cost-effective", "Pragmatic"],
        "title_b": ["statin therapy", "influenza vaccination", "blood pressure control", "insulin titration",
                    "antibiotic stewardship", "sepsis screening", "cancer screening", "physical activity",
                    "smoking cessation", "sleep quality", "dietary sodium intake", "telemonitoring"],
        "title_c": ["in older adults", "after myocardial infarction", "in type 2 diabetes",
                    "in intensive care units", "in primary care", "among pregnant women",
                    "in chronic kidney disease", "in low-income countries", "during the COVID-19 pandemic",
                    "in children with asthma"],
        "journals": [("New England Journal of Medicine", "N Engl J Med"), ("The Lancet", "Lancet"),
                     ("Journal of the American Medical Association", "JAMA"), ("British Medical Journal", "BMJ"),
                     ("Annals of Internal Medicine", "Ann Intern Med"), ("Circulation", "Circulation"),
                     ("Diabetes Care", "Diabetes Care")],
        "conf": ["Proceedings of the European Congress of Clinical Microbiology",
                 "Proceedings of the American Heart Association Scientific Sessions"],
        "nouns": ["the hazard ratio", "the primary endpoint", "systolic blood pressure", "all-cause mortality",
                  "the readmission rate", "HbA1c levels", "the incidence of sepsis", "adherence to treatment",
                  "the number needed to treat", "the risk of stroke", "length of hospital stay",
                  "the vaccination rate"],
        "methods": ["Cox regression", "propensity-score matching", "multiple imputation",
                    "mixed-effects modelling", "intention-to-treat analysis", "Kaplan-Meier estimation",
                    "logistic regression", "Bayesian meta-analysis"],
        "unit": "mmHg",
    },
}


def _author(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)}, {rng.choice(FIRST)}"


def make_pool(seed: int = 7) -> list[dict]:
    """~120 bib entries, ~40 per field; ordered so that same-author-year pairs sit next to each other."""
    rng = random.Random(seed)
    pool: list[dict] = []
    used_titles: set[str] = set()
    for field in ("physics", "cs", "medicine"):
        t = TOPICS[field]
        for i in range(40):
            key = f"{field[:3]}{i:02d}"
            while True:
                title = f"{rng.choice(t['title_a'])} {rng.choice(t['title_b'])} {rng.choice(t['title_c'])}"
                if title not in used_titles:
                    used_titles.add(title)
                    break
            r = rng.random()
            n_auth = 1 if r < 0.15 else 2 if r < 0.4 else 3 if r < 0.6 else rng.randint(4, 12)
            authors = [_author(rng) for _ in range(n_auth)]
            year = rng.randint(1995, 2024)
            kind = rng.choices(["article", "inproceedings", "book", "arxiv", "phdthesis", "techreport", "web"],
                               [58, 16, 5, 9, 4, 4, 4])[0]
            e = {"key": key, "field": field, "authors": authors, "year": year, "title": title, "kind": kind}
            if kind == "article":
                e["journal"] = rng.choice(t["journals"])[1 if field == "medicine" else 0]
                e["volume"] = str(rng.randint(1, 140))
                e["number"] = str(rng.randint(1, 24))
                p = rng.randint(1, 9000)
                e["pages"] = f"{p}--{p + rng.randint(3, 30)}"
            elif kind == "inproceedings":
                e["booktitle"] = rng.choice(t["conf"])
                p = rng.randint(1, 900)
                e["pages"] = f"{p}--{p + rng.randint(5, 12)}"
            elif kind == "book":
                e["publisher"] = rng.choice(["Cambridge University Press", "Springer", "Oxford University Press",
                                             "MIT Press", "Wiley"])
                e["address"] = rng.choice(["Cambridge", "Berlin", "Oxford", "New York"])
                e["title"] = title.replace(" in ", ": Theory and Practice in ", 1) if " in " in title else title
            elif kind == "arxiv":
                e["eprint"] = f"{rng.randint(15, 24)}{rng.randint(1, 12):02d}.{rng.randint(1000, 19999):05d}"
            elif kind == "phdthesis":
                e["school"] = rng.choice(["University of Cambridge", "ETH Z{\\\"u}rich", "Stanford University",
                                          "Universit{\\'e} Paris-Saclay", "Karolinska Institutet"])
                e["authors"] = authors[:1]
                e["address"] = {"University of Cambridge": "Cambridge, UK", "Stanford University": "Stanford, CA",
                                "Karolinska Institutet": "Stockholm"}.get(e["school"], "Europe")
            elif kind == "techreport":
                e["institution"] = rng.choice(["National Institute of Standards and Technology",
                                               "Max Planck Institute for Intelligent Systems",
                                               "World Health Organization", "CERN"])
                e["number"] = f"TR-{year}-{rng.randint(1, 99):02d}"
            elif kind == "web":
                e["url"] = f"https://www.example.org/{field}/{key}"
                e["note"] = f"Accessed {rng.randint(1, 28)} March 2024"
            if kind in ("article", "inproceedings") and rng.random() < 0.7:
                e["doi"] = f"10.{rng.randint(1000, 9999)}/{field[:2]}.{year}.{rng.randint(100, 99999)}"
            if kind == "arxiv":
                e["doi"] = None
            pool.append(e)
    # corporate authors
    pool[rng.randrange(40, 80)].update(authors=["{OpenAI}"], kind="arxiv", eprint="2303.08774", year=2023)
    pool[rng.randrange(80, 120)].update(authors=["{World Health Organization}"], kind="techreport",
                                        institution="World Health Organization", number="WHO/2021-3", year=2021)
    # same first author, same year pairs (entries 2k, 2k+1 of each block) -> 2019a/2019b in author-year styles
    for base in (0, 10, 40, 50, 80, 90):
        a, b = pool[base], pool[base + 1]
        b["authors"] = list(a["authors"])
        b["year"] = a["year"]
        for e in (a, b):
            if e["kind"] in ("book", "web", "phdthesis"):
                e.update(kind="article", journal=TOPICS[e["field"]]["journals"][0][0 if e["field"] != "medicine" else 1],
                         volume="12", number="3", pages="45--67", doi=f"10.1000/{e['key']}.{e['year']}")
    return pool


def bib_entry(e: dict) -> str:
    fields = {"author": " and ".join(e["authors"]), "title": "{" + e["title"] + "}" if e["kind"] == "book" else e["title"],
              "year": str(e["year"])}
    kind = {"article": "article", "inproceedings": "inproceedings", "book": "book", "arxiv": "misc",
            "phdthesis": "phdthesis", "techreport": "techreport", "web": "misc"}[e["kind"]]
    for f in ("journal", "booktitle", "volume", "number", "pages", "publisher", "address", "school",
              "institution", "doi", "note"):
        if e.get(f):
            fields[f] = e[f]
    if e.get("url") and e["kind"] != "web":  # long URLs given to a few entries of the new papers only
        fields["url"] = e["url"]
    if e["kind"] == "arxiv":
        fields.update(eprint=e["eprint"], archivePrefix="arXiv", primaryClass="cs.LG",
                      howpublished=f"arXiv preprint arXiv:{e['eprint']}")
    if e["kind"] == "phdthesis":
        fields["type"] = "PhD thesis"
    if e["kind"] == "web":
        fields["howpublished"] = f"\\url{{{e['url']}}}"
        fields["url"] = e["url"]
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items())
    return f"@{kind}{{{e['key']},\n{body}\n}}\n"


# ----------------------------------------------------------------------------------------------------
# Papers
# ----------------------------------------------------------------------------------------------------

# cite: how citations are written -- "brackets" (\cite), "paren-num" (\citep numeric), "super" (after the period),
# "authoryear" (\citep/\citet).
PAPERS = [
    dict(id="p01_natbib_plainnat", field="cs", layout="article1", cite="authoryear", n_refs=55, paras=14, t1=True,
         hyperref=True, cls="article + natbib plainnat", columns=1, citation_style="author-year",
         reference_style="plainnat author-year, no labels"),
    dict(id="p02_natbib_unsrtnat_2col", field="physics", layout="article2", cite="brackets", n_refs=58, paras=46,
         t1=True, hyperref=False, cls="article twocolumn + natbib unsrtnat", columns=2,
         citation_style="numeric-brackets", reference_style="unsrtnat [N]"),
    dict(id="p03_ieeetran", field="cs", layout="ieee", cite="brackets", n_refs=40, paras=18, t1=False,
         hyperref=False, cls="IEEEtran conference", columns=2, citation_style="numeric-brackets",
         reference_style="IEEEtran [N]"),
    dict(id="p04_revtex_prl", field="physics", layout="prl", cite="brackets", n_refs=35, paras=12, t1=False,
         hyperref=False, cls="revtex4-2 aps prl", columns=2, citation_style="numeric-brackets",
         reference_style="apsrev4-2 [N], no article titles"),
    dict(id="p05_revtex_aip_super", field="physics", layout="aip", cite="super", n_refs=30, paras=12, t1=False,
         hyperref=False, cls="revtex4-2 aip jap (superscript)", columns=2, citation_style="superscript",
         reference_style="aipnum4-2, superscript labels"),
    dict(id="p06_acm_sigconf", field="cs", layout="acm", cite="brackets", n_refs=45, paras=22, t1=True,
         hyperref=True, cls="acmart sigconf", columns=2, citation_style="numeric-brackets",
         reference_style="ACM-Reference-Format [N]"),
    dict(id="p07_acm_authoryear", field="cs", layout="acm-ay", cite="authoryear", n_refs=30, paras=14, t1=True,
         hyperref=True, cls="acmart sigconf authoryear", columns=2, citation_style="author-year",
         reference_style="ACM-Reference-Format author-year"),
    dict(id="p08_llncs", field="cs", layout="llncs", cite="brackets", n_refs=25, paras=16, t1=False,
         hyperref=False, cls="llncs", columns=1, citation_style="numeric-brackets", reference_style="splncs04 N."),
    dict(id="p09_elsarticle_harv", field="medicine", layout="els-harv", cite="authoryear", n_refs=35, paras=16,
         t1=True, hyperref=True, cls="elsarticle preprint authoryear", columns=1, citation_style="author-year",
         reference_style="elsarticle-harv author-year"),
    dict(id="p10_vancouver_super", field="medicine", layout="article1", cite="super", n_refs=40, paras=16,
         t1=False, hyperref=False, cls="article + cite[super] vancouver", columns=1,
         citation_style="superscript", reference_style="vancouver N."),
    dict(id="p11_round_numbers", field="medicine", layout="article1", cite="paren-num", n_refs=30, paras=14,
         t1=True, hyperref=False, cls="article + natbib round,numbers", columns=1,
         citation_style="numeric-parens", reference_style="unsrtnat (N)"),
    dict(id="p12_amsart", field="physics", layout="amsart", cite="brackets", n_refs=22, paras=12, t1=False,
         hyperref=False, cls="amsart amsplain", columns=1, citation_style="numeric-brackets",
         reference_style="amsplain N., heading Bibliography"),
    dict(id="p13_apalike", field="medicine", layout="article1", cite="authoryear", n_refs=28, paras=12, t1=False,
         hyperref=True, cls="article + natbib apalike", columns=1, citation_style="author-year",
         reference_style="apalike, heading Literature Cited"),
    dict(id="p14_nature_super", field="physics", layout="article2", cite="super", n_refs=45, paras=20, t1=True,
         hyperref=False, cls="article twocolumn + natbib super", columns=2, citation_style="superscript",
         reference_style="unsrtnat N., heading REFERENCES"),
    dict(id="p15_bare_numbers", field="cs", layout="article1", cite="brackets", n_refs=20, paras=10, t1=False,
         hyperref=False, cls="article plain, bare labels", columns=1, citation_style="numeric-brackets",
         reference_style="plain, bare number labels"),
    dict(id="p16_short_noheading", field="medicine", layout="article2", cite="brackets", n_refs=12, paras=3,
         t1=True, hyperref=False, cls="article twocolumn unsrt, no heading", columns=2, citation_style="numeric-brackets",
         reference_style="unsrt [N], no heading"),
    dict(id="p17_elsarticle_num_2col", field="cs", layout="els-num", cite="brackets", n_refs=50, paras=34,
         t1=False, hyperref=True, cls="elsarticle 5p elsarticle-num", columns=2, citation_style="numeric-brackets",
         reference_style="elsarticle-num [N]"),
    # --- papers laid out like real published PDFs / preprints (appended: p01-p17 are unchanged) ---
    dict(id="p18_preprint_lineno", field="medicine", layout="preprint", cite="authoryear", n_refs=34, paras=17,
         t1=True, hyperref=True, cls="article 11pt preprint + lineno + fancyhdr, natbib abbrvnat", columns=1,
         citation_style="author-year", reference_style="abbrvnat author-year, line numbers, running header"),
    dict(id="p19_naturemag", field="physics", layout="naturemag", cite="super", n_refs=30, paras=9, t1=True,
         hyperref=False, cls="article 11pt + natbib super naturemag", columns=1, citation_style="superscript",
         reference_style="naturemag N., et al."),
    dict(id="p20_achemso_2col", field="physics", layout="multicol2", cite="super", n_refs=32, paras=14, t1=False,
         hyperref=False, cls="article + multicol 2 columns, natbib super achemso, wide mid-page figure", columns=2,
         citation_style="superscript", reference_style="achemso (N), heading References", wide=True),
    dict(id="p21_elsnames_2col", field="cs", layout="els-names", cite="brackets", n_refs=45, paras=30, t1=False,
         hyperref=True, cls="elsarticle 5p elsarticle-num-names", columns=2, citation_style="numeric-brackets",
         reference_style="elsarticle-num-names [N], long DOIs/URLs", long_links=True),
]

SECTIONS = ["Introduction", "Related Work", "Method", "Experiments and Results", "Discussion", "Conclusion"]

# {C}: a parenthetical citation group; {N}: a narrative citation (names kept); {I}: initials + surname of the work
# cited right after it; {R}: "Ref. [n]" (numeric styles only).
CITING = [
    "Earlier work on {x} relied on hand-tuned estimates of {y}{C}.",
    "{N} showed that {x} can be described by a simple {m}.",
    "Several groups have reported similar trends, e.g. for {x} and for {y}{C}.",
    "The same effect was observed for {x}, i.e. the response saturates above {f} {u}{C}.",
    "In contrast to approaches based on {m}{C}, our treatment does not require {y}.",
    "Following {I} and co-workers{C}, we model {x} with a {m}.",
    "The trade-off between {x} vs. {y} has been discussed at length{C}.",
    "Recent studies report an improvement of {p}\\% over strong baselines{C}.",
    "The resulting estimate of {f} agrees with the value reported by {N}.",
    "Approaches based on {m} have been proposed in many variants{C}.",
    "As noted by {N}, the choice of {x} strongly affects {y}.",
    "Most prior studies treat {x} and {y} separately, see e.g. the reviews{C}.",
    "These observations are consistent with Fig. 2 of an earlier study{C}.",
    "Its accuracy drops from {p}\\% to {p2}\\% when {x} is perturbed{C}.",
    "{N} introduced the first {m} for {x}, and several extensions followed{C}.",
    "Standard references on {m} include textbooks{C} and review articles{C}.",
    "It is known that {x} scales approximately as $N^2$ for large systems{C}.",
    "Values between {f} and {f2} have been reported{C}, depending on {y}.",
    "A large study (n = {n}) found no such association{C}.",
    "This is in line with the findings of {I}{C}, who used {m} instead.",
    "Typical tolerances are of order $10^{{-3}}$ in this setting{C}.",
    "Open-source implementations are available for most of these methods{C}.",
    "Theoretical guarantees exist only for {x}{C}, whereas {y} remains poorly understood.",
    "The reported prevalence was {p}\\% in a recent survey{C}.",
    "Similar conclusions were drawn in independent analyses{C}.",
    "A closely related scheme, cf. the {m} of earlier work{C}, converges in fewer iterations.",
    "Dr. {I} proposed a variant of {m} that avoids this problem{C}.",
    "The standard form of the estimator, cf. Eq. (3), goes back to early work on {x}{C}.",
    "Independent replications found an effect size of {f} (95\\% CI {f}--{f2}){C}.",
    "{N} and, independently, {N2} reached the same conclusion about {x}.",
]
CITING_NUMERIC = [
    "A detailed derivation of {x} is given in Ref.~{R}.",
    "We follow the conventions of Refs.~{R} for {y}.",
    "The {m} of Ref.~{R} is used as the baseline throughout.",
]
CITING_PAREN = [  # parenthesised numbers that are not citations, next to "(12)"-style citations
    "In a cohort of older adults (n = {n}), the odds ratio was {f} (95\\% CI {f}--{f2}){C}.",
    "Using the estimator of Eq. (2) on the full sample (n = {n}), the hazard ratio was {f}{C}.",
    "The adjusted difference was {p}\\% (95\\% CI {f}--{f2}) in the largest trial to date{C}.",
]
PLAIN = [
    "Fig.~{k} shows the dependence of {x} on {y}.",
    "The parameters were fixed at $\\alpha = {f}$ and $\\beta = 10^{{-{k}}}$.",
    "We use the notation of Eq.~(\\ref{{eq:main}}) throughout.",
    "In all runs, i.e. for every random seed, the variance of {x} stayed below {f}.",
    "The difference between {x} vs. {y} is small but systematic.",
    "This choice is standard in the field.\\footnote{{An alternative choice is discussed in the appendix.}}",
    "Table~\\ref{{tab:main}} lists the results for all configurations.",
    "We obtain an average improvement of {p}\\% with a standard deviation of {f}.",
    "All statistical tests were two-sided with a significance level of $p < 0.05$.",
    "The error scales as $\\epsilon^2$ for small $\\epsilon$, as expected.",
    "We therefore restrict the analysis to {x} and leave {y} for future work.",
    "The computation of {x} takes about {f} {u} per sample on a single core.",
    "Note that {x} is not directly observable; it is inferred from {y}.",
    "In our notation, $x_i^2$ denotes the squared deviation of the $i$-th sample.",
    "The full protocol was approved by the local review board.\\footnote{{Protocol number {n}.}}",
    "A sensitivity analysis with {m} gave qualitatively identical results.",
]


def _latex_name(author: str, style_initial: bool = False) -> str:
    surname, _, first = author.partition(", ")
    if not first:  # corporate author, e.g. {OpenAI}
        return author[1:-1] if author.startswith("{") else author
    if style_initial:
        return f"{first[0]}.~{surname}"
    return surname


def narrative_names(e: dict) -> str:
    """Author text written out by hand before a numeric citation: 'Smith', 'Smith and Lee', 'Smith et al.'"""
    names = [_latex_name(a) for a in e["authors"]]
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


class Writer:
    """Builds the body of one paper and records its citing sentences."""

    def __init__(self, cfg: dict, refs: list[dict], rng: random.Random):
        self.cfg, self.rng = cfg, rng
        self.byk = {e["key"]: e for e in refs}
        self.queue = [e["key"] for e in refs]
        self.cited: list[str] = []
        self.sentences: list[dict] = []
        self.t = TOPICS[cfg["field"]]

    def take(self, n: int) -> list[str]:
        out = []
        for _ in range(n):
            if self.queue:
                k = self.queue.pop(0)
                out.append(k)
            else:
                k = self.rng.choice(self.cited)
                if k not in out:
                    out.append(k)
        self.cited.extend(k for k in out if k not in self.cited)
        return out

    def cmd(self, keys: list[str], narrative: bool = False) -> str:
        mode = self.cfg["cite"]
        ks = ",".join(keys)
        if mode == "authoryear":
            return f"\\citet{{{ks}}}" if narrative else f"~\\citep{{{ks}}}"
        if mode == "paren-num":
            return f"~\\citep{{{ks}}}"
        if mode == "super":
            return f"\\cite{{{ks}}}"
        return f"~\\cite{{{ks}}}"

    def fill(self, tpl: str) -> str:
        t, rng = self.t, self.rng
        return tpl.format(
            x=rng.choice(t["nouns"]), y=rng.choice(t["nouns"]), m=rng.choice(t["methods"]),
            f=f"{rng.uniform(0.1, 9.9):.1f}", f2=f"{rng.uniform(10, 30):.1f}", p=f"{rng.uniform(2, 40):.1f}",
            p2=f"{rng.uniform(41, 90):.1f}", n=rng.randint(80, 4000), u=t["unit"], k=rng.randint(2, 5),
            C="{C}", N="{N}", N2="{N2}", I="{I}", R="{R}")

    def citing_sentence(self) -> str:
        """LaTeX of one citing sentence; records its gold form."""
        cfg, rng = self.cfg, self.rng
        pool = CITING + (CITING_NUMERIC if cfg["cite"] == "brackets" else []) + (
            CITING_PAREN * 4 if cfg["cite"] == "paren-num" else [])
        tpl = self.fill(rng.choice(pool))
        latex, gold, keys = tpl, tpl, []
        # narrative citations
        for slot in ("{N}", "{N2}"):
            if slot in latex:
                k = self.take(1)[0]
                keys.append(k)
                if cfg["cite"] == "authoryear":
                    latex = latex.replace(slot, self.cmd([k], narrative=True), 1)
                    gold = gold.replace(slot, f"<<NAMES:{k}>>", 1)
                else:
                    names = narrative_names(self.byk[k])
                    latex = latex.replace(slot, names + self.cmd([k]), 1)
                    gold = gold.replace(slot, names, 1)
        if "{I}" in latex:
            k = self.take(1)[0]
            e = self.byk[k]
            name = _latex_name(e["authors"][0], style_initial=True)
            latex = latex.replace("{I}", name, 1)
            gold = gold.replace("{I}", name, 1)
            # the work is cited right after the name ({C} follows {I} in every template that has {I})
            latex = latex.replace("{C}", self.cmd([k]), 1)
            gold = gold.replace("{C}", "", 1)
            keys.append(k)
        if "{R}" in latex:
            ks = self.take(rng.choice([1, 1, 2]))
            if "Refs." in latex and len(ks) == 1:
                ks = ks + self.take(1)
            latex = latex.replace("{R}", f"\\cite{{{','.join(ks)}}}")
            gold = gold.replace("~{R}", "").replace("{R}", "")
            keys += ks
        while "{C}" in latex:
            ks = self.take(rng.choices([1, 2, 3, 4], [5, 3, 2, 1])[0])
            keys += ks
            c = self.cmd(ks)
            pos = latex.index("{C}")
            if cfg["cite"] == "super" and latex[pos + 3:] == ".":
                latex = latex[:pos] + "." + c
            else:
                latex = latex[:pos] + c + latex[pos + 3:]
            gold = gold.replace("{C}", "", 1)
        self.sentences.append({"latex": gold, "keys": list(dict.fromkeys(keys))})
        return latex

    def paragraph(self, n_sent: int) -> str:
        out = []
        for _ in range(n_sent):
            if self.rng.random() < 0.45 or self.queue and self.rng.random() < 0.3:
                out.append(self.citing_sentence())
            else:
                out.append(self.fill(self.rng.choice(PLAIN)))
        return " ".join(out)


def figure(cfg: dict, n: int, topic: dict, rng: random.Random) -> str:
    width = "0.85\\columnwidth" if cfg["columns"] == 2 else "0.6\\textwidth"
    return (f"\\begin{{figure}}[t]\n\\centering\n\\fbox{{\\parbox[c][3cm][c]{{{width}}}{{\\centering Placeholder "
            f"for panel {n}}}}}\n\\caption{{Dependence of {rng.choice(topic['nouns'])} on "
            f"{rng.choice(topic['nouns'])}. Error bars show one standard deviation over five runs.}}\n"
            f"\\label{{fig:{n}}}\n\\end{{figure}}\n")


def table(rng: random.Random) -> str:
    rows = "\n".join(f"{name} & {rng.uniform(50, 95):.1f} & {rng.uniform(0.1, 3):.2f} \\\\"
                     for name in ("Baseline", "Variant A", "Variant B", "Ours"))
    return ("\\begin{table}[t]\n\\centering\n\\caption{Main results (mean over five seeds).}\n\\label{tab:main}\n"
            "\\begin{tabular}{lcc}\n\\hline\nSetting & Score (\\%) & Std. \\\\\n\\hline\n" + rows +
            "\n\\hline\n\\end{tabular}\n\\end{table}\n")


def wide_figure(n: int, topic: dict, rng: random.Random) -> str:
    """A full-width figure between two multicols blocks: it sits in the middle of the page, text above and below."""
    return ("\\end{multicols}\n\\begin{center}\\begin{minipage}{\\textwidth}\\centering\n\\fbox{\\parbox[c][3.5cm][c]{0.9\\textwidth}{\\centering "
            f"Placeholder for the wide panel {n}}}}}\n\\captionof{{figure}}{{Dependence of {rng.choice(topic['nouns'])} "
            f"on {rng.choice(topic['nouns'])} for all samples; the shaded band is the 95\\% confidence region.}}\n"
            f"\\label{{fig:{n}}}\n\\end{{minipage}}\\end{{center}}\n\\begin{{multicols}}{{2}}\n")


def wide_table(rng: random.Random) -> str:
    rows = "\n".join(f"{name} & {rng.uniform(50, 95):.1f} & {rng.uniform(0.1, 3):.2f} & {rng.uniform(1, 9):.1f} & "
                     f"{rng.randint(80, 4000)} \\\\" for name in ("Baseline", "Variant A", "Variant B", "Ours"))
    return ("\\end{multicols}\n\\begin{center}\\begin{minipage}{\\textwidth}\\centering\n\\captionof{table}{Main results (mean over five samples).}\n"
            "\\label{tab:main}\n\\begin{tabular}{lcccc}\n\\hline\nSetting & Score (\\%) & Std. & Gap & n \\\\\n"
            "\\hline\n" + rows + "\n\\hline\n\\end{tabular}\n\\end{minipage}\\end{center}\n\\begin{multicols}{2}\n")


EQUATION = ("\\begin{equation}\n  E(\\theta) = \\sum_{i=1}^{N} \\left(y_i - f_\\theta(x_i)\\right)^2 + "
            "\\lambda \\|\\theta\\|^2, \\qquad \\lambda = 10^{-3}.\n  \\label{eq:main}\n\\end{equation}\n")


def body(cfg: dict, refs: list[dict], seed: int) -> tuple[str, list[dict]]:
    rng = random.Random(seed)
    w = Writer(cfg, refs, rng)
    t = TOPICS[cfg["field"]]
    n = cfg["paras"]
    per = [max(1, round(n * s)) for s in (0.2, 0.2, 0.2, 0.2, 0.12, 0.08)]
    parts = []
    figs = 0
    for si, (name, k) in enumerate(zip(SECTIONS, per)):
        parts.append(f"\\section{{{name}}}\n")
        for pi in range(k):
            parts.append(w.paragraph(rng.randint(5, 8) if n >= 6 else rng.randint(3, 4)) + "\n\n")
            if si == 2 and pi == 0:
                parts.append("The objective reads\n" + EQUATION + "where $\\lambda$ controls the regularisation.\n\n")
            if si == 2 and pi == 1:
                parts.append("For completeness, the update rule is\n\\begin{equation}\n  \\theta_{t+1} = \\theta_t - "
                             "\\eta \\nabla E(\\theta_t), \\quad \\eta = 2.5 \\times 10^{-4}.\n\\end{equation}\n\n")
            if si == 3 and pi == 0 and n >= 6:
                parts.append(wide_table(rng) if cfg.get("wide") else table(rng))
            if si in (2, 3) and figs < 1 + n // 12 and n >= 6:
                figs += 1
                parts.append(wide_figure(figs, t, rng) if cfg.get("wide") else figure(cfg, figs, t, rng))
    # make sure every reference is cited
    while w.queue:
        parts.insert(-1, w.paragraph(4) + "\n\n")
    return "".join(parts), w.sentences


AFFILS = {
    "physics": ["Department of Physics, University of Cambridge, Cambridge CB3 0HE, United Kingdom",
                "Institut f{\\\"u}r Theoretische Physik, Universit{\\\"a}t Heidelberg, 69120 Heidelberg, Germany"],
    "cs": ["School of Computer Science, Carnegie Mellon University, Pittsburgh, PA, USA",
           "D{\\'e}partement d'Informatique, {\\'E}cole Normale Sup{\\'e}rieure, Paris, France"],
    "medicine": ["Department of Epidemiology, Karolinska Institutet, Stockholm, Sweden",
                 "Division of Cardiology, Massachusetts General Hospital, Boston, MA, USA"],
}
ASCII_AFFILS = ["Department of Computer Science, ETH Zurich, 8092 Zurich, Switzerland",
                "Department of Public Health, University of Oslo, 0316 Oslo, Norway"]
AUTHORS = ["Anna K. Lindqvist", "Mateo Fern{\\'a}ndez", "Priya Raman", "Jonas Wei{\\ss}"]


def abstract(cfg: dict, rng: random.Random) -> str:
    t = TOPICS[cfg["field"]]
    return (f"We study {rng.choice(t['nouns'])} using {rng.choice(t['methods'])}. Compared with previous work, our "
            f"approach reduces the error by {rng.uniform(5, 30):.1f}\\% while requiring no tuning of "
            f"{rng.choice(t['nouns'])}. We discuss the implications for {rng.choice(t['nouns'])} and outline "
            f"open problems.")


def document(cfg: dict, title: str, abstr: str, text: str) -> str:
    lay = cfg["layout"]
    a1, a2 = AUTHORS[0], AUTHORS[1]
    f1, f2 = AFFILS[cfg["field"]]
    pre = ""
    if cfg["t1"]:
        pre += "\\usepackage[T1]{fontenc}\n\\usepackage{lmodern}\n"
    pre += "\\usepackage{amsmath}\n"
    tail_bib = "\\bibliography{refs}\n\\end{document}\n"
    if lay in ("article1", "article2"):
        opts = "10pt,twocolumn" if lay == "article2" else "11pt"
        cls = f"\\documentclass[{opts}]{{article}}\n" + pre + "\\usepackage{url}\n"
        cid = cfg["id"]
        if cfg["cite"] == "authoryear":
            cls += "\\usepackage[round]{natbib}\n"
        elif cid.startswith("p02"):
            cls += "\\usepackage[numbers,sort&compress]{natbib}\n"
        elif cid.startswith("p11"):
            cls += "\\usepackage[round,numbers,sort&compress]{natbib}\n\\renewcommand{\\bibnumfmt}[1]{(#1)}\n"
        elif cid.startswith("p14"):
            cls += ("\\usepackage[super,comma,sort&compress]{natbib}\n\\renewcommand{\\bibnumfmt}[1]{#1.}\n"
                    "\\renewcommand{\\refname}{REFERENCES}\n")
        elif cid.startswith("p10"):
            cls += "\\usepackage[super]{cite}\n\\makeatletter\\renewcommand\\@biblabel[1]{#1.}\\makeatother\n"
        elif cid.startswith("p15"):
            cls += "\\makeatletter\\renewcommand\\@biblabel[1]{#1}\\makeatother\n"
        elif cid.startswith("p16"):
            cls += "\\renewcommand{\\refname}{}\n"
        if cid.startswith("p13"):
            cls += "\\renewcommand{\\refname}{Literature Cited}\n"
        if cfg["hyperref"]:
            cls += "\\usepackage[hidelinks]{hyperref}\n"
        bst = {"p01": "plainnat", "p02": "unsrtnat", "p10": "vancouver", "p11": "unsrtnat", "p13": "apalike",
               "p14": "unsrtnat", "p15": "plain", "p16": "unsrt"}[cid[:3]]
        head = (cls + f"\\title{{{title}}}\n\\author{{{a1}\\thanks{{Corresponding author: "
                f"a.lindqvist@example.org}}\\\\ {f1} \\and {a2}\\\\ {f2}}}\n\\date{{}}\n"
                "\\begin{document}\n\\maketitle\n" + f"\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n")
        return head + text + f"\\bibliographystyle{{{bst}}}\n" + tail_bib
    if lay == "ieee":
        return ("\\documentclass[conference]{IEEEtran}\n" + pre + "\\usepackage{cite}\n\\usepackage{url}\n"
                f"\\begin{{document}}\n\\title{{{title}}}\n\\author{{\\IEEEauthorblockN{{{a1}}}\n"
                f"\\IEEEauthorblockA{{{f1}}}\n\\and\n\\IEEEauthorblockN{{{a2}}}\n\\IEEEauthorblockA{{{f2}}}}}\n"
                f"\\maketitle\n\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n" + text +
                "\\bibliographystyle{IEEEtran}\n" + tail_bib)
    if lay in ("prl", "aip"):
        opts = "aps,prl,reprint,nofootinbib,nolongbibliography" if lay == "prl" else "aip,jap,reprint,nofootinbib"
        return (f"\\documentclass[{opts}]{{revtex4-2}}\n" + pre + "\\begin{document}\n"
                f"\\title{{{title}}}\n\\author{{{a1}}}\n\\affiliation{{{f1}}}\n\\author{{{a2}}}\n"
                f"\\affiliation{{{f2}}}\n\\date{{\\today}}\n\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n"
                "\\maketitle\n" + text + tail_bib)
    if lay in ("acm", "acm-ay"):
        return ("\\documentclass[sigconf]{acmart}\n\\settopmatter{printacmref=false}\n\\setcopyright{none}\n"
                "\\renewcommand\\footnotetextcopyrightpermission[1]{}\n\\acmConference{}{}{}\n"
                + ("\\citestyle{acmauthoryear}\n" if lay == "acm-ay" else "") +
                f"\\begin{{document}}\n\\title{{{title}}}\n\\author{{{a1}}}\n\\affiliation{{\\institution{{"
                f"Carnegie Mellon University}}\\city{{Pittsburgh}}\\country{{USA}}}}\n\\author{{{a2}}}\n"
                f"\\affiliation{{\\institution{{{'{'}\\'E{'}'}cole Normale Sup{{\\'e}}rieure}}\\city{{Paris}}"
                f"\\country{{France}}}}\n\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n\\maketitle\n" + text +
                "\\bibliographystyle{ACM-Reference-Format}\n" + tail_bib)
    if lay == "llncs":
        return ("\\documentclass{llncs}\n" + pre + "\\usepackage{url}\n\\begin{document}\n"
                f"\\title{{{title}}}\n\\author{{{a1} \\and {a2}}}\n\\institute{{{f1}}}\n\\maketitle\n"
                f"\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n" + text + "\\bibliographystyle{splncs04}\n"
                + tail_bib)
    if lay in ("els-harv", "els-num"):
        opts = "preprint,authoryear,12pt" if lay == "els-harv" else "final,5p,twocolumn"
        bst = "elsarticle-harv" if lay == "els-harv" else "elsarticle-num"
        return (f"\\documentclass[{opts}]{{elsarticle}}\n" + pre + "\\usepackage{url}\n"
                + ("\\usepackage[hidelinks]{hyperref}\n" if cfg["hyperref"] else "") +
                "\\journal{Journal of Placeholder Studies}\n\\begin{document}\n\\begin{frontmatter}\n"
                f"\\title{{{title}}}\n\\author[a]{{{a1}}}\n\\author[b]{{{a2}}}\n\\address[a]{{{ASCII_AFFILS[0]}}}\n"
                f"\\address[b]{{{ASCII_AFFILS[1]}}}\n\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n"
                "\\end{frontmatter}\n" + text + f"\\bibliographystyle{{{bst}}}\n" + tail_bib)
    if lay == "amsart":
        return ("\\documentclass{amsart}\n" + pre + "\\usepackage{url}\n\\renewcommand{\\refname}{Bibliography}\n"
                f"\\begin{{document}}\n\\title{{{title}}}\n\\author{{{a1}}}\n\\address{{{f1}}}\n"
                f"\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n\\maketitle\n" + text +
                "\\bibliographystyle{amsplain}\n" + tail_bib)
    if lay == "preprint":  # medRxiv-like: line numbers, running header and licence footer on every page
        return ("\\documentclass[11pt]{article}\n" + pre + "\\usepackage{url}\n\\usepackage[round]{natbib}\n"
                "\\usepackage[margin=2.5cm,headheight=14pt]{geometry}\n\\usepackage{fancyhdr}\n"
                "\\pagestyle{fancy}\n\\fancyhf{}\n\\lhead{\\small\\itshape Journal of Clinical Outcomes Research}\n"
                "\\rhead{\\small Preprint --- not peer reviewed}\n"
                "\\lfoot{\\small \\textcopyright\\ 2024 The Authors. CC-BY 4.0}\n\\rfoot{\\small \\thepage}\n"
                "\\usepackage{lineno}\n" + ("\\usepackage[hidelinks]{hyperref}\n" if cfg["hyperref"] else "") +
                f"\\title{{{title}}}\n\\author{{{a1}\\thanks{{Corresponding author: a.lindqvist@example.org}}\\\\ "
                f"{f1} \\and {a2}\\\\ {f2}}}\n\\date{{}}\n\\begin{{document}}\n\\linenumbers\n\\maketitle\n"
                "\\thispagestyle{fancy}\n" + f"\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n" + text +
                "\\bibliographystyle{abbrvnat}\n" + tail_bib)
    if lay == "naturemag":  # Nature-like: superscript numbers after the punctuation, 'Smith, J. A. et al.' entries
        return ("\\documentclass[11pt]{article}\n" + pre + "\\usepackage{url}\n"
                "\\usepackage[super,comma,sort&compress]{natbib}\n\\renewcommand{\\bibnumfmt}[1]{#1.}\n"
                "\\usepackage[margin=2.2cm]{geometry}\n"
                f"\\title{{\\bfseries {title}}}\n\\author{{{a1}\\thanks{{These authors contributed equally to this "
                f"work.}}\\ \\thanks{{e-mail: a.lindqvist@example.org}} \\and {a2}\\footnotemark[1]\\\\[4pt]"
                f"\\small {f1}}}\n\\date{{}}\n\\begin{{document}}\n\\maketitle\n"
                f"\\begin{{abstract}}\n\\noindent\\bfseries {abstr}\n\\end{{abstract}}\n" + text +
                "\\bibliographystyle{naturemag}\n" + tail_bib)
    if lay == "multicol2":  # two columns via multicol so that wide figures/tables can sit mid-page
        return ("\\documentclass[10pt]{article}\n" + pre + "\\usepackage{url}\n"
                "\\usepackage[super,comma,sort&compress]{natbib}\n\\renewcommand{\\bibnumfmt}[1]{(#1)}\n"
                "\\usepackage[margin=1.8cm]{geometry}\n\\usepackage{multicol}\n\\usepackage{capt-of}\n"
                "\\setlength{\\columnsep}{0.6cm}\n"
                f"\\title{{{title}}}\n\\author{{{a1}\\thanks{{Corresponding author: a.lindqvist@example.org}}\\\\ "
                f"{f1} \\and {a2}\\\\ {f2}}}\n\\date{{}}\n\\begin{{document}}\n\\maketitle\n"
                f"\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n\\begin{{multicols}}{{2}}\n" + text +
                "\\bibliographystyle{achemso}\n\\bibliography{refs}\n\\end{multicols}\n\\end{document}\n")
    if lay == "els-names":
        return ("\\documentclass[final,5p,twocolumn]{elsarticle}\n" + pre + "\\usepackage{url}\n"
                + ("\\usepackage[hidelinks]{hyperref}\n" if cfg["hyperref"] else "") +
                "\\journal{Journal of Placeholder Studies}\n\\begin{document}\n\\begin{frontmatter}\n"
                f"\\title{{{title}}}\n\\author[a]{{{a1}}}\n\\author[b]{{{a2}}}\n\\address[a]{{{ASCII_AFFILS[0]}}}\n"
                f"\\address[b]{{{ASCII_AFFILS[1]}}}\n\\begin{{abstract}}\n{abstr}\n\\end{{abstract}}\n"
                "\\end{frontmatter}\n" + text + "\\bibliographystyle{elsarticle-num-names}\n" + tail_bib)
    raise ValueError(lay)


LONG_URLS = ["https://www.example.org/reports/annual-benchmark/2021/supplementary-material/full-results-table.html",
             "https://data.example.org/repository/datasets/citation-parsing-evaluation-corpus-version-2/README.md"]


def with_long_links(chosen: list[dict], rng: random.Random) -> list[dict]:
    """Copies of the chosen entries, several given long DOIs or URLs that break across lines (new papers only)."""
    out = []
    for n, e in enumerate(chosen):
        e = dict(e)
        if e.get("doi") and n % 3 == 0:
            e["doi"] = rng.choice([f"10.1016/j.knosys.{e['year']}.{rng.randint(100000, 999999)}",
                                   f"10.1109/TPAMI.{e['year']}.{rng.randint(1000000, 9999999)}",
                                   f"10.48550/arXiv.{rng.randint(1501, 2312)}.{rng.randint(10000, 19999)}",
                                   f"10.1371/journal.pcbi.{rng.randint(1000000, 1009999)}"])
        elif e["kind"] in ("article", "techreport") and n % 5 == 1:
            e["url"] = rng.choice(LONG_URLS)
        out.append(e)
    return out


def main() -> None:
    pool = make_pool()
    for i, cfg in enumerate(PAPERS):
        rng = random.Random(1000 + i)
        field_refs = [e for e in pool if e["field"] == cfg["field"]]
        other = [e for e in pool if e["field"] != cfg["field"]]
        n_own = min(len(field_refs), cfg["n_refs"] - max(0, cfg["n_refs"] - 38))
        chosen = rng.sample(field_refs, n_own) + rng.sample(other, cfg["n_refs"] - n_own)
        keys = {e["key"] for e in chosen}
        # pairs with the same first author and year are cited together when either is
        for e in list(chosen):
            for base in (0, 10, 40, 50, 80, 90):
                a, b = pool[base], pool[base + 1]
                if e is a and b["key"] not in keys:
                    chosen.append(b)
                    keys.add(b["key"])
        rng.shuffle(chosen)
        if cfg.get("long_links"):
            chosen = with_long_links(chosen, random.Random(5000 + i))
        t = TOPICS[cfg["field"]]
        title = f"{rng.choice(t['title_a'])} {rng.choice(t['title_b'])} {rng.choice(t['title_c'])}"
        text, sentences = body(cfg, chosen, 2000 + i)
        out = SRC / cfg["id"]
        out.mkdir(parents=True, exist_ok=True)
        (out / "main.tex").write_text(document(cfg, title, abstract(cfg, rng), text))
        (out / "refs.bib").write_text("\n".join(bib_entry(e) for e in sorted(chosen, key=lambda e: e["key"])))
        meta = {k: cfg[k] for k in ("id", "cls", "columns", "citation_style", "reference_style", "cite")}
        meta["authors"] = {e["key"]: e["authors"] for e in chosen}
        meta["sentences"] = sentences
        (out / "cites.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        print(cfg["id"], len(chosen), "refs", len(sentences), "citing sentences")


if __name__ == "__main__":
    main()
