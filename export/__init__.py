"""Export: key-value records, Parquet datasets and graph stores (LadybugDB embedded, Neo4j).

Consumes `ingest.document.Document` objects, whether annotated or predicted; never imports model
code.
"""
