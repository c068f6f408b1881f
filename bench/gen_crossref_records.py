"""Synthetic Crossref-format work records and reference strings of known DOI, for benchmarking DOI matching.

Writes N records shaped like the items of api.crossref.org/works (DOI, type, title, author, issued,
container-title, short-container-title, volume, issue, page, ...) from precomputed word and name pools,
about 10% of them look-alike distractors of other records (companion paper of the same first author and
year, erratum/correction, preprint of a published paper, next paper in the same issue, same title by
other authors). With --refs N it also writes N reference strings formatted from non-distractor records in
several citation styles (APA, Vancouver, IEEE, APS, ACM, natbib, Nature, Harvard), some with the DOI and
some with small noise, as a CSV the matcher reads (ref_raw, doi = the known answer, lower case, ...).

    python bench/gen_crossref_records.py --out /tmp/xref --layout dump --n 1000000 --refs 2000
    python bench/gen_crossref_records.py --out /tmp/xref.jsonl.gz --layout jsonl --n 200000

Layouts: "dump" = a folder of 0.json.gz, 1.json.gz, ... each {"items": [...]} of --per-file records (like
Crossref's public data file), refs in <out>/refs.csv; "jsonl" = one gzip file of one record per line,
refs in <out without .jsonl.gz>.refs.csv. Output is deterministic for a given --seed.

refs.csv columns: ref_raw, doi (the answer, lower case), then the citation-table columns the matcher reads
(paper_id "bench", sentence_id, context, ref_id, ref_authors = first author surname, ref_title = the title
if the style prints it, ref_year, ref_doi = the DOI if printed, ref_arxiv), then style, noise (e.g.
"typo+no-issue") and has_lookalike (a distractor of the answer is among the records) for breakdowns.
"""

from __future__ import annotations

import argparse
import csv
import gc
import gzip
import json
import math
import random
import re
import sys
import time
import unicodedata
from pathlib import Path

LAST_YEAR = 2024
APS, ELS, SNL, PLOS, IEEE, ACM = (
    ("American Physical Society (APS)", "16"), ("Elsevier BV", "78"),
    ("Springer Science and Business Media LLC", "297"), ("Public Library of Science (PLoS)", "340"),
    ("Institute of Electrical and Electronics Engineers (IEEE)", "263"), ("Association for Computing Machinery (ACM)", "320"),
)

# (full title, ISO4 abbreviation, (publisher, member), ISSNs, fields, DOI scheme, scheme code, first year,
#  reference year, volume in that year, volumes per year, issues per volume, weight, work type)
J, P, C, POSTED = "journal-article", "proceedings-article", "book-chapter", "posted-content"
VENUES = [
    ("Physical Review B", "Phys. Rev. B", APS, ["2469-9950", "2469-9969"], "phys", "aps", "PhysRevB", 1970, 2019, 99, 2, 24, 40, J),
    ("Physical Review Letters", "Phys. Rev. Lett.", APS, ["0031-9007", "1079-7114"], "phys", "aps", "PhysRevLett", 1958, 2019, 122, 2, 26, 40, J),
    ("Physical Review A", "Phys. Rev. A", APS, ["2469-9926", "2469-9934"], "phys", "aps", "PhysRevA", 1970, 2019, 99, 2, 12, 15, J),
    ("Physical Review D", "Phys. Rev. D", APS, ["2470-0010", "2470-0029"], "phys", "aps", "PhysRevD", 1970, 2019, 99, 2, 24, 20, J),
    ("Physical Review E", "Phys. Rev. E", APS, ["2470-0045", "2470-0053"], "phys", "aps", "PhysRevE", 1993, 2019, 99, 2, 12, 12, J),
    ("Physical Review X", "Phys. Rev. X", APS, ["2160-3308"], "phys", "aps", "PhysRevX", 2011, 2019, 9, 1, 4, 4, J),
    ("Reviews of Modern Physics", "Rev. Mod. Phys.", APS, ["0034-6861", "1539-0756"], "phys", "aps", "RevModPhys", 1929, 2019, 91, 1, 4, 2, J),
    ("Nature Physics", "Nat. Phys.", SNL, ["1745-2473", "1745-2481"], "phys", "nature", ("s41567", "nphys"), 2005, 2019, 15, 1, 12, 6, J),
    ("Journal of High Energy Physics", "J. High Energ. Phys.", SNL, ["1029-8479"], "phys", "jhep", None, 1997, 2019, 2019, 1, 12, 10, J),
    ("Physics Letters B", "Phys. Lett. B", ELS, ["0370-2693"], "phys", "els", "physletb", 1967, 2019, 788, 12, 1, 12, J),
    ("Applied Physics Letters", "Appl. Phys. Lett.", ("AIP Publishing", "317"), ["0003-6951", "1077-3118"], "phys", "aip", None, 1962, 2019, 114, 2, 26, 15, J),
    ("The European Physical Journal C", "Eur. Phys. J. C", SNL, ["1434-6044", "1434-6052"], "phys", "springerj", "s10052", 1998, 2019, 79, 1, 12, 5, J),
    ("Journal of Computational Physics", "J. Comput. Phys.", ELS, ["0021-9991"], "phys", "els", "jcp", 1966, 2019, 376, 8, 1, 5, J),
    ("IEEE Transactions on Pattern Analysis and Machine Intelligence", "IEEE Trans. Pattern Anal. Mach. Intell.", IEEE, ["0162-8828", "2160-9292", "1939-3539"], "cs", "ieee", "TPAMI", 1979, 2019, 41, 1, 12, 8, J),
    ("IEEE Transactions on Information Theory", "IEEE Trans. Inform. Theory", IEEE, ["0018-9448", "1557-9654"], "cs", "ieee", "TIT", 1963, 2019, 65, 1, 12, 5, J),
    ("Communications of the ACM", "Commun. ACM", ACM, ["0001-0782", "1557-7317"], "cs", "acmj", None, 1958, 2019, 62, 1, 12, 4, J),
    ("Journal of the ACM", "J. ACM", ACM, ["0004-5411", "1557-735X"], "cs", "acmj", None, 1954, 2019, 66, 1, 6, 2, J),
    ("Machine Learning", "Mach. Learn.", SNL, ["0885-6125", "1573-0565"], "cs", "springerj", "s10994", 1986, 2019, 108, 1, 12, 4, J),
    ("Neural Networks", "Neural Netw.", ELS, ["0893-6080"], "cs", "els", "neunet", 1988, 2019, 109, 12, 1, 5, J),
    ("Information Sciences", "Inf. Sci.", ELS, ["0020-0255"], "cs", "els", "ins", 1968, 2019, 470, 16, 1, 5, J),
    ("Pattern Recognition", "Pattern Recognit.", ELS, ["0031-3203"], "cs", "els", "patcog", 1968, 2019, 85, 12, 1, 5, J),
    ("Proceedings of the {year} ACM SIGSAC Conference on Computer and Communications Security", "CCS", ACM, [], "cs", "acmp", None, 1993, 2019, 0, 0, 0, 5, P),
    ("Proceedings of the {year} ACM SIGMOD International Conference on Management of Data", "SIGMOD", ACM, [], "cs", "acmp", None, 1975, 2019, 0, 0, 0, 4, P),
    ("Proceedings of the {ord} ACM SIGKDD International Conference on Knowledge Discovery & Data Mining", "KDD", ACM, [], "cs", "acmp", None, 1995, 2019, 0, 0, 0, 5, P),
    ("Proceedings of the {year} CHI Conference on Human Factors in Computing Systems", "CHI", ACM, [], "cs", "acmp", None, 1982, 2019, 0, 0, 0, 5, P),
    ("Proceedings of the {ord} ACM SIGPLAN International Conference on Programming Language Design and Implementation", "PLDI", ACM, [], "cs", "acmp", None, 1980, 2019, 0, 0, 0, 3, P),
    ("Proceedings of the {ord} Annual ACM SIGACT Symposium on Theory of Computing", "STOC", ACM, [], "cs", "acmp", None, 1969, 2019, 0, 0, 0, 3, P),
    ("Proceedings of the {ord} International ACM SIGIR Conference on Research and Development in Information Retrieval", "SIGIR", ACM, [], "cs", "acmp", None, 1978, 2019, 0, 0, 0, 3, P),
    ("{year} IEEE Conference on Computer Vision and Pattern Recognition (CVPR)", "CVPR", IEEE, ["1063-6919"], "cs", "ieeep", "CVPR", 1983, 2019, 0, 0, 0, 6, P),
    ("{year} IEEE International Conference on Robotics and Automation (ICRA)", "ICRA", IEEE, ["1050-4729"], "cs", "ieeep", "ICRA", 1984, 2019, 0, 0, 0, 4, P),
    ("Computer Vision – ECCV {year}", "Lecture Notes in Computer Science", ("Springer International Publishing", "297"), ["0302-9743", "1611-3349"], "cs", "lncs", None, 1990, 2019, 0, 0, 0, 4, C),
    ("Medical Image Computing and Computer Assisted Intervention – MICCAI {year}", "Lecture Notes in Computer Science", ("Springer International Publishing", "297"), ["0302-9743", "1611-3349"], "cs", "lncs", None, 1998, 2019, 0, 0, 0, 3, C),
    ("Advances in Cryptology – CRYPTO {year}", "Lecture Notes in Computer Science", ("Springer International Publishing", "297"), ["0302-9743", "1611-3349"], "cs", "lncs", None, 1981, 2019, 0, 0, 0, 2, C),
    ("Computer Aided Verification", "Lecture Notes in Computer Science", ("Springer International Publishing", "297"), ["0302-9743", "1611-3349"], "cs", "lncs", None, 1989, 2019, 0, 0, 0, 2, C),
    ("The New England Journal of Medicine", "N. Engl. J. Med.", ("Massachusetts Medical Society", "150"), ["0028-4793", "1533-4406"], "med", "nejm", None, 1928, 2019, 380, 2, 26, 10, J),
    ("JAMA", "JAMA", ("American Medical Association (AMA)", "10"), ["0098-7484"], "med", "jama", None, 1883, 2019, 321, 2, 24, 8, J),
    ("The Lancet", "Lancet", ELS, ["0140-6736"], "med", "lancet", None, 1823, 2019, 393, 2, 26, 10, J),
    ("BMJ", "BMJ", ("BMJ", "239"), ["0959-8138", "1756-1833"], "med", "bmj", None, 1988, 2019, 364, 4, 13, 8, J),
    ("PLOS Medicine", "PLoS Med.", PLOS, ["1549-1676"], "med", "plos", "pmed", 2004, 2019, 16, 1, 12, 4, J),
    ("Nature Medicine", "Nat. Med.", SNL, ["1078-8956", "1546-170X"], "med", "nature", ("s41591", "nm."), 1995, 2019, 25, 1, 12, 5, J),
    ("Journal of Hepatology", "J. Hepatol.", ELS, ["0168-8278"], "med", "els", "jhep", 1985, 2019, 70, 2, 6, 4, J),
    ("Annals of Internal Medicine", "Ann. Intern. Med.", ("American College of Physicians", "1658"), ["0003-4819", "1539-3704"], "med", "acp", None, 1927, 2019, 170, 2, 12, 4, J),
    ("PLOS ONE", "PLoS ONE", PLOS, ["1932-6203"], ("med", "bio"), "plos", "pone", 2006, 2019, 14, 1, 12, 25, J),
    ("Cell", "Cell", ELS, ["0092-8674"], "bio", "els", "cell", 1974, 2019, 176, 4, 6, 8, J),
    ("Molecular Cell", "Mol. Cell", ELS, ["1097-2765"], "bio", "els", "molcel", 1997, 2019, 73, 4, 6, 5, J),
    ("Current Biology", "Curr. Biol.", ELS, ["0960-9822"], "bio", "els", "cub", 1991, 2019, 29, 1, 24, 6, J),
    ("Nature", "Nature", SNL, ["0028-0836", "1476-4687"], ("bio", "phys", "med"), "nature", ("s41586", "nature"), 1869, 2019, 565, 12, 4, 12, J),
    ("Nature Communications", "Nat. Commun.", SNL, ["2041-1723"], ("bio", "phys", "cs"), "nature", ("s41467", "ncomms"), 2010, 2019, 10, 1, 1, 15, J),
    ("Nature Methods", "Nat. Methods", SNL, ["1548-7091", "1548-7105"], "bio", "nature", ("s41592", "nmeth."), 2004, 2019, 16, 1, 12, 3, J),
    ("Science", "Science", ("American Association for the Advancement of Science (AAAS)", "221"), ["0036-8075", "1095-9203"], ("bio", "phys"), "science", None, 1880, 2019, 363, 4, 13, 10, J),
    ("Proceedings of the National Academy of Sciences", "Proc. Natl. Acad. Sci. U.S.A.", ("Proceedings of the National Academy of Sciences", "341"), ["0027-8424", "1091-6490"], ("bio", "phys", "med"), "pnas", None, 1915, 2019, 116, 1, 52, 12, J),
    ("eLife", "eLife", ("eLife Sciences Publications, Ltd", "4374"), ["2050-084X"], "bio", "elife", None, 2012, 2019, 8, 1, 1, 6, J),
    ("PLOS Computational Biology", "PLoS Comput. Biol.", PLOS, ["1553-7358"], "bio", "plos", "pcbi", 2005, 2019, 15, 1, 12, 4, J),
    ("PLOS Biology", "PLoS Biol.", PLOS, ["1545-7885"], "bio", "plos", "pbio", 2003, 2019, 17, 1, 12, 3, J),
    ("Genome Research", "Genome Res.", ("Cold Spring Harbor Laboratory", "246"), ["1088-9051", "1549-5469"], "bio", "cshl", None, 1995, 2019, 29, 1, 12, 3, J),
    ("bioRxiv", "", ("Cold Spring Harbor Laboratory", "246"), [], ("bio", "med"), "biorxiv", None, 2013, 2019, 0, 0, 0, 6, POSTED),
    ("Research Square", "", ("Research Square Platform LLC", "8068"), [], "med", "rsq", None, 2019, 2019, 0, 0, 0, 2, POSTED),
    ("SSRN Electronic Journal", "", ELS, ["1556-5068"], ("med", "cs"), "ssrn", None, 1994, 2019, 0, 0, 0, 2, POSTED),
]
ONLINE_ONLY = {"plos", "elife", "biorxiv", "rsq", "ssrn", "jhep"}

