#!/bin/sh
# Like the official image: bind to the container's address unless BIND_ON_IP says
# otherwise, and broadcast a routable address when binding to all of them.
set -eu
own_ip="$(hostname -i | awk '{print $1}')"
export BIND_ON_IP="${BIND_ON_IP:-$own_ip}"
if [ "$BIND_ON_IP" = 0.0.0.0 ] || [ "$BIND_ON_IP" = "::0" ]; then
  export TEMPORAL_BROADCAST_ADDRESS="${TEMPORAL_BROADCAST_ADDRESS:-$own_ip}"
fi
exec temporal-server --root /etc/temporal --config config --env docker start
