"""InstructRAG (Wei et al., 2024): self-synthesised denoising rationales, in context and
fine-tuned, against vanilla RAG (experiment 'instructrag').

For each dataset in `config.datasets` (data.py: train/test split, top-n_docs noisy
documents, answer recall@5 of those documents), in `workdir`:
  docs/<dataset>-<docs>-<split>.jsonl    the questions with their documents
  rationales/<dataset>.jsonl             rationale synthesis on the train split: the model
                                         explains the gold answers from the documents
                                         (greedy, prompts.rationale_prompt); `has_answer`
                                         says whether the rationale contains a gold answer
  outputs/<dataset>/<method>[-seedS].jsonl  every method's greedy test generations
  ft/<dataset>/<method>-seedS/           SFT checkpoints and metrics.jsonl
  results.json, results.md               per dataset and method: accuracy (reference
                                         metric), accuracy_ci (95% bootstrap), em,
                                         output_chars, doc_recall_at_5; `paired`: the
                                         paper's comparisons (COMPARISONS) as paired
                                         differences; timings.json (load, synthesis,
                                         training, generation seconds)
Every file is reused when present (generation also per chunk, training from its
checkpoints), so a killed run resumes; the model is loaded only when a file is missing.
"""
from __future__ import annotations

import functools
import json
import pathlib
import time

from jaxpapers.core import assets
from jaxpapers.core import config as config_lib
from jaxpapers.core import gguf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core.runners import generate as generate_runner
from jaxpapers.papers.instructrag import data as data_lib
from jaxpapers.papers.instructrag import inference
from jaxpapers.papers.instructrag import methods as methods_lib
from jaxpapers.papers.instructrag import metrics as ir_metrics
from jaxpapers.papers.instructrag import prompts


def validate(config) -> None:
  generate_runner.validate_model(config.model)
  for name in config.methods:
    config_lib.require(name in methods_lib.METHODS, 'methods',
                       f'{name!r} unknown; valid: {methods_lib.METHODS.names()}')
  for name in config.datasets:
    config_lib.require(name in data_lib.DATASETS, 'datasets',
                       f'{name!r} unknown; valid: {sorted(data_lib.DATASETS)}')
    config_lib.require(name in config.data.postfix, 'data.postfix',
                       f'no rationale postfix named for dataset {name!r}')
  config_lib.check_choice(config, 'data.docs', data_lib.DOC_SOURCES)
  config_lib.require(config.data.docs != 'distractors' or
                     set(config.datasets) <= {'hotpotqa'}, 'data.docs',
                     "'distractors' exist for hotpotqa only")
  config_lib.check_choice(config, 'prompt_style', prompts.STYLES)
  config_lib.check_choice(config, 'ft.train_query', prompts.TRAIN_QUERIES)
  config_lib.check_positive(config, 'data.n_docs', 'icl.num_demos', 'generation.batch_size',
                            'generation.max_new_tokens', 'generation.rationale_tokens',
                            'generation.chunk', 'ft.batch_size', 'ft.seq_len', 'ft.epochs',
                            'ft.trim_multiple', 'ft.grad_accum_steps')
  config_lib.require(0 < config.data.test_fraction < 1, 'data.test_fraction',
                     f'must be in (0, 1), got {config.data.test_fraction}')
  config_lib.require(len(config.ft.seeds) > 0, 'ft.seeds', 'needs at least one seed')
  try:
    mesh_lib.mesh_shape(config.mesh)
  except ValueError as e:
    raise config_lib.ConfigError(f'config.{e}') from None


def load_tokenizer(model_cfg):
  """`model.tokenizer` may name a shipped GGUF checkpoint (its tokenizer is read)."""
  if model_cfg.tokenizer and assets.is_asset(model_cfg.tokenizer):
    return gguf.load_tokenizer(assets.resolve(model_cfg.tokenizer))
  return generate_runner.tokenizer_for(model_cfg)


class Study:
  """What every method needs: config, tokenizer, the (lazily loaded) model, cached files."""

  def __init__(self, config, workdir: pathlib.Path, mesh, tok):
    self.config, self.workdir, self.mesh, self.tok = config, workdir, mesh, tok
    self._timings_path = workdir / 'timings.json'
    self.timings = (json.loads(self._timings_path.read_text())
                    if self._timings_path.exists() else {})

  def timing(self, key: str, seconds: float) -> None:
    self.timings[key] = round(seconds, 1)
    metrics_lib.write_json(self._timings_path, self.timings)

  @functools.cached_property
  def _model(self):
    t0 = time.time()
    model = generate_runner.load_model(self.config.model, self.mesh)
    self.timing('load_s', time.time() - t0)
    print(f'loaded {self.config.model.model_dir or self.config.model.preset} in '
          f'{time.time() - t0:.1f} s', flush=True)
    return model

  def model(self):
    return self._model

  def encode(self, head: str, body: str) -> list[int]:
    g = self.config.generation
    return prompts.encode(self.tok, head, body, self.config.prompt_style, g.max_prompt_tokens)

  def outputs(self, dataset: str, name: str, rows, pairs, model_fn=None, max_new_tokens=0,
              path=None, finish=None) -> list[dict]:
    """Greedy generations for (head, body) prompt pairs, cached in outputs/<dataset>/<name>."""
    g = self.config.generation
    path = path or self.workdir / 'outputs' / dataset / f'{name}.jsonl'
    holder = {}

    def run(ids):
      if 'model' not in holder:
        holder['model'] = (model_fn or self.model)()
      t0 = time.time()
      texts = inference.generate(holder['model'], self.tok, ids, mesh=self.mesh,
                                 max_new_tokens=max_new_tokens or g.max_new_tokens,
                                 batch_size=g.batch_size, bucket=g.bucket,
                                 shared_prefix=g.shared_prefix)
      key = f'{dataset}/{name}/generate_s'
      self.timing(key, self.timings.get(key, 0.0) + time.time() - t0)
      return texts
    ids = [] if path.exists() else [self.encode(h, b) for h, b in pairs]
    return inference.cached(path, rows, ids, run, self.tok, g.chunk, finish)

  def rationales(self, dataset: str, train) -> list[dict]:
    """Synthesised rationales of the train split (prompts.rationale_prompt, greedy)."""
    d = self.config.data
    path = self.workdir / 'rationales' / f'{dataset}.jsonl'
    finish = lambda r: {**r, 'rationale': r['output'],  # noqa: E731
                        'has_answer': ir_metrics.accuracy(r['output'], r['answers'])}
    return self.outputs(dataset, 'rationales', train,
                        [prompts.rationale_prompt(ex, d.n_docs, d.postfix[dataset])
                         for ex in train], max_new_tokens=self.config.generation.rationale_tokens,
                        path=path, finish=finish)


