# shellcheck shell=bash
# Progress for long steps, sourced by scripts/setup.sh, scripts/demo.sh and
# scripts/build-filter.sh: `with_progress WHAT ESTIMATE_SECONDS COMMAND...` runs COMMAND (its
# output passes through) and, while it runs, says every 20 s how long it has been running and
# about how long it usually takes; its status is COMMAND's.

human() { if (($1 >= 90)); then echo "$(($1 / 60)) min $(($1 % 60)) s"; else echo "$1 s"; fi; }

with_progress() {
  local what=$1 estimate=$2 started=$SECONDS pid status=0 last
  shift 2
  echo "$what (about $(human "$estimate") the first time)"
  "$@" &
  pid=$!
  last=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - last >= 20)) && kill -0 "$pid" 2>/dev/null; then
      last=$SECONDS
      echo "  ... $what: $(human $((SECONDS - started))) of about $(human "$estimate")"
    fi
  done
  wait "$pid" || status=$?
  if ((SECONDS - started >= 30)); then
    echo "  $what: done in $(human $((SECONDS - started)))"
  fi
  return $status
}
