"""Documents in, the same documents with predicted entities and relations out.

`Extractor.extract` reads each report's sentences (the guideline's boundaries, long ones cut at
`max_chars`), tags every character with the CRF, turns the BIEOS path into entities, and
classifies the candidate pairs of predicted entities the schema allows, reusing the lower
layers' output of the NER pass (layers 1..N-K run once per sentence).

- Entity offsets are offsets into the ORIGINAL report text (sentence start + character offset),
  `entity.text == document.text[start:end]`; ids are T1, T2, ... in text order.
- Entity confidence: the smallest CRF marginal p(tag_i | sentence) of the entity's decoded tags
  over its characters (forward-backward), i.e. how sure the model is of its least certain
  character; a probability in (0, 1].
- Relation: the label is the most probable of NoRelation and the relations the schema allows
  between the two types; its probability among those labels (the softmax renormalised over
  them: the model may choose nothing else) is the confidence. The direction (Arg1/Arg2) comes
  from the schema's argument types. NoRelation is not emitted.
- Doubt the lines do not show (`Document.doubt`): entities possibly missed (B/S marginals on
  characters tagged O), relations possibly missed (1 - p(NoRelation) on pairs judged
  NoRelation), and the entropy of every marginal and pair distribution; `select` scores
  reports with it (extraction/uncertainty.py).
- Confidences are calibrated by the model directory's temperatures (extraction/temperature.py)
  when it has them; decisions are the same at any temperature.
- `relations=False` makes it an NER-only pass: the same entities, no relation classified (for
  comparing the cost of relation classification with the NER pass).

Work is streamed: sentences are batched within windows of `SORT_WINDOW_BATCHES` batches'
worth, at most `batch_size` sentences' tensors exist at a time, and documents are yielded in
input order as soon as their window is done.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from extraction.batching import EncodedSentence, collate, length_batches, pair_span
from extraction.bert_factory import pick_device
from extraction.model import FocusedAttentionModel
from extraction.str_encoder import PairIndex
from extraction.temperature import Temperatures
from extraction.tokenizer import CharTokenizer
from ingest.bieos import decode, split_tag
from ingest.document import Document, Doubt, Entity, Relation, Span
from ingest.examples import (
    DEFAULT_MAX_CHARS,
    Mention,
    SentenceSpan,
    candidate_pairs,
    document_examples,
    sentences_of,
)
from ingest.schema import NO_RELATION, Schema

if TYPE_CHECKING:
    from extraction.allocator import WindowMemory

logger = logging.getLogger(__name__)

# Sentences are sorted by length across this many batches' worth before they are batched: a
# report's sentences range from 3 to 126 characters (median 13), so sorting within a batch's
# worth padded 2.4x the characters and left every other batch a remainder of a few sentences.
SORT_WINDOW_BATCHES = 16
# Pairs classified in one call: sorting puts a window's longest, most crowded sentences in one
# batch (64 sentences of 126 characters may hold thousands of pairs); capping the pairs bounds
# the relation pass's tensors whatever the batch holds. A batch's pairs are sorted by width
# ([CLS] and both entities' tokens) before they are cut into chunks: a chunk's tensors are
# padded to its widest pair, and in sentence order that padding was 75% on top of the real
# rows of the sample archive, sorted 4%.
RC_PAIRS_PER_CHUNK = 512


@dataclass(frozen=True)
class PredictedRelation:
    first: int  # mention indexes within the sentence, text order
    second: int
    label: str
    first_is_arg1: bool
    confidence: float


@dataclass(frozen=True)
class SentencePrediction:
    mentions: tuple[Mention, ...]  # entity_id empty; offsets relative to the sentence
    confidences: tuple[float, ...]
    relations: tuple[PredictedRelation, ...]
    doubt: Doubt = Doubt()


@dataclass(frozen=True)
class PairDecision:
    """The RC decision on one candidate pair, over the labels the schema allows it."""

    label: str  # NO_RELATION or an allowed relation
    first_is_arg1: bool
    confidence: float  # p(label) renormalised over NoRelation + the allowed relations
    no_relation: float  # p(NoRelation), renormalised likewise
    entropy: float  # of that renormalised distribution, nats


def _entropy(probs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim)


def _pair_width(span: tuple[int, int, int, int, int]) -> int:
    """Tokens of a pair's sequence under Eq.(14): [CLS] and both entities, overlap once."""
    _, a, b, c, d = span
    return 1 + (b - a) + (d - c) - max(0, min(b, d) - max(a, c))


