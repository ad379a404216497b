#!/usr/bin/env bash
# Spark's GPU discovery script (spark.driver.resource.gpu.discoveryScript): the GPUs
# nvidia-smi lists, as the JSON Spark reads.
set -euo pipefail
ids=$(nvidia-smi --query-gpu=index --format=csv,noheader | paste -sd, - | sed 's/\([0-9]\+\)/"\1"/g')
echo "{\"name\": \"gpu\", \"addresses\": [${ids}]}"
