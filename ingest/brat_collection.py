"""Make a folder a brat collection that brat opens as it is: `annotation.conf` (the schema the
predictions were made for), `visual.conf` (a colour and short label per type) and `tools.conf`
(no external links). The visual and tools files are kept once, in `ingest/data/brat/`, and
copied into every folder `preannotate` and `select` write.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ingest.atomic import write_text_atomic
from ingest.schema import Schema

ANNOTATION_CONF, VISUAL_CONF, TOOLS_CONF = "annotation.conf", "visual.conf", "tools.conf"
COLLECTION_FILES = (ANNOTATION_CONF, VISUAL_CONF, TOOLS_CONF)


def bundled_conf(name: str) -> Path:
    """The repository's one copy of `visual.conf` or `tools.conf`."""
    return Path(str(resources.files("ingest") / "data" / "brat" / name))


def write_collection_confs(folder: str | Path, schema: Schema) -> tuple[Path, ...]:
    """Write the three configuration files into `folder` (each atomically); return their paths.

    brat looks for each file in the document's folder and then its parents, so the top folder
    covers reports in sub-folders too.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    texts = {ANNOTATION_CONF: schema.source_text,
             VISUAL_CONF: bundled_conf(VISUAL_CONF).read_text(encoding="utf-8"),
             TOOLS_CONF: bundled_conf(TOOLS_CONF).read_text(encoding="utf-8")}
    written = []
    for name, text in texts.items():
        write_text_atomic(target / name, text)
        written.append(target / name)
    return tuple(written)