# ---------------------------------------------------------------------------------------- word pools
PHYS = {
    "obs": ["Observation of", "Evidence for", "Signatures of", "Theory of", "Probing", "Controlling", "Imaging",
         "Tuning", "Origin of", "Absence of", "Stability of", "Microscopic theory of", "Dynamics of", "Anatomy of"],
    "adj": ["Tunable", "Emergent", "Giant", "Robust", "Pressure-induced", "Strain-tuned", "Light-induced",
         "Field-induced", "Anomalous", "Nonequilibrium", "Fluctuation-driven", "Long-lived", "Coherent", "Chiral"],
    "phen": ["anomalous Hall effect", "quantum spin liquid behavior", "charge density waves", "unconventional superconductivity",
          "many-body localization", "dynamical phase transitions", "topological edge states", "Majorana zero modes",
          "spin-orbit coupling", "thermal transport", "magnon-phonon coupling", "quantum criticality", "entanglement growth",
          "Floquet topological phases", "prethermalization", "gravitational wave emission", "dark matter signatures",
          "neutrino oscillations", "vortex dynamics", "Anderson localization", "giant magnetoresistance",
          "nonreciprocal transport", "Kondo screening", "electron-phonon coupling", "superfluidity", "time-crystalline order",
          "pair density waves", "hydrodynamic electron flow", "spin pumping", "the quantum anomalous Hall state",
          "Bose–Einstein condensation", "excitonic insulator behavior", "flat-band ferromagnetism", "Hawking radiation",
          "the chiral magnetic effect", "orbital magnetization", "quantum scars", "spin-charge separation"],
    "sys": ["graphene", "twisted bilayer graphene", "monolayer WSe<sub>2</sub>", "MoS<sub>2</sub> heterostructures",
         "the kagome lattice", "a Heisenberg antiferromagnet", "topological insulators", "Weyl semimetals",
         "cuprate superconductors", "iron-based superconductors", "ultracold Fermi gases", "trapped-ion quantum simulators",
         "superconducting qubits", "semiconductor quantum dots", "spin ice", "the Hubbard model", "the two-dimensional Ising model",
         "frustrated magnets", "perovskite oxides", "LaAlO<sub>3</sub>/SrTiO<sub>3</sub> interfaces", "Dirac materials",
         "nematic liquid crystals", "active matter", "disordered wires", "optical lattices", "black hole spacetimes",
         "de Sitter space", "the early universe", "neutron stars", "heavy-ion collisions", "the quark-gluon plasma",
         "lattice gauge theories", "Rydberg atom arrays", "photonic crystals", "nanomechanical resonators",
         "magnetic skyrmion lattices", "spin chains", "Sr<sub>2</sub>RuO<sub>4</sub>", "CrI<sub>3</sub> monolayers",
         "α-RuCl<sub>3</sub>", "the SYK model", "holographic superconductors", "proton-proton collisions at √s = 13 TeV"],
    "cond": ["under uniaxial strain", "at finite temperature", "near a quantum critical point", "in high magnetic fields",
          "beyond mean-field theory", "out of equilibrium", "with long-range interactions", "at the nanoscale",
          "from first principles", "in the strong-coupling limit", "at low temperatures", "under periodic driving"],
    "meth": ["Quantum Monte Carlo", "Density-functional", "Renormalization-group", "Tensor-network", "Angle-resolved photoemission",
          "Neutron scattering", "Scanning tunneling microscopy", "Numerical", "Exact-diagonalization", "Effective field theory",
          "Machine-learning", "Lattice QCD", "Ab initio"],
}
CS = {
    "adj": ["Scalable", "Efficient", "Robust", "Provably correct", "Low-latency", "Energy-efficient", "Privacy-preserving",
         "Interpretable", "Adaptive", "Distributed", "Incremental", "Lightweight", "Fair", "Secure", "Practical", "Fast",
         "Learning-based", "Zero-shot", "Few-shot", "Hierarchical", "Differentiable", "Self-supervised", "Verified", "Approximate"],
    "meth": ["graph neural networks", "transformers", "contrastive learning", "reinforcement learning", "federated learning",
          "diffusion models", "variational autoencoders", "sparse attention", "knowledge distillation", "program synthesis",
          "symbolic execution", "differential privacy", "zero-knowledge proofs", "Byzantine fault tolerance",
          "approximate nearest neighbor search", "learned index structures", "gradient boosting", "Bayesian optimization",
          "neural architecture search", "large language models", "mixed-integer programming", "stochastic gradient descent",
          "spectral clustering", "kernel methods", "random features", "type inference", "static analysis", "fuzzing",
          "consistent hashing", "locality-sensitive hashing", "belief propagation", "model checking", "SAT solving",
          "convolutional networks", "recurrent neural networks", "active learning", "meta-learning", "bandit algorithms"],
    "task": ["image segmentation", "machine translation", "code completion", "anomaly detection", "link prediction",
          "entity resolution", "query optimization", "malware detection", "speech recognition", "3D reconstruction",
          "recommendation", "question answering", "citation recommendation", "log parsing", "traffic forecasting",
          "protein structure prediction", "autonomous driving", "object detection", "document retrieval",
          "scheduling in data centers", "memory safety", "program repair", "compiler optimization", "edge inference",
          "pose estimation", "text classification", "graph partitioning", "cardinality estimation", "intrusion detection",
          "sentiment analysis", "video understanding", "motion planning", "crowd counting", "password cracking"],
    "qual": ["at scale", "on heterogeneous hardware", "with limited supervision", "under distribution shift", "in the wild",
          "for resource-constrained devices", "with formal guarantees", "without labels", "in adversarial settings",
          "across languages", "in the cloud", "on mobile devices", "with noisy labels", "in real time"],
    "prop": ["robustness", "convergence", "generalization", "expressive power", "sample complexity", "limitations",
          "hardness", "privacy risks", "calibration", "implicit bias", "scalability", "stability"],
    "acr1": ["Deep", "Fast", "Neural", "Graph", "Sparse", "Meta", "Auto", "Hyper", "Flex", "Quant", "Turbo", "Open", "Tiny",
          "Omni", "Rapid", "Secure", "Pro", "Seq", "Vision", "Code"],
    "acr2": ["Net", "Rank", "Match", "Former", "Shield", "Sync", "Fuzz", "Store", "Tune", "Flow", "Gen", "Lens", "Scope",
          "Mind", "Guard", "Bench", "Trace", "Map", "Pilot", "Sketch"],
}
MED = {
    "int": ["metformin", "aspirin", "dexamethasone", "tocilizumab", "remdesivir", "intensive blood-pressure control",
         "early mobilization", "statin therapy", "SGLT2 inhibitors", "pembrolizumab", "bariatric surgery",
         "mindfulness-based therapy", "vitamin D supplementation", "high-flow nasal oxygen", "catheter ablation",
         "tranexamic acid", "semaglutide", "influenza vaccination", "cognitive behavioural therapy", "home-based telemonitoring",
         "low-dose colchicine", "restrictive transfusion", "exercise training", "nurse-led follow-up", "prone positioning",
         "apixaban", "nivolumab plus ipilimumab", "electronic alerts", "school-based screening", "intermittent fasting"],
    "out": ["mortality", "cardiovascular events", "hospital readmission", "progression-free survival", "cognitive decline",
         "postoperative complications", "quality of life", "glycaemic control", "stroke recurrence", "kidney function",
         "length of hospital stay", "depressive symptoms", "fracture risk", "weight loss", "viral clearance",
         "antibiotic use", "hospitalization", "major bleeding", "functional recovery", "incident dementia"],
    "pop": ["patients with type 2 diabetes", "critically ill adults", "older adults with frailty", "children with asthma",
         "patients with heart failure", "pregnant women", "adults with chronic kidney disease",
         "patients with non-small-cell lung cancer", "patients with COVID-19", "survivors of stroke", "patients with sepsis",
         "adolescents with obesity", "people living with HIV", "patients with atrial fibrillation", "preterm infants",
         "nursing home residents", "patients undergoing cardiac surgery", "women with breast cancer",
         "patients with rheumatoid arthritis", "adults with hypertension"],
    "design": ["a randomized controlled trial", "a multicentre cohort study", "a systematic review and meta-analysis",
            "a nationwide registry study", "a double-blind, placebo-controlled trial", "a population-based case-control study",
            "a cluster-randomised trial", "a prospective observational study", "a retrospective analysis",
            "a Mendelian randomisation study", "a target trial emulation"],
    "risk": ["air pollution", "sleep duration", "socioeconomic status", "obesity", "smoking", "physical activity",
          "ultra-processed food intake", "shift work", "antibiotic exposure in infancy", "alcohol consumption",
          "social isolation", "long-term PPI use", "hearing loss", "gestational diabetes"],
    "disease": ["chronic obstructive pulmonary disease", "hypertension", "dementia", "tuberculosis", "malaria",
             "colorectal cancer", "atrial fibrillation", "chronic kidney disease", "depressive disorders", "stroke",
             "low back pain", "lower respiratory infections", "diabetes", "ischaemic heart disease"],
}
BIO = {
    "gene": ["p53", "mTORC1", "the CRISPR–Cas9 system", "Wnt signalling", "the NLRP3 inflammasome", "TGF-β", "BRCA1",
          "histone H3K27 methylation", "cohesin", "the circadian clock", "MYC", "KRAS", "the spliceosome", "microRNA-21",
          "autophagy receptors", "the unfolded protein response", "Piezo1 channels", "the Hippo pathway",
          "long non-coding RNAs", "ribosomal proteins", "CTCF", "Notch signalling", "the cGAS–STING pathway", "YAP/TAZ",
          "SOX2", "polycomb repressive complex 2", "AMPK", "the nuclear pore complex", "TP53-induced glycolysis regulator",
          "heat shock factor 1", "the BAF complex", "interferon-γ"],
    "proc": ["cell fate decisions", "synaptic plasticity", "DNA repair", "stem cell maintenance", "tumour progression",
          "immune evasion", "chromatin remodelling", "neuronal migration", "lipid metabolism", "biofilm formation",
          "host–pathogen interactions", "mitochondrial dynamics", "T cell exhaustion", "axon regeneration",
          "gene expression noise", "phase separation", "organ size control", "antibiotic resistance", "embryonic patterning",
          "genome folding", "cilia assembly", "meiotic recombination", "root development", "sleep homeostasis",
          "insulin secretion", "wound healing", "X chromosome inactivation", "epithelial–mesenchymal transition"],
    "org": ["<i>Drosophila</i>", "Drosophila", "zebrafish", "mice", "human cells", "<i>Arabidopsis thaliana</i>",
         "<i>Caenorhabditis elegans</i>", "<i>Escherichia coli</i>", "budding yeast", "<i>Plasmodium falciparum</i>",
         "the mouse cortex", "human organoids", "<i>Mycobacterium tuberculosis</i>", "<i>Xenopus</i> embryos",
         "the developing retina", "human T cells", "cancer cells", "hematopoietic stem cells"],
    "mech": ["a non-canonical pathway", "post-translational modification", "phase separation", "alternative splicing",
          "epigenetic silencing", "metabolic rewiring", "feedback inhibition", "mechanical cues", "protein degradation",
          "RNA methylation", "enhancer hijacking"],
    "omics": ["RNA sequencing", "transcriptomics", "chromatin accessibility profiling", "proteomics", "lineage tracing",
           "multi-omics", "spatial transcriptomics"],
    "verb": ["regulates", "controls", "drives", "restrains", "coordinates", "promotes", "suppresses", "shapes"],
}
SUBTITLES = {
    "phys": ["A first-principles study", "An exact solution", "Theory and experiment", "Part II", "Beyond the Gaussian approximation", "A numerical study"],
    "cs": ["A survey", "An empirical study", "Theory and practice", "A case study", "Lessons learned", "An experimental evaluation"],
    "med": ["A randomized clinical trial", "A systematic review", "Results from a national cohort", "A cost-effectiveness analysis", "The ORION-4 trial", "A qualitative study"],
    "bio": ["A single-cell atlas", "Insights from structural biology", "Evidence from mouse models", "A resource", "Implications for disease", "A CRISPR screen"],
}


