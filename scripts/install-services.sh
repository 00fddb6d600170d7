#!/usr/bin/env bash
# Installs the services the tests run for real (RabbitMQ) from Debian's packages, once.
# The tests start and stop their own private nodes on loopback; nothing is started here.
set -euo pipefail

missing=()
[ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} from Debian's packages"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
