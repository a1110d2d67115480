#!/usr/bin/env bash
# The main job: build crawlctl and run it. Today that is the budget for the
# default 8 GiB node, next to the reference crawler's table.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_go
build_crawlctl
cd "$(repo_root)"
step "crawlctl budget (crawlctl profile)"
bin/crawlctl budget "$@"
step "crawlctl budget --profile reference"
bin/crawlctl budget --profile reference "$@"
