#!/usr/bin/env bash
# A RabbitMQ server on 127.0.0.1:5672 for the MessageQueue.RabbitMQ tests, run as the calling user with
# all its state under one folder (artifacts/rabbitmq, or $MQ_RABBITMQ_DIR).
#
#   eng/rabbitmq.sh install   installs Debian's rabbitmq-server when it is missing (needs root and apt-get)
#   eng/rabbitmq.sh start     starts a server unless one already answers on 127.0.0.1:5672 (then it is
#                             used as it is, and never stopped by this script); waits until it is ready
#   eng/rabbitmq.sh stop      stops the server this script started, by its PID, and its epmd
#   eng/rabbitmq.sh restart   stop then start on the same state (durable queues and messages survive);
#                             the connection-loss test uses it
#   eng/rabbitmq.sh status    says whether a server answers and whether this script started it
#
# Run `install` and `start` as root or as any user: `start` never needs root. Then `dotnet test MessageQueue.sln -c Release` runs the RabbitMQ tests against it (the connection string
# is amqp://guest:guest@127.0.0.1:5672/ unless MQ_RABBITMQ_URL says otherwise). Nothing is ever killed by
# name: only the PIDs this script recorded.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
state="${MQ_RABBITMQ_DIR:-$repo/artifacts/rabbitmq}"
port=5672

say() { echo "rabbitmq: $*"; }
die() { echo "rabbitmq: $*" >&2; exit 1; }

server_script() {
  local script
  script="$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$script" ] || die "rabbitmq-server is not installed; run: sudo eng/rabbitmq.sh install"
  echo "$script"
}

# The environment the server and rabbitmqctl share: loopback only, state under $state.
export_environment() {
  export HOME="$state/home"
  export RABBITMQ_NODENAME=rabbit@localhost
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$port
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_MNESIA_BASE="$state/mnesia"
  export RABBITMQ_LOG_BASE="$state/log"
  export RABBITMQ_PID_FILE="$state/rabbit.pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$state/enabled_plugins"
  export RABBITMQ_CONF_ENV_FILE="$state/rabbitmq-env.conf"
  export RABBITMQ_CONFIG_FILE="$state/rabbitmq"
  mkdir -p "$HOME" "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
  [ -f "$RABBITMQ_ENABLED_PLUGINS_FILE" ] || echo "[]." > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  [ -f "$RABBITMQ_CONF_ENV_FILE" ] || : > "$RABBITMQ_CONF_ENV_FILE"
  # Loopback only, and the guest user may connect over it.
  [ -f "$RABBITMQ_CONFIG_FILE.conf" ] || printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "$port" > "$RABBITMQ_CONFIG_FILE.conf"
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

ours() { [ -f "$state/server.pid" ] && kill -0 "$(cat "$state/server.pid")" 2>/dev/null; }

install() {
  if ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-* >/dev/null 2>&1; then
    say "rabbitmq-server is installed"
    return
  fi
  command -v apt-get >/dev/null || die "apt-get not found: install RabbitMQ 3.10 or later yourself"
  # Keep the package's own service from starting (and listening on every interface) where it could.
  local made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  say "installing rabbitmq-server from Debian"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  say "installed"
}

start() {
  if answers; then
    if ours; then say "already running (PID $(cat "$state/server.pid"))"; else say "a server already answers on 127.0.0.1:$port; using it as it is"; fi
    return
  fi
  local script
  script="$(server_script)"
  mkdir -p "$state"
  export_environment
  # Our own epmd, in the foreground of a background job, so that its PID is known and it can be stopped.
  if ! [ -f "$state/epmd.pid" ] || ! kill -0 "$(cat "$state/epmd.pid")" 2>/dev/null; then
    nohup epmd -address 127.0.0.1 > "$state/log/epmd.log" 2>&1 &
    echo $! > "$state/epmd.pid"
  fi
  nohup "$script" > "$state/log/server.out" 2>&1 &
  echo $! > "$state/server.pid"
  local pid
  pid="$(cat "$state/server.pid")"
  # A boot is CPU-bound: about 10 s on an idle machine, 30 to 50 s beside the flake hunt's busy processes, and more
  # when other builds share the cores. The bound is on the wall clock and only tells a server that never comes up
  # from a slow one; the tests bound a whole run of this script at 3 minutes (RabbitMqServer.ScriptGuard).
  local deadline=$((SECONDS + 120))
  while (( SECONDS < deadline )); do
    answers && break
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$state/log/server.out" >&2; die "the server exited while starting"; }
    sleep 0.2
  done
  answers || { tail -n 30 "$state/log/server.out" >&2; die "the server did not listen on 127.0.0.1:$port within 120 s"; }
  # The package's own rabbitmqctl, beside the server script: the /usr/sbin wrapper would switch users.
  "$(dirname "$script")/rabbitmqctl" await_startup > "$state/log/await.out" 2>&1 \
    || { cat "$state/log/await.out" >&2; die "rabbitmqctl await_startup failed (see $state/log)"; }
  say "started on 127.0.0.1:$port (PID $pid, state in $state)"
}

stop() {
  if ! ours; then
    say "no server started by this script is running"
  else
    local pid
    pid="$(cat "$state/server.pid")"
    # The server script stops RabbitMQ cleanly on SIGTERM.
    kill -TERM "$pid"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "PID $pid did not stop within 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      if [ -f "$state/rabbit.pid" ]; then kill -KILL "$(cat "$state/rabbit.pid")" 2>/dev/null || true; fi
    fi
    # The Erlang VM itself (its PID is in rabbit.pid) must be gone before a restart can take the port.
    if [ -f "$state/rabbit.pid" ]; then
      local vm
      vm="$(cat "$state/rabbit.pid")"
      for _ in $(seq 1 300); do kill -0 "$vm" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$vm" 2>/dev/null && kill -KILL "$vm" 2>/dev/null || true
    fi
    rm -f "$state/server.pid"
    say "stopped (PID $pid)"
  fi
  if [ "${1:-}" != "--keep-epmd" ] && [ -f "$state/epmd.pid" ]; then
    kill -TERM "$(cat "$state/epmd.pid")" 2>/dev/null || true
    rm -f "$state/epmd.pid"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  restart) ours || die "restart needs a server that this script started"; stop --keep-epmd; start ;;
  status)
    if answers; then
      if ours; then say "running, started by this script (PID $(cat "$state/server.pid"))"; else say "a server answers on 127.0.0.1:$port (not started by this script)"; fi
    else
      say "no server answers on 127.0.0.1:$port"; exit 3
    fi ;;
  *) echo "usage: eng/rabbitmq.sh install|start|stop|restart|status" >&2; exit 2 ;;
esac
