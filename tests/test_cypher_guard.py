import pytest

from export import graph_model as gm
from export.cypher_guard import QueryRefused, check_read_only, tokens


@pytest.mark.parametrize("name", sorted(gm.QUERIES))
def test_every_named_query_is_a_read_query(name):
    query = check_read_only(gm.QUERIES[name])
    assert set(gm.QUERY_DEFAULTS.get(name, {})) <= set(query.parameters)


READS = {
    "keywords in strings": "MATCH (r:Report) WHERE r.reason = 'COPY (x) TO \"/tmp/a\"; LOAD "
                           "FROM y' RETURN r.id",
    "escaped quote in a string": r"RETURN 'it\'s not COPY' AS s, " + '"say \\"DROP\\"" AS t',
    "keywords in comments": "MATCH (n:Report) // DELETE n\n/* CREATE (x) */ RETURN n.id",
    "keywords as names": "MATCH (`COPY`:Report)-[:HAS_FINDING]->(f:Finding) "
                         "RETURN `COPY`.id, f.vessel",
    "property and map key named like keywords": "MATCH (m:Mention {type: 'BodyPart'}) "
                                                "RETURN m.type AS type, {set: 1} AS s",
    "parameters": "UNWIND $ids AS id MATCH (r:Report {id: id}) WHERE r.status = $status "
                  "RETURN r.id",
    "subquery, CASE, quantifier": "MATCH (r:Report) WHERE EXISTS { MATCH (r)-[:HAS_FINDING]->"
                                  "(:Finding) } RETURN CASE WHEN ALL(x IN [1] WHERE x > 0) "
                                  "THEN 'y' ELSE 'n' END, count(*) ORDER BY 1 DESC LIMIT 3",
    "optional match and union": "OPTIONAL MATCH (v:Vessel) RETURN v.name AS n UNION ALL "
                                "MATCH (s:Segment) RETURN s.name AS n",
    "catalog call": "CALL show_tables() RETURN *",
    "trailing semicolon": "MATCH (n:Vessel) RETURN n.name;",
    "lower case": "match (v:Vessel) return v.name order by v.name skip 1",
}


@pytest.mark.parametrize("query", READS.values(), ids=READS.keys())
def test_read_queries_pass(query):
    check_read_only(query)


def test_parameters_are_listed_once_and_sorted():
    assert check_read_only(READS["parameters"]).parameters == ("ids", "status")
    assert check_read_only("RETURN $b, $a, $b, '$c'").parameters == ("a", "b")


REFUSED = {
    "copy to a file": ("COPY (MATCH (v:Vessel) RETURN v.name) TO '/tmp/x.csv'", "COPY"),
    "copy from a file": ("COPY Vessel FROM '/tmp/x.csv'", "COPY"),
    "load from a file": ("LOAD FROM '/etc/passwd' (file_format='csv') RETURN *", "LOAD"),
    "load from after match": ("MATCH (n) WITH n LOAD FROM '/etc/passwd' RETURN *", "LOAD"),
    "export database": ("EXPORT DATABASE '/tmp/dump'", "starts with"),
    "import database": ("IMPORT DATABASE '/tmp/dump'", "starts with"),
    "attach": ("ATTACH '/tmp/other.db' AS o (dbtype lbug)", "starts with"),
    "extension": ("LOAD EXTENSION httpfs", "starts with"),
    "install": ("INSTALL httpfs", "starts with"),
    "create": ("CREATE (:Vessel {name: 'x'})", "starts with"),
    "merge after match": ("MATCH (v:Vessel) MERGE (:Vessel {name: 'x'})", "MERGE"),
    "set": ("MATCH (v:Vessel) SET v.name = 'x'", "SET"),
    "delete": ("MATCH (v:Vessel) DETACH DELETE v", "DETACH"),
    "drop": ("DROP TABLE Vessel", "starts with"),
    "setting": ("CALL threads=1", "catalog"),
    "other table function": ("CALL read_csv('/etc/passwd') RETURN *", "catalog"),
    "transaction": ("BEGIN TRANSACTION", "starts with"),
    "two statements": ("MATCH (v:Vessel) RETURN v; MATCH (s:Segment) RETURN s", "one query"),
    "write after a comment": ("MATCH (v) /* ok */ copy (MATCH (v) RETURN v) TO '/t'", "COPY"),
    "doubled quote ends the string": ("RETURN '' COPY (MATCH (n) RETURN n) TO '/t'", "COPY"),
    "comment ended by a carriage return": ("RETURN 1 // x\rCOPY (RETURN 1) TO '/t'", "COPY"),
    "keyword glued to a number": ("RETURN 12COPY (RETURN 1) TO '/t'", "COPY"),
    "keyword glued to a CJK name": ("RETURN 前COPY (RETURN 1) TO '/t'", "COPY"),
    "unterminated string": ("RETURN 'open COPY", "never closed"),
    "unterminated comment": ("RETURN 1 /* COPY (RETURN 1) TO '/t'", "never closed"),
    "unterminated name": ("MATCH (`x:Vessel) RETURN 1", "never closed"),
    "unknown escape": (r"RETURN 'a\q' AS s", "escape"),
    "malformed hex escape": (r"RETURN 'a\x4' AS s", "escape"),
    "empty": ("  // nothing\n", "empty"),
}


@pytest.mark.parametrize(("query", "says"), REFUSED.values(), ids=REFUSED.keys())
def test_writes_file_access_and_unscannable_text_are_refused(query, says):
    with pytest.raises(QueryRefused, match=says) as refused:
        check_read_only(query)
    assert "\n" not in str(refused.value)


def test_tokens_skip_literals_and_comments_and_keep_positions():
    found = tokens("MATCH (n) /* c */ WHERE n.x = 'MATCH' RETURN $p // RETURN")
    assert [(t.kind, t.text) for t in found if t.kind != "punct"] == [
        ("word", "MATCH"), ("word", "n"), ("word", "WHERE"), ("word", "n"), ("word", "x"),
        ("word", "RETURN"), ("param", "p")]
    assert found[0].at == 0 and found[-1].at == 45
