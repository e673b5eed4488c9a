"""bench_pipeline's model stages: training throughput, and extraction of the archive with and
without relation classification.

Without a trained model (no --model-dir) the extraction runs a freshly built model with oracle
entities: the model's whole NER pass runs (encoder, emissions, Viterbi, marginals), then its tag
path is swapped for the sentence's gold path, so relation classification sees the real number
of entities and pairs. The archive's gold annotations are regenerated from the generator (the
bundled archive is `angiokg generate --n 2000 --seed 1007 --unannotated --prefix arc`).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from common import interleaved
from transformers import BertModel

from extraction.batching import EncodedSentence, collate, encode_example
from extraction.bert_factory import new_bert
from extraction.model import FocusedAttentionModel, NerOutput
from extraction.model_dir import save_model_dir
from extraction.predict import SORT_WINDOW_BATCHES, Extractor, sentence_windows, window_batches
from extraction.str_encoder import StrEncoder
from extraction.tokenizer import CharTokenizer, build_tokenizer
from extraction.train import allowed_candidates_only, examples_of, fit, split_documents
from extraction.train_config import TrainConfig
from ingest.bieos import encode, tag_set
from ingest.document import Document
from ingest.examples import (
    candidate_pairs,
    document_examples,
    downsample_no_relation,
    sentences_of,
)
from ingest.generator import generate_report
from ingest.schema import Schema
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

ARCHIVE_SEED, ARCHIVE_PREFIX = 1007, "arc"  # data/sample/README.md
TRAIN_HEADER = ("encoder", "mode", "steps", "sentences", "pairs", "s", "sentences/s", "pairs/s")
EXTRACT_HEADER = ("pass", "reports", "sentences", "entities", "relations", "s", "reports/s",
                  "vs NER-only", "vs floor")


# --- training ------------------------------------------------------------------------------


def training_rows(documents: Sequence[Document], schema: Schema, config: TrainConfig,
                  steps: int, device: torch.device, model_out: Path
                  ) -> tuple[list[list[object]], str]:
    """Sentences per second of `fit` (the training loop of `angiokg train`) over `steps` batches
    of the train split, after a 2-step warm-up; the model is then saved to `model_out` (for
    the extraction stage) and its version returned."""
    train = split_documents(documents, config.split_seed)["train"]
    tokenizer = build_tokenizer([d.text for d in train], model_out.with_name("tokenizer"),
                                config.vocab_size)
    torch.manual_seed(config.seed)
    encoder = StrEncoder(new_bert(len(tokenizer), config.bert_size), config.k,
                         rc_mask=config.rc_mask,  # type: ignore[arg-type]
                         rc_strategy=config.rc_strategy)  # type: ignore[arg-type]
    tags, labels = tag_set(schema.entity_types), schema.relation_labels
    model = FocusedAttentionModel(encoder, tags, labels, config.mode, config.dropout)
    examples = allowed_candidates_only(examples_of(train, schema, config.max_chars), schema)
    examples = downsample_no_relation(examples, config.no_relation_keep_rate, config.seed)
    tag_index, label_index = {t: i for i, t in enumerate(tags)}, {r: i for i, r in
                                                                    enumerate(labels)}
    encoded = [encode_example(e, tokenizer, tag_index, label_index) for e in examples]
    chosen = random.Random(0).sample(encoded, min(len(encoded), steps * config.batch_size))
    one_epoch = replace(config, epochs=1)
    fit(model, tokenizer, schema, chosen[: 2 * config.batch_size], [], one_epoch, device=device)
    seconds = interleaved(
        {"fit": lambda: fit(model, tokenizer, schema, chosen, [], one_epoch, device=device)},
        {"fit": 1}, device, warm_up=False)["fit"][0]
    version = save_model_dir(model_out, model.cpu(), tokenizer, schema, config,
                             {"note": f"bench_pipeline: {steps} training steps only"})
    pairs = sum(len(s.pairs) for s in chosen)
    size = f"{config.hidden_size}x{config.num_hidden_layers}, K={config.k}"
    row = [size, config.mode, -(-len(chosen) // config.batch_size), len(chosen), pairs,
           f"{seconds:.2f}", f"{len(chosen) / seconds:,.1f}", f"{pairs / seconds:,.1f}"]
    return [row], version


# --- extraction ----------------------------------------------------------------------------


def gold_document(path: Path) -> Document:
    """Report `path` of the bundled archive with its gold entities and relations, regenerated."""
    index = int(path.stem.removeprefix(f"{ARCHIVE_PREFIX}-"))
    document = generate_report(index, ARCHIVE_SEED, annotated=True, prefix=ARCHIVE_PREFIX)
    if document.text != path.read_text(encoding="utf-8"):
        raise ValueError(f"{path}: not report {index} of generator seed {ARCHIVE_SEED}; gold "
                         "annotations exist for the bundled archive only")
    return document


def gold_paths(documents: Sequence[Document], tokenizer: CharTokenizer, tags: Sequence[str],
               max_chars: int) -> dict[tuple[int, ...], list[int]]:
    """Gold tag ids of every sentence of the documents, keyed by the sentence's input ids (the
    sentences the Extractor cuts: the report's boundaries, long ones cut at max_chars)."""
    tag_index = {t: i for i, t in enumerate(tags)}
    table = {}
    for document in documents:
        for s in sentences_of(replace(document, entities=(), relations=()), max_chars):
            spans = [(e.type, e.start - s.start, e.end - s.start) for e in document.entities
                     if e.is_contiguous and s.start <= e.start and e.end <= s.end]
            key = tuple(tokenizer.encode(s.text))
            table[key] = [tag_index[t] for t in encode(len(s.text), spans)]
    return table


