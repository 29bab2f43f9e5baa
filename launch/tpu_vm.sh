#!/usr/bin/env bash
# Runs one experiment on every worker of a Cloud TPU VM slice.
#
#   launch/tpu_vm.sh TPU_NAME ZONE configs/grpo_gsm8k.py gs://bucket/run1 [--config.x=y ...]
#
# Each worker installs the repo (already copied to ~/jaxpapers) with TPU JAX and starts
# the launcher; jax.distributed.initialize() finds the slice topology from the TPU env.
set -euo pipefail
TPU_NAME=$1; ZONE=$2; CONFIG=$3; WORKDIR=$4; shift 4
EXTRA="$*"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="
  set -e
  cd ~/jaxpapers
  pip install -q -e . 'jax[tpu]' -f https://storage.googleapis.com/jax-releases/libtpu_releases.html
  python -m jaxpapers.launch --config=$CONFIG --workdir=$WORKDIR $EXTRA
"