def _c(s: str) -> str:
    return s[:1].upper() + s[1:] if s[:1] != "<" else s


def title_templates() -> dict[str, list]:
    """Per field, (format, pools) pairs: the title is format.format(*(choice(p) for p in pools))."""
    p, c, m, b = PHYS, CS, MED, BIO
    def cap(xs):
        return [_c(x) for x in xs]

    acr = [a + z for a in c["acr1"] for z in c["acr2"]] + ["SPADE", "HAWK", "ORCA", "LYNX", "DELTA", "ATLAS", "PRISM", "NOVA"]
    return {
        "phys": [("{} {} in {}", [p["obs"], p["phen"], p["sys"]]),
                 ("{} {} in {}", [p["adj"], p["phen"], p["sys"]]),
                 ("{} and {} in {}", [cap(p["phen"]), p["phen"], p["sys"]]),
                 ("{} study of {} in {}", [p["meth"], p["phen"], p["sys"]]),
                 ("{} in {} {}", [cap(p["phen"]), p["sys"], p["cond"]]),
                 ("Role of {} in the {} of {}", [p["phen"], ["stability", "dynamics", "phase diagram", "ground state", "transport properties"], p["sys"]]),
                 ("{} {} of {} {}", [p["adj"], ["response", "dynamics", "ordering", "excitations", "spectra"], p["sys"], p["cond"]])],
        "cs": [("{} {} for {}", [c["adj"], c["meth"], c["task"]]),
               ("{}: {} {} for {}", [acr, [a.lower() for a in c["adj"]], c["meth"], c["task"]]),
               ("{} for {} {}", [cap(c["meth"]), c["task"], c["qual"]]),
               ("Towards {} {} {}", [[a.lower() for a in c["adj"]], c["task"], c["qual"]]),
               ("On the {} of {} for {}", [c["prop"], c["meth"], c["task"]]),
               ("Rethinking {} for {}", [c["meth"], c["task"]]),
               ("Can {} improve {}?", [c["meth"], c["task"]]),
               ("{}: {} {} {}", [acr, c["meth"], ["for", "meets", "beyond"], c["task"]])],
        "med": [("{} and {} in {}", [cap(m["int"]), m["out"], m["pop"]]),
                ("Effect of {} on {} in {}: {}", [m["int"], m["out"], m["pop"], m["design"]]),
                ("{} versus {} in {}", [cap(m["int"]), m["int"], m["pop"]]),
                ("Association between {} and {} in {}", [m["risk"], m["out"], m["pop"]]),
                ("Global burden of {} in {} countries, 1990–2019: {}", [m["disease"], ["204", "195", "low-income", "European"], m["design"]]),
                ("Risk factors for {} in {}", [m["out"], m["pop"]]),
                ("Long-term outcomes of {} in {}", [m["int"], m["pop"]])],
        "bio": [("{} {} {} in {}", [cap(b["gene"]), b["verb"], b["proc"], b["org"]]),
                ("{} {} {} through {}", [cap(b["gene"]), b["verb"], b["proc"], b["mech"]]),
                ("Single-cell {} reveals {} of {} in {}", [b["omics"], ["regulators", "dynamics", "heterogeneity", "principles"], b["proc"], b["org"]]),
                ("Structural basis of {} by {}", [b["proc"], b["gene"]]),
                ("A role for {} in {}", [b["gene"], b["proc"]]),
                ("Loss of {} promotes {} in {}", [b["gene"], b["proc"], b["org"]]),
                ("Genome-wide {} identifies regulators of {} in {}", [["CRISPR screening", "association analysis", "RNAi screening"], b["proc"], b["org"]])],
    }