Window = list[tuple[Document, list[SentenceSpan]]]


@contextlib.contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Python's cyclic garbage collector leaves the objects alive now alone until the block
    ends (gc.freeze / gc.unfreeze). They are the model, torch, transformers, pyarrow: some
    400,000 objects that are not garbage, and every full collection scanned them all again
    (0.2 s of CPU each; the entities and relations an extraction creates trigger one every
    few hundred reports). The objects created inside are collected as usual; on leaving, the
    frozen ones are collectable again, so nothing is kept for good. Where objects are frozen
    already (another thread's extraction, or whoever froze them) it leaves that alone."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def sentence_windows(documents: Iterable[Document], max_chars: int, batch_size: int
                     ) -> Iterator[Window]:
    """The documents with their sentences, in runs of at least `batch_size *
    SORT_WINDOW_BATCHES` sentences (the last run shorter): each run is batched on its own."""
    pending: Window = []
    count, window = 0, batch_size * SORT_WINDOW_BATCHES
    for document in documents:
        sentences = sentences_of(replace(document, entities=(), relations=()), max_chars)
        pending.append((document, sentences))
        count += len(sentences)
        if count >= window:
            yield pending
            pending, count = [], 0
    if pending:
        yield pending


def window_batches(window: Window, batch_size: int) -> list[list[int]]:
    """Indexes into the window's sentences (in document order), batch by batch: sorted by
    length, so a batch pads little and all but the one of the longest are full; the longest
    batch first.

    Longest first so that the heap is not carved up: each batch's buffers (under the mmap
    threshold, `extraction.allocator`) fit in the holes the longer batch before it left, where
    in increasing order every batch needed larger ones than any hole and took fresh memory from
    the top of the heap until the window's trim. Same batches, so the same results."""
    batches = length_batches([len(s.text) for _, sentences in window for s in sentences],
                             batch_size)
    return batches[::-1]


