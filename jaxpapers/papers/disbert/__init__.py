"""DisBert: topic-informed discrete latent variables for STS (../shared/papers/disbert.md).

Reference: Yu et al., "Learning Semantic Textual Similarity via Topic-informed Discrete
Latent Variables", EMNLP 2022 (github ErxinYu/DisBert). Modules: `data` (pairs, BoW
vocabulary, Grain), `ntm` (Gaussian-softmax topic model), `vq` (codebook math), `model`
(backbone + semantic-driven attention + head), `metrics`, `steps` (losses and jitted train
steps per stage), `experiment` (the 'disbert' runner).
"""