# ---------------------------------------------------------------------------------------- name pools
REGIONS = [  # (weight, given names, surnames)
    (8, "Thomas Michael Andreas Stefan Jürgen Katrin Sabine Anja Jörg Matthias Björn Uwe Lena Jan-Hendrik Friederike Ulrich",
     ("Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer Richter Klein Wolf Schröder "
     "Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Köhler Jäger Günther Vogel Böhm von_Braun von_der_Heide")),
    (6, "Jean Pierre Marie Sophie Jean-Pierre François Hélène Céline Frédéric Thierry Amélie Étienne Jérôme Benoît Anne-Laure Loïc",
     ("Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre Michel Garnier Faure Rousseau "
     "Girard Mercier Chevalier Lemaître Lévy Béranger de_Saint-Exupéry Le_Roux Giraud")),
    (7, "José María Juan Carlos Ana Luis Javier Lucía Sofía Andrés José_Luis María_José João Inês Gonçalo Raúl Iñaki Ximena",
     ("García Rodríguez Martínez López González Pérez Sánchez Ramírez Torres Flores Díaz Gómez Ruiz Hernández Jiménez Álvarez "
     "Moreno Muñoz Romero Navarro Gutiérrez Silva Santos Oliveira Souza Pereira Costa Carvalho Almeida Gonçalves Araújo "
     "de_la_Cruz del_Río da_Silva dos_Santos")),
    (5, "Giuseppe Marco Francesca Alessandro Giulia Luca Chiara Matteo Paolo Niccolò Federica Gianluca",
     ("Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti De_Luca Mancini Giordano Rizzo "
     "Lombardi Moretti Barbieri Fontana Santoro D'Angelo di_Stefano")),
    (4, "Jan Pieter Sanne Maarten Joris Femke Bram Eline Thijs Willem Anouk",
     ("de_Jong Jansen de_Vries van_den_Berg van_Dijk Bakker Visser Smit Meijer de_Boer Mulder de_Groot Bos Vos Peters Hendriks "
     "van_Leeuwen Dekker van_der_Meer van_der_Linden van_'t_Hof ter_Horst")),
    (4, "Lars Anders Ingrid Sören Søren Åsa Björn Kari Mikael Sanna Jukka Päivi Mette Sigrún",
     ("Hansen Johansson Nielsen Andersson Jensen Karlsson Nilsson Eriksson Larsen Pedersen Sørensen Østergaard Lindqvist "
     "Bjørnstad Åberg Håkansson Søgaard Virtanen Mäkinen Korhonen Järvinen Guðmundsdóttir")),
    (6, "Piotr Tomasz Łukasz Agnieszka Katarzyna Jiří Petr Tomáš Zdeněk Dmitry Sergei Olga Natalia Alexei Yuliia Oleksandr Gábor László Zsófia",
     ("Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański Dvořák Novák Svoboda Černý Procházka "
     "Kučera Horváth Nagy Kovács Szabó Tóth Ivanov Smirnov Kuznetsov Popov Sokolov Petrov Volkov Fedorov Morozov Kovalenko "
     "Shevchenko Bondarenko")),
    (2, "Mehmet Ayşe Emre Zeynep Giorgos Eleni Dimitrios Nikos",
     ("Yılmaz Kaya Demir Şahin Çelik Öztürk Papadopoulos Georgiou Nikolaidis Konstantinou")),
    (14, "James John Robert Mary Jennifer David Sarah Emily Daniel Laura Christopher Rachel Patrick Siobhan Ciarán Andrew Karen Michael",
     ("Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Moore Jackson White Harris Clark Lewis Robinson "
     "Walker Young Allen King Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell O'Brien O'Connor McDonald MacLeod "
     "Murphy Kelly Sullivan Walsh Byrne")),
    (18, "Wei Xiaoming Jing Yan Hao Lei Yu Jian Xin Li Ming Hui Qiang Yifan Zhiwei Xiaoyu Jiahui Zihan Yuxuan Haoran Shuang Xiao-Ming Jun",
     ("Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Gao Luo Zheng Liang Xie Song Tang Han Feng Deng "
     "Cao Peng Zeng Xiao Tian Dong Pan Yuan Cai Jiang Yu Du Ye Cheng Wei Su Lü Ding Ren Shen Yao Lu")),
    (5, "Min-jun Ji-hoon Seo-yeon Hyun-woo Ji-young Sung-min Dong-hyun Eun-ji Jae-won",
     ("Kim Lee Park Choi Jung Kang Cho Yoon Jang Lim Shin Seo Kwon Hwang Ahn Yoo Hong Jeon")),
    (5, "Hiroshi Takashi Yuki Kenji Akira Naoko Yuko Shinji Haruka Daisuke Satoshi Tomoko Kōhei",
     ("Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida Yamada Sasaki Yamaguchi Matsumoto "
     "Inoue Kimura Hayashi Shimizu Saitō Ōta")),
    (7, "Rahul Priya Amit Anjali Vikram Deepak Sanjay Lakshmi Arjun Kavya Sunil Ramesh Ananya",
     ("Sharma Singh Kumar Gupta Patel Reddy Iyer Nair Rao Mukherjee Chatterjee Banerjee Das Ghosh Bose Joshi Mehta Desai "
     "Krishnan Subramanian Venkatesan Agarwal Chaudhary Srinivasan")),
    (2, "Minh Thanh Huong Duc Anh Lan Tuan Hai", "Nguyen Tran Le Pham Hoang Phan Vu Dang Bui Do Nguyễn"),
    (4, "Mohammed Ahmed Fatima Omar Youssef Leila Reza Maryam Ali Amir Nasrin Karim Samira",
     ("Hassan Ali Ahmed Mohamed Ibrahim Khalil Haddad Al-Farsi El-Sayed Abdel-Rahman Hosseini Ahmadi Rezaei Mohammadi Karimi "
     "Moradi Rahimi Jafari Ben_Ali Bouzid")),
    (2, "Chinedu Oluwaseun Kwame Ama Ngozi Thabo Amara Wanjiru Kofi Olúwatóyìn",
     ("Okafor Adeyemi Mensah Owusu Okonkwo Abubakar Nkosi Dlamini Mwangi Otieno Kamau Banda Osei")),
    (1, "Yael Avi Noam Tamar Eitan Shira Moshe", "Cohen Levi Mizrahi Friedman Katz Rosenberg Goldberg Shapiro"),
]
CONSORTIA = {
    "phys": ["ATLAS Collaboration", "CMS Collaboration", "LIGO Scientific Collaboration and Virgo Collaboration", "IceCube Collaboration", "LHCb Collaboration"],
    "cs": ["The Open MPI Team"],
    "med": ["RECOVERY Collaborative Group", "GBD 2019 Diseases and Injuries Collaborators", "COVIDSurg Collaborative", "SPRINT Research Group"],
    "bio": ["ENCODE Project Consortium", "The Tabula Sapiens Consortium", "1000 Genomes Project Consortium", "Human Cell Atlas Consortium"],
}
N_AUTHORS = {  # weights of 1..15 authors
    "phys": [8, 18, 20, 16, 12, 8, 6, 4, 3, 2, 1, 1, 1, 1, 1],
    "cs": [6, 18, 22, 20, 14, 9, 5, 3, 2, 1, 1, 1, 1, 1, 1],
    "med": [3, 5, 7, 8, 9, 9, 9, 8, 8, 7, 6, 5, 5, 5, 6],
    "bio": [2, 5, 7, 9, 10, 10, 9, 8, 8, 7, 6, 5, 5, 4, 5],
}