# The paper's claim, per pair: rationales beat answers, in context and fine-tuned.
COMPARISONS = (('instructrag_icl', 'vanilla_icl'), ('instructrag_ft', 'vanilla_sft'))


def evaluate_dataset(study: Study, dataset: str, get_retriever) -> dict:
  config = study.config
  train = data_lib.prepare(config, dataset, 'train', study.workdir, get_retriever)
  test = data_lib.prepare(config, dataset, 'test', study.workdir, get_retriever)
  recall = data_lib.answer_recall(test, 5)
  out: dict = {'docs': {'doc_recall_at_5': recall, 'n_train': len(train), 'n_test': len(test),
                        'source': config.data.docs}}
  print(f'{dataset}: {len(train)} train / {len(test)} test questions, answer recall@5 of the '
        f'{config.data.docs} documents {recall:.3f}', flush=True)
  if any(m in methods_lib.NEEDS_RATIONALES for m in config.methods):
    rationales = study.rationales(dataset, train)
    out['synthesis'] = {'n': len(rationales), 'gold_in_rationale': float(
        sum(r['has_answer'] for r in rationales) / max(len(rationales), 1))}
  outputs = {}
  for name in config.methods:
    per_seed = outputs[name] = methods_lib.METHODS.get(name)(study, dataset, train, test)
    summary = ir_metrics.summarize(per_seed, config.bootstrap, config.seed)
    out[name] = {**summary, 'doc_recall_at_5': recall}
    ci = summary['accuracy_ci']
    print(f"{dataset:>9} {name:>17}: accuracy {summary['accuracy']:.3f} "
          f"[{ci[0]:.3f}, {ci[1]:.3f}] EM {summary['em']:.3f} (n={summary['n']}, "
          f'{len(per_seed)} seed(s))', flush=True)
  for a, b in COMPARISONS:
    if a in outputs and b in outputs:
      d = out.setdefault('paired', {})[f'{a}-{b}'] = ir_metrics.paired_difference(
          outputs[a], outputs[b], config.bootstrap, config.seed)
      print(f"{dataset:>9} {a} - {b}: {d['diff']:+.3f} [{d['diff_ci'][0]:+.3f}, "
            f"{d['diff_ci'][1]:+.3f}] ({d['only_a']} questions only {a} gets, {d['only_b']} "
            f'only {b})', flush=True)
  return out


def table(results: dict, methods) -> str:
  lines = ['| dataset | method | accuracy [95% CI] | EM | output chars | doc recall@5 | n |',
           '|---|---|---|---|---|---|---|']
  for dataset, res in results.items():
    for m in methods:
      r = res[m]
      lines.append(f"| {dataset} | {m} | {r['accuracy']:.3f} [{r['accuracy_ci'][0]:.3f}, "
                   f"{r['accuracy_ci'][1]:.3f}] | {r['em']:.3f} | {r['output_chars']:.0f} | "
                   f"{r['doc_recall_at_5']:.3f} | {r['n']} |")
    for pair, d in res.get('paired', {}).items():
      lines.append(f"| {dataset} | {pair.replace('-', ' - ')} | {d['diff']:+.3f} "
                   f"[{d['diff_ci'][0]:+.3f}, {d['diff_ci'][1]:+.3f}] (only A {d['only_a']}, "
                   f"only B {d['only_b']}) | | | | {d['n']} |")
  return '\n'.join(lines) + '\n'


@registry.experiment('instructrag')
def run(config, workdir: str) -> dict:
  validate(config)
  mesh = mesh_lib.make_mesh(config.mesh)
  if any(m in methods_lib.FINE_TUNED for m in config.methods):
    k = config.ft.grad_accum_steps
    config_lib.check_divisible(config, 'ft.batch_size', k * mesh_lib.batch_divisor(mesh),
                               f'{k} grad_accum_steps slices, each split over the data x fsdp '
                               f'mesh axes of {dict(mesh.shape)}')
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  study = Study(config, workdir, mesh, load_tokenizer(config.model))
  index_dir = config.index_dir or workdir / 'index'
  get_retriever = functools.lru_cache(maxsize=1)(
      lambda: data_lib.build_retriever(config, mesh, index_dir))
  results = {d: evaluate_dataset(study, d, get_retriever) for d in config.datasets}
  metrics_lib.write_json(workdir / 'results.json', results)
  (workdir / 'results.md').write_text(table(results, config.methods))
  print(table(results, config.methods), flush=True)
  return results
