#!/bin/bash
# Cloud TPU pod slice: the same command on every worker VM; JAX finds the
# other workers from the TPU metadata, so no distributed flags beyond
# `enabled`.
#
#   cluster/tpu_pod.sh TPU_NAME ZONE /mnt/data /mnt/runs/bapst-pod
#
# The repository and its Python environment must already be on every worker
# (e.g. `--command="git clone ... && pip install -e ."` with the same ssh
# pattern). DATA is a local or mounted path every worker can list (each
# reads only its own files); WORKDIR is written by worker 0 alone.

set -euo pipefail
TPU=${1:?usage: cluster/tpu_pod.sh TPU_NAME ZONE DATA_DIR WORKDIR}
ZONE=${2:?}
DATA=${3:?}
WORKDIR=${4:?}
REPO=${REPO:-glassy_jax}

gcloud compute tpus tpu-vm ssh "${TPU}" --zone="${ZONE}" --worker=all \
  --command="cd ${REPO} && python run_training.py \
    --config=configs/bapst.py \
    --config.data.directory=${DATA} \
    --config.distributed.enabled=True \
    --workdir=${WORKDIR} 2>&1 | tee -a training-\$(hostname).log"