def make_persons(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(given, family) pairs: the same people come back as authors of many records."""
    gi = [[x.replace("_", " ") for x in g.split(" ")] for _, g, _ in REGIONS]
    fa = [[x.replace("_", " ") for x in f.split(" ")] for _, _, f in REGIONS]
    picks = [i for i, (w, _, _) in enumerate(REGIONS) for _ in range(w)]
    letters = "ABCDEFGHIJKLMNOPRSTVW"
    out = []
    for _ in range(n):
        k = rng.choice(picks)
        given, fam = rng.choice(gi[k]), rng.choice(fa[k])
        if rng.random() < 0.03 and " " not in fam:  # double-barrelled surname
            other = rng.choice(fa[k])
            if " " not in other and other != fam:
                fam = f"{fam}-{other}"
        u = rng.random()
        if u < 0.15:
            given = f"{given} {rng.choice(letters)}."
        elif u < 0.32:
            given = initials(given) + (f" {rng.choice(letters)}." if rng.random() < 0.4 else "")
        out.append((given, fam))
    return out


def initials(given: str, dots: bool = True, spaces: bool = True, hyphen: bool = True) -> str:
    toks = []
    for tok in given.replace(".", ". ").split():
        parts = [p[:1].upper() + ("." if dots else "") for p in tok.split("-") if p]
        toks.append(("-" if hyphen else "").join(parts))
    return (" " if spaces else "").join(toks)


# ---------------------------------------------------------------------------------------- generator
class Generator:
    def __init__(self, seed: int):
        self.rng = rng = random.Random(seed)
        rnd = self.rnd = rng.random

        def choice(seq):  # random.choice and randint cost 3 Python calls each; these cost one
            return seq[int(rnd() * len(seq))]

        def randint(a, b):
            return a + int(rnd() * (b - a + 1))

        self.r, self.choice = randint, choice
        self.persons = make_persons(random.Random(seed ^ 0x5EED), 1 << 17)
        self.np = len(self.persons)
        # author objects are shared between records (nothing mutates them) and encoded once
        self.first = [{"given": g, "family": f, "sequence": "first", "affiliation": []} for g, f in self.persons]
        self.additional = [{"given": g, "family": f, "sequence": "additional", "affiliation": []} for g, f in self.persons]
        self.encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self.fragments = {id(d): self.encode(d) for d in self.first + self.additional}
        self.templates = title_templates()
        self.venues = []
        for v in VENUES:
            (full, abbr, (publisher, member), issn, fields, scheme, code, start, vy, v0, vpy, ipy, _weight, kind) = v
            years = [y for y in range(max(start, 1950), LAST_YEAR + 1) for _ in range(max(1, round(math.exp((y - 1950) * 0.06))))]
            self.venues.append({"full": full, "abbr": abbr, "publisher": publisher, "member": member, "issn": issn,
                                "fields": fields if isinstance(fields, tuple) else (fields,), "scheme": scheme, "code": code,
                                "start": start, "vy": vy, "v0": v0, "vpy": vpy, "ipy": ipy, "kind": kind, "years": years,
                                "issn_type": [{"value": x, "type": t} for x, t in zip(issn, ("print", "electronic", "electronic"))]})
        self.vpick = [v for v, row in zip(self.venues, VENUES) for _ in range(row[12])]
        self.ncount = {f: [i + 1 for i, w in enumerate(ws) for _ in range(w)] for f, ws in N_AUTHORS.items()}
        self.dois: set[str] = set()
        self.books: dict = {}

    # -- pieces
    def title(self, field: str) -> str:
        fmt, pools = self.choice(self.templates[field])
        ch = self.choice
        t = fmt.format(*[ch(p) for p in pools])
        t = t[:1].upper() + t[1:] if t[0] != "<" else t
        if field == "cs" and self.rnd() < 0.35:
            t = " ".join(w if w in SMALL else w[:1].upper() + w[1:] for w in t.split(" "))
        return t

    def authors(self, field: str) -> list[dict]:
        k = self.choice(self.ncount[field])
        np_, rnd, add = self.np, self.rnd, self.additional
        out = [self.first[int(rnd() * np_)]]
        for _ in range(k - 1):
            out.append(add[int(rnd() * np_)])
        if rnd() < 0.012:
            name = self.choice(CONSORTIA[field])
            if k > 3 and rnd() < 0.5:
                out.append({"name": name, "sequence": "additional", "affiliation": []})
            else:
                out = [{"name": name, "sequence": "first", "affiliation": []}]
        return out

    def pages(self, v: dict) -> str:
        s = self.r(1, 2999 if v["ipy"] != 1 else 400)
        return f"{s}-{s + self.r(1, 16)}"

    def doi_page(self, v: dict, year: int, month: int, day: int, vol: int, issue: int):
        """A fresh DOI of the venue's scheme, with the page and article number it implies (None: a page range)."""
        s, code, r = v["scheme"], v["code"], self.r
        yy = year % 100
        if s == "aps":
            a = f"{min(issue, 99):02d}{r(1000, 9999)}"
            return f"10.1103/{code}.{vol}.{a}", a, a
        if s == "els":
            return f"10.1016/j.{code}.{year}.{month:02d}.{r(1, 999):03d}", None, None
        if s == "lancet":
            return f"10.1016/S0140-6736({yy:02d}){r(30000, 99999)}-{r(0, 9)}", None, None
        if s == "nature":
            new, old = code
            if year >= 2018:
                d = f"10.1038/{new}-0{yy:02d}-{r(1000, 99999):05d}-{r(0, 9)}"
            elif year >= 2006 or new != "s41586":
                d = f"10.1038/{old}{r(1000, 99999)}"
            else:
                d = f"10.1038/{r(10, 99)}{r(100000, 999999)}"
            if new == "s41467":
                a = str(r(1, 9999))
                return d, None, a
            return d, None, None
        if s == "plos":
            n = f"{r(0, 299999):07d}"
            return f"10.1371/journal.{code}.{n}", "e" + n, None
        if s == "springerj":
            if year < 2000:
                return f"10.1023/A:{r(1000000000, 1099999999)}", None, None
            return f"10.1007/{code}-0{yy:02d}-{r(1, 9999):05d}-{r(0, 9)}", None, None
        if s == "jhep":
            a = f"{r(1, 250):03d}"
            return f"10.1007/JHEP{month:02d}({year}){a}", str(int(a)), a
        if s == "ieee":
            return f"10.1109/{code}.{year}.{r(2000000, 2999999)}", None, None
        if s == "acmj":
            return f"10.1145/{r(300000, 999999) if year < 2005 else r(1000000, 3999999)}", None, None
        if s == "aip":
            a = f"{min(issue, 99):02d}{r(1000, 9999)}"
            return (f"10.1063/5.{r(0, 99999):07d}" if year >= 2020 else f"10.1063/1.{r(1000000, 4999999)}"), a, a
        if s == "pnas":
            return f"10.1073/pnas.{r(1000000, 2099999)}{year + 97 - 2000 if year >= 2000 else yy}", None, None
        if s == "science":
            if year >= 2019:
                return f"10.1126/science.{self.choice('ab')}{self.choice('abcdefghijklmnopqrstuvwxyz')}{self.choice('abcdefghijklmnopqrstuvwxyz')}{r(1000, 9999)}", None, None
            return f"10.1126/science.{r(1000000, 1299999)}", None, None
        if s == "elife":
            n = f"{r(1000, 99999):05d}"
            return f"10.7554/eLife.{n}", None, "e" + n
        if s == "nejm":
            return f"10.1056/NEJM{self.choice(('oa', 'oa', 'oa', 'sa', 'cp', 'ra'))}{yy:02d}{r(0, 99999):05d}", None, None
        if s == "jama":
            return f"10.1001/jama.{year}.{r(1000, 29999)}", None, None
        if s == "bmj":
            if year >= 2010:
                a = f"{'cdefghijklmnopq'[min(year - 2010, 14)]}{r(1000, 9999)}"
                return f"10.1136/bmj.{a}", None, a
            p = r(1, 1400)
            return f"10.1136/bmj.{vol}.{r(7000, 7999)}.{p}", f"{p}-{p + r(1, 5)}", None
        if s == "acp":
            return f"10.7326/M{yy:02d}-{r(0, 9999):04d}", None, None
        if s == "cshl":
            return f"10.1101/gr.{r(100000, 299999)}.{year - 1900:03d}", None, None
        if s == "acmp":
            key = (v["abbr"], year)
            pid = self.books.get(key) or self.books.setdefault(key, str(r(3000000, 3699999)))
            return f"10.1145/{pid}.{r(3000000, 3699999)}", None, None
        if s == "ieeep":
            return f"10.1109/{code}.{year}.{r(1, 999)}", None, None
        if s == "lncs":
            key = (v["full"], year, r(1, 8))
            isbn = self.books.get(key)
            if isbn is None:
                d = f"9783{self.choice(('030', '319', '540', '642'))}{r(10000, 99999)}"
                isbn = self.books[key] = d + str((10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(d)) % 10) % 10)
            return f"10.1007/{isbn[:3]}-{isbn[3]}-{isbn[4:7]}-{isbn[7:12]}-{isbn[12]}_{r(1, 60)}", None, None
        if s == "biorxiv":
            if year >= 2020:
                return f"10.1101/{year}.{month:02d}.{day:02d}.{r(100000, 999999)}", None, None
            return f"10.1101/{r(1000, 899999):06d}", None, None
        if s == "rsq":
            return f"10.21203/rs.3.rs-{r(10000, 999999)}/v{r(1, 3)}", None, None
        if s == "ssrn":
            return f"10.2139/ssrn.{r(1000000, 4999999)}", None, None
        raise ValueError(s)

    def record(self, v: dict | None = None, year: int | None = None, month: int | None = None,
               authors: list | None = None, title: str | None = None, field: str | None = None) -> dict:
        rnd, r, ch = self.rnd, self.r, self.choice
        v = v or ch(self.vpick)
        field = field or ch(v["fields"])
        if year and year < v["start"]:  # a look-alike asked for a year before the venue existed
            for _ in range(20):
                v = ch(self.vpick)
                if v["start"] <= year and field in v["fields"]:
                    break
            else:
                v = next(x for x in self.venues if x["start"] <= year and x["kind"] == J)
            field = field if field in v["fields"] else v["fields"][0]
        year = year or ch(v["years"])
        month = month or r(1, 12)
        day = r(1, 28)
        kind = v["kind"]
        rec: dict = {"DOI": "", "type": kind}
        # dates: issued is the earliest of print and online; volume follows the print date
        py, pm = year, month
        dates = None
        u = rnd()
        online_only = v["scheme"] in ONLINE_ONLY
        if kind == POSTED:
            issued = [[year, month, day]]
        elif online_only or kind != J:
            issued = [[year, month, day]] if u < 0.8 else [[year, month]]
        elif u < 0.06:
            issued, py, pm = [[year, 12, day]], year + 1, r(1, 2)
            month = 12
            dates = {"published-print": {"date-parts": [[py, pm]]}, "published-online": {"date-parts": issued}}
        elif u < 0.5:
            issued = [[year, month, day]]
            dates = {"published-print": {"date-parts": [[year, month]]}, "published-online": {"date-parts": issued}}
        elif u < 0.85:
            issued = [[year, month]]
            dates = {"published-print": {"date-parts": issued}}
        else:
            issued = [[year]]
        vol = issue = 0
        if v["vpy"]:
            per = v["vpy"]
            vol = v["v0"] + (py - v["vy"]) * per + ((pm - 1) * per) // 12
            issue = ((pm - 1) * per * v["ipy"]) // 12 % v["ipy"] + 1 if v["ipy"] > 1 else 0
            if vol < 1:
                vol = max(1, py - v["start"] + 1)
        for _ in range(50):
            doi, page, artno = self.doi_page(v, year, month, day, vol, issue)
            if doi not in self.dois:
                break
        else:
            doi = f"{doi}.{r(10, 99999)}"
        self.dois.add(doi)
        rec["DOI"] = doi
        if title is None:
            title = self.title(field)
            if rnd() < 0.08:
                rec["subtitle"] = [ch(SUBTITLES[field])]
        rec["title"] = [title]
        rec["author"] = authors if authors is not None else self.authors(field)
        rec["issued"] = {"date-parts": issued}
        if dates:
            rec.update(dates)
        rec["prefix"] = doi[:doi.index("/")]
        rec["member"] = v["member"]
        rec["publisher"] = v["publisher"]
        full = v["full"]
        if kind == POSTED:
            rec["posted"] = {"date-parts": issued}
            rec["subtype"] = "preprint"
            rec["institution"] = [{"name": full}]
            rec["container-title"] = [full] if v["scheme"] == "ssrn" else []
        elif kind == P:
            ordn = year - v["start"] + 1
            rec["container-title"] = [full.format(year=year, ord=ordinal(ordn))]
            rec["event"] = {"name": f"{v['abbr']} '{year % 100:02d}", "acronym": f"{v['abbr']} '{year % 100:02d}"}
            rec["page"] = self.pages(v)
        elif kind == C:
            rec["container-title"] = [full.format(year=year), v["abbr"]]
            rec["page"] = self.pages(v)
        else:
            rec["container-title"] = [full]
            rec["short-container-title"] = [v["abbr"]]
            rec["volume"] = str(vol if v["scheme"] != "jhep" else year)
            if v["scheme"] == "jhep":
                rec["issue"] = str(month)
            elif issue and rnd() < 0.95:
                rec["issue"] = str(issue)
            if page is not None:
                rec["page"] = page
            elif artno is None:
                rec["page"] = self.pages(v)
            if artno is not None:
                rec["article-number"] = artno
        if v["issn"]:
            rec["ISSN"] = v["issn"]
            rec["issn-type"] = v["issn_type"]
        rec["URL"] = "https://doi.org/" + doi
        rec["reference-count"] = int(rnd() * 80)
        rec["is-referenced-by-count"] = int(rng_pareto(rnd()))
        rec["source"] = "Crossref"
        rec["language"] = "en"
        return rec

    def dumps(self, rec: dict) -> str:
        """json.dumps(rec) with the shared author objects spliced in from their cached encoding."""
        authors = rec.pop("author")
        s = self.encode(rec)
        rec["author"] = authors
        frag = self.fragments
        at = s.find(',"issued":')  # after DOI, type and title, as Crossref lists it (a quote in a title is escaped)
        at = at if at > 0 else len(s) - 1
        return f'{s[:at]},"author":[{",".join([frag.get(id(a)) or self.encode(a) for a in authors])}]{s[at:]}'

    # -- look-alike distractors of an earlier record
    def distractor(self, base: dict, bv: dict, bfield: str) -> tuple[dict, str]:
        rnd, ch = self.rnd, self.choice
        year = base["issued"]["date-parts"][0][0]
        u = rnd()
        title = base["title"][0]
        if u < 0.30:  # companion paper: same first author and year, another title
            authors = [dict(base["author"][0])] + self.authors(bfield)[1:]
            for i, a in enumerate(authors):
                a["sequence"] = "first" if i == 0 else "additional"
            return self.record(bv if rnd() < 0.5 else None, year=year, authors=authors, field=bfield), "same-author-year"
        if u < 0.50 and base["type"] == J:  # erratum / correction, same authors and journal
            if bv["scheme"] in ("aps", "aip"):
                t = f"Erratum: {title} [{bv['abbr']} {base.get('volume')}, {base.get('page', '')} ({year})]"
            elif bv["scheme"] == "nature":
                t = f"Author Correction: {title}"
            elif bv["scheme"] == "plos":
                t = f"Correction: {title}"
            else:
                t = f"{ch(('Correction to', 'Erratum to', 'Correction'))}: {title}"
            rec = self.record(bv, year=min(LAST_YEAR, year + (rnd() < 0.6)), authors=base["author"], title=t, field=bfield)
            if "page" in rec and "-" in rec["page"]:
                rec["page"] = rec["page"].split("-")[0]
            return rec, "erratum"
        if u < 0.68 and year > 2014:  # preprint of the same work, or the journal version of a conference paper
            scheme = "ssrn" if bfield in ("cs", "phys") else ch(("biorxiv", "rsq"))
            pv = next(x for x in self.venues if x["scheme"] == scheme)
            py = max(pv["start"], year - (rnd() < 0.7))
            t = title if rnd() < 0.7 else title.lower().capitalize()
            if bfield == "cs" and rnd() < 0.5:
                cs_j = [x for x in self.venues if x["kind"] == J and x["fields"] == ("cs",)]
                rec = self.record(ch(cs_j), year=min(LAST_YEAR, year + 1), authors=base["author"], title=t, field=bfield)
                return rec, "journal-version"
            rec = self.record(pv, year=py, authors=base["author"], title=t, field=bfield)
            rec["relation"] = {"is-preprint-of": [{"id-type": "doi", "id": base["DOI"], "asserted-by": "subject"}]}
            return rec, "preprint"
        if u < 0.84 and base["type"] == J and "volume" in base:  # next paper in the same issue
            m = base["issued"]["date-parts"][0][1] if len(base["issued"]["date-parts"][0]) > 1 else 1
            t = title + ". II" if rnd() < 0.3 else None
            rec = self.record(bv, year=year, month=m, title=t, field=bfield)
            rec["volume"] = base["volume"]
            if "issue" in base:
                rec["issue"] = base["issue"]
            p = base.get("page", "")
            if "-" in p:
                s = int(p.split("-")[1]) + 1
                rec["page"] = f"{s}-{s + self.r(1, 12)}"
            elif p.isdigit() and p.startswith("0") and bv["scheme"] == "aps":
                a = f"{int(p) + 1:06d}"
                doi = f"10.1103/{bv['code']}.{base['volume']}.{a}"
                if doi not in self.dois:
                    self.dois.discard(rec["DOI"])
                    self.dois.add(doi)
                    rec.update(DOI=doi, page=a, URL="https://doi.org/" + doi)
                    rec["article-number"] = a
            return rec, "next-in-issue"
        # same title, other authors and year
        return self.record(year=max(1960, min(LAST_YEAR, year + self.r(-8, 8))), title=title, field=bfield), "same-title"


