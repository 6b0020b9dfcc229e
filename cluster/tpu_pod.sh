#!/bin/bash
# Cloud TPU pod slice: the same command on every worker VM; JAX finds the
# other workers from the TPU metadata, so no distributed flags beyond
# `enabled`.
#
#   cluster/tpu_pod.sh TPU_NAME ZONE gs://my-bucket/data gs://my-bucket/runs/bapst-pod
#
# The repository and its Python environment must already be on every worker
# (e.g. `--command="git clone ... && pip install -e ."` with the same ssh
# pattern), with the `cloud` extra (pip install -e '.[cloud]') for bucket
# URLs. DATA is a bucket URL or a mounted path every worker can list (each
# reads only its own files); WORKDIR, a bucket URL on a pod (its VMs share no
# disk), is written by worker 0 alone.

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
