"""G-Zero: Hint-δ vs naive forwards, the Proposer's penalties, the δ filter, DPO pairs,
prompts and parsing, the world, and the loop end to end (and its resume after kill -9)."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from configs import gzero_world
from jaxpapers.core import logprobs
from jaxpapers.core.models import layers
from jaxpapers.core.models import qwen
from jaxpapers.papers.gzero import delta
from jaxpapers.papers.gzero import loop
from jaxpapers.papers.gzero import pool
from jaxpapers.papers.gzero import prompts
from jaxpapers.papers.gzero import report
from jaxpapers.papers.gzero import rewards
from jaxpapers.papers.gzero import world

REPO = pathlib.Path(__file__).resolve().parents[3]


# ----------------------------------------------------------------------------- prompts


def test_prompts_are_the_reference_strings():
  text = prompts.CHALLENGER_INSTRUCTION
  assert text.startswith('Produce one challenging request that a real user might ask a capable '
                         'assistant, plus a short hint that helps the assistant give a noticeably '
                         'better response.\n\n')
  assert '- Wrap the request in <question> and </question> tags.\n' in text
  assert '  - reasoning, math, or logic problems (fine to include — roughly 1 in 6 requests, ' \
         'no more)\n\n' in text
  assert text.endswith('with a concrete offer to help during the transition.</hint>\n\n'
                       'Example 2 (explanation):\n' + text.split('Example 2 (explanation):\n')[1])
  assert text.endswith('Now produce one new request and hint of your own:\n')
  assert len(text) == 2360
  assert prompts.solver_user('Q?') == 'Q?'
  assert prompts.solver_user('Q?', 'use x') == 'Q?\n\nHint: use x'


@pytest.mark.parametrize('text, expected', [
    ('<question>a</question><hint>b</hint>', ('a', 'b')),
    ('x <question> a </question>\n<hint>b</hint> <question>c</question><hint>d</hint>', ('c', 'd')),
    ('<question>a</question>', ('', '')),
    ('<question> </question><hint>b</hint>', ('', '')),
    ('<question>[your question]</question><hint>b</hint>', ('', '')),
    ('<question>a</question><hint>Your hint here</hint>', ('', '')),
    ('<question>multi\nline</question><hint>h</hint>', ('multi\nline', 'h')),
    ('', ('', '')),
])
def test_extract_qh(text, expected):
  assert prompts.extract_qh(text) == expected


# ----------------------------------------------------------------------------- penalties


def test_sentence_bleu_by_hand():
  # p1..p4 = 5/6, 3/5, 2/4, 1/3, equal lengths: (5/6 * 3/5 * 1/2 * 1/3) ** (1/4)
  assert rewards.sentence_bleu('the cat sat on the mat', 'the cat sat on a mat') == pytest.approx(
      (5 / 6 * 3 / 5 * 1 / 2 * 1 / 3) ** 0.25)
  # no 4-gram match: floor smoothing 0.1 / 1 (NLTK method1)
  assert rewards.sentence_bleu('a b c x', 'a b c d') == pytest.approx(
      (3 / 4 * 2 / 3 * 1 / 2 * 0.1) ** 0.25)
  assert rewards.sentence_bleu('same words in here', 'same words in here') == 1.0
  assert rewards.sentence_bleu('x y z w', 'a b c d') == 0.0
  # short strings (NLTK method1): missing orders count 0.1 / 1
  assert rewards.sentence_bleu('one', 'one') == pytest.approx(0.1 ** 0.75)
  assert rewards.sentence_bleu('a b c', 'a b c') == pytest.approx(0.1 ** 0.25)
  # brevity penalty exp(1 - 6/4) on a hypothesis shorter than its reference
  assert rewards.sentence_bleu('a b c d', 'a b c d e f') == pytest.approx(np.exp(1 - 6 / 4))


def test_cluster_share_identical_paraphrased_different():
  qs = ['how do i bake sourdough bread at home',
        'how do i bake sourdough bread at home',
        'how can i bake sourdough bread at home',      # paraphrase: BLEU 0.7 > 0.5
        'write a short poem about the winter sea',
        'explain kalman filters to a software engineer']
  share = rewards.cluster_share(qs)
  assert share == pytest.approx([3 / 5, 3 / 5, 3 / 5, 1 / 5, 1 / 5])
  assert rewards.cluster_share(qs, threshold=0.05) == pytest.approx(
      [2 / 5, 2 / 5, 1 / 5, 1 / 5, 1 / 5])
  assert rewards.cluster_share(['only one']) == [1.0]


def test_hint_length_penalty_at_199_200_450():
  cfg = rewards.RewardConfig()
  assert rewards.hint_length_penalty('h' * 199, cfg) == 0.0
  assert rewards.hint_length_penalty('h' * 200, cfg) == 0.0
  assert rewards.hint_length_penalty('h' * 450, cfg) == pytest.approx(0.03 * 250 / 100)


def test_proposer_rewards_compose_delta_floor_penalties_and_format():
  pairs = [('write a poem about rain', 'h' * 450), ('', ''), ('', ''),
           ('explain gravity to a child please', 'short')]
  r, parts = rewards.proposer_rewards(pairs, [3.0, None, None, -9.0])
  # every question is its own cluster (1/4); the two invalid outputs too: their shared
  # one-word key scores BLEU 0.1 ** 0.75 against itself, as in the reference
  assert r == pytest.approx([3.0 - 0.25 - 0.075, -1.0 - 0.25, -1.0 - 0.25, -5.0 - 0.25])
  assert parts['valid'].tolist() == [1, 0, 0, 1]
  r, _ = rewards.proposer_rewards(pairs, [3.0, None, None, -9.0],
                                  rewards.RewardConfig(duplication_penalty=False))
  assert r == pytest.approx([3.0 - 0.075, -1.0, -1.0, -5.0])


# ----------------------------------------------------------------------------- filter


def _record(q='a question', hint='h', a_hard='x' * 150, a_assisted='y' * 150, d=0.0):
  return {'question': q, 'hint': hint, 'a_hard': a_hard, 'a_assisted': a_assisted, 'delta': d}


def test_filter_keeps_exactly_the_lower_half():
  deltas = np.random.default_rng(0).permutation(20).astype(float) * 0.3 - 1.0
  kept, counts = pool.filter_pool([_record(d=d) for d in deltas])
  assert len(kept) == 10 and counts['delta_band'] == 10
  assert max(r['delta'] for r in kept) < min(r['delta'] for r in
                                             [_record(d=d) for d in deltas]
                                             if r['delta'] not in [k['delta'] for k in kept])
  kept, _ = pool.filter_pool([_record(d=d) for d in deltas], pool.FilterConfig(pct_high=100))
  assert len(kept) == 20


def test_quality_filters_by_hand():
  cfg = pool.FilterConfig(pct_high=100)
  cases = {
      'too_short': _record(a_assisted='y' * 99),
      'too_long': _record(a_assisted='y' * 10_001, a_hard='x' * 9000),
      'ratio': _record(a_assisted='y' * 400, a_hard='x' * 150),
      'repetition': _record(a_assisted='ab' * 300, a_hard='x' * 500),
      'prompt_echo': _record(q='Q' * 40, a_assisted='Q' * 30 + 'y' * 150),
      'role_marker': _record(a_assisted='  Assistant: ' + 'y' * 150),
  }
  for reason, record in cases.items():
    assert pool.quality_reason(record, cfg) == reason
  assert pool.quality_reason(_record(a_assisted='y' * 375), cfg) is None      # ratio 2.5
  kept, counts = pool.filter_pool(list(cases.values()) + [_record(a_hard=' ')], cfg)
  assert kept == [] and counts['empty_answer'] == 1
  assert all(counts[r] == 1 for r in cases)
  with pytest.raises(ValueError, match='pct_low'):
    pool.FilterConfig(pct_low=60, pct_high=50)


# ----------------------------------------------------------------------------- Hint-δ


@pytest.fixture(scope='module')
def tiny_world_model():
  cfg = qwen.preset('qwen3-tiny', vocab_size=40)
  model = layers.Decoder(cfg, nnx.Rngs(params=3))
  graphdef, params = nnx.split(model)
  return model, (graphdef, params)


def _naive_mean_logp(model, context, answer):
  seq = jnp.asarray([list(context) + list(answer)], jnp.int32)
  logps = logprobs.decoder_next_token_logprobs(model, seq)[0]
  return float(jnp.mean(logps[len(context) - 1:len(context) - 1 + len(answer)]))


def test_hint_delta_equals_two_naive_forwards(tiny_world_model):
  model, split = tiny_world_model
  fmt = world.world_format()
  qs = [('what is the color of kavo?', 'the color of kavo is red.', 'blue'),
        ('which pet does mi have?', 'the pet of mi is owl.', 'cat'),
        ('tell me the city of zuzu.', 'a longer hint than the others about zuzu.', 'oslo')]
  q_ctx = [fmt.solver_ids(q, None) for q, _, _ in qs]
  qh_ctx = [fmt.solver_ids(q, h) for q, h, _ in qs]
  answers = [world.TOKENIZER.encode(a) + [world.TOKENIZER.eos_token_id] for _, _, a in qs]
  out = delta.hint_delta(split, q_ctx, qh_ctx, answers, pad_id=0, answer_len=8, bucket=16,
                         rows=16)
  for i in range(len(qs)):
    lq = _naive_mean_logp(model, q_ctx[i], answers[i])
    lqh = _naive_mean_logp(model, qh_ctx[i], answers[i])
    assert out['logp_q'][i] == pytest.approx(lq, abs=1e-5)
    assert out['logp_qh'][i] == pytest.approx(lqh, abs=1e-5)
    assert out['delta'][i] == pytest.approx(lq - lqh, abs=1e-5)
  with pytest.raises(ValueError, match='longer than answer_len'):
    delta.hint_delta(split, q_ctx, qh_ctx, answers, pad_id=0, answer_len=3)


# ----------------------------------------------------------------------------- world, pairs


def test_world_questions_hints_and_checker():
  w = world.make_world(0, entities=6, known_fraction=0.5)
  assert len(w.facts) == 24 and len(w.known) == 12
  (e, r), v = next(iter(w.facts.items()))
  for t in range(len(world.TEMPLATES)):
    assert world.parse_question(world.question(e, r, t)) == (e, r)
  assert world.parse_question('what is the mood of kavo?') is None
  assert world.parse_hint(world.hint(e, r, v)) == (e, r, v)
  assert world.is_correct(w, world.question(e, r, 1), v + ' ') is True
  assert world.is_correct(w, 'nonsense?', v) is None
  scores = world.heldout_scores(w, {k: (val if k in w.known else 'zzz')
                                    for k, val in w.facts.items()})
  assert (scores['heldout'], scores['heldout_known'], scores['heldout_unknown']) == (0.5, 1.0, 0.0)
  # the Generator's warm-up never states an unknown fact unhinted
  tok = world.TOKENIZER
  for ex in world.generator_examples(w, 200, 0, 0.5, 128):
    text = tok.decode(ex['tokens'][ex['attention_mask'] > 0])
    if 'Hint' not in text:
      key = world.parse_question(text.split('\n')[0])
      assert key in w.known


def test_dpo_pairs_prompt_is_the_question_alone():
  fmt = world.world_format()
  tok = world.TOKENIZER
  chosen, rejected = tok.encode('red') + [2], tok.encode('gold') + [2]
  records = [{'question': 'what is the color of ba?', 'hint': 'the color of ba is red.',
              'a_assisted': 'red', 'a_hard': 'gold', 'delta': 1.0}]
  pair = pool.dpo_pairs(records)[0]
  assert (pair['prompt'], pair['chosen'], pair['rejected']) == (
      'what is the color of ba?', 'red', 'gold')
  arrays = loop.encode_pairs(fmt, [{**pair, 'chosen_ids': chosen, 'rejected_ids': rejected}], 48)
  prompt = fmt.solver_ids('what is the color of ba?', None)
  assert 'Hint' not in tok.decode(prompt)
  for side, ids in (('chosen', chosen), ('rejected', rejected)):
    tokens, mask = arrays[f'{side}_tokens'][0], arrays[f'{side}_loss_mask'][0]
    assert tokens[:len(prompt)].tolist() == prompt
    assert tokens[mask > 0].tolist() == ids
    assert arrays[f'{side}_attention_mask'][0].sum() == len(prompt) + len(ids)


# ----------------------------------------------------------------------------- the loop


@pytest.fixture(scope='module')
def world_run(tmp_path_factory):
  from jaxpapers import launch
  workdir = tmp_path_factory.mktemp('gzero_world')
  config = gzero_world.get_config('test')
  launch.run(config, str(workdir))
  return workdir, json.loads((workdir / 'results.json').read_text())


@pytest.mark.slow
def test_world_run_writes_rounds_ablations_and_plots(world_run):
  workdir, results = world_run
  seed = workdir / 'seed_0'
  per_seed = results['per_seed']['0']
  for variant in ('main', 'no_filter'):
    assert f'{variant}.final_heldout' in per_seed
    assert f'{variant}.r2.generator_heldout' in per_seed
    assert (seed / variant / 'gzero.png').exists()
    sub = json.loads((seed / variant / 'results.json').read_text())
    assert [r['round'] for r in sub['rounds']] == [0, 1, 2]
    r1 = sub['rounds'][1]
    assert r1['proposer_reward'] is not None and r1['records'] > 0
    assert (seed / variant / 'round_1' / 'pool.jsonl').exists()
  # no_filter sends every scored record to DPO, main at most about half
  main = json.loads((seed / 'main' / 'results.json').read_text())['rounds'][1]
  no_filter = json.loads((seed / 'no_filter' / 'results.json').read_text())['rounds'][1]
  assert no_filter['delta_band'] == 0 and main['delta_band'] >= main['records'] // 2 - 1
  assert (seed / 'variants.png').exists()
  assert 'main.final_heldout' in results['summary']
  table = report.tables(workdir)
  assert '### main' in table and '### no_filter' in table and '| 2 | ' in table


DRIVER = r'''
import sys
from configs import gzero_world
from jaxpapers.papers.gzero import loop
c = gzero_world.get_config('test').base
c.rounds, c.init_from = 3, sys.argv[2]
loop.run(c, sys.argv[1])
'''


def _final_state(workdir: pathlib.Path):
  steps = sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())
  return steps[-1], ocp.PyTreeCheckpointer().restore(workdir / 'checkpoints' / str(steps[-1]) /
                                                     'state')


@pytest.mark.slow
def test_loop_resumes_after_kill_with_the_same_params(tmp_path, world_run):
  # both runs start from the warm-up of `world_run` (one device each, in their own process)
  warm = str(world_run[0] / 'seed_0' / 'warmup' / 'checkpoints')
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}
  run = lambda d: subprocess.Popen(  # noqa: E731
      [sys.executable, '-c', DRIVER, str(d), warm], cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  whole = run(tmp_path / 'whole')
  killed = run(tmp_path / 'killed')
  metrics = tmp_path / 'killed' / 'metrics.jsonl'
  deadline = time.time() + 600
  while time.time() < deadline and killed.poll() is None:   # kill once round 2 is under way
    rows = [json.loads(l) for l in metrics.read_text().splitlines()] if metrics.exists() else []
    if any(r.get('round') == 2 and 'proposer/reward' in r for r in rows):
      killed.send_signal(signal.SIGKILL)
      break
    time.sleep(0.2)
  killed.wait()
  assert killed.returncode == -signal.SIGKILL, 'the run ended before it could be killed'
  resumed = run(tmp_path / 'killed')
  out, _ = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, out[-3000:]
  assert 'resumed from step' in out
  whole_out, _ = whole.communicate(timeout=600)
  assert whole.returncode == 0, whole_out[-3000:]
  step_a, a = _final_state(tmp_path / 'whole')
  step_b, b = _final_state(tmp_path / 'killed')
  assert step_a == step_b
  assert np.asarray(a['cursor']).tolist() == np.asarray(b['cursor']).tolist() == [4, 1, 0]
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
  rounds = [r['round'] for r in json.loads(
      (tmp_path / 'killed' / 'results.json').read_text())['rounds']]
  assert rounds == [0, 1, 2, 3]


@pytest.mark.slow
def test_qwen_recipe_runs_two_rounds_with_lora_adapters(tmp_path):
  # One CPU device in its own process: the 152k-token vocabulary on 8 fake devices is heavy.
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}
  subprocess.run([sys.executable, '-m', 'jaxpapers.launch', '--config=configs/gzero_qwen.py:test',
                  f'--workdir={tmp_path}'], cwd=REPO, env=env, check=True, capture_output=True,
                 timeout=900)
  results = json.loads((tmp_path / 'results.json').read_text())
  assert [r['round'] for r in results['rounds']] == [0, 1, 2]
  assert results['rounds'][1]['proposer_valid'] is not None
  assert (tmp_path / 'generator_hf' / 'config.json').exists()
  _, state = _final_state(tmp_path)
  # the checkpoint holds adapters only (rank 4), never a copy of the frozen base
  leaves = jax.tree_util.tree_leaves_with_path(state['generator']['params'])
  assert leaves and all(str(p[-1].key) in ('a', 'b') for p, _ in leaves)
