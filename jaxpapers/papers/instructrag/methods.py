"""The compared methods, each a registered fn(study, dataset, train, test) -> [rows per seed].

  no_retrieval      the question alone (NO_RETRIEVAL_QUERY), zero-shot
  vanilla_zeroshot  documents + question, zero-shot
  vanilla_icl       N demonstrations (question -> first gold answer, the first N train
                    questions) + documents + question
  instructrag_icl   N demonstrations (question -> synthesised rationale: the first N train
                    questions whose rationale contains a gold answer) + documents + question
  vanilla_sft       SFT on documents + question -> first gold answer, then zero-shot
  instructrag_ft    SFT on documents + question -> synthesised rationale, then zero-shot
Rows: the test row + `prompt` + `output`, cached per file by `Study.outputs`; fine-tuned
methods return one list per seed in `config.ft.seeds`.
"""
from __future__ import annotations

import time

from jaxpapers.core import registry
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.papers.instructrag import finetune
from jaxpapers.papers.instructrag import prompts

METHODS = registry.Registry('instructrag method')
NEEDS_RATIONALES = ('instructrag_icl', 'instructrag_ft')
FINE_TUNED = ('vanilla_sft', 'instructrag_ft')


@METHODS.register('no_retrieval')
def no_retrieval(study, dataset, train, test):
  del train
  return [study.outputs(dataset, 'no_retrieval', test,
                        [prompts.no_retrieval_prompt(ex) for ex in test])]


@METHODS.register('vanilla_zeroshot')
def vanilla_zeroshot(study, dataset, train, test):
  del train
  n = study.config.data.n_docs
  return [study.outputs(dataset, 'vanilla_zeroshot', test,
                        [('', prompts.query_body(ex, n)) for ex in test])]


@METHODS.register('vanilla_icl')
def vanilla_icl(study, dataset, train, test):
  demos = [{'question': ex['question'], 'answer': ex['answers'][0]}
           for ex in train[:study.config.icl.num_demos]]
  n = study.config.data.n_docs
  return [study.outputs(dataset, 'vanilla_icl', test,
                        [prompts.vanilla_icl_prompt(ex, n, demos) for ex in test])]


def rationale_demos(rationales: list[dict], num: int) -> list[dict]:
  """The first `num` rationales that contain a gold answer (the first `num` if too few)."""
  good = [r for r in rationales if r['has_answer']]
  return (good if len(good) >= num else rationales)[:num]


@METHODS.register('instructrag_icl')
def instructrag_icl(study, dataset, train, test):
  demos = rationale_demos(study.rationales(dataset, train), study.config.icl.num_demos)
  n = study.config.data.n_docs
  return [study.outputs(dataset, 'instructrag_icl', test,
                        [prompts.icl_prompt(ex, n, demos) for ex in test])]


def sft_examples(study, rows: list[dict], targets: list[str]) -> list[dict]:
  """Padded SFT examples; a prompt is cut from the left of its documents so that the whole
  target (+ EOS) fits `ft.seq_len`."""
  ft, tok = study.config.ft, study.tok
  out = []
  for ex, target in zip(rows, targets):
    room = ft.seq_len - len(tok_lib.encode(tok, target + (tok.eos_token or '')))
    ids = prompts.encode(tok, '', prompts.query_body(ex, study.config.data.n_docs,
                                                     ft.train_query),
                         study.config.prompt_style, max(room, 1))
    out.append(finetune.example(tok, ids, target, ft.seq_len))
  return out


def _fine_tuned(study, dataset, method, train, test, targets):
  n = study.config.data.n_docs
  pairs = [('', prompts.query_body(ex, n)) for ex in test]
  per_seed = []
  for seed in study.config.ft.seeds:
    name = f'{method}-seed{seed}'

    def trained_model(seed=seed, name=name):
      t0 = time.time()
      model = finetune.train(study.model(), sft_examples(study, train, targets),
                             study.config.ft, seed, study.workdir / 'ft' / dataset / name,
                             study.mesh)
      study.timing(f'{dataset}/{name}/train_s', time.time() - t0)
      return model
    per_seed.append(study.outputs(dataset, name, test, pairs, model_fn=trained_model))
  return per_seed


@METHODS.register('vanilla_sft')
def vanilla_sft(study, dataset, train, test):
  return _fine_tuned(study, dataset, 'vanilla_sft', train, test,
                     [ex['answers'][0] for ex in train])


@METHODS.register('instructrag_ft')
def instructrag_ft(study, dataset, train, test):
  rationales = study.rationales(dataset, train)
  return _fine_tuned(study, dataset, 'instructrag_ft', rationales, test,
                     [r['rationale'] for r in rationales])