SMALL = {"a", "an", "the", "and", "or", "for", "of", "in", "on", "at", "to", "by", "with", "from", "via", "versus"}


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def rng_pareto(u: float) -> float:
    return 2.0 * ((1.0 - u) ** -0.8 - 1.0)


# ---------------------------------------------------------------------------------------- reference strings
TAG_RE = re.compile(r"</?(?:i|b|sub|sup|scp|em)>")
STYLE_BY_FIELD = {
    "phys": ["aps"] * 5 + ["nature"] * 2 + ["ieee", "apa", "natbib"],
    "cs": ["ieee"] * 3 + ["acm"] * 3 + ["natbib"] * 2 + ["apa", "harvard"],
    "med": ["vancouver"] * 5 + ["apa"] * 2 + ["nature", "harvard"],
    "bio": ["nature"] * 3 + ["apa"] * 2 + ["harvard", "vancouver", "natbib"],
}
DOI_PROB = {"apa": 0.6, "vancouver": 0.3, "ieee": 0.3, "aps": 0.05, "acm": 0.7, "natbib": 0.25, "nature": 0.1, "harvard": 0.2}


def strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).replace("ø", "o").replace("Ø", "O").replace("ł", "l").replace("Ł", "L")


def typo(rng: random.Random, s: str) -> str:
    words = s.split(" ")
    cand = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not cand:
        return s
    i = rng.choice(cand)
    w = words[i]
    j = rng.randint(1, len(w) - 2)
    op = rng.random()
    words[i] = (w[:j] + w[j + 1] + w[j] + w[j + 2:]) if op < 0.4 else (w[:j] + w[j + 1:]) if op < 0.7 else (w[:j] + w[j] + w[j:])
    return " ".join(words)


