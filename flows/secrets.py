"""Secrets from Prefect blocks, for the rooms below flows (which never import Prefect).

`export.neo4j_store.Neo4jSettings.from_env` takes a `secret_loader`; the flows (and the command
line, through `flows.cli`) hand it `prefect_secret`, so NEO4J_PASSWORD_SECRET names a Secret
block wherever the graph is loaded. The value goes straight into the settings (whose repr hides
it); it is never a flow or task parameter, so the Prefect API never stores it.
"""

from __future__ import annotations


def prefect_secret(block_name: str) -> str:
    """The value of the Prefect Secret block `block_name`."""
    from prefect.blocks.system import Secret  # only when asked for: prefect is slow to import

    return Secret.load(block_name).get()
