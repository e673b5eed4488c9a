from flows.cli import main
from ingest.document import Document, Entity, Relation, Span
from ingest.generator import generate_report
from ingest.schema import NO_RELATION, load_schema
from ingest.stats import corpus_stats, format_stats

SCHEMA = load_schema()


def _doc():
    text = "左主干未见明显狭窄。\n穿刺成功。"
    ents = (
        Entity("T1", "BodyPart", (Span(0, 3),), "左主干"),
        Entity("T2", "Negation", (Span(3, 5),), "未见"),
        Entity("T3", "Degree", (Span(7, 9),), "狭窄"),
    )
    rels = (Relation("R1", "Modifier", "T3", "T1"), Relation("R2", "Negative", "T3", "T2"))
    return Document("d", text, ents, rels)


def test_counts_by_type_sentences_and_candidates():
    stats = corpus_stats([_doc(), Document("u", "穿刺成功。", annotated=False)], SCHEMA)
    assert (stats.reports, stats.annotated_reports, stats.sentences) == (2, 1, 3)
    assert stats.entity_count("BodyPart") == 1 and stats.entity_count("Location") == 0
    assert stats.relation_count("Modifier") == 1 and stats.relation_count(NO_RELATION) == 1
    assert stats.candidates == 3
    assert stats.schema_candidates == 2  # BodyPart-Negation can hold no relation
    assert stats.longest_sentence == 10
    assert stats.avg_sentence_chars == (10 + 5 + 5) / 3
    assert [t for t, _ in stats.entities] == list(SCHEMA.entity_types)


def test_relation_counts_match_the_annotations_of_generated_reports():
    docs = [generate_report(i, seed=2) for i in range(30)]
    stats = corpus_stats(docs, SCHEMA)
    for name in SCHEMA.relation_names:
        assert stats.relation_count(name) == sum(r.type == name for d in docs for r in d.relations)
    assert "| Degree |" in format_stats(stats)


def test_cli_generate_stats_and_split(tmp_path, capsys):
    assert main(["generate", "--n", "40", "--seed", "5", "--out", str(tmp_path / "c")]) == 0
    assert main(["stats", str(tmp_path / "c")]) == 0
    assert "| reports | 40 |" in capsys.readouterr().out
    manifest = tmp_path / "m.csv"
    assert main(["split", str(tmp_path / "c"), "--seed", "1", "--out", str(manifest)]) == 0
    out = capsys.readouterr().out
    counts = dict(part.split("=") for part in out.split(" (")[0].split())
    assert sum(map(int, counts.values())) == 40
    assert len(manifest.read_text(encoding="utf-8").splitlines()) == 41
    assert main(["stats", str(tmp_path / "missing")]) == 2