def hyphenate(rng: random.Random, s: str) -> str:
    words = s.split(" ")
    cand = [i for i, w in enumerate(words) if len(w) >= 8 and w.isalpha()]
    if not cand:
        return s
    i = rng.choice(cand)
    j = rng.randint(3, len(words[i]) - 3)
    words[i] = words[i][:j] + "- " + words[i][j:]
    return " ".join(words)


def join_names(names: list[str], sep: str, last: str, etal: bool, etal_txt: str = "et al.") -> str:
    if etal:
        return f"{sep.join(names)}{sep if len(names) > 1 or sep == ', ' else ' '}{etal_txt}".replace(", , ", ", ")
    if len(names) == 1:
        return names[0]
    if len(names) == 2 and last == ", and ":  # the serial comma only comes with three names or more
        last = " and "
    return sep.join(names[:-1]) + last + names[-1]


def format_ref(rng: random.Random, rec: dict, field: str) -> dict:
    """One reference string for a record, in a style that fits its field, with optional noise; the CSV row."""
    style = rng.choice(STYLE_BY_FIELD[field]) if rng.random() < 0.8 else rng.choice(list(DOI_PROB))
    noise = []
    authors = rec["author"]
    people = [(a.get("given", ""), a.get("family") or a.get("name", "")) for a in authors]
    strip = rng.random() < 0.08
    if strip:
        noise.append("no-accents")
        people = [(strip_accents(g), strip_accents(f)) for g, f in people]
    cut = None
    if len(people) > 3 and rng.random() < 0.15:
        cut, noise = 3, noise + ["et-al-3"]
    title = TAG_RE.sub("", rec["title"][0])
    if rec.get("subtitle") and rng.random() < 0.7:
        title = f"{title}: {rec['subtitle'][0]}"
    if rng.random() < 0.12 and style != "aps":
        title, noise = typo(rng, title), noise + ["typo"]
    if rng.random() < 0.08 and style != "aps":
        title, noise = hyphenate(rng, title), noise + ["hyphenation"]
    parts = rec["issued"]["date-parts"][0]
    year = rec.get("published-print", {}).get("date-parts", [[parts[0]]])[0][0] if rng.random() < 0.8 else parts[0]
    kind = rec["type"]
    full = rec.get("container-title", [""])[0] if rec.get("container-title") else rec.get("institution", [{}])[0].get("name", "")
    abbr = (rec.get("short-container-title") or [full])[0]
    vol = rec.get("volume", "")
    iss = rec.get("issue", "")
    if iss and rng.random() < 0.2:
        iss, noise = "", noise + ["no-issue"]
    page = rec.get("page") or rec.get("article-number", "")
    first = page.split("-")[0]
    pr = page.replace("-", "–")
    doi = rec["DOI"]
    show_doi = kind == POSTED or rng.random() < DOI_PROB[style]
    doi_txt = rng.choice(("https://doi.org/", "doi:", "doi: ", "DOI: ", "https://dx.doi.org/")) + doi if show_doi else ""
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    def names(fmt, limit=None, sep=", ", last=", and ", etal_txt="et al."):
        ppl = people
        lim = cut or (limit if limit and len(ppl) > limit else None)
        out = []
        for g, f in (ppl[:lim] if lim else ppl):
            out.append(f if not g else fmt(g, f))
        return join_names(out, sep, last, bool(lim), etal_txt)

    venue_note = full if kind in (P, C) else ""
    printed_title = title
    if style == "apa":
        au = names(lambda g, f: f"{f}, {initials(g)}", 20, ", ", ", & ")
        if kind == J:
            v = f"{full}, {vol}" + (f"({iss})" if iss else "") + (f", {pr}" if pr else "")
        elif kind == POSTED:
            v = full
        else:
            v = f"In {venue_note} (pp. {pr})"
        raw = f"{au} ({year}). {title}. {v}." + (f" {doi_txt}" if doi_txt else "")
    elif style == "vancouver":
        au = names(lambda g, f: f"{f} {initials(g, False, False, False)}", 6, ", ", ", ", "et al")
        a = abbr.replace(".", "")
        if kind == J:
            pp = page
            if "-" in page:
                s, e = page.split("-")
                k = 0
                while k < min(len(s), len(e)) - 1 and s[k] == e[k]:
                    k += 1
                pp = f"{s}-{e[k:]}"
            m = f" {months[parts[1] - 1]}" if len(parts) > 1 and rng.random() < 0.4 else ""
            v = f"{a}. {year}{m};{vol}" + (f"({iss})" if iss else "") + (f":{pp}" if pp else "")
        elif kind == POSTED:
            v = f"{full} [Preprint]. {year}"
        else:
            v = f"In: {venue_note}. {year}. p. {page}"
        raw = f"{au}. {title}. {v}." + (f" {doi_txt}" if doi_txt else "")
    elif style == "ieee":
        au = names(lambda g, f: f"{initials(g)} {f}", 6, ", ", ", and ")
        if kind == J:
            v = f"{abbr}, vol. {vol}, " + (f"no. {iss}, " if iss else "") + (f"pp. {pr}, " if "-" in page else f"Art. no. {page}, " if page else "")
            m = f"{months[parts[1] - 1]}. ".replace("May.", "May") if len(parts) > 1 and rng.random() < 0.5 else ""
            v += f"{m}{year}"
        elif kind == POSTED:
            v = f"{full}, {year}"
        else:
            v = f"in {venue_note}, {year}, pp. {pr}"
        raw = f"{au}, “{title},” {v}" + (f", {doi_txt}." if doi_txt else ".")
    elif style == "aps":
        printed_title = ""
        au = names(lambda g, f: f"{initials(g)} {f}", 3 if rng.random() < 0.5 else None, ", ", ", and ")
        au = au.replace(", et al.", " et al.")
        if kind == J:
            v = f"{abbr} {vol}, {first or page} ({year})"
        elif kind == POSTED:
            v = f"{full} ({year})"
        else:
            v = f"in {venue_note} ({rec['publisher']}, {year}), p. {first}"
        raw = f"{au}, {v}." + (f" {doi_txt}" if doi_txt else "")
    elif style == "acm":
        au = names(lambda g, f: f"{g} {f}", None, ", ", ", and ")
        if kind == J:
            v = f"{full} {vol}" + (f", {iss}" if iss else "") + f" ({year})" + (f", {pr}" if pr else "")
        elif kind == P:
            ev = rec.get("event", {}).get("acronym", "")
            v = f"In {venue_note}" + (f" ({ev})" if not venue_note.endswith(")") else "") + f". {rec['publisher'].split(' (')[0]}, {pr}"
        elif kind == POSTED:
            v = full
        else:
            v = f"In {venue_note}. {rec['publisher']}, {pr}"
        raw = f"{au}. {year}. {title}. {v}." + (f" {doi_txt}" if doi_txt else "")
    elif style == "natbib":
        au = names(lambda g, f: f"{g} {f}", None, ", ", ", and ")
        if kind == J:
            v = f"{full}, {vol}" + (f"({iss})" if iss else "") + (f":{pr}" if pr else "") + f", {year}"
        else:
            v = f"In {venue_note or full}, " + (f"pages {pr}, " if pr else "") + f"{year}"
        raw = f"{au}. {title}. {v}." + (f" {doi_txt}." if doi_txt else "")
    elif style == "nature":
        au = names(lambda g, f: f"{f}, {initials(g)}", 5, ", ", " & ")
        au = au.replace(", et al.", " et al.")
        if kind == J:
            v = f"{abbr} {vol}, {pr} ({year})"
        elif kind == POSTED:
            v = f"Preprint at {full} ({year})"
        else:
            v = f"in {venue_note} {pr} ({rec['publisher']}, {year})"
        raw = f"{au} {title}. {v}." + (f" {doi_txt}" if doi_txt else "")
        raw = raw.replace(". . ", ". ").replace(".. ", ". ")
    else:  # harvard (agsm)
        au = names(lambda g, f: f"{f}, {initials(g)}", None, ", ", " and ")
        if kind == J:
            v = f"{full} {vol}" + (f"({iss})" if iss else "") + (f", {pr}" if pr else "")
        else:
            v = f"in {venue_note or full}" + (f", pp. {pr}" if pr else "")
        raw = f"{au} ({year}), ‘{title}’, {v}." + (f" {doi_txt}" if doi_txt else "")
    raw = raw.replace("..", ".").replace(" ,", ",")
    if printed_title and printed_title not in raw:  # the style may have rewritten separators around it
        printed_title = ""
    return {"ref_raw": raw, "style": style, "noise": "+".join(noise), "ref_authors": people[0][1] if people else "",
            "ref_title": printed_title, "ref_year": str(year), "ref_doi": doi if show_doi else ""}