@dataclass
class OracleCount:
    sentences: int = 0
    missed: int = 0  # no gold path for the sentence: the model's own was kept


def use_gold_paths(model: FocusedAttentionModel, table: dict[tuple[int, ...], list[int]]
                   ) -> OracleCount:
    """Make `model.tag` return the gold tag path of each sentence it knows, after computing the
    whole NER pass as usual (so its cost is unchanged)."""
    real_tag, count = model.tag, OracleCount()

    def tag(input_ids: torch.Tensor, attention_mask: torch.Tensor, char_mask: torch.Tensor,
            temperature: float = 1.0) -> NerOutput:
        out = real_tag(input_ids, attention_mask, char_mask, temperature)
        rows = input_ids.tolist()
        paths = []
        for row, n, own in zip(rows, char_mask.sum(dim=1).tolist(), out.paths, strict=True):
            gold = table.get(tuple(row[: n + 2]))
            count.sentences += 1
            count.missed += gold is None
            paths.append(own if gold is None else gold)
        return replace(out, paths=paths)

    model.tag = tag  # type: ignore[method-assign]
    return count


def chunk_archive(reports: Sequence[Path], chunks: int, work: Path) -> list[Path]:
    """The reports copied into `chunks` folders of consecutive reports."""
    size = -(-len(reports) // chunks)
    folders = []
    for c in range(0, len(reports), size):
        folder = work / f"archive-{c // size:03d}"
        folder.mkdir(parents=True)
        for path in reports[c : c + size]:
            shutil.copyfile(path, folder / path.name)
        folders.append(folder)
    return folders


PASSES = {"floor": "floor: plain BertModel forward", "ner": "NER only",
          "full": "full (entities + relations)"}


FloorWindow = list[tuple[torch.Tensor, torch.Tensor]]  # (input_ids, attention_mask) batches


def floor_batches(folder: Path, extractor: Extractor, batch_size: int) -> list[FloorWindow]:
    """(input_ids, attention_mask) of every batch the extractor runs over the folder's reports,
    window by window: the same sentences, in the same windows, sorted and padded the same way."""
    documents = [Document(p.stem, p.read_text(encoding="utf-8"))
                 for p in sorted(folder.glob("*.txt"))]
    windows = []
    for window in sentence_windows(documents, extractor.max_chars, batch_size):
        texts = [s.text for _, sentences in window for s in sentences]
        batches = []
        for chunk in window_batches(window, batch_size):
            encoded = [EncodedSentence(tuple(extractor.tokenizer.encode(texts[i])), None, (), ())
                       for i in chunk]
            batch = collate(encoded, extractor.tokenizer.pad_id).to(extractor.device)
            batches.append((batch.input_ids, batch.attention_mask))
        windows.append(batches)
    return windows


def plain_forward(bert: BertModel, windows: Sequence[FloorWindow], extractor: Extractor,
                  device: torch.device) -> None:
    """The floor: the encoder's own BertModel, all its layers, over the prepared batches, each
    window inside the allocator's setting for one, as the extractor runs its windows (under
    jemalloc the pages it frees are held through the window: so are the floor's)."""
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                         enabled=device.type == "cuda"):
        for batches in windows:
            with extractor.window_memory():
                for input_ids, attention_mask in batches:
                    bert(input_ids=input_ids, attention_mask=attention_mask)


