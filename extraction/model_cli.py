"""`angiokg tokenizer build`, `pretrain`, `train`, `evaluate`, `experiment`: model commands."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    tok = subparsers.add_parser("tokenizer", help="character vocabulary for the model")
    tok_sub = tok.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    build = tok_sub.add_parser("build", help="WordPiece vocabulary from report text")
    build.add_argument("source", help="brat corpus or report archive (folder, zip, tar.gz, ...)")
    build.add_argument("--out", required=True, help="directory for vocab.txt + tokenizer files")
    build.add_argument("--vocab-size", type=int, default=8000)
    build.set_defaults(handler=_tokenizer_build)

    pre = subparsers.add_parser("pretrain", help="MLM pre-training of a small BERT on reports")
    pre.add_argument("archive", help="unlabelled reports (folder of .txt, zip, tar.gz, ...)")
    pre.add_argument("--tokenizer", required=True, help="directory from `tokenizer build`")
    pre.add_argument("--out", required=True, help="checkpoint directory (save_pretrained)")
    _config_args(pre)
    pre.add_argument("--quick", action="store_true", help="a few dozen steps: a smoke test")
    pre.add_argument("--epochs", type=int, help="override pretrain_epochs")
    pre.add_argument("--max-steps", type=int, help="override pretrain_max_steps")
    pre.set_defaults(handler=_pretrain)

    tr = subparsers.add_parser("train", help="fine-tune the focused attention model")
    tr.add_argument("corpus", help="brat corpus folder (.txt + .ann)")
    tr.add_argument("--out", required=True, help="model directory to write")
    _config_args(tr)
    tr.add_argument("--bert", help="BERT checkpoint directory (e.g. bert-base-chinese); "
                    "default: build a tokenizer and pre-train a small BERT on the corpus text")
    tr.add_argument("--archive", help="extra unlabelled reports for pre-training")
    tr.add_argument("--schema", help="annotation.conf (default: the bundled one)")
    tr.set_defaults(handler=_train)

    ev = subparsers.add_parser("evaluate", help="score a model as the paper does")
    ev.add_argument("model_dir")
    ev.add_argument("corpus", help="brat corpus folder")
    ev.add_argument("--split", default="test", choices=("train", "dev", "test", "all"),
                    help="which side of the model's own split (default test)")
    ev.add_argument("--json", help="also write the tables as JSON here")
    ev.add_argument("--schema", help="annotation.conf (default: the bundled one)")
    ev.add_argument("--device")
    ev.set_defaults(handler=_evaluate)

    ex = subparsers.add_parser(
        "experiment", help="the paper's studies: K x RC mask grid, joint vs separate (Tables IV-VI)"
    )
    ex.add_argument("corpus", help="brat corpus folder (.txt + .ann)")
    ex.add_argument("--out", required=True,
                    help="folder for tables.md, table_*.csv, results.json, encoder/, models/")
    _config_args(ex)
    ex.add_argument("--k", default="2,4,6",
                    help="task layers K to try, comma-separated (default 2,4,6); a K above the "
                    "encoder's layer count is listed as n/a")
    ex.add_argument("--masks", default="eq13,eq14", help="RC masks to try (default eq13,eq14)")
    ex.add_argument("--no-separate", action="store_true",
                    help="skip the NER-only and RC-only models of Table VI")
    ex.add_argument("--bert", help="BERT checkpoint directory every cell fine-tunes; default: "
                    "build a tokenizer and pre-train a small BERT on the corpus once")
    ex.add_argument("--schema", help="annotation.conf (default: the bundled one)")
    lc = ex.add_argument_group(
        "learning curve and active-learning simulation (--learning-curve)",
        "rounds from the same start adding --step reports chosen by each strategy or at random; "
        "writes learning_curve.md/.csv/.json/.png instead of the paper's tables")
    lc.add_argument("--learning-curve", action="store_true",
                    help="run the simulation instead of the K x mask grid")
    lc.add_argument("--start", type=int, help="random reports of the first round (default: a "
                    "tenth of the train split)")
    lc.add_argument("--step", type=int, help="reports added per round (default: --start)")
    lc.add_argument("--budget", type=int, help="labelled reports of the last round (default: "
                    "the whole train split)")
    lc.add_argument("--strategies", default="expected-errors,entropy,random",
                    help="selection arms, comma-separated; random is always one")
    lc.add_argument("--matched-steps", action="store_true",
                    help="train every labelled set for the optimizer steps of the whole budget's "
                    "epochs (smaller sets get more passes), not for the config's epochs")
    lc.add_argument("--seed", type=int, default=0, help="seed of the shuffle of the pool")
    lc.add_argument("--seeds", help="comma-separated seeds: the whole simulation once per seed "
                    "in OUT/seed-S (the pool shuffled and the models trained with seed S), and "
                    "OUT/learning_curve.* give the mean and spread over them")
    ex.set_defaults(handler=_experiment)


def _config_args(parser: argparse.ArgumentParser) -> None:
    # Profile names are checked by load_config, not by argparse: listing them here would import
    # torch and transformers for every `angiokg` command, seconds before any work starts.
    parser.add_argument("--config", help="JSON or YAML file of TrainConfig keys")
    parser.add_argument("--profile", help="named configuration: tiny, sample-quick or default "
                        "(default: default)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when present)")


def _config(args: argparse.Namespace):
    from extraction.train_config import load_config

    try:
        config = load_config(args.config, args.profile)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"angiokg {args.command}: {exc}") from None
    if args.device:
        config = replace(config, device=args.device)
    return config


def _texts(source: str) -> list[str]:
    from ingest.archive import iter_reports

    texts = [r.text for r in iter_reports(source) if r.text is not None]
    if not texts:
        raise SystemExit(f"{source}: no readable report text found")
    return texts


def _tokenizer_build(args: argparse.Namespace) -> int:
    from extraction.tokenizer import build_tokenizer

    tokenizer = build_tokenizer(_texts(args.source), args.out, args.vocab_size)
    print(f"{args.out}: {len(tokenizer)} tokens")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    import torch

    from extraction.pretrain import pretrain_mlm, text_sentences
    from extraction.tokenizer import CharTokenizer

    config = _config(args)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    pre = config.pretrain
    if args.quick:
        pre = replace(pre, epochs=1, max_steps=30)
    if args.epochs is not None:
        pre = replace(pre, epochs=args.epochs)
    if args.max_steps is not None:
        pre = replace(pre, max_steps=args.max_steps)
    tokenizer = CharTokenizer.from_dir(args.tokenizer)
    sentences = text_sentences(_texts(args.archive), config.max_chars)
    result = pretrain_mlm(sentences, tokenizer, args.out, config.bert_size, pre, config.device)
    print(f"{result.out_dir}: {result.steps} steps over {result.sentences} sentences in "
          f"{result.seconds:.0f}s, last MLM loss {result.final_loss:.3f}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from extraction.train import train
    from ingest.schema import load_schema

    result = train(args.corpus, args.out, _config(args), bert_dir=args.bert,
                   archive=args.archive, schema=load_schema(args.schema))
    print(f"{result.model_dir}: {result.model_version} in {result.seconds:.0f}s")
    corpus = result.metrics.get("corpus")
    if corpus:
        print(f"corpus: {corpus['used']} of {corpus['reports']} reports trained on, "
              f"{corpus['quarantined']} quarantined, {corpus['unannotated']} without a .ann")
    if result.test is not None:
        print("test F1: " + ", ".join(f"{task} {100 * result.test.task(task).f1:.2f}"
                                      for task in result.test.TASKS))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from extraction.calibration import calibration_report, format_reliability
    from extraction.evaluate import evaluate_extractor, format_report
    from extraction.predict import Extractor
    from extraction.train import read_corpus, split_documents
    from ingest.schema import load_schema

    schema = load_schema(args.schema)
    extractor = Extractor.load(args.model_dir, device=args.device, schema=schema)
    seed = _split_seed(Path(args.model_dir))
    documents = read_corpus(args.corpus, schema)
    if args.split != "all":
        documents = split_documents(documents, seed)[args.split]
    if not documents:
        raise SystemExit(f"{args.corpus}: no report falls in the {args.split} split")
    report = evaluate_extractor(extractor, documents)
    calibration = calibration_report(extractor, documents)
    print(f"model {extractor.model_version}, split {args.split}")
    print(format_report(report))
    print()
    print(format_reliability(calibration))
    if args.json:
        from ingest.atomic import write_text_atomic

        payload = {**report.to_dict(), "calibration": calibration.to_dict()}
        write_text_atomic(args.json, json.dumps(payload, indent=1) + "\n")
    return 0


def _experiment(args: argparse.Namespace) -> int:
    if args.learning_curve:
        return _learning_curve(args)
    from extraction.experiment import parse_ks, parse_masks, run_experiment, write_outputs
    from ingest.schema import load_schema

    try:
        ks, masks = parse_ks(args.k), parse_masks(args.masks)
    except ValueError as exc:
        raise SystemExit(f"angiokg experiment: {exc}") from None
    result = run_experiment(args.corpus, args.out, _config(args), ks, masks,
                            separate=not args.no_separate, bert_dir=args.bert,
                            schema=load_schema(args.schema))
    print(write_outputs(result, args.out))
    return 0


def _learning_curve(args: argparse.Namespace) -> int:
    from extraction import active_learning as al
    from ingest.schema import load_schema

    try:
        arms = al.parse_arms(args.strategies)
        seeds = _seeds(args.seeds)
        rounds = {"start": args.start, "step": args.step, "budget": args.budget, "arms": arms,
                  "schema": load_schema(args.schema), "matched_steps": args.matched_steps}
        if seeds is None:
            result = al.run_simulation(args.corpus, args.out, _config(args), seed=args.seed,
                                       bert_dir=args.bert, **rounds)
            print(al.write_outputs(result, args.out))
        else:
            several = al.run_seeds(args.corpus, args.out, _config(args), seeds,
                                   bert_dir=args.bert, **rounds)
            print(al.write_seeds_outputs(several, args.out))
    except ValueError as exc:
        raise SystemExit(f"angiokg experiment --learning-curve: {exc}") from None
    return 0


def _seeds(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        seeds = tuple(dict.fromkeys(int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        seeds = ()
    if not seeds:
        raise ValueError(f"--seeds: expected comma-separated integers, got {text!r}")
    return seeds


def _split_seed(model_dir: Path) -> int:
    config = json.loads((model_dir / "train_config.json").read_text(encoding="utf-8"))
    return int(config.get("split_seed", 42))
