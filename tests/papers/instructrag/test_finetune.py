"""SFT examples: the loss mask covers exactly the target (rationale or answer) and EOS;
step count and warm-up follow the reference's Trainer settings."""
import types

import numpy as np
import pytest

from configs import instructrag as ir_config
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.papers.instructrag import finetune
from jaxpapers.papers.instructrag import methods
from jaxpapers.papers.instructrag import prompts

EX = {'question': 'who wrote hamlet', 'answers': ['Shakespeare'],
      'ctxs': [{'title': f'T{i}', 'text': 'word ' * 60, 'score': 5.0 - i} for i in range(5)]}
RATIONALE = 'Document 5 says Hamlet is by William Shakespeare, so the answer is Shakespeare.'


@pytest.fixture(scope='module')
def tok():
  return tok_lib.load('qwen')


def test_loss_mask_covers_exactly_the_rationale_and_eos(tok):
  ids = prompts.encode(tok, '', prompts.query_body(EX, 5), 'chat')
  ex = finetune.example(tok, ids, RATIONALE, 1024)
  mask, tokens, attn = ex['loss_mask'], ex['tokens'], ex['attention_mask']
  target = tok_lib.encode(tok, RATIONALE + tok.eos_token)
  assert mask.sum() == len(target) and tokens[mask == 1].tolist() == target
  assert tok.decode(tokens[mask == 1].tolist()) == RATIONALE + tok.eos_token
  assert tokens[:len(ids)].tolist() == ids and mask[:len(ids)].sum() == 0   # prompt: no loss
  n = len(ids) + len(target)
  assert attn[:n].all() and not attn[n:].any() and not mask[n:].any()      # padding: no loss


def test_sft_examples_cut_documents_so_the_target_fits(tok):
  config = ir_config.get_config('tiny')
  config.ft.seq_len = 200
  study = types.SimpleNamespace(config=config, tok=tok)
  ex = methods.sft_examples(study, [EX], [RATIONALE])[0]
  target = tok_lib.encode(tok, RATIONALE + tok.eos_token)
  assert ex['attention_mask'].sum() == 200 and ex['loss_mask'].sum() == len(target)
  assert ex['tokens'][-len(target):].tolist() == target
  text = tok.decode(ex['tokens'].tolist())
  assert text.startswith('<|im_start|>') and 'answer the question:\nwho wrote hamlet?' in text
  assert 'Document 1 (Title: T4)' not in text                 # the first documents were cut


def test_reference_literal_training_query(tok):
  config = ir_config.get_config('tiny')
  config.ft.train_query = 'reference_literal'
  ex = methods.sft_examples(types.SimpleNamespace(config=config, tok=tok), [EX], ['x'])[0]
  assert 'answer the question:\n{question}who wrote hamlet?' in tok.decode(ex['tokens'].tolist())


def test_steps_and_warmup_follow_the_reference():
  ft = ir_config.get_config().ft
  assert (ft.epochs, ft.warmup_ratio, ft.optimizer.learning_rate) == (2, 0.03, 2.5e-5)
  assert ft.optimizer.schedule == 'cosine' and ft.optimizer.weight_decay == 0.0
  assert finetune.num_steps(100, ft) == 25                    # ceil(2 x 100 / 8)
  opt = finetune.optimizer_config(ft, 25)
  assert opt['warmup_steps'] == 1 and opt['learning_rate'] == 2.5e-5   # ceil(0.03 x 25)
  assert finetune.optimizer_config(ft, 1000)['warmup_steps'] == 30
  ft.max_steps = 2
  assert finetune.num_steps(100, ft) == 2


def test_rationale_demos_prefer_rationales_with_a_gold_answer():
  rows = [{'q': i, 'has_answer': i % 2 == 1} for i in range(6)]
  assert [r['q'] for r in methods.rationale_demos(rows, 2)] == [1, 3]
  assert [r['q'] for r in methods.rationale_demos(rows[:2], 2)] == [0, 1]
  assert np.all([methods.rationale_demos(rows, 3)[i]['has_answer'] for i in range(3)])
