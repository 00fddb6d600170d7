#!/usr/bin/env bash
# Installs what the tests run for real from Debian's packages, once: RabbitMQ (a private
# broker per test run), PostgreSQL (a private cluster per test run, started from the
# binaries under /usr/lib/postgresql/*/bin) and Prometheus' promtool (checks the metrics
# exposition and the alert rules).
# The tests start and stop their own private nodes and clusters on loopback; nothing is
# started here. So that the postgresql package does not create and start the system's
# default cluster either, it is told not to before it is installed.
set -euo pipefail

missing=()
[ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
[ -x /usr/bin/promtool ] || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} from Debian's packages"
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    $sudo mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = off" |
        $sudo tee /etc/postgresql-common/createcluster.d/order-watcher.conf >/dev/null
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
