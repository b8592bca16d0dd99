#!/usr/bin/env bash
# Launch examples/train_lora.py on several devices. The training script does not change; only the
# launcher does. See examples/README.md ("Several GPUs, several nodes") for what changes in the run.
#
#   examples/launch_distributed.sh one-node  GPUS  [train_lora.py args...]
#   examples/launch_distributed.sh multi-node NODES GPUS_PER_NODE RDZV_HOST:PORT JOB_ID [args...]
#       (run the same command on every node; the rendezvous host is any one of them)
#   examples/launch_distributed.sh accelerate CONFIG.yaml [args...]
#   examples/launch_distributed.sh cpu PROCS [args...]      # DDP over gloo, as the tests do
#
# Example, 2 nodes x 8 GPUs, Qwen2.5-1.5B, 448 world facts:
#   examples/launch_distributed.sh multi-node 2 8 node0.cluster:29400 lora-run-42 \
#       --model Qwen/Qwen2.5-1.5B-Instruct --world-facts 448 --output-dir /shared/adapters/world
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
script="$here/train_lora.py"
mode="${1:?usage: see the header of this file}"; shift
case "$mode" in
  one-node)
    gpus="${1:?GPUS}"; shift
    exec torchrun --standalone --nproc_per_node "$gpus" "$script" "$@" ;;
  multi-node)
    nodes="${1:?NODES}" per_node="${2:?GPUS_PER_NODE}" endpoint="${3:?RDZV_HOST:PORT}" job="${4:?JOB_ID}"; shift 4
    # c10d rendezvous: every node runs this same line; torchrun assigns ranks and waits for all nodes.
    exec torchrun --nnodes "$nodes" --nproc_per_node "$per_node" \
      --rdzv_backend c10d --rdzv_endpoint "$endpoint" --rdzv_id "$job" "$script" "$@" ;;
  accelerate)
    config="${1:?CONFIG.yaml (accelerate config --config_file CONFIG.yaml)}"; shift
    exec accelerate launch --config_file "$config" "$script" "$@" ;;
  cpu)
    procs="${1:?PROCS}"; shift
    OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" exec torchrun --standalone --nproc_per_node "$procs" "$script" "$@" ;;
  *)
    echo "unknown mode $mode: one-node | multi-node | accelerate | cpu" >&2; exit 2 ;;
esac
