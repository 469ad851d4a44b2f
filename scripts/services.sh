#!/usr/bin/env bash
# Makes sure the local services the tests talk to are up; starts any that is down with this
# machine's start command, then waits for its port. Usage: scripts/services.sh [service ...]
# (default: every service the test suite needs).
set -uo pipefail

port_of() {
  case "$1" in
    postgres) echo 5432 ;; redis) echo 6379 ;; nats) echo 4222 ;;
    rabbitmq) echo 5672 ;; mariadb) echo 3306 ;; mosquitto) echo 1883 ;;
    *) echo "unknown service: $1" >&2; return 1 ;;
  esac
}

start() {
  case "$1" in
    postgres) pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start ;;
    redis) redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
             --dir /var/lib/redis --logfile /var/log/redis/ci.log ;;
    nats) start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
            -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log ;;
    rabbitmq) rabbitmq-server -detached ;;
    mariadb) start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd ;;
    mosquitto) mosquitto -d -c /etc/mosquitto/mosquitto.conf ;;
  esac
}

is_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(postgres redis nats)
failed=0
for s in "${services[@]}"; do
  port=$(port_of "$s") || { failed=1; continue; }
  if is_up "$port"; then
    echo "services: $s is up on $port"
    continue
  fi
  echo "services: $s is down on $port; starting it"
  start "$s" || echo "services: the start command for $s failed" >&2
  for _ in $(seq 1 60); do is_up "$port" && break; sleep 0.5; done
  if is_up "$port"; then echo "services: $s is up on $port"; else echo "services: $s did not come up on $port" >&2; failed=1; fi
done
exit $failed
