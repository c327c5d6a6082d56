#!/bin/sh
# A clarity-worker/1 test worker in POSIX shell. Start-up behaviour from $START; per request,
# behaviour from the run's seed (see tests/worker/main.rs). Logs go to stderr.
case "${START:-}" in
  banner) echo "loading weights..."; sleep 5; exit 0 ;;
  protocol2) echo '{"protocol":"clarity-worker/2","model":"m","version":"1"}' ;;
  die) echo "ImportError: no module named torch" >&2; exit 2 ;;
  slow) sleep 5; exit 0 ;;
esac
version=$(cat version)
echo "{\"protocol\":\"clarity-worker/1\",\"model\":\"sh-test-model\",\"version\":\"$version\",\"settings\":{\"threshold\":0.5}}"
while IFS= read -r line; do
  printf '%s\n' "$line" > last_request
  id=$(printf '%s\n' "$line" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  seed=$(printf '%s\n' "$line" | sed -n 's/.*"seed":\([0-9]*\).*/\1/p')
  case "$seed" in
    1) echo "boom: out of memory" >&2; exit 3 ;;
    2) sleep 30 & echo $! > sleeper; wait ;;
    3) echo "loading weights 100%" ;;
    4) exit 0 ;;
    5) echo "{\"id\":\"$id\",\"error\":\"cannot read image\"}" ;;
    6) echo "{\"id\":\"stale\",\"answer\":\"normal\"}" ;;
    7) echo "{\"id\":\"$id\",\"answer\":\"normal\",\"confidence\":7}" ;;
    *)
      [ "$seed" = 8 ] && sleep 0.2
      echo "{\"id\":\"$id\",\"answer\":\"normal\",\"probabilities\":{\"normal\":0.75,\"nodule\":0.25},\"justification\":\"clear lungs\",\"trace\":[{\"step\":\"predict\"}],\"saliency\":{\"width\":2,\"height\":1,\"values\":[0,0.5]},\"metadata\":{\"pid\":$$}}"
      ;;
  esac
done