def extraction_rows(reports: Sequence[Path], model_dir: Path,
                    gold: Sequence[Document] | None, chunks: int, batch_size: int,
                    device: torch.device, work: Path) -> tuple[list[list[object]], list[str]]:
    """Reports per second of `pipeline.run.run` (archive -> model -> Parquet, as `angiokg
    extract`) with and without relation classification, and of the floor under both: a plain
    `BertModel` forward (the model's own encoder, every layer, the pooler left out as the model
    leaves it) over the same sentences in the same batch shapes, tensors prepared untimed. With
    `gold` (the reports' gold documents) the model's tag paths are replaced by the gold ones.
    The reports are cut into `chunks` folders and the three passes take turns chunk by chunk,
    so background load falls on all; each first runs a warm-up chunk of 4 reports, untimed."""
    extractors = {"ner": Extractor.load(model_dir, str(device), relations=False),
                  "full": Extractor.load(model_dir, str(device))}
    any_one = extractors["ner"]
    sentences = sum(len(sentences_of(Document(p.stem, p.read_text(encoding="utf-8")),
                                     any_one.max_chars)) for p in reports)
    counts = []
    if gold is not None:
        table = gold_paths(gold, any_one.tokenizer, any_one.model.tags, any_one.max_chars)
        counts = [use_gold_paths(e.model, table) for e in extractors.values()]
    chunk_folders = chunk_archive(reports[:4], 1, work / "warm-up")
    chunk_folders += chunk_archive(reports, chunks, work)
    prepared = [floor_batches(folder, any_one, batch_size) for folder in chunk_folders]
    bert = any_one.model.encoder.bert.eval()
    found = {name: [0, 0] for name in extractors}  # entities, relations (warm-up excluded)
    passes = ["floor", *extractors]
    todo = {name: iter(enumerate(chunk_folders)) for name in passes}

    def job(name: str):
        def extract_next_chunk() -> None:
            i, folder = next(todo[name])
            if name == "floor":
                plain_forward(bert, prepared[i], any_one, device)
                return
            summary = run(folder, ParquetSink(work / f"out-{name}-{i:03d}"), extractors[name],
                          RunSettings(run_id=f"bench-{i:03d}", batch_size=batch_size))
            if i:
                found[name][0] += summary.entities
                found[name][1] += summary.relations
        return extract_next_chunk

    # interleaved's untimed warm-up call of each pass takes chunk 0, the warm-up chunk
    times = interleaved({name: job(name) for name in passes},
                        dict.fromkeys(passes, len(chunk_folders) - 1), device)
    seconds = {name: sum(t) for name, t in times.items()}
    rows = [[PASSES[name], len(reports), sentences,
             *found.get(name, ["-", "-"]), f"{s:.1f}",
             f"{len(reports) / s:,.1f}",
             "-" if name == "floor" else f"{s / seconds['ner']:.2f}x",
             f"{s / seconds['floor']:.2f}x"]
            for name, s in seconds.items()]
    batches = sum(len(w) for windows in prepared[1:] for w in windows)
    notes = [f"{len(reports)} reports in {len(chunk_folders) - 1} chunks, the three passes "
             f"taking turns chunk by chunk, after an untimed warm-up chunk of 4 reports each; "
             f"{batch_size} sentences per batch ({batches:,} batches: sentences sorted by "
             "length in windows of "
             f"{SORT_WINDOW_BATCHES} batches); the extraction times include reading the archive, "
             "the manifest and writing Parquet, the floor's only the forward passes"]
    if gold is not None:
        examples = [e for d in gold for e in document_examples(d, any_one.schema,
                                                                any_one.max_chars)]
        pairs = sum(len(candidate_pairs(e.mentions, any_one.schema)) for e in examples)
        mentions = sum(len(e.mentions) for e in examples)
        notes.append(f"gold: {mentions:,} entities, {pairs:,} schema-allowed pairs to classify "
                     f"({mentions / max(1, len(examples)):.1f} entities and "
                     f"{pairs / max(1, len(examples)):.1f} pairs per sentence)")
    if counts:
        seen, missed = sum(c.sentences for c in counts), sum(c.missed for c in counts)
        notes.append(f"oracle entities: the gold tag path replaced the model's for "
                     f"{seen - missed:,} of {seen:,} sentences tagged (both passes, warm-up "
                     "included)")
    return rows, notes
