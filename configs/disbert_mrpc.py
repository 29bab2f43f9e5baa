r"""DisBert on MRPC (Yu et al., EMNLP 2022; github ErxinYu/DisBert; ../shared/papers/disbert.md).

Topic model -> VQ over a topic-initialised codebook -> semantic-driven attention in the last
layer of all-MiniLM-L6-v2, fine-tuned as a cross-encoder; test accuracy/F1 of the
best-dev step, mean and std over seeds. The baseline is the same cross-encoder without
topics/VQ, same task steps, batch, learning rates and seeds.

  python -m jaxpapers.launch --config=configs/disbert_mrpc.py --workdir=W
  python -m jaxpapers.launch --config=configs/disbert_mrpc.py:baseline --workdir=W
  python -m jaxpapers.launch --config=configs/disbert_mrpc.py:tiny --workdir=W   # seconds

Variants: `baseline`, `tiny` (random 2-layer BERT, 64 pairs, a few steps: CI),
`epochs=N` (task epochs), `seeds=0,1,2`. Leaves: `--config.stages.joint.learning_rate=3e-5`.
Runtime: the full budget (4 task epochs x 3 seeds) is hours on a 2-core CPU; see README.
"""
from configs import disbert_stsb

TASK = 'mrpc'
SEQ_LEN = 128       # reference --max_length 128 (longer pairs are truncated and counted)


def get_config(arg=None):
  return disbert_stsb.build(TASK, SEQ_LEN, eval_every=115, arg=arg)