# ---------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="records to write (default 1,000,000)")
    ap.add_argument("--out", required=True, help="folder (dump) or .jsonl.gz file (jsonl)")
    ap.add_argument("--layout", choices=("dump", "jsonl"), default="dump")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-file", type=int, default=5000, help="records per .json.gz file of a dump")
    ap.add_argument("--refs", type=int, default=2000, help="reference strings to write (0: none)")
    ap.add_argument("--distractors", type=float, default=0.10, help="fraction of look-alike records")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    gen = Generator(args.seed)
    rnd, rr = gen.rnd, random.Random(args.seed + 1)
    gc.disable()  # millions of small acyclic objects: the cyclic collector would only rescan them
    encode = gen.dumps
    out = Path(args.out)
    if args.layout == "dump":
        out.mkdir(parents=True, exist_ok=True)
        refs_path = out / "refs.csv"
        sink = None
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        refs_path = out.with_name(out.name.removesuffix(".jsonl.gz") + ".refs.csv")
        raw_sink = open(out, "wb")  # noqa: SIM115 - closed after the loop
        sink = gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw_sink, mtime=0)
    pool: list[tuple[dict, dict, str]] = []  # earlier records distractors copy from
    pool_max = 20000
    reservoir: list[tuple[dict, str]] = []
    seen = 0
    twinned: set[str] = set()
    kinds: dict[str, int] = {}
    batch: list[str] = []
    files = 0
    t_gen = time.perf_counter()

    def flush():
        nonlocal files, batch
        if not batch:
            return
        if sink is None:
            data = b'{"items":[' + b",".join([x.encode() for x in batch]) + b"]}"
            (out / f"{files}.json.gz").write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
        else:
            sink.write(b"\n".join([x.encode() for x in batch]) + b"\n")
        files += 1
        batch = []

    for i in range(args.n):
        if pool and rnd() < args.distractors:
            base, bv, bfield = pool[int(rnd() * len(pool))]
            rec, kind = gen.distractor(base, bv, bfield)
            kinds[kind] = kinds.get(kind, 0) + 1
            twinned.add(base["DOI"])
        else:
            v = gen.choice(gen.vpick)
            field = gen.choice(v["fields"])
            rec = gen.record(v, field=field)
            if len(pool) < pool_max:
                pool.append((rec, v, field))
            else:
                pool[int(rnd() * pool_max)] = (rec, v, field)
            if args.refs:
                seen += 1
                if len(reservoir) < args.refs:
                    reservoir.append((rec, field))
                else:
                    j = int(rr.random() * seen)
                    if j < args.refs:
                        reservoir[j] = (rec, field)
        batch.append(encode(rec))
        if len(batch) >= args.per_file:
            flush()
    flush()
    if sink is not None:
        sink.close()
        raw_sink.close()
    t_done = time.perf_counter()
    n_dis = sum(kinds.values())
    print(f"wrote {args.n} records ({n_dis} distractors: "
          f"{', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}) to {out} in {t_done - t_gen:.1f} s "
          f"({args.n / max(t_done - t_gen, 1e-9):,.0f} records/s; pools {t_gen - t0:.1f} s)", file=sys.stderr)

    if args.refs:
        rows = []
        for k, (rec, field) in enumerate(reservoir):
            row = format_ref(rr, rec, field)
            rows.append({"ref_raw": row["ref_raw"], "doi": rec["DOI"].lower(), "paper_id": "bench", "sentence_id": str(k),
                         "context": "…", "ref_id": f"b{k}", "ref_authors": row["ref_authors"], "ref_title": row["ref_title"],
                         "ref_year": row["ref_year"], "ref_doi": row["ref_doi"], "ref_arxiv": "", "style": row["style"],
                         "noise": row["noise"], "has_lookalike": str(rec["DOI"] in twinned).lower()})
        with open(refs_path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["ref_raw", "doi"])
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {len(rows)} reference strings to {refs_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
