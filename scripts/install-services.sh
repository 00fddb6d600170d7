#!/usr/bin/env bash
# Installs what the tests run for real from Debian's packages, once: RabbitMQ (a private
# broker per test run) and Prometheus' promtool (checks the metrics exposition and the
# alert rules).
# The tests start and stop their own private nodes on loopback; nothing is started here.
set -euo pipefail

missing=()
[ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
[ -x /usr/bin/promtool ] || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} from Debian's packages"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