class Extractor:
    def __init__(
        self,
        model: FocusedAttentionModel,
        tokenizer: CharTokenizer,
        schema: Schema,
        model_version: str = "unsaved",
        max_chars: int = DEFAULT_MAX_CHARS,
        device: str | torch.device | None = None,
        relations: bool = True,
        temperatures: Temperatures | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else pick_device()
        # False: entities only. A model trained NER-only has an untrained RC head: never asked.
        self.relations = relations and model.trains_rc
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.schema = schema
        self.model_version = model_version
        self.max_chars = max_chars
        self.temperatures = temperatures or Temperatures()
        self._label_index = {label: i for i, label in enumerate(model.relation_labels)}
        self._choices: dict[tuple[str, str], tuple[tuple[str, bool, int], ...]] = {}
        # What each window of `extract` runs inside (Extractor.load: the allocator's setting,
        # freed memory given back at the window's end).
        self.window_memory: WindowMemory = contextlib.nullcontext
        self._starts = [i for i, t in enumerate(model.tags) if split_tag(t)[0] in ("B", "S")]
        self._outside = model.tags.index("O")

    @classmethod
    def load(
        cls, model_dir: str | Path, device: str | None = None, schema: Schema | None = None,
        relations: bool = True,
    ) -> Extractor:
        from extraction import allocator
        from extraction.model_dir import load_model_dir

        # A loaded Extractor is for long streaming runs (extract, preannotate, workers): keep
        # their memory flat. Training, short and bounded, keeps the allocator's defaults.
        # Before the shards' threads start (the flow's task runner), so that they share a heap.
        window_memory = allocator.prepare_for_extraction()
        loaded = load_model_dir(model_dir, schema=schema)
        if not loaded.model.trains_ner:
            logger.warning("%s was trained RC-only: it finds no entities by itself, it only "
                           "classifies relations between given ones", model_dir)
        extractor = cls(loaded.model, loaded.tokenizer, loaded.schema, loaded.model_version,
                        loaded.config.max_chars, device, relations, loaded.temperatures)
        extractor.window_memory = window_memory
        return extractor

    # --- public --------------------------------------------------------------------------

    def extract(self, documents: Iterable[Document], batch_size: int = 64) -> Iterator[Document]:
        """Each document with predicted entities and relations, in input order."""
        with older_objects_frozen():
            for window in sentence_windows(documents, self.max_chars, batch_size):
                yield from self._finish(window, batch_size)

    def unknown_characters(self, texts: Iterable[str]) -> Counter[str]:
        """Characters of `texts` the vocabulary reads as [UNK], with their counts."""
        return self.tokenizer.unknown_characters(texts)

    def predict_relations_gold(self, document: Document) -> Document:
        """The document's gold entities with relations predicted between them (RC evaluation)."""
        examples = document_examples(document, self.schema, self.max_chars)
        relations: list[Relation] = []
        if examples:
            results = self._classify(
                [e.sentence.text for e in examples], [e.mentions for e in examples]
            )
            for example, (found, _) in zip(examples, results, strict=True):
                for rel in found:
                    first = example.mentions[rel.first].entity_id
                    second = example.mentions[rel.second].entity_id
                    arg1, arg2 = (first, second) if rel.first_is_arg1 else (second, first)
                    relations.append(Relation(f"R{len(relations) + 1}", rel.label, arg1, arg2,
                                              rel.confidence))
        return replace(document, relations=tuple(relations), others=())

    def predict_sentences(self, texts: Sequence[str]) -> list[SentencePrediction]:
        """Entities and relations of each sentence text (one batch; keep it small)."""
        if not texts:
            return []
        if not self.model.trains_ner:
            # An RC-only model's CRF is untrained: it finds nothing rather than noise. It serves
            # on given entities (predict_relations_gold, extraction.experiment.PipelineExtractor).
            return [SentencePrediction((), (), ()) for _ in texts]
        self.model.eval()
        encoded = [self._encode(t) for t in texts]
        batch = collate(encoded, self.tokenizer.pad_id).to(self.device)
        with self._autocast():
            ner = self.model.tag(batch.input_ids, batch.attention_mask, batch.char_mask,
                                 self.temperatures.ner)
        marginals = ner.marginals.float().cpu()
        real = batch.char_mask.cpu()
        # All sentences at once, (B, L) -> lists: p(decoded tag) at each character, and the
        # doubt sums over each sentence's characters (a padding row of the marginals is junk:
        # masked out, never multiplied)
        decoded = torch.zeros(marginals.shape[:2], dtype=torch.long)
        for b, path in enumerate(ner.paths):
            decoded[b, : len(path)] = torch.tensor(path, dtype=torch.long)
        chosen = marginals.gather(2, decoded.unsqueeze(2)).squeeze(2).tolist()
        outside = real & (decoded == self._outside)
        starts = marginals[:, :, self._starts].sum(dim=2)
        missed = torch.where(outside, starts, 0.0).sum(dim=1).tolist()
        entropy = torch.where(real, _entropy(marginals), 0.0).sum(dim=1).tolist()
        mentions_per, confidences_per, doubts = [], [], []
        for b, (text, path, probs) in enumerate(zip(texts, ner.paths, chosen, strict=True)):
            tags = [self.model.tags[i] for i in path]
            mentions, confidences = [], []
            for entity_type, start, end in decode(tags):
                mentions.append(Mention("", entity_type, start, end, text[start:end]))
                confidences.append(min(probs[start:end]))
            mentions_per.append(tuple(mentions))
            confidences_per.append(tuple(confidences))
            doubts.append(Doubt(missed_entities=missed[b], entropy=entropy[b]))
        if self.relations:
            found = self._relations_from_lower(ner.lower, batch.attention_mask,
                                               batch.input_ids, mentions_per, ner.projections)
        else:
            found = [((), Doubt()) for _ in texts]
        return [SentencePrediction(m, c, r, d + rd) for m, c, (r, rd), d
                in zip(mentions_per, confidences_per, found, doubts, strict=True)]

    # --- internals -----------------------------------------------------------------------

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.device.type == "cuda")

    def _encode(self, text: str) -> EncodedSentence:
        return EncodedSentence(tuple(self.tokenizer.encode(text)), None, (), ())

    def _finish(
        self, pending: list[tuple[Document, list[SentenceSpan]]], batch_size: int
    ) -> Iterator[Document]:
        flat = [s for _, sentences in pending for s in sentences]
        results: list[SentencePrediction | None] = [None] * len(flat)
        with self.window_memory():
            for chunk in window_batches(pending, batch_size):
                for i, prediction in zip(chunk,
                                         self.predict_sentences([flat[i].text for i in chunk]),
                                         strict=True):
                    results[i] = prediction
        at = 0
        for document, sentences in pending:
            mine = results[at : at + len(sentences)]
            at += len(sentences)
            yield self._document(document, sentences, mine)  # type: ignore[arg-type]

    def _document(
        self,
        document: Document,
        sentences: Sequence[SentenceSpan],
        predictions: Sequence[SentencePrediction],
    ) -> Document:
        entities: list[Entity] = []
        relations: list[Relation] = []
        doubt = Doubt()
        for sentence, prediction in zip(sentences, predictions, strict=True):
            doubt = doubt + prediction.doubt
            ids = []
            for mention, confidence in zip(prediction.mentions, prediction.confidences,
                                           strict=True):
                start, end = sentence.start + mention.start, sentence.start + mention.end
                entity_id = f"T{len(entities) + 1}"
                ids.append(entity_id)
                entities.append(Entity(entity_id, mention.type, (Span(start, end),),
                                       document.text[start:end], confidence))
            for rel in prediction.relations:
                first, second = ids[rel.first], ids[rel.second]
                arg1, arg2 = (first, second) if rel.first_is_arg1 else (second, first)
                relations.append(Relation(f"R{len(relations) + 1}", rel.label, arg1, arg2,
                                          rel.confidence))
        # A prediction, not an annotation: `annotated` stays as the input document had it.
        return replace(document, entities=tuple(entities), relations=tuple(relations),
                       others=(), doubt=doubt)

    def _classify(
        self, texts: Sequence[str], mentions: Sequence[Sequence[Mention]], batch_size: int = 64
    ) -> list[tuple[tuple[PredictedRelation, ...], Doubt]]:
        """Relations between given mentions (gold entities), batch by batch."""
        self.model.eval()
        out: list[tuple[tuple[PredictedRelation, ...], Doubt]] = []
        for k in range(0, len(texts), batch_size):
            encoded = [self._encode(t) for t in texts[k : k + batch_size]]
            batch = collate(encoded, self.tokenizer.pad_id).to(self.device)
            with torch.no_grad(), self._autocast():
                lower = self.model.encoder.lower(batch.input_ids, batch.attention_mask)
            out.extend(self._relations_from_lower(
                lower, batch.attention_mask, batch.input_ids, mentions[k : k + batch_size]
            ))
        return out

    def _relations_from_lower(
        self,
        lower: torch.Tensor,
        attention_mask: torch.Tensor,
        input_ids: torch.Tensor,
        mentions_per: Sequence[Sequence[Mention]],
        projections: torch.Tensor | None = None,
    ) -> list[tuple[tuple[PredictedRelation, ...], Doubt]]:
        """Per sentence: the relations found between its mentions, and the doubt of the
        candidate pairs (missed relations and entropy). `projections`: the NER pass's of
        these sentences (`NerOutput.projections`), reused by the relation pass."""
        index: list[tuple[int, int, int]] = []  # sentence, first, second
        spans = []
        for b, mentions in enumerate(mentions_per):
            for i, j in candidate_pairs(mentions, self.schema):
                index.append((b, i, j))
                spans.append((b, *pair_span(mentions[i].start, mentions[i].end,
                                            mentions[j].start, mentions[j].end)))
        found: list[list[PredictedRelation]] = [[] for _ in mentions_per]
        doubts = [Doubt() for _ in mentions_per]
        if not index:
            return list(zip((tuple(f) for f in found), doubts, strict=True))
        by_width = sorted(range(len(spans)), key=lambda p: _pair_width(spans[p]))
        chunks = []
        for k in range(0, len(spans), RC_PAIRS_PER_CHUNK):
            chunk_spans = torch.tensor([spans[p] for p in by_width[k : k + RC_PAIRS_PER_CHUNK]],
                                       dtype=torch.long)
            # a chunk needs only the run of sentences its pairs are in
            first, last = int(chunk_spans[:, 0].min()), int(chunk_spans[:, 0].max()) + 1
            chunk_spans[:, 0] -= first
            pairs = PairIndex(*chunk_spans.T.contiguous().to(self.device))
            with self._autocast():
                chunk = self.model.relation_probs(
                    lower[first:last], attention_mask[first:last], pairs,
                    input_ids[first:last], self.temperatures.rc,
                    None if projections is None else projections[first:last])
            chunks.append(chunk.float().cpu())
        in_width_order = torch.cat(chunks)
        probs = torch.empty_like(in_width_order)
        probs[torch.tensor(by_width)] = in_width_order
        rows = probs.tolist()  # plain floats: one conversion, not one per pair
        # each sentence's doubt summed pair by pair in plain floats, one Doubt at the end
        missed_sums, entropy_sums = [0.0] * len(mentions_per), [0.0] * len(mentions_per)
        for row, (b, i, j) in enumerate(index):
            a, c = mentions_per[b][i], mentions_per[b][j]
            decision = self._decide(rows[row], a.type, c.type)
            missed = 1.0 - decision.no_relation if decision.label == NO_RELATION else 0.0
            missed_sums[b] += missed
            entropy_sums[b] += decision.entropy
            if decision.label != NO_RELATION:
                found[b].append(PredictedRelation(i, j, decision.label, decision.first_is_arg1,
                                                  decision.confidence))
        doubts = [Doubt(missed_relations=m, entropy=e)
                  for m, e in zip(missed_sums, entropy_sums, strict=True)]
        return list(zip((tuple(f) for f in found), doubts, strict=True))

    def _decide(self, probs: Sequence[float], first_type: str, second_type: str
                ) -> PairDecision:
        """The most probable of NoRelation and the labels the schema allows between the types,
        with the distribution renormalised over those labels."""
        options = self._options(first_type, second_type)
        raw = [probs[label] for _, _, label in options]
        total = max(sum(raw), 1e-12)
        allowed = [p / total for p in raw]
        best = max(range(len(allowed)), key=allowed.__getitem__)  # ties: NoRelation first
        label, first_is_arg1, _ = options[best]
        entropy = -sum(p * math.log(p) for p in allowed if p > 0)
        return PairDecision(label, first_is_arg1, allowed[best], allowed[0], entropy)

    def _options(self, first_type: str, second_type: str) -> tuple[tuple[str, bool, int], ...]:
        """What a pair of these types may be: NoRelation, then (relation, first_is_arg1, label
        index) for each relation the schema allows between them, each relation once (a label
        names a relation, not its direction); asked once per pair, answered once per pair of
        types."""
        key = (first_type, second_type)
        if key not in self._choices:
            seen: set[str] = set()
            options = [(NO_RELATION, True, self._label_index[NO_RELATION])]
            for name, first_is_arg1 in self.schema.relations_between(*key):
                if name not in seen:
                    seen.add(name)
                    options.append((name, first_is_arg1, self._label_index[name]))
            self._choices[key] = tuple(options)
        return self._choices[key]
